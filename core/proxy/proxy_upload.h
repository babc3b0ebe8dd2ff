/* The stylesheets visitors uploaded (docs/proxy.md, "Fallback: the visitor's copy"): the text of
 * a stylesheet the proxy could not fetch, read in the visitor's browser and sent with
 * POST /v1/token/session/stylesheets, kept in memory per (tenant, session, url) until it is
 * replaced, expires, or is pushed out by newer uploads.
 *
 * Bounded three ways: per session (PROXY_UPLOAD_SESSION_SHEETS sheets and
 * PROXY_UPLOAD_SESSION_BYTES bytes: a session over either loses its oldest sheet), and overall
 * (the max_bytes given to proxy_uploads_new: the oldest sheet of any session goes first).
 * Lookups are O(sheets stored), fine for the few thousand the byte bound allows.
 * Threading: every function may be called from any thread (one mutex).
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
void proxy_uploads_free(struct proxy_uploads *u);

/* Stores a copy of text[0..len) for (tenant, session, url), replacing an earlier one. now: wall
 * clock. Returns 0, 1 (refused: len over PROXY_UPLOAD_MAX_BYTES or the whole store), or -1 (out
 * of memory). */
int proxy_uploads_put(struct proxy_uploads *u, const char *tenant, const char *session,
                      const char *url, const char *text, size_t len, time_t now);

/* A malloc'd copy of the stored text (NUL-terminated; *len set), or NULL when there is none. */
char *proxy_uploads_get(struct proxy_uploads *u, const char *tenant, const char *session,
                        const char *url, time_t now, size_t *len);

struct proxy_uploads_stats {
    size_t bytes, sheets;
    unsigned long long stored, evicted;
};
void proxy_uploads_stats(struct proxy_uploads *u, struct proxy_uploads_stats *out);

#endif
