/* GET /v1/proxy/{cap}/{kind}/{target}[.{ref}]: the stylesheet, font and image proxy's HTTP side
 * (docs/proxy.md), on the proxy listener (api/listen.h: a thread per connection, since a miss
 * waits for the upstream server). Outside the API keys' authentication: the cap in the path is
 * the credential, verified by core/proxy/proxy.c. This file reads the path, asks PostgreSQL for
 * the tenant's policy when the proxy needs it (a cache miss), and writes the answer with the
 * headers that keep proxied bytes inert wherever they are opened. Prototypes in api/routes.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "api/server.h"
#include "api/static/static.h"
#include "core/proxy/proxy.h"

/* Proxied bytes are never a document: no scripts, no plugins, no frames, sandboxed if opened. */
static const char proxy_csp[] = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/* The tenant's policy for one target: tenant and session alive, origin allowed. On a miss only. */
static enum proxy_policy_verdict policy(void *arg, const char *tenant, const char *session,
                                        const char *origin, int check_origin)
{
    static struct db_stmt q = {
        "proxy_policy",
        "SELECT t.status, COALESCE(p.status, 'active'), s.status, "
        "  EXISTS (SELECT 1 FROM jsonb_array_elements_text("
        "      COALESCE(t.settings->'allowed_origins', '[]'::jsonb) || "
        "      COALESCE(t.settings->'asset_origins', '[]'::jsonb)) o "
        "    WHERE lower(o) = $3 OR lower(o) = $4) "
        "FROM sessions s JOIN tenants t ON t.id = s.tenant_id "
        "LEFT JOIN tenants p ON p.id = t.parent_id WHERE s.id = $1 AND s.tenant_id = $2",
        0};
    struct http_ctx *c = arg;
    /* An origin is written with or without its default port in the settings: both match. */
    char with_port[PROXY_URL_MAX + 8];
    int https = strncmp(origin, "https:", 6) == 0;
    int has_port =
        strchr(strchr(origin, ':') + 3, ':') != NULL && origin[strlen(origin) - 1] != ']';
    snprintf(with_port, sizeof(with_port), "%s%s", origin, has_port ? "" : https ? ":443" : ":80");
    const char *params[] = {session, tenant, origin, with_port};
    PGresult *r = http_db_raw(c, &q, 4, params);
    /* The fetch that follows may wait seconds for the upstream server: not with a connection of
     * the pool the REST API shares. */
    http_db_done(c);
    if (r == NULL || !db_ok(r)) {
        if (r != NULL)
            PQclear(r);
        return PROXY_POLICY_UNAVAILABLE;
    }
    enum proxy_policy_verdict v = PROXY_POLICY_OK;
    if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), "deleted") == 0)
        v = PROXY_POLICY_GONE;
    else if (strcmp(PQgetvalue(r, 0, 0), "active") != 0 ||
             strcmp(PQgetvalue(r, 0, 1), "active") != 0 ||
             strcmp(PQgetvalue(r, 0, 2), "ended") == 0)
        v = PROXY_POLICY_ENDED;
    else if (check_origin && strcmp(PQgetvalue(r, 0, 3), "t") != 0)
        v = PROXY_POLICY_ORIGIN;
    PQclear(r);
    return v;
}

/* Splits the path after "/v1/proxy/" into its 3 segments (the query is not part of url_path).
 * Returns 3, or -1 when the shape is wrong. */
static int split_path(const char *path, char *buf, size_t size, char *seg[3])
{
    static const char prefix[] = "/v1/proxy/";
    size_t n = strlen(path);
    if (strncmp(path, prefix, sizeof(prefix) - 1) != 0 || n - (sizeof(prefix) - 1) >= size)
        return -1;
    memcpy(buf, path + sizeof(prefix) - 1, n - (sizeof(prefix) - 1) + 1);
    int count = 0;
    for (char *p = buf;;) {
        char *slash = strchr(p, '/');
        if (count == 3 || *p == '\0' || slash == p)
            return -1; /* a fourth or an empty segment */
        seg[count++] = p;
        if (slash == NULL)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return count == 3 ? count : -1;
}

/* The viewer's page is another origin than the proxy listener's (unless a reverse proxy puts
 * both behind one): its stylesheets, images and fonts load cross-origin. Fonts are fetched in
 * CORS mode, hence Access-Control-Allow-Origin; no-cors loads need the resource policy to allow
 * them. Neither gives anything away: no cookie or credential is read, and the cap in the URL is
 * the only key, which whoever can load the URL already holds. */
static void security_headers(struct http_ctx *c)
{
    http_set_header(c, "X-Content-Type-Options", "nosniff");
    http_set_header(c, "Content-Security-Policy", proxy_csp);
    http_set_header(c, "Cross-Origin-Resource-Policy", "cross-origin");
    http_set_header(c, "Access-Control-Allow-Origin", "*");
    http_set_header(c, "Referrer-Policy", "no-referrer");
}

static void reply(struct http_ctx *c, const struct proxy_response *r)
{
    if (r->status != 200) {
        http_set_header(c, "Cache-Control", "no-store");
        if (r->retry_after > 0) {
            char v[16];
            http_set_retry_after(c, r->retry_after, v);
        }
        http_problem(c, r->status, r->problem, NULL, "%s", r->detail);
        return;
    }
    char cc[48];
    snprintf(cc, sizeof(cc), "private, max-age=%ld", r->max_age);
    http_set_header(c, "Cache-Control", cc);
    http_set_header(c, "ETag", r->etag);
    if (static_etag_match(http_header(c, "If-None-Match"), r->etag)) {
        ulfius_set_empty_body_response(c->resp, 304);
        c->status = 304;
    } else {
        http_set_header(c, "Content-Type", r->content_type);
        ulfius_set_binary_body_response(c->resp, 200, r->body, r->body_len);
        c->status = 200;
    }
    c->answered = 1;
}

void proxy_get(struct http_ctx *c)
{
    char buf[PROXY_CAP_MAX + PROXY_TARGET_B64_MAX + PROXY_MAC_CHARS + 32];
    char *seg[3] = {NULL, NULL, NULL};
    security_headers(c);
    if (c->srv->proxy == NULL) {
        http_set_header(c, "Cache-Control", "no-store");
        http_problem(c, 503, "proxy_unavailable", NULL, "The proxy is not running on this node.");
        return;
    }
    int n = split_path(c->req->url_path, buf, sizeof(buf), seg);
    if (n < 0) {
        http_set_header(c, "Cache-Control", "no-store");
        http_problem(c, 400, "invalid_parameter", NULL,
                     "A proxy URL is /v1/proxy/{cap}/{kind}/{target}[.{ref}].");
        return;
    }
    /* base64url has no '.': what follows one is the ref of a URL the proxy wrote itself. */
    char *dot = strchr(seg[2], '.');
    if (dot != NULL)
        *dot = '\0';
    struct proxy_request req = {seg[0], seg[1], seg[2], dot != NULL ? dot + 1 : NULL, policy, c};
    struct proxy_response r;
    proxy_serve(c->srv->proxy, &req, &r);
    reply(c, &r);
    proxy_response_free(&r);
}
