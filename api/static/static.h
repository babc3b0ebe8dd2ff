/* The browser files cobrowsed serves (web/README.md, "What cobrowsed serves"): the visitor SDK,
 * the agent viewer, the demo console and their content-hashed assets.
 *
 * The whole web root is read into memory once at start (static_load), with a strong ETag and the
 * pre-compressed .gz sibling of each file, so a request never touches the disk and a path can only
 * name a file of the in-memory table (exact relative path): no traversal is possible. These are
 * not REST routes: they are registered beside server_routes and are not in openapi.yaml.
 *
 * Ownership: static_open / static_load return a site the caller frees with static_free after the
 * HTTP server has stopped. Threading: load/free/register from the main thread; the handler and the
 * pure helpers below from any HTTP worker (the site is read-only once loaded; the viewer's
 * per-tenant origin cache has its own lock).
 */
#ifndef COBROWSE_API_STATIC_STATIC_H
#define COBROWSE_API_STATIC_STATIC_H

#include <stddef.h>
#include <ulfius.h>

#define STATIC_MAX_FILE_BYTES  (16u << 20)  /* a larger file is skipped (logged) */
#define STATIC_MAX_TOTAL_BYTES (128u << 20) /* a larger tree is refused: serve does not start */
#define STATIC_MAX_FILES       4096

struct server;
struct static_site;

/* The static module's options (app/options.c's registry fills it before static_open). */
struct static_config {
    char web_root[1024]; /* --web-root; "" means the default search (static_resolve_root) */
};

/* What a URL path names. */
enum static_kind {
    STATIC_NONE = 0,         /* not ours: 404 route_not_found */
    STATIC_SDK,              /* /sdk/v1/cobrowse.js */
    STATIC_ASSET,            /* /assets/<file> */
    STATIC_VIEWER,           /* /viewer/{tenant_id} */
    STATIC_CONSOLE,          /* /demo/console/ */
    STATIC_CONSOLE_REDIRECT, /* /demo/console -> 301 /demo/console/ */
};

/* Maps url_path (decoded, without query) to the file of the web root it serves, written into
 * file (relative, no leading slash). For STATIC_VIEWER the path segment after /viewer/ is written
 * into tenant (its shape is not checked here). Paths with "..", "//", a backslash, a control
 * character or a dot segment map to STATIC_NONE. */
enum static_kind static_map(const char *url_path, char *file, size_t file_size, char *tenant,
                            size_t tenant_size);

/* Content-Type for a file name, by extension; application/octet-stream when unknown. */
const char *static_mime(const char *name);

/* 1 if an Accept-Encoding header value accepts gzip (a "gzip" or "*" coding without q=0). */
int static_accepts_gzip(const char *accept_encoding);

/* 1 if an origin may be written into a CSP header as a source: scheme://host[:port] with no
 * space, quote, semicolon, comma or control character. */
int static_origin_safe(const char *origin);

/* 1 if an If-None-Match value matches etag ("*", or a list of entity tags, W/ ignored). */
int static_etag_match(const char *if_none_match, const char *etag);

/* Finds the web root: configured if non-empty (must be a directory), else <exe dir>/web, else
 * <exe dir>/../share/cobrowse/web. Writes it into out and returns 0; returns 1 when nothing was
 * found (only possible without a configured root), -1 when the configured one is not a
 * directory (logged). */
int static_resolve_root(const char *configured, char *out, size_t out_size);

/* Resolves cfg's web root and loads it: the module's start. Without a configured root and none
 * found it serves an empty site (warned: the SDK and viewer then answer 404). Returns NULL
 * (logged) when the configured root is not a directory or static_load fails. */
struct static_site *static_open(const struct static_config *cfg);

/* Reads every regular file under root (NULL: an empty site). Returns NULL (logged) on a tree
 * over STATIC_MAX_TOTAL_BYTES or STATIC_MAX_FILES, or out of memory. */
struct static_site *static_load(const char *root);
void static_free(struct static_site *site);
/* Number of files served (the .gz variants not counted). */
size_t static_count(const struct static_site *site);

/* Registers the handlers for /sdk/, /assets/, /viewer/ and /demo/ on instance, answering from
 * site (which must outlive the instance); srv is handed to each request's context (its database
 * pool and configuration). Returns 0 or -1. */
int static_register(struct _u_instance *instance, struct server *srv, struct static_site *site);

#endif
