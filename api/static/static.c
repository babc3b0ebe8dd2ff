/* The browser files, loaded into memory and served (api/static/static.h); the pure rules (URL
 * mapping, content types, gzip and ETag negotiation, CSP origins) are in api/static/static_rules.c.
 */
#include "api/static/static.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http.h"
#include "core/base/crypto.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/hash.h"
#include "core/base/timeutil.h"

#define ETAG_HEX       16
#define MAX_DEPTH      16
#define ORIGIN_SLOTS   256  /* direct-mapped per-tenant cache of frame-ancestors sources */
#define SOURCES_MAX    8192 /* bytes of one tenant's frame-ancestors sources */
#define ORIGIN_MAX_LEN 512

struct sfile {
    char *path; /* relative to the root, '/'-separated */
    unsigned char *data;
    size_t len;
    char etag[ETAG_HEX + 3]; /* quoted */
    unsigned char *gz;       /* the .gz sibling's bytes, or NULL */
    size_t gz_len;
    char gz_etag[ETAG_HEX + 3];
    int is_variant; /* this is a .gz attached to its sibling: not addressable itself */
};

struct origin_entry {
    char tenant[48];
    double fetched;
    int found;
    char *sources; /* " https://a.example https://b.example" (leading space), or "" */
};

struct static_site {
    struct server *srv; /* set by static_register: handed to each request's context */
    struct sfile *files;
    size_t n, cap;
    size_t total;
    pthread_mutex_t lock; /* guards origins */
    struct origin_entry origins[ORIGIN_SLOTS];
};

static const char viewer_csp_fmt[] =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline' http: https:; "
    "img-src 'self' data: blob: http: https:; font-src 'self' data: http: https:; "
    "media-src 'self' data: blob: http: https:; connect-src 'self'%s; frame-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'%s";
static const char console_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: http: https:; connect-src 'self' http: https:; frame-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
static const char not_found_csp[] = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'";
static const char viewer_not_found_html[] =
    "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Not found</title>"
    "<p>This viewer link is not valid: its tenant does not exist.</p></html>\n";

/* Labels of the request log lines and of c->route (never a REST route: route_index stays -1). */
static const struct route labels[] = {
    [STATIC_SDK] = {"GET", "/sdk/v1/cobrowse.js", "staticSdk", NULL, 0, ROUTE_PUBLIC},
    [STATIC_ASSET] = {"GET", "/assets/{name}", "staticAsset", NULL, 0, ROUTE_PUBLIC},
    [STATIC_VIEWER] = {"GET", "/viewer/{tenant_id}", "staticViewer", NULL, 0, ROUTE_PUBLIC},
    [STATIC_CONSOLE] = {"GET", "/demo/console/", "staticConsole", NULL, 0, ROUTE_PUBLIC},
    [STATIC_CONSOLE_REDIRECT] = {"GET", "/demo/console", "staticConsole", NULL, 0, ROUTE_PUBLIC},
};

/* ---------------------------------------------------------------------------------------------
 * Loading */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int static_resolve_root(const char *configured, char *out, size_t out_size)
{
    if (configured != NULL && configured[0] != '\0') {
        if (!is_dir(configured)) {
            log_json(LOG_ERROR, "web root is not a directory",
                     json_pack("{s:s, s:s}", "web_root", configured, "hint",
                               "build it with `node web/build.mjs DIR` or fix --web-root"));
            return -1;
        }
        snprintf(out, out_size, "%s", configured);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return 1;
    *slash = '\0';
    char cand[PATH_MAX + 32];
    snprintf(cand, sizeof(cand), "%s/web", exe);
    if (is_dir(cand)) {
        snprintf(out, out_size, "%s", cand);
        return 0;
    }
    snprintf(cand, sizeof(cand), "%s/../share/cobrowse/web", exe);
    char real[PATH_MAX];
    if (is_dir(cand) && realpath(cand, real) != NULL) {
        snprintf(out, out_size, "%s", real);
        return 0;
    }
    return 1;
}

static int read_file(const char *path, size_t size, unsigned char **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    unsigned char *buf = malloc(size ? size : 1);
    int rc = -1;
    if (buf != NULL && fread(buf, 1, size, f) == size) {
        *out = buf;
        buf = NULL;
        rc = 0;
    }
    free(buf);
    fclose(f);
    return rc;
}

static void etag_of(const unsigned char *data, size_t len, char out[ETAG_HEX + 3])
{
    char hex[CRYPTO_HEX_SHA256];
    if (crypto_sha256_hex(data, len, hex) != 0)
        snprintf(hex, sizeof(hex), "%016zx", len);
    snprintf(out, ETAG_HEX + 3, "\"%.*s\"", ETAG_HEX, hex);
}

/* Adds root/rel (a regular file of size bytes). Returns 0, 1 (skipped), or -1 (refuse). */
static int add_file(struct static_site *s, const char *full, const char *rel, size_t size)
{
    if (size > STATIC_MAX_FILE_BYTES) {
        log_json(LOG_WARN, "web file too large, not served",
                 json_pack("{s:s, s:I, s:I}", "file", rel, "bytes", (json_int_t)size, "max",
                           (json_int_t)STATIC_MAX_FILE_BYTES));
        return 1;
    }
    if (s->total + size > STATIC_MAX_TOTAL_BYTES || s->n >= STATIC_MAX_FILES) {
        log_json(LOG_ERROR, "web root too large",
                 json_pack("{s:s, s:I, s:i, s:s}", "at", rel, "max_bytes",
                           (json_int_t)STATIC_MAX_TOTAL_BYTES, "max_files", STATIC_MAX_FILES,
                           "hint", "point --web-root at the web build (node web/build.mjs DIR)"));
        return -1;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct sfile *f = realloc(s->files, cap * sizeof(*f));
        if (f == NULL)
            return -1;
        s->files = f;
        s->cap = cap;
    }
    struct sfile *f = &s->files[s->n];
    memset(f, 0, sizeof(*f));
    f->path = strdup(rel);
    if (f->path == NULL || read_file(full, size, &f->data) != 0) {
        log_json(LOG_ERROR, "cannot read web file",
                 json_pack("{s:s, s:s}", "file", rel, "error", strerror(errno)));
        free(f->path);
        return -1;
    }
    f->len = size;
    etag_of(f->data, f->len, f->etag);
    s->total += size;
    s->n++;
    return 0;
}

static int walk(struct static_site *s, const char *root, const char *rel, int depth)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s%s%s", root, rel[0] ? "/" : "", rel);
    if (depth > MAX_DEPTH)
        return 0;
    DIR *d = opendir(dir);
    if (d == NULL) {
        log_json(LOG_ERROR, "cannot open web directory",
                 json_pack("{s:s, s:s}", "dir", dir, "error", strerror(errno)));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') /* ".", ".." and hidden files */
            continue;
        char full[PATH_MAX], sub[PATH_MAX];
        int a = snprintf(full, sizeof(full), "%s/%s", dir, e->d_name);
        int b = snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        if (a < 0 || (size_t)a >= sizeof(full) || b < 0 || (size_t)b >= sizeof(sub))
            continue;
        struct stat st;
        if (stat(full, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = walk(s, root, sub, depth + 1);
        else if (S_ISREG(st.st_mode) && add_file(s, full, sub, (size_t)st.st_size) < 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b)
{
    return strcmp(((const struct sfile *)a)->path, ((const struct sfile *)b)->path);
}

static struct sfile *find_any(const struct static_site *s, const char *path)
{
    if (s == NULL || s->n == 0)
        return NULL;
    struct sfile key = {.path = (char *)path};
    return bsearch(&key, s->files, s->n, sizeof(*s->files), by_path);
}

static const struct sfile *find(const struct static_site *s, const char *path)
{
    const struct sfile *f = find_any(s, path);
    return f != NULL && !f->is_variant ? f : NULL;
}

struct static_site *static_load(const char *root)
{
    struct static_site *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    if (root == NULL)
        return s;
    if (walk(s, root, "", 0) != 0) {
        static_free(s);
        return NULL;
    }
    qsort(s->files, s->n, sizeof(*s->files), by_path);
    /* A .gz beside a file is that file's compressed variant: it moves into the file's entry. */
    for (size_t i = 0; i < s->n; i++) {
        struct sfile *gz = &s->files[i];
        size_t pl = strlen(gz->path);
        if (pl <= 3 || strcmp(gz->path + pl - 3, ".gz") != 0)
            continue;
        char *base = strndup(gz->path, pl - 3);
        if (base == NULL) {
            static_free(s);
            return NULL;
        }
        struct sfile *orig = find_any(s, base);
        free(base);
        if (orig == NULL || orig == gz)
            continue;
        orig->gz = gz->data;
        orig->gz_len = gz->len;
        etag_of(orig->gz, orig->gz_len, orig->gz_etag);
        gz->data = NULL;
        gz->len = 0;
        gz->is_variant = 1;
    }
    return s;
}

void static_free(struct static_site *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->files[i].path);
        free(s->files[i].data);
        free(s->files[i].gz);
    }
    free(s->files);
    for (int i = 0; i < ORIGIN_SLOTS; i++)
        free(s->origins[i].sources);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

struct static_site *static_open(const struct static_config *cfg)
{
    char root[1024];
    int found = static_resolve_root(cfg->web_root, root, sizeof(root));
    if (found < 0)
        return NULL;
    struct static_site *site = static_load(found == 0 ? root : NULL);
    if (site == NULL)
        return NULL;
    if (found == 0)
        log_json(
            LOG_INFO, "serving browser files",
            json_pack("{s:s, s:I}", "web_root", root, "files", (json_int_t)static_count(site)));
    else
        log_json(LOG_WARN, "no browser files to serve (SDK, viewer)",
                 json_pack("{s:s}", "hint",
                           "build them with `node web/build.mjs build/release/web` (scripts/run.sh "
                           "does), or set --web-root"));
    return site;
}

size_t static_count(const struct static_site *s)
{
    size_t n = 0;
    for (size_t i = 0; s != NULL && i < s->n; i++)
        n += !s->files[i].is_variant;
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Serving */

/* The tenant's allowed origins as frame-ancestors sources (" a b", malloc'd) in *out, and whether
 * the tenant exists (not deleted). Cached per node for key_cache_seconds. Returns 0, or -1 after
 * answering (database unavailable). */
static int tenant_sources(struct http_ctx *c, struct static_site *s, const char *tenant, int *found,
                          char **out)
{
    static struct db_stmt q = {
        "static_viewer_origins",
        "SELECT COALESCE(settings->'allowed_origins', '[]'::jsonb)::text FROM tenants "
        "WHERE id = $1 AND status <> 'deleted'",
        0};
    uint64_t h = hash_fnv1a(tenant);
    struct origin_entry *e = &s->origins[h % ORIGIN_SLOTS];
    double now = time_now();
    int ttl = c->cfg->key_cache_seconds;

    pthread_mutex_lock(&s->lock);
    int hit = ttl > 0 && strcmp(e->tenant, tenant) == 0 && now - e->fetched < ttl;
    if (hit) {
        *found = e->found;
        *out = strdup(e->sources ? e->sources : "");
    }
    pthread_mutex_unlock(&s->lock);
    if (hit)
        return *out != NULL ? 0 : -1;

    const char *params[] = {tenant};
    PGresult *r = http_db(c, &q, 1, params);
    if (r == NULL)
        return -1;
    *found = PQntuples(r) == 1;
    char *src = calloc(1, SOURCES_MAX);
    if (src == NULL) {
        PQclear(r);
        http_problem(c, 500, "internal_error", NULL, "Out of memory.");
        return -1;
    }
    if (*found) {
        json_t *a = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        size_t i, pos = 0;
        json_t *v;
        json_array_foreach(a, i, v)
        {
            const char *o = json_string_value(v);
            if (!static_origin_safe(o)) {
                log_json(LOG_WARN, "allowed origin unfit for a CSP header, left out",
                         json_pack("{s:s, s:s}", "request_id", c->request_id, "tenant", tenant));
                continue;
            }
            size_t ol = strlen(o);
            if (pos + ol + 2 > SOURCES_MAX)
                break;
            src[pos++] = ' ';
            memcpy(src + pos, o, ol);
            pos += ol;
        }
        json_decref(a);
    }
    PQclear(r);
    pthread_mutex_lock(&s->lock);
    free(e->sources);
    e->sources = strdup(src);
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
    e->fetched = now;
    e->found = *found;
    pthread_mutex_unlock(&s->lock);
    *out = src;
    return 0;
}

/* " ws://host:port" from the relay URL, or "" when it is unusable. */
static void relay_source(const char *relay_url, char *out, size_t size)
{
    out[0] = '\0';
    const char *sep = strstr(relay_url, "://");
    if (sep == NULL)
        return;
    size_t n = (size_t)(sep + 3 - relay_url) + strcspn(sep + 3, "/?#");
    char origin[ORIGIN_MAX_LEN + 1];
    if (n > ORIGIN_MAX_LEN)
        return;
    memcpy(origin, relay_url, n);
    origin[n] = '\0';
    if (static_origin_safe(origin))
        snprintf(out, size, " %s", origin);
}

static void reply_html_not_found(struct http_ctx *c)
{
    ulfius_set_string_body_response(c->resp, 404, viewer_not_found_html);
    http_set_header(c, "Content-Type", "text/html; charset=utf-8");
    http_set_header(c, "Cache-Control", "no-store");
    http_set_header(c, "Content-Security-Policy", not_found_csp);
    c->status = 404;
    c->answered = 1;
}

/* Answers a GET or HEAD of f: 304 when If-None-Match names the variant sent, else 200 with the
 * gzip variant when there is one and the client accepts it, else the plain bytes. */
static void send_file(struct http_ctx *c, const struct sfile *f)
{
    int gz = f->gz != NULL && static_accepts_gzip(http_header(c, "Accept-Encoding"));
    const char *etag = gz ? f->gz_etag : f->etag;
    if (f->gz != NULL)
        http_set_header(c, "Vary", "Accept-Encoding");
    http_set_header(c, "ETag", etag);
    http_set_header(c, "Content-Type", static_mime(f->path));
    if (static_etag_match(http_header(c, "If-None-Match"), etag)) {
        ulfius_set_empty_body_response(c->resp, 304);
        c->status = 304;
        c->answered = 1;
        return;
    }
    if (gz)
        http_set_header(c, "Content-Encoding", "gzip");
    ulfius_set_binary_body_response(c->resp, 200, gz ? (const char *)f->gz : (const char *)f->data,
                                    gz ? f->gz_len : f->len);
    c->status = 200;
    c->answered = 1;
}

static void serve(struct http_ctx *c, struct static_site *site)
{
    char file[512], tenant[64] = "";
    http_set_header(c, "X-Content-Type-Options", "nosniff");
    http_set_header(c, "Referrer-Policy", "no-referrer");
    enum static_kind k = static_map(c->req->url_path, file, sizeof(file), tenant, sizeof(tenant));
    if (k == STATIC_NONE) {
        http_problem(c, 404, "route_not_found", NULL,
                     "No such route. The API reference is openapi/openapi.yaml.");
        return;
    }
    c->route = &labels[k];
    const char *m = c->req->http_verb;
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        http_set_header(c, "Allow", "GET, HEAD");
        http_problem(c, 405, "method_not_allowed", NULL, "This route accepts only: GET, HEAD.");
        return;
    }
    if (k == STATIC_CONSOLE_REDIRECT) {
        ulfius_set_empty_body_response(c->resp, 301);
        http_set_header(c, "Location", "/demo/console/");
        c->status = 301;
        c->answered = 1;
        return;
    }
    const struct sfile *f = find(site, file);
    if (f == NULL) {
        if (static_count(site) == 0)
            http_problem(c, 404, "route_not_found", NULL,
                         "This server has no browser files: build them with `node web/build.mjs "
                         "build/release/web` (scripts/run.sh does) or set --web-root.");
        else
            http_problem(c, 404, "route_not_found", NULL, "No such file.");
        return;
    }
    char *sources = NULL;
    if (k == STATIC_VIEWER) {
        int found = 0;
        if (!ids_valid("ten", tenant)) {
            reply_html_not_found(c);
            return;
        }
        snprintf(c->tenant_id, sizeof(c->tenant_id), "%.47s", tenant);
        if (tenant_sources(c, site, tenant, &found, &sources) != 0)
            return;
        if (!found) {
            free(sources);
            reply_html_not_found(c);
            return;
        }
        char relay[ORIGIN_MAX_LEN + 2];
        relay_source(c->cfg->relay_url, relay, sizeof(relay));
        size_t cap = sizeof(viewer_csp_fmt) + strlen(relay) + strlen(sources) + 1;
        char *csp = malloc(cap);
        if (csp == NULL) {
            free(sources);
            http_problem(c, 500, "internal_error", NULL, "Out of memory.");
            return;
        }
        snprintf(csp, cap, viewer_csp_fmt, relay, sources);
        http_set_header(c, "Content-Security-Policy", csp);
        http_set_header(c, "Cache-Control", "no-cache");
        free(csp);
        free(sources);
    } else if (k == STATIC_CONSOLE) {
        http_set_header(c, "Content-Security-Policy", console_csp);
        http_set_header(c, "Cache-Control", "no-cache");
    } else if (k == STATIC_SDK) {
        http_set_header(c, "Access-Control-Allow-Origin", "*");
        http_set_header(c, "Cache-Control", "public, max-age=300");
    } else {
        http_set_header(c, "Cache-Control", "public, max-age=31536000, immutable");
    }

    send_file(c, f);
}

static int handle(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    struct static_site *site = user_data;
    struct http_ctx c;
    http_ctx_init(&c, site->srv, req, resp);
    serve(&c, site);
    http_ctx_finish(&c);
    return U_CALLBACK_COMPLETE;
}

int static_register(struct _u_instance *instance, struct server *srv, struct static_site *site)
{
    if (site == NULL)
        return -1;
    site->srv = srv;
    /* Every method, so that a POST is a 405 here rather than a 404 from the default endpoint. */
    static const char *const formats[] = {"/sdk/*",  "/assets/*", "/viewer/*", "/demo/*",
                                          "/viewer", "/demo",     "/assets",   "/sdk"};
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
        if (ulfius_add_endpoint_by_val(instance, "*", NULL, formats[i], 0, handle, site) != U_OK)
            return -1;
    return 0;
}
