/* The visitors' uploaded stylesheets in Redis (core/proxy/proxy_upload.h, "in Redis"): one string
 * key per sheet with the TTL, and per session a sorted set of its sheets, oldest first, that the
 * put script uses to keep the session's bounds. Both share the hash tag {T:S}, so a Redis
 * Cluster keeps a session's uploads on one shard, which the script needs (it deletes the
 * session's other sheets by name). */
#include "core/proxy/proxy_upload_redis.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/crypto.h"
#include "core/base/log.h"
#include "core/cluster/kv.h"

/* A stylesheet request asks Redis first (proxy.c, serve_upload), so a few connections keep those
 * lookups from queueing behind a 1 MiB upload; see kv.h. */
#define POOL            4
#define CONNECT_TIMEOUT 500  /* ms: loopback or one LAN hop */
#define COMMAND_TIMEOUT 2000 /* ms: a 1 MiB SET over a slow hop */
#define RETRY_DELAY     1000 /* ms: while Redis is down, requests fail at once */
#define ID_MAX          64
#define IDX_SIZE        (sizeof("cb:up:{:}") + 2 * ID_MAX)

/* KEYS[1] the session's set (member: sha256(url), score: upload order), KEYS[2] the sheet.
 * ARGV: sha, text, ttl, max sheets, max bytes, the prefix of the session's sheet keys.
 * Stores the sheet, forgets members whose key expired, then drops the session's oldest sheets
 * while it holds more than max sheets or max bytes (the sheet being replaced does not count).
 * The SET is the first write on purpose: at maxmemory with noeviction Redis refuses a script's
 * first denyoom write, but lets a script that already wrote go on, so a ZREM first would let
 * uploads past maxmemory. Returns {sheets evicted, sheets held, bytes held}. O(sheets of the
 * session) <= 64 (+1). */
static const char PUT_SCRIPT[] =
    "local idx, key, sha, text = KEYS[1], KEYS[2], ARGV[1], ARGV[2]\n"
    "local ttl, max_sheets, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])\n"
    "local live, sizes, total, gone = {}, {}, 0, {}\n"
    "for _, m in ipairs(redis.call('ZRANGE', idx, 0, -1)) do\n"
    "  local k = ARGV[6] .. m\n"
    "  if m == sha then\n"
    "  elseif redis.call('EXISTS', k) == 1 then\n"
    "    live[#live + 1] = m\n"
    "    sizes[#live] = redis.call('STRLEN', k)\n"
    "    total = total + sizes[#live]\n"
    "  else\n"
    "    gone[#gone + 1] = m\n"
    "  end\n"
    "end\n"
    "redis.call('SET', key, text, 'EX', ttl)\n"
    "for _, m in ipairs(gone) do redis.call('ZREM', idx, m) end\n"
    "local i = 1\n"
    "while i <= #live and (#live - i + 1 >= max_sheets or total + #text > max_bytes) do\n"
    "  redis.call('DEL', ARGV[6] .. live[i])\n"
    "  redis.call('ZREM', idx, live[i])\n"
    "  total = total - sizes[i]\n"
    "  i = i + 1\n"
    "end\n"
    "local last = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')\n"
    "local order = 1\n"
    "if #last == 2 then order = tonumber(last[2]) + 1 end\n"
    "redis.call('ZADD', idx, order, sha)\n"
    "redis.call('EXPIRE', idx, ttl)\n"
    "return {i - 1, #live - i + 2, total + #text}\n";

struct upload_redis {
    struct kv *kv;
    struct kv_script put;
    atomic_ullong stored, evicted, errors;
};

struct upload_redis *upload_redis_new(const char *url)
{
    struct kv_config kc = {
        .url = url,
        .pool = POOL,
        .connect_timeout_ms = CONNECT_TIMEOUT,
        .command_timeout_ms = COMMAND_TIMEOUT,
        .retry_ms = RETRY_DELAY,
    };
    struct upload_redis *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    if (kv_script_init(&r->put, PUT_SCRIPT) != 0 || (r->kv = kv_new(&kc)) == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void upload_redis_free(struct upload_redis *r)
{
    if (r == NULL)
        return;
    kv_free(r->kv);
    free(r);
}

static int valid_id(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= ID_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789_-") == n;
}

struct keys {
    char idx[IDX_SIZE], key[IDX_SIZE + CRYPTO_HEX_SHA256], sha[CRYPTO_HEX_SHA256];
};

/* The session's set into idx, and the sheet's key into key (idx ":" sha256(url)). 0, or -1 for
 * ids that could make two sessions share a key (logged). */
static int make_keys(const char *tenant, const char *session, const char *url, struct keys *k)
{
    if (!valid_id(tenant) || !valid_id(session)) {
        log_msg(LOG_ERROR,
                "upload store: tenant or session id not of the form [A-Za-z0-9_-]{1,64}");
        return -1;
    }
    if (crypto_sha256_hex(url, strlen(url), k->sha) != 0)
        return -1;
    snprintf(k->idx, sizeof(k->idx), "cb:up:{%s:%s}", tenant, session);
    snprintf(k->key, sizeof(k->key), "%s:%s", k->idx, k->sha);
    return 0;
}

/* An error reply is logged here (Redis's message holds no secret: e.g. "OOM command not allowed
 * when used memory > 'maxmemory'"); NULL was logged by kv.h as an outage. */
static void failed(struct upload_redis *r, const char *what, const redisReply *reply,
                   const char *tenant, const char *session)
{
    atomic_fetch_add_explicit(&r->errors, 1, memory_order_relaxed);
    if (reply != NULL)
        log_json(LOG_WARN, what,
                 json_pack("{s:s,s:s,s:s}", "tenant", tenant, "session", session, "error",
                           reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply"));
}

int upload_redis_put(struct upload_redis *r, const char *tenant, const char *session,
                     const char *url, const char *text, size_t len)
{
    struct keys k;
    char ttl[16], sheets[16], bytes[24], prefix[sizeof(k.idx) + 1];
    if (len > PROXY_UPLOAD_MAX_BYTES || len > PROXY_UPLOAD_SESSION_BYTES)
        return 1;
    if (make_keys(tenant, session, url, &k) != 0) {
        atomic_fetch_add_explicit(&r->errors, 1, memory_order_relaxed);
        return -1;
    }
    snprintf(ttl, sizeof(ttl), "%d", PROXY_UPLOAD_TTL_SECONDS);
    snprintf(sheets, sizeof(sheets), "%d", PROXY_UPLOAD_SESSION_SHEETS);
    snprintf(bytes, sizeof(bytes), "%u", PROXY_UPLOAD_SESSION_BYTES);
    snprintf(prefix, sizeof(prefix), "%s:", k.idx);
    const char *argv[] = {k.idx, k.key, k.sha, text, ttl, sheets, bytes, prefix};
    size_t lens[8];
    for (int i = 0; i < 8; i++)
        lens[i] = i == 3 ? len : strlen(argv[i]);
    redisReply *reply = kv_eval(r->kv, &r->put, 2, 8, argv, lens);
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        failed(r, "upload not stored in Redis", reply, tenant, session);
        if (reply != NULL)
            freeReplyObject(reply);
        return -1;
    }
    atomic_fetch_add_explicit(&r->stored, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->evicted, (unsigned long long)reply->element[0]->integer,
                              memory_order_relaxed);
    freeReplyObject(reply);
    return 0;
}

char *upload_redis_get(struct upload_redis *r, const char *tenant, const char *session,
                       const char *url, size_t *len)
{
    struct keys k;
    char *copy = NULL;
    if (make_keys(tenant, session, url, &k) != 0) {
        atomic_fetch_add_explicit(&r->errors, 1, memory_order_relaxed);
        return NULL;
    }
    const char *argv[] = {"GET", k.key};
    size_t lens[] = {3, strlen(k.key)};
    redisReply *reply = kv_command(r->kv, 2, argv, lens);
    if (reply != NULL && reply->type == REDIS_REPLY_NIL)
        goto done;
    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        failed(r, "upload not read from Redis", reply, tenant, session);
        goto done;
    }
    copy = malloc(reply->len + 1);
    if (copy != NULL) {
        memcpy(copy, reply->str, reply->len);
        copy[reply->len] = '\0';
        *len = reply->len;
    }
done:
    if (reply != NULL)
        freeReplyObject(reply);
    return copy;
}

void upload_redis_stats(struct upload_redis *r, struct proxy_uploads_stats *out)
{
    out->bytes = 0;
    out->sheets = 0;
    out->stored = atomic_load_explicit(&r->stored, memory_order_relaxed);
    out->evicted = atomic_load_explicit(&r->evicted, memory_order_relaxed);
    out->errors = atomic_load_explicit(&r->errors, memory_order_relaxed);
    out->shared = 1;
}
