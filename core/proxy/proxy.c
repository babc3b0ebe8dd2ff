/* The proxy service (core/proxy/proxy.h): the instance, and one request from cap to bytes.
 * Fetching and the in-flight table are in proxy_fetch.c; what crosses the files, in
 * proxy_internal.h. */
#include "core/proxy/proxy.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/base/log.h"
#include "core/proxy/css.h"
#include "core/net/fetch.h"
#include "core/net/netguard.h"
#include "core/proxy/pcache.h"
#include "core/proxy/proxy_internal.h"
#include "core/proxy/proxy_rewrite.h"
#include "core/proxy/proxy_upload.h"

#define MAX_AGE_CAP     300 /* the viewer asks again after this long, so a change shows */
#define MAX_REDIRECTS   5
#define FETCH_PARALLEL  16
#define FETCH_QUEUED    256
#define CONNECT_TIMEOUT 3000

/* ---------------------------------------------------------------------------------------------
 * The instance */

struct proxy *proxy_new(const struct proxy_config *cfg)
{
    char err[256];
    struct proxy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->cfg = *cfg;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->done, NULL);
    if (netguard_new(cfg->allow_private, &p->guard, err, sizeof(err)) != 0) {
        log_json(LOG_ERROR, "invalid --proxy-allow-private", json_pack("{s:s}", "error", err));
        goto fail;
    }
    if (cfg->secret == NULL || proxy_key_derive(cfg->secret, cfg->secret_len, p->key) != 0)
        goto fail;
    p->cache = pcache_new(cfg->cache_bytes);
    p->uploads = cfg->redis_url != NULL && cfg->redis_url[0] != '\0'
                     ? proxy_uploads_new_redis(cfg->redis_url)
                     : proxy_uploads_new(cfg->upload_bytes);
    if (p->cache == NULL || p->uploads == NULL)
        goto fail;
    return p;
fail:
    proxy_free(p);
    return NULL;
}

int proxy_start(struct proxy *p)
{
    struct fetch_config fc = {
        .guard = p->guard,
        .connect_timeout_ms =
            p->cfg.timeout_ms < CONNECT_TIMEOUT ? p->cfg.timeout_ms : CONNECT_TIMEOUT,
        .total_timeout_ms = p->cfg.timeout_ms,
        .max_bytes = p->cfg.max_bytes,
        .max_redirects = MAX_REDIRECTS,
        .max_parallel = FETCH_PARALLEL,
        .max_queued = FETCH_QUEUED,
        .user_agent = "cobrowsed-proxy/1",
    };
    p->fetcher = fetcher_start(&fc);
    return p->fetcher != NULL ? 0 : -1;
}

void proxy_stop(struct proxy *p)
{
    if (p == NULL)
        return;
    fetcher_stop(p->fetcher);
    p->fetcher = NULL;
}

void proxy_free(struct proxy *p)
{
    if (p == NULL)
        return;
    proxy_stop(p);
    pcache_free(p->cache);
    proxy_uploads_free(p->uploads);
    netguard_free(p->guard);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->lock);
    explicit_bzero(p->key, sizeof(p->key));
    free(p);
}

const unsigned char *proxy_key(const struct proxy *p)
{
    return p->key;
}

int proxy_upload(struct proxy *p, const char *tenant, const char *session, const char *url,
                 const char *text, size_t len)
{
    int rc = proxy_uploads_put(p->uploads, tenant, session, url, text, len, time(NULL));
    if (rc == 0)
        atomic_fetch_add(&p->uploads_stored, 1);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Answers */

static void fail(struct proxy_response *r, int status, const char *problem, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct proxy_response *r, int status, const char *problem, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->status = status;
    r->problem = problem;
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
}

static long max_age(time_t fresh_until)
{
    long left = (long)(fresh_until - time(NULL));
    return left < 0 ? 0 : left > MAX_AGE_CAP ? MAX_AGE_CAP : left;
}

/* Fills a 200 answer. A stylesheet from the cache or a fetch is already in its served form
 * (rewritten once, when fetched: proxy_rewrite.h); an uploaded one (sign) is rewritten here,
 * against its original URL. tag: the body's ETag when known (a cache entry's), else computed. The
 * body stays borrowed unless rewritten: the caller keeps it alive. */
static void answer(struct proxy *p, const struct parsed *x, int sign, const char *body, size_t len,
                   const char *content_type, time_t fresh_until, const char *tag,
                   struct proxy_response *r)
{
    if (sign) {
        struct css_buf out = {0};
        if (proxy_rewrite_signed(body, len, x->url, p->key, x->cap.tenant, &out) != 0) {
            css_buf_free(&out);
            fail(r, 500, "internal_error", "The stylesheet could not be rewritten.");
            return;
        }
        r->owned = out.data ? out.data : strdup("");
        r->body = r->owned;
        r->body_len = out.len;
        if (r->owned == NULL) {
            fail(r, 500, "internal_error", "Out of memory.");
            return;
        }
    } else {
        r->body = body;
        r->body_len = len;
    }
    r->status = 200;
    snprintf(r->content_type, sizeof(r->content_type), "%s", content_type);
    r->max_age = max_age(fresh_until);
    if (tag != NULL && !sign)
        snprintf(r->etag, sizeof(r->etag), "%s", tag);
    else
        proxy_etag_of(r->body, r->body_len, r->etag);
}

void proxy_response_free(struct proxy_response *r)
{
    if (r->entry != NULL && r->from != NULL)
        pcache_release(r->from->cache, r->entry);
    free(r->owned);
    r->entry = NULL;
    r->owned = NULL;
    r->body = NULL;
}
/* ---------------------------------------------------------------------------------------------
 * Serving */

/* The request's cap, kind, target and ref. Returns 0, or -1 with r failed. */
static int parse(struct proxy *p, const struct proxy_request *req, struct parsed *x,
                 struct proxy_response *r)
{
    int rc = proxy_cap_verify(p->key, req->cap, (int64_t)time(NULL), &x->cap);
    if (rc == PROXY_SIGN_EXPIRED) {
        fail(r, 403, "proxy_cap_expired",
             "This proxy URL has expired: fetch GET /v1/token/session again for a new proxy_base.");
        return -1;
    }
    if (rc != PROXY_SIGN_OK) {
        fail(r, 403, "proxy_cap_invalid", "This proxy URL's capability is not valid.");
        return -1;
    }
    x->kind = proxy_kind_parse(req->kind);
    if (x->kind == PROXY_KIND_NONE) {
        fail(r, 400, "invalid_parameter", "The kind must be css or asset.");
        return -1;
    }
    rc = proxy_target_decode(req->target, x->url, sizeof(x->url));
    if (rc != PROXY_SIGN_OK) {
        fail(r, 400, "invalid_parameter",
             rc == PROXY_SIGN_NOT_HTTP
                 ? "The target is not an absolute http or https URL (without credentials)."
                 : "The target must be the base64url (no padding) of a URL of at most 2048 bytes.");
        return -1;
    }
    if (req->ref != NULL && proxy_ref_verify(p->key, x->cap.tenant, req->kind, req->target,
                                             req->ref) != PROXY_SIGN_OK) {
        fail(r, 403, "proxy_ref_invalid",
             "This proxy URL's signature is not valid for this tenant, kind and target.");
        return -1;
    }
    snprintf(x->key, sizeof(x->key), "%s\n%s\n%s", x->cap.tenant, req->kind, x->url);
    return 0;
}

/* The session's uploaded copy of a stylesheet. Returns 1 when one was served. */
static int serve_upload(struct proxy *p, const struct parsed *x, struct proxy_response *r)
{
    size_t len = 0;
    char *text =
        proxy_uploads_get(p->uploads, x->cap.tenant, x->cap.session, x->url, time(NULL), &len);
    if (text == NULL)
        return 0;
    atomic_fetch_add(&p->uploads_served, 1);
    /* Its relative URLs resolve against the sheet's original URL (the visitor's page read it
     * there); max-age 0: a newer upload replaces it. */
    answer(p, x, 1, text, len, "text/css; charset=utf-8", 0, NULL, r);
    free(text);
    return 1;
}

/* The policy's verdict as an answer. Returns 0 when the request may go on. */
static int check_policy(const struct proxy_request *req, const struct parsed *x,
                        struct proxy_response *r)
{
    char origin[PROXY_URL_MAX + 1];
    if (proxy_origin_of(x->url, origin, sizeof(origin)) != 0) {
        fail(r, 400, "invalid_parameter", "The target's origin could not be read.");
        return -1;
    }
    switch (req->policy(req->policy_arg, x->cap.tenant, x->cap.session, origin, req->ref == NULL)) {
    case PROXY_POLICY_OK:
        return 0;
    case PROXY_POLICY_GONE:
        fail(r, 404, "not_found", "This proxy URL's session or tenant does not exist.");
        return -1;
    case PROXY_POLICY_ENDED:
        fail(r, 403, "proxy_session_inactive",
             "This proxy URL's session has ended or its tenant is suspended.");
        return -1;
    case PROXY_POLICY_ORIGIN:
        fail(r, 403, "proxy_origin_not_allowed",
             "The origin %.200s is in neither the tenant's allowed_origins nor asset_origins.",
             origin);
        return -1;
    default:
        fail(r, 503, "database_unavailable", "The database is unavailable. Retry shortly.");
        r->retry_after = 1;
        return -1;
    }
}

void proxy_serve(struct proxy *p, const struct proxy_request *req, struct proxy_response *r)
{
    struct parsed *x = calloc(1, sizeof(*x));
    memset(r, 0, sizeof(*r));
    r->from = p;
    if (x == NULL) {
        fail(r, 500, "internal_error", "Out of memory.");
        return;
    }
    if (parse(p, req, x, r) != 0 || (x->kind == PROXY_KIND_CSS && serve_upload(p, x, r)))
        goto done;
    const struct pcache_entry *e = pcache_get(p->cache, x->key);
    if (e != NULL && e->fresh_until > time(NULL)) {
        atomic_fetch_add(&p->hits, 1);
        r->entry = e;
        answer(p, x, 0, e->body, e->body_len, e->content_type, e->fresh_until, e->tag, r);
        goto done;
    }
    atomic_fetch_add(&p->misses, 1);
    struct outcome o;
    memset(&o, 0, sizeof(o));
    if (check_policy(req, x, r) == 0) {
        proxy_fetch_once(p, x, e, &o);
        if (o.status != 200) {
            fail(r, o.status, o.problem, "%s", o.detail);
        } else {
            answer(p, x, 0, o.body, o.body_len, o.content_type, o.fresh_until,
                   o.tag[0] ? o.tag : NULL, r);
            if (r->owned == NULL && r->status == 200) {
                r->owned = o.body; /* an asset's body: the response keeps it */
                o.body = NULL;
            }
        }
    }
    free(o.body);
    if (e != NULL && r->entry != e)
        pcache_release(p->cache, e);
done:
    free(x);
}

char *proxy_metrics_text(struct proxy *p)
{
    struct pcache_stats cs;
    struct proxy_uploads_stats us;
    pcache_stats(p->cache, &cs);
    proxy_uploads_stats(p->uploads, &us);
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
#define PUT(...) n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
    PUT("# TYPE cobrowse_proxy_requests_total counter\n");
    PUT("cobrowse_proxy_requests_total{result=\"hit\"} %llu\n", atomic_load(&p->hits));
    PUT("cobrowse_proxy_requests_total{result=\"miss\"} %llu\n", atomic_load(&p->misses));
    PUT("cobrowse_proxy_requests_total{result=\"upload\"} %llu\n", atomic_load(&p->uploads_served));
    PUT("cobrowse_proxy_requests_total{result=\"deduplicated\"} %llu\n",
        atomic_load(&p->deduplicated));
    pthread_mutex_lock(&p->lock);
    int waiting = p->waiting;
    pthread_mutex_unlock(&p->lock);
    PUT("# TYPE cobrowse_proxy_waiting gauge\ncobrowse_proxy_waiting %d\n", waiting);
    PUT("# TYPE cobrowse_proxy_fetches_total counter\n");
    for (int i = 0; i < FETCH_OUTCOMES; i++)
        PUT("cobrowse_proxy_fetches_total{outcome=\"%s\"} %llu\n",
            fetch_error_str((enum fetch_error)i), atomic_load(&p->fetches[i]));
    PUT("cobrowse_proxy_fetches_total{outcome=\"not_modified\"} %llu\n",
        atomic_load(&p->revalidated));
    PUT("cobrowse_proxy_fetches_total{outcome=\"upstream_error_status\"} %llu\n",
        atomic_load(&p->upstream_status));
    PUT("cobrowse_proxy_fetches_total{outcome=\"type_not_allowed\"} %llu\n",
        atomic_load(&p->upstream_type));
    PUT("# TYPE cobrowse_proxy_cache_bytes gauge\ncobrowse_proxy_cache_bytes %zu\n", cs.bytes);
    PUT("# TYPE cobrowse_proxy_cache_entries gauge\ncobrowse_proxy_cache_entries %zu\n",
        cs.entries);
    PUT("# TYPE cobrowse_proxy_cache_evictions_total counter\n"
        "cobrowse_proxy_cache_evictions_total %llu\n",
        cs.evictions);
    PUT("# TYPE cobrowse_proxy_uploads_total counter\ncobrowse_proxy_uploads_total %llu\n",
        us.stored);
    /* In Redis the store is every node's: no cheap size (proxy_upload.h), so no gauge. */
    if (!us.shared)
        PUT("# TYPE cobrowse_proxy_upload_bytes gauge\ncobrowse_proxy_upload_bytes %zu\n",
            us.bytes);
    PUT("# TYPE cobrowse_proxy_upload_errors_total counter\n"
        "cobrowse_proxy_upload_errors_total %llu\n",
        us.errors);
#undef PUT
    if (n >= cap) {
        free(out);
        return NULL;
    }
    return out;
}
