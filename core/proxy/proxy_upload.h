/* The stylesheets visitors uploaded (docs/proxy.md, "Fallback: the visitor's copy"): the text of
 * a stylesheet the proxy could not fetch, read in the visitor's browser and sent with
 * POST /v1/token/session/stylesheets, kept per (tenant, session, url) until it is replaced,
 * expires (PROXY_UPLOAD_TTL_SECONDS), or is pushed out by newer uploads.
 *
 * Two stores behind one interface:
 *   - in memory (proxy_uploads_new), the default: this node's uploads only. Bounded three ways:
 *     per session (PROXY_UPLOAD_SESSION_SHEETS sheets and PROXY_UPLOAD_SESSION_BYTES bytes: a
 *     session over either loses its oldest sheet), and overall (max_bytes: the oldest sheet of
 *     any session goes first). Lookups are O(sheets stored), fine for the few thousand the byte
 *     bound allows.
 *   - in Redis (proxy_uploads_new_redis, with --redis-url): shared by every node on that Redis,
 *     keys cb:up:{T:S} (the session's sheets, oldest first) and cb:up:{T:S}:<sha256(url)> (one
 *     sheet, with the TTL) (docs/cluster.md). The per-session bounds are kept by one Lua script
 *     per put (atomic across nodes); the overall bound is Redis's maxmemory (docs/proxy.md).
 *     A put or get is one Redis round trip on the calling thread (core/cluster/kv.h: it blocks
 *     for at most the connect and command timeouts); `now` is unused (Redis's clock expires).
 *     Tenant and session ids must be [A-Za-z0-9_-]{1,64} (ids are): anything else is refused
 *     rather than risk two sessions sharing a key.
 * Threading: every function may be called from any thread (a mutex in memory, the kv pool and
 * atomics in Redis).
 */
#ifndef COBROWSE_CORE_PROXY_PROXY_UPLOAD_H
#define COBROWSE_CORE_PROXY_PROXY_UPLOAD_H

#include <stddef.h>
#include <time.h>

#define PROXY_UPLOAD_MAX_BYTES      (1u << 20) /* one sheet's text */
#define PROXY_UPLOAD_SESSION_SHEETS 64
#define PROXY_UPLOAD_SESSION_BYTES  (4u << 20)
#define PROXY_UPLOAD_TTL_SECONDS    3600 /* longer than any agent token of one session */

struct proxy_uploads;

struct proxy_uploads *proxy_uploads_new(size_t max_bytes);
/* The Redis store at url (redis:// or unix://). It connects on first use, so Redis may be down
 * now. NULL on a bad URL (logged, without the password) or out of memory. */
struct proxy_uploads *proxy_uploads_new_redis(const char *url);
void proxy_uploads_free(struct proxy_uploads *u);

/* Stores a copy of text[0..len) for (tenant, session, url), replacing an earlier one. now: wall
 * clock. Returns 0, 1 (refused: len over PROXY_UPLOAD_MAX_BYTES, PROXY_UPLOAD_SESSION_BYTES or
 * the whole store), or -1 (out of memory; Redis: unreachable, or it refused the write, e.g. at
 * maxmemory with noeviction; logged). */
int proxy_uploads_put(struct proxy_uploads *u, const char *tenant, const char *session,
                      const char *url, const char *text, size_t len, time_t now);

/* A malloc'd copy of the stored text (NUL-terminated; *len set), or NULL when there is none (and
 * when Redis cannot answer: logged, counted in errors; the proxy then fetches as without one). */
char *proxy_uploads_get(struct proxy_uploads *u, const char *tenant, const char *session,
                        const char *url, time_t now, size_t *len);

/* In memory: bytes and sheets held, puts stored, sheets evicted (bounds and replaced ones not
 * counted), errors 0. In Redis (shared = 1): bytes and sheets are 0, because the store is every
 * node's and counting it would take a SCAN (watch Redis's used_memory and evicted_keys); stored
 * and evicted count this node's puts and the sheets they pushed out; errors its puts and gets
 * that Redis did not answer (unreachable, or an error reply). */
struct proxy_uploads_stats {
    size_t bytes, sheets;
    unsigned long long stored, evicted, errors;
    int shared;
};
void proxy_uploads_stats(struct proxy_uploads *u, struct proxy_uploads_stats *out);

#endif
