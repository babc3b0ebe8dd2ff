/* The proxy's cache (docs/proxy.md, "Caching"): responses in memory, bounded in bytes, least
 * recently used out first, keyed by a string the caller builds (tenant, kind and URL: entries
 * are never shared between tenants).
 *
 * Entries are immutable and reference-counted: pcache_get hands out a reference that stays valid
 * after the entry is replaced or evicted, until pcache_release. Freshness follows RFC 9111 for a
 * shared cache: s-maxage, max-age, Expires against Date, Age; no-store and private responses are
 * not stored; no-cache and must-revalidate responses are stored but always revalidated; without
 * any of these, a heuristic of 10 % of (Date - Last-Modified), at most one day, else cfg's default.
 * Threading: every function may be called from any thread (one mutex; O(1) per call, except
 * eviction which frees as many entries as it takes).
 */
#ifndef COBROWSE_CORE_PROXY_PCACHE_H
#define COBROWSE_CORE_PROXY_PCACHE_H

#include <stddef.h>
#include <time.h>

struct pcache;

struct pcache_entry {
    const char *key;
    int status;               /* 200 */
    const char *content_type; /* as the proxy serves it */
    const char *etag;         /* the origin's validators, for revalidation; NULL when absent */
    const char *last_modified;
    const char *tag;  /* the proxy's own ETag of body (computed once, at put); NULL when none */
    const char *body; /* after rewriting, for stylesheets */
    size_t body_len;
    time_t stored_at;   /* wall clock, seconds */
    time_t fresh_until; /* wall clock: after this, revalidate before serving */
    int must_revalidate;
};

/* What a response's headers allow (pcache_policy). */
struct pcache_policy {
    int store;      /* 0: do not keep (no-store, private, or an uncacheable status) */
    long fresh_for; /* seconds it may be served without asking the origin (>= 0) */
    int revalidate; /* no-cache / must-revalidate: ask the origin when stale */
};

/* Freshness of a response, from its headers (any may be NULL). now: wall clock. */
void pcache_policy(const char *cache_control, const char *expires, const char *date,
                   const char *age, const char *last_modified, long default_fresh, time_t now,
                   struct pcache_policy *out);

struct pcache *pcache_new(size_t max_bytes);
void pcache_free(struct pcache *c);

/* Stores a copy of e (strings and body copied) under e->key, replacing any entry of that key.
 * An entry bigger than an eighth of the cache is not stored. Returns 0, 1 (not stored: too
 * big), or -1 (out of memory). */
int pcache_put(struct pcache *c, const struct pcache_entry *e);

/* The entry for key, referenced (pcache_release it), or NULL. Marks it most recently used. */
const struct pcache_entry *pcache_get(struct pcache *c, const char *key);
void pcache_release(struct pcache *c, const struct pcache_entry *e);

/* Extends a stale entry's freshness after a 304 (a new entry with the same body). Returns 0,
 * or -1 when the key is gone or out of memory. */
int pcache_refresh(struct pcache *c, const char *key, time_t fresh_until);

struct pcache_stats {
    size_t bytes, entries;
    unsigned long long hits, misses, evictions;
};
void pcache_stats(struct pcache *c, struct pcache_stats *out);

#endif
