/* The synchronous Redis client for blocking threads (core/cluster/kv.h): a bounded pool of
 * hiredis blocking connections, made on demand. */
#include "core/cluster/kv.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/crypto.h"
#include "core/base/log.h"
#include "core/cluster/redis_url.h"

struct kv {
    struct redis_url url;
    char redacted[512]; /* the URL for logs */
    int connect_ms, command_ms, retry_ms;

    pthread_mutex_t lock; /* guards the free stack */
    pthread_cond_t freed;
    int n, n_free;
    int *free_stack;      /* slot indexes, the most recently used on top (likely connected) */
    redisContext **conns; /* conns[i]: slot i's connection or NULL; only its holder touches it */

    atomic_llong retry_at; /* monotonic ms before which no connect is tried */
    atomic_int down;       /* an outage was logged and has not ended */
    atomic_ullong commands, failures, connects;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_ms(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

struct kv *kv_new(const struct kv_config *cfg)
{
    char err[128];
    struct kv *kv = NULL;
    if (cfg->pool < 1 || cfg->connect_timeout_ms < 1 || cfg->command_timeout_ms < 1 ||
        cfg->retry_ms < 0) {
        log_msg(LOG_ERROR, "kv: invalid pool, timeouts or retry delay");
        return NULL;
    }
    kv = calloc(1, sizeof(*kv));
    if (kv == NULL)
        goto fail;
    if (redis_url_parse(cfg->url != NULL ? cfg->url : "", &kv->url, err, sizeof(err)) != 0) {
        log_json(LOG_ERROR, "invalid Redis URL", json_pack("{s:s}", "error", err));
        goto fail;
    }
    redis_url_redacted(&kv->url, kv->redacted, sizeof(kv->redacted));
    kv->connect_ms = cfg->connect_timeout_ms;
    kv->command_ms = cfg->command_timeout_ms;
    kv->retry_ms = cfg->retry_ms;
    kv->n = kv->n_free = cfg->pool;
    kv->free_stack = calloc((size_t)cfg->pool, sizeof(*kv->free_stack));
    kv->conns = calloc((size_t)cfg->pool, sizeof(*kv->conns));
    if (kv->free_stack == NULL || kv->conns == NULL)
        goto fail;
    for (int i = 0; i < kv->n; i++)
        kv->free_stack[i] = i;
    pthread_mutex_init(&kv->lock, NULL);
    pthread_cond_init(&kv->freed, NULL);
    return kv;
fail:
    if (kv != NULL) {
        free(kv->free_stack);
        free(kv->conns);
        explicit_bzero(&kv->url, sizeof(kv->url));
        free(kv);
    }
    return NULL;
}

void kv_free(struct kv *kv)
{
    if (kv == NULL)
        return;
    for (int i = 0; i < kv->n; i++)
        if (kv->conns[i] != NULL)
            redisFree(kv->conns[i]);
    pthread_cond_destroy(&kv->freed);
    pthread_mutex_destroy(&kv->lock);
    free(kv->free_stack);
    free(kv->conns);
    explicit_bzero(&kv->url, sizeof(kv->url));
    free(kv);
}

static int take(struct kv *kv)
{
    pthread_mutex_lock(&kv->lock);
    while (kv->n_free == 0)
        pthread_cond_wait(&kv->freed, &kv->lock);
    int slot = kv->free_stack[--kv->n_free];
    pthread_mutex_unlock(&kv->lock);
    return slot;
}

static void give(struct kv *kv, int slot)
{
    pthread_mutex_lock(&kv->lock);
    kv->free_stack[kv->n_free++] = slot;
    pthread_cond_signal(&kv->freed);
    pthread_mutex_unlock(&kv->lock);
}

/* Logs the start of an outage once; `why` comes from hiredis or Redis (never holds a secret). */
static void went_down(struct kv *kv, const char *why)
{
    if (atomic_exchange(&kv->down, 1) == 0)
        log_json(LOG_WARN, "redis unreachable",
                 json_pack("{s:s,s:s}", "url", kv->redacted, "error", why));
}

static void came_up(struct kv *kv)
{
    if (atomic_exchange(&kv->down, 0) == 1)
        log_json(LOG_INFO, "redis reachable again", json_pack("{s:s}", "url", kv->redacted));
}

/* AUTH and SELECT on a new connection. 0, or -1 with the reason in why. */
static int handshake(struct kv *kv, redisContext *c, char *why, size_t size)
{
    char db[16];
    const char *argv[3];
    size_t lens[3];
    int rc = 0;
    for (int step = 0; step < 2 && rc == 0; step++) {
        int argc = 0;
        if (step == 0 && kv->url.password[0] != '\0') {
            argv[argc++] = "AUTH";
            if (kv->url.user[0] != '\0')
                argv[argc++] = kv->url.user;
            argv[argc++] = kv->url.password;
        } else if (step == 1 && kv->url.db != 0) {
            snprintf(db, sizeof(db), "%d", kv->url.db);
            argv[argc++] = "SELECT";
            argv[argc++] = db;
        }
        if (argc == 0)
            continue;
        for (int i = 0; i < argc; i++)
            lens[i] = strlen(argv[i]);
        redisReply *r = redisCommandArgv(c, argc, argv, lens);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, size, "%s: %s", argv[0], r != NULL ? r->str : c->errstr);
            rc = -1;
        }
        if (r != NULL)
            freeReplyObject(r);
    }
    return rc;
}

/* A new connection, ready for commands, or NULL (the outage logged, retries held off). */
static redisContext *connect_one(struct kv *kv)
{
    char why[256] = "";
    if (now_ms() < atomic_load(&kv->retry_at))
        return NULL;
    struct timeval tv = tv_ms(kv->connect_ms);
    redisContext *c = kv->url.path[0] != '\0'
                          ? redisConnectUnixWithTimeout(kv->url.path, tv)
                          : redisConnectWithTimeout(kv->url.host, kv->url.port, tv);
    if (c == NULL || c->err) {
        snprintf(why, sizeof(why), "connect: %s", c != NULL ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK || handshake(kv, c, why, sizeof(why)) != 0 ||
        redisSetTimeout(c, tv_ms(kv->command_ms)) != REDIS_OK) {
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "setting the timeout: %s", c->errstr);
        goto fail;
    }
    if (kv->url.path[0] == '\0')
        redisEnableKeepAlive(c);
    atomic_fetch_add_explicit(&kv->connects, 1, memory_order_relaxed);
    came_up(kv);
    return c;
fail:
    went_down(kv, why);
    atomic_store(&kv->retry_at, now_ms() + kv->retry_ms);
    if (c != NULL)
        redisFree(c);
    return NULL;
}

/* One command on slot's connection, connecting when it has none. A connection that had served
 * before and is found closed by the server (EOF, reset) is replaced once and the command sent
 * again: that is what a Redis restart looks like, and the callers' commands are idempotent. A
 * timeout is not retried (the command may have run and a retry would double the wait). */
static redisReply *run(struct kv *kv, int slot, int argc, const char **argv, const size_t *lens)
{
    redisContext **c = &kv->conns[slot];
    atomic_fetch_add_explicit(&kv->commands, 1, memory_order_relaxed);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = *c == NULL;
        if (fresh && (*c = connect_one(kv)) == NULL)
            break;
        errno = 0;
        redisReply *r = redisCommandArgv(*c, argc, argv, lens);
        int e = errno;
        if (r != NULL)
            return r;
        int closed = (*c)->err == REDIS_ERR_EOF ||
                     ((*c)->err == REDIS_ERR_IO && (e == ECONNRESET || e == EPIPE));
        int again = !fresh && closed;
        if (!again)
            went_down(kv, (*c)->errstr);
        redisFree(*c);
        *c = NULL;
        if (!again)
            break;
    }
    atomic_fetch_add_explicit(&kv->failures, 1, memory_order_relaxed);
    return NULL;
}

redisReply *kv_command(struct kv *kv, int argc, const char **argv, const size_t *lens)
{
    int slot = take(kv);
    redisReply *r = run(kv, slot, argc, argv, lens);
    give(kv, slot);
    return r;
}

int kv_script_init(struct kv_script *s, const char *source)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    s->source = source;
    if (EVP_Digest(source, strlen(source), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
        return -1;
    crypto_hex_encode(md, n, s->sha);
    return 0;
}

static int is_noscript(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *kv_eval(struct kv *kv, const struct kv_script *s, int nkeys, int argc,
                    const char **argv, const size_t *lens)
{
    char keys[16];
    redisReply *r = NULL;
    const char **a = malloc(sizeof(*a) * (size_t)(argc + 3));
    size_t *l = malloc(sizeof(*l) * (size_t)(argc + 3));
    if (a == NULL || l == NULL)
        goto done;
    snprintf(keys, sizeof(keys), "%d", nkeys);
    a[0] = "EVALSHA", a[1] = s->sha, a[2] = keys;
    for (int i = 0; i < 3; i++)
        l[i] = strlen(a[i]);
    memcpy(a + 3, argv, sizeof(*a) * (size_t)argc);
    memcpy(l + 3, lens, sizeof(*l) * (size_t)argc);
    int slot = take(kv);
    r = run(kv, slot, argc + 3, a, l);
    if (is_noscript(r)) {
        const char *load[3] = {"SCRIPT", "LOAD", s->source};
        size_t load_lens[3] = {6, 4, strlen(s->source)};
        freeReplyObject(r);
        r = run(kv, slot, 3, load, load_lens);
        if (r != NULL && r->type != REDIS_REPLY_ERROR) {
            freeReplyObject(r);
            r = run(kv, slot, argc + 3, a, l);
        }
    }
    give(kv, slot);
done:
    free(a);
    free(l);
    return r;
}

void kv_stats(struct kv *kv, struct kv_stats *out)
{
    out->commands = atomic_load_explicit(&kv->commands, memory_order_relaxed);
    out->failures = atomic_load_explicit(&kv->failures, memory_order_relaxed);
    out->connects = atomic_load_explicit(&kv->connects, memory_order_relaxed);
}
