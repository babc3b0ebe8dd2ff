/* What crosses the proxy service's files (proxy.h), private to core/proxy/proxy.c (the instance,
 * serving, answers, metrics) and core/proxy/proxy_fetch.c (fetching, the in-flight table).
 * Threading: struct proxy is shared by every HTTP worker: its counters are atomics, flights and
 * waiting are guarded by lock, the rest is set before proxy_start and read-only after. struct
 * parsed and struct outcome belong to one request. */
#ifndef COBROWSE_CORE_PROXY_PROXY_INTERNAL_H
#define COBROWSE_CORE_PROXY_PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

#include "core/net/fetch.h"
#include "core/proxy/pcache.h"
#include "core/proxy/proxy.h"
#include "core/proxy/proxy_sign.h"
#include "core/proxy/proxy_upload.h"

#define KEY_MAX        (48 + 8 + PROXY_URL_MAX + 4)
#define FETCH_OUTCOMES (FETCH_E_OTHER + 1)

/* What one fetch produced, shared by the request that made it and those that waited for it. */
struct outcome {
    int status; /* 200 or an error status */
    const char *problem;
    char detail[256];
    char *body; /* 200: as the cache keeps it (stylesheets in their served form) */
    size_t body_len;
    char content_type[128];
    char tag[24]; /* the body's ETag */
    time_t fresh_until;
};

/* A request, once its cap, kind and target are verified. */
struct parsed {
    struct proxy_cap cap;
    enum proxy_kind kind;
    char url[PROXY_URL_MAX + 1];
    char key[KEY_MAX]; /* the cache key: tenant, kind and URL */
};

struct proxy {
    struct proxy_config cfg;
    unsigned char key[PROXY_KEY_LEN];
    struct netguard *guard;
    struct fetcher *fetcher;
    struct pcache *cache;
    struct proxy_uploads *uploads;
    pthread_mutex_t lock; /* flights and waiting */
    pthread_cond_t done;
    struct flight *flights;
    int waiting; /* requests waiting for a fetch now (the cobrowse_proxy_waiting gauge) */
    atomic_ullong hits, misses, revalidated, deduplicated, uploads_served, uploads_stored;
    atomic_ullong upstream_status, upstream_type, fetches[FETCH_OUTCOMES];
};

/* ---- proxy_fetch.c (proxy.c calls it; it never calls proxy.c) ---- */

/* The proxy's own ETag of a body into out (a quoted string of at most 23 bytes and its NUL). */
void proxy_etag_of(const char *body, size_t len, char out[24]);

/* The fetch of x's key (conditional when stale, a cache entry the caller holds, is given), made
 * by this request or by the one already making it, into o (o->body malloc'd: the caller frees
 * it). Blocks the calling HTTP worker until the fetch ends. */
void proxy_fetch_once(struct proxy *p, const struct parsed *x, const struct pcache_entry *stale,
                      struct outcome *o);

#endif
