/* The stylesheet, font and image proxy service (docs/proxy.md): the instance that owns the proxy
 * key, the SSRF guard, the fetcher thread, the cache, the visitors' uploaded stylesheets and the
 * in-flight table, and serves one proxy request from them.
 *
 * Serving (proxy_serve): verify the cap (and the ref), decode the target, then
 *   - the session's uploaded copy (css only), else
 *   - the tenant's cache entry (tenant + kind + URL): fresh -> served, no database query and no
 *     fetch; stale -> revalidated with its validators (a 304 refreshes it), else
 *   - the caller's policy (tenant and session alive, origin allowed unless the ref is valid;
 *     PostgreSQL in api/proxy.c, so only on a miss), then one fetch per cache key at a time:
 *     requests for a key being fetched wait for that fetch. A request waits on its own thread:
 *     the proxy listener runs a thread per connection (api/listen.h), so a slow upstream holds
 *     only the connections that asked for it.
 * Stylesheets are cached as fetched and rewritten on each answer (css_rewrite), because their
 * URLs carry the requesting session's cap; images and fonts are served as cached.
 *
 * Ownership: proxy_new copies cfg; proxy_free frees everything (after proxy_stop). A response's
 * body belongs to it until proxy_response_free. Threading: new/start/stop/free from the main
 * thread (the composition root); proxy_serve, proxy_upload and proxy_metrics_text from any HTTP
 * worker. The policy callback runs on the calling thread.
 */
#ifndef COBROWSE_CORE_PROXY_PROXY_H
#define COBROWSE_CORE_PROXY_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "core/proxy/proxy_sign.h"

struct proxy;
struct pcache;
struct pcache_entry;

/* Filled by app/options.c's registry (and the secret by the composition root at start). */
struct proxy_config {
    char allow_private[1024];    /* --proxy-allow-private: CIDRs the guard lets through, "" none */
    size_t cache_bytes;          /* --proxy-cache-bytes */
    size_t max_bytes;            /* --proxy-max-bytes: one upstream body */
    int timeout_ms;              /* --proxy-timeout-ms: one fetch, redirects included */
    size_t upload_bytes;         /* --proxy-upload-bytes: every uploaded stylesheet together */
    const unsigned char *secret; /* the platform's signing secret (not owned) */
    size_t secret_len;
    const char *redis_url; /* uploads in Redis, shared by the nodes; NULL or "": in memory */
};

enum proxy_policy_verdict {
    PROXY_POLICY_OK = 0,
    PROXY_POLICY_GONE,        /* tenant or session not found (404) */
    PROXY_POLICY_ENDED,       /* session ended, tenant suspended (403) */
    PROXY_POLICY_ORIGIN,      /* the origin is in neither allowed_origins nor asset_origins */
    PROXY_POLICY_UNAVAILABLE, /* database down (503) */
};

/* The tenant's policy for one target, asked on a miss only. origin: "scheme://host[:port]"
 * (lowercase, default port omitted); check_origin is 0 when a valid ref vouches for the URL. */
typedef enum proxy_policy_verdict (*proxy_policy_fn)(void *arg, const char *tenant,
                                                     const char *session, const char *origin,
                                                     int check_origin);

struct proxy_request {
    const char *cap, *kind, *target;
    const char *ref; /* NULL when the URL has none */
    proxy_policy_fn policy;
    void *policy_arg;
};

struct proxy_response {
    int status; /* 200, or the error's HTTP status */
    /* Errors: a stable code (the problem type's last segment) and a detail for the client. */
    const char *problem;
    char detail[256];
    double retry_after; /* 503: seconds */
    /* 200: the bytes, their type, the proxy's own strong ETag and max-age. */
    const char *body;
    size_t body_len;
    char content_type[128];
    char etag[24];
    long max_age;
    /* private: what body points into */
    char *owned;
    const struct pcache_entry *entry;
    struct proxy *from;
};

struct proxy *proxy_new(const struct proxy_config *cfg);
/* Starts the fetcher thread. Returns 0 or -1 (logged). */
int proxy_start(struct proxy *p);
/* Stops the fetcher (fetches in flight end as failures). NULL-safe. */
void proxy_stop(struct proxy *p);
void proxy_free(struct proxy *p);

/* The proxy key (for the cap given in GET /v1/token/session). */
const unsigned char *proxy_key(const struct proxy *p);

/* Answers one request into *out (always filled; proxy_response_free it). */
void proxy_serve(struct proxy *p, const struct proxy_request *req, struct proxy_response *out);
void proxy_response_free(struct proxy_response *r);

/* Stores a visitor's copy of a stylesheet. Returns 0, 1 (refused: too large), -1 (no memory). */
int proxy_upload(struct proxy *p, const char *tenant, const char *session, const char *url,
                 const char *text, size_t len);

/* 1 if an upstream Content-Type may be served as kind: css text/css only; asset image/...,
 * font/..., application/font-*, application/x-font-*, application/vnd.ms-fontobject,
 * application/octet-stream. Never HTML or scripts. */
int proxy_type_allowed(enum proxy_kind kind, const char *content_type);

/* Prometheus text of the proxy's counters (malloc'd; NULL when out of memory). */
char *proxy_metrics_text(struct proxy *p);

#endif
