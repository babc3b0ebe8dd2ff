#include "api/server.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/audit.h"
#include "api/auth.h"
#include "api/deadline.h"
#include "api/listen.h"
#include "api/idempotency.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/base/utf8.h"

/* Every route the server answers. openapi/openapi.yaml documents exactly these
 * (tests/integration/spec_parity.test.mjs checks both ways). */
const struct route server_routes[] = {
    {"GET", "/healthz", "healthz", health_healthz, 0, ROUTE_PUBLIC},
    {"GET", "/readyz", "readyz", health_readyz, 0, ROUTE_PUBLIC},
    {"GET", "/metrics", "metrics", health_metrics, 0, ROUTE_PUBLIC},

    {"POST", "/v1/tenants", "createTenant", tenants_create, SCOPE_TENANTS_WRITE, ROUTE_BODY},
    {"GET", "/v1/tenants", "listTenants", tenants_list, SCOPE_TENANTS_READ, 0},
    {"GET", "/v1/tenants/{id}", "getTenant", tenants_get, SCOPE_TENANTS_READ, 0},
    {"PATCH", "/v1/tenants/{id}", "updateTenant", tenants_update, SCOPE_TENANTS_WRITE, ROUTE_BODY},
    {"DELETE", "/v1/tenants/{id}", "deleteTenant", tenants_delete, SCOPE_TENANTS_WRITE, 0},
    {"POST", "/v1/tenants/{id}/suspend", "suspendTenant", tenants_suspend, SCOPE_TENANTS_WRITE,
     ROUTE_BODY_OPTIONAL},
    {"POST", "/v1/tenants/{id}/reactivate", "reactivateTenant", tenants_reactivate,
     SCOPE_TENANTS_WRITE, ROUTE_BODY_OPTIONAL},

    {"POST", "/v1/api_keys", "createApiKey", keys_create, SCOPE_KEYS_WRITE,
     ROUTE_BODY | ROUTE_NEEDS_TENANT},
    {"GET", "/v1/api_keys", "listApiKeys", keys_list, SCOPE_KEYS_READ, ROUTE_NEEDS_TENANT},
    {"GET", "/v1/api_keys/{id}", "getApiKey", keys_get, SCOPE_KEYS_READ, ROUTE_NEEDS_TENANT},
    {"POST", "/v1/api_keys/{id}/revoke", "revokeApiKey", keys_revoke, SCOPE_KEYS_WRITE,
     ROUTE_NEEDS_TENANT | ROUTE_BODY_OPTIONAL},

    {"OPTIONS", "/v1/sessions", "sessionsPreflight", sessions_preflight, 0, ROUTE_PUBLIC},
    {"POST", "/v1/sessions", "createSession", sessions_create, SCOPE_SESSIONS_WRITE,
     ROUTE_BODY | ROUTE_NEEDS_TENANT | ROUTE_PUBLISHABLE_OK},
    {"GET", "/v1/sessions", "listSessions", sessions_list, SCOPE_SESSIONS_READ, ROUTE_NEEDS_TENANT},
    {"GET", "/v1/sessions/{id}", "getSession", sessions_get, SCOPE_SESSIONS_READ,
     ROUTE_NEEDS_TENANT},
    {"GET", "/v1/sessions/by_code/{code}", "getSessionByCode", sessions_get_by_code,
     SCOPE_SESSIONS_READ, ROUTE_NEEDS_TENANT},
    {"POST", "/v1/sessions/{id}/end", "endSession", sessions_end, SCOPE_SESSIONS_WRITE,
     ROUTE_NEEDS_TENANT | ROUTE_BODY_OPTIONAL},
    {"POST", "/v1/sessions/{id}/agent_tokens", "createAgentToken", sessions_agent_token,
     SCOPE_AGENT_TOKENS_WRITE, ROUTE_NEEDS_TENANT | ROUTE_BODY},

    {"POST", "/v1/webhook_endpoints", "createWebhookEndpoint", webhooks_create,
     SCOPE_WEBHOOKS_WRITE, ROUTE_BODY | ROUTE_NEEDS_TENANT},
    {"GET", "/v1/webhook_endpoints", "listWebhookEndpoints", webhooks_list, SCOPE_WEBHOOKS_READ,
     ROUTE_NEEDS_TENANT},
    {"GET", "/v1/webhook_endpoints/{id}", "getWebhookEndpoint", webhooks_get, SCOPE_WEBHOOKS_READ,
     ROUTE_NEEDS_TENANT},
    {"PATCH", "/v1/webhook_endpoints/{id}", "updateWebhookEndpoint", webhooks_update,
     SCOPE_WEBHOOKS_WRITE, ROUTE_BODY | ROUTE_NEEDS_TENANT},
    {"DELETE", "/v1/webhook_endpoints/{id}", "deleteWebhookEndpoint", webhooks_delete,
     SCOPE_WEBHOOKS_WRITE, ROUTE_NEEDS_TENANT},
    {"POST", "/v1/webhook_endpoints/{id}/rotate_secret", "rotateWebhookSecret",
     webhooks_rotate_secret, SCOPE_WEBHOOKS_WRITE, ROUTE_NEEDS_TENANT | ROUTE_BODY_OPTIONAL},
    {"POST", "/v1/webhook_endpoints/{id}/test", "testWebhookEndpoint", webhooks_test,
     SCOPE_WEBHOOKS_WRITE, ROUTE_NEEDS_TENANT | ROUTE_BODY_OPTIONAL},
    {"POST", "/v1/webhook_endpoints/{id}/replay", "replayWebhookEvents", webhooks_replay,
     SCOPE_WEBHOOKS_WRITE, ROUTE_NEEDS_TENANT | ROUTE_BODY},
    {"GET", "/v1/webhook_endpoints/{id}/deliveries", "listWebhookDeliveries",
     webhook_deliveries_list, SCOPE_WEBHOOKS_READ, ROUTE_NEEDS_TENANT},
    {"GET", "/v1/webhook_deliveries/{id}", "getWebhookDelivery", webhook_deliveries_get,
     SCOPE_WEBHOOKS_READ, ROUTE_NEEDS_TENANT},
    {"POST", "/v1/webhook_deliveries/{id}/retry", "retryWebhookDelivery", webhook_deliveries_retry,
     SCOPE_WEBHOOKS_WRITE, ROUTE_NEEDS_TENANT | ROUTE_BODY_OPTIONAL},

    {"GET", "/v1/audit_events", "listAuditEvents", audit_events_list, SCOPE_AUDIT_READ,
     ROUTE_NEEDS_TENANT},
    {"GET", "/v1/audit_events/verify", "verifyAuditEvents", audit_events_verify, SCOPE_AUDIT_READ,
     ROUTE_NEEDS_TENANT},
    {"GET", "/v1/audit_events/{id}", "getAuditEvent", audit_events_get, SCOPE_AUDIT_READ,
     ROUTE_NEEDS_TENANT},
    {"GET", "/v1/usage", "getUsage", usage_get, SCOPE_USAGE_READ, ROUTE_NEEDS_TENANT},

    {"OPTIONS", "/v1/token/session", "tokenSessionPreflight", sessions_token_preflight, 0,
     ROUTE_PUBLIC},
    {"GET", "/v1/token/session", "getTokenSession", sessions_token_get, 0, ROUTE_SESSION_TOKEN},
    {"OPTIONS", "/v1/token/session/end", "endTokenSessionPreflight", sessions_token_preflight, 0,
     ROUTE_PUBLIC},
    {"POST", "/v1/token/session/end", "endTokenSession", sessions_token_end, 0,
     ROUTE_SESSION_TOKEN},

    /* On the proxy listener (--proxy-listen, api/listen.h): bodies up to a stylesheet's size,
     * and answers that wait for upstream servers. */
    {"OPTIONS", "/v1/token/session/stylesheets", "uploadStylesheetPreflight",
     sessions_token_preflight, 0, ROUTE_PUBLIC | ROUTE_PROXY_LISTENER},
    {"POST", "/v1/token/session/stylesheets", "uploadStylesheet", sessions_token_stylesheets, 0,
     ROUTE_SESSION_TOKEN | ROUTE_BODY | ROUTE_UPLOAD_BODY | ROUTE_PROXY_LISTENER},
    /* The cap in the path is the credential (api/proxy.c); the answers are not JSON. */
    {"GET", "/v1/proxy/{cap}/{kind}/{target}", "proxyGet", proxy_get, 0,
     ROUTE_PUBLIC | ROUTE_PROXY_LISTENER},
};
const int server_routes_count = (int)(sizeof(server_routes) / sizeof(server_routes[0]));

void server_print_routes(void)
{
    json_t *a = json_array();
    for (int i = 0; i < server_routes_count; i++)
        json_array_append_new(
            a,
            json_pack("{s:s, s:s, s:s, s:s}", "method", server_routes[i].method, "path",
                      server_routes[i].path, "operationId", server_routes[i].operation, "listener",
                      server_routes[i].flags & ROUTE_PROXY_LISTENER ? "proxy" : "api"));
    char *s = json_dumps(a, JSON_INDENT(2));
    printf("%s\n", s ? s : "[]");
    free(s);
    json_decref(a);
}

/* "/v1/tenants/{id}" -> "/v1/tenants/:id" for ulfius. */
static void ulfius_format(const char *path, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = path; *p && o + 1 < size; p++) {
        if (*p == '{')
            out[o++] = ':';
        else if (*p != '}')
            out[o++] = *p;
    }
    out[o] = '\0';
}

/* 1 if url path matches the template (segments, {x} matches any non-empty segment). */
static int path_matches(const char *tmpl, const char *path)
{
    while (*tmpl && *path) {
        if (*tmpl == '{') {
            while (*tmpl && *tmpl != '}')
                tmpl++;
            if (*tmpl)
                tmpl++;
            if (*path == '/' || *path == '\0')
                return 0;
            while (*path && *path != '/')
                path++;
        } else if (*tmpl++ != *path++) {
            return 0;
        }
    }
    if (*path == '/' && path[1] == '\0')
        path++;
    return *tmpl == '\0' && *path == '\0';
}

static void set_rate_headers(struct http_ctx *c, const struct rl_result *rr)
{
    char v[32];
    snprintf(v, sizeof(v), "%d", rr->limit);
    http_set_header(c, "RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%d", rr->remaining);
    http_set_header(c, "RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%d", (int)(rr->reset + 0.999));
    http_set_header(c, "RateLimit-Reset", v);
}

static int check_rate(struct http_ctx *c)
{
    struct rl_result rr;
    double rps = c->who.api_rps > 0 ? c->who.api_rps : 1;
    int burst = (int)rps < 1 ? 1 : (int)rps;
    rl_take(c->srv->key_limits, c->who.id, rps, burst, time_monotonic(), &rr);
    set_rate_headers(c, &rr);
    if (!rr.allowed) {
        char v[16];
        http_set_retry_after(c, rr.retry_after, v);
        http_problem(c, 429, "rate_limited", NULL,
                     "Too many requests for this API key (%d per second). Retry after %s s.",
                     rr.limit, v);
        return -1;
    }
    return 0;
}

/* Session tokens are checked without the database, so a flood costs little; still, a holder of
 * a token gets TOKEN_ROUTE_RPS requests per second (per token), like a key's budget. */
#define TOKEN_ROUTE_RPS 10

static int check_token_rate(struct http_ctx *c)
{
    struct rl_result rr;
    rl_take(c->srv->key_limits, c->session.jti, TOKEN_ROUTE_RPS, TOKEN_ROUTE_RPS, time_monotonic(),
            &rr);
    set_rate_headers(c, &rr);
    if (!rr.allowed) {
        char v[16];
        http_set_retry_after(c, rr.retry_after, v);
        http_problem(c, 429, "rate_limited", NULL,
                     "Too many requests with this session token (%d per second). Retry after %s "
                     "s.",
                     rr.limit, v);
        return -1;
    }
    return 0;
}

/* Routes of a session token are called by the SDK from any site and by the viewer: the
 * credential is a bearer header (never a cookie), so any origin may read the answers. */
static int parse_body(struct http_ctx *c);

static void run_token_route(struct http_ctx *c)
{
    if (auth_session_token(c) != 0 || check_token_rate(c) != 0 || parse_body(c) != 0)
        return;
    c->audit_pending = audit_route_mutates(c->route);
    c->route->handler(c);
    if (!c->answered)
        http_problem(c, 500, "internal_error", NULL, "The handler gave no answer.");
}

static int media_type_is_json(const char *ct)
{
    if (ct == NULL)
        return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return 0;
    const char *rest = ct + 16;
    while (*rest == ' ')
        rest++;
    return *rest == '\0' || *rest == ';';
}

/* Parses the body into c->body when the route takes one. Returns 0 or -1 (answered). */
static int parse_body(struct http_ctx *c)
{
    unsigned flags = c->route->flags;
    size_t len = c->req->binary_body_length;
    if (!(flags & (ROUTE_BODY | ROUTE_BODY_OPTIONAL)))
        return 0;
    if (len == 0 && (flags & ROUTE_BODY_OPTIONAL))
        return 0;
    if (!media_type_is_json(http_header(c, "Content-Type"))) {
        http_problem(c, 415, "unsupported_media_type", NULL,
                     "Send the body as JSON with 'Content-Type: application/json'.");
        return -1;
    }
    if (!utf8_valid(c->req->binary_body, len)) {
        http_problem(c, 400, "invalid_utf8", NULL,
                     "The body is not valid UTF-8 (or contains a NUL byte).");
        return -1;
    }
    json_error_t err;
    /* JSON_ALLOW_NUL: "\u0000" is valid JSON; validation refuses it per field with a 422. */
    c->body = json_loadb(c->req->binary_body, len,
                         JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &err);
    if (c->body == NULL) {
        http_problem(c, 400, "invalid_json", NULL, "The body is not valid JSON: %s (at byte %d).",
                     err.text, err.position);
        return -1;
    }
    if (!json_is_object(c->body)) {
        http_problem(c, 400, "invalid_json", NULL, "The body must be a JSON object.");
        return -1;
    }
    return 0;
}

/* Path parameters must have the shape of what they name: a malformed one is a client bug (400),
 * while a well-formed id the caller may not see is 404. */
static int check_path_params(struct http_ctx *c)
{
    const char *path = c->route->path;
    const char *id = http_param(c, "id");
    if (strstr(path, "{id}") != NULL) {
        const char *prefix = strncmp(path, "/v1/tenants", 11) == 0              ? "ten"
                             : strncmp(path, "/v1/api_keys", 12) == 0           ? "key"
                             : strncmp(path, "/v1/webhook_endpoints", 21) == 0  ? "whe"
                             : strncmp(path, "/v1/webhook_deliveries", 22) == 0 ? "whd"
                             : strncmp(path, "/v1/audit_events", 16) == 0       ? "aud"
                                                                                : "ses";
        if (!ids_valid(prefix, id)) {
            http_problem(c, 400, "invalid_parameter", "id",
                         "The id in the path must look like %s_ followed by 26 characters.",
                         prefix);
            return -1;
        }
    }
    if (strstr(path, "{code}") != NULL) {
        const char *code = http_param(c, "code");
        int ok = code != NULL && strlen(code) == 6;
        for (int i = 0; ok && i < 6; i++)
            ok = code[i] >= '0' && code[i] <= '9';
        if (!ok) {
            http_problem(c, 400, "invalid_parameter", "code", "A join code is 6 digits.");
            return -1;
        }
    }
    return 0;
}

static int query_is_utf8(struct http_ctx *c)
{
    const char **keys = u_map_enum_keys(c->req->map_url);
    for (int i = 0; keys && keys[i]; i++) {
        const char *v = u_map_get(c->req->map_url, keys[i]);
        if (!utf8_valid(keys[i], strlen(keys[i])) || (v && !utf8_valid(v, strlen(v))))
            return 0;
    }
    return 1;
}

static void cors_expose(struct http_ctx *c)
{
    const char *origin = http_header(c, "Origin");
    if (origin == NULL || c->who.kind != PRINCIPAL_KEY || c->who.key_type != KEY_PUBLISHABLE)
        return;
    if (auth_origin_allowed(c->who.allowed_origins, origin)) {
        http_set_header(c, "Access-Control-Allow-Origin", origin);
        http_set_header(c, "Access-Control-Expose-Headers",
                        "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
                        "Retry-After, Idempotent-Replayed");
        http_set_header(c, "Vary", "Origin");
    }
}

static void run_chain(struct http_ctx *c)
{
    const struct route *rt = c->route;
    if (rt->flags & ROUTE_SESSION_TOKEN) { /* every answer, errors included, see run_token_route */
        http_set_header(c, "Access-Control-Allow-Origin", "*");
        http_set_header(c, "Access-Control-Expose-Headers",
                        "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
                        "Retry-After");
    }
    size_t max_body =
        (rt->flags & ROUTE_UPLOAD_BODY) ? HTTP_UPLOAD_BODY_BYTES : c->cfg->max_body_bytes;
    if (c->req->binary_body_length > max_body) {
        http_problem(c, 413, "body_too_large", NULL, "The body is larger than %zu bytes.",
                     max_body);
        return;
    }
    if (!query_is_utf8(c)) {
        http_problem(c, 400, "invalid_utf8", NULL, "A query parameter is not valid UTF-8.");
        return;
    }
    if (rt->flags & ROUTE_PUBLIC) {
        rt->handler(c);
        return;
    }
    if (rt->flags & ROUTE_SESSION_TOKEN) {
        run_token_route(c);
        return;
    }
    if (auth_authenticate(c) != 0)
        return;
    cors_expose(c);
    if (check_rate(c) != 0)
        return;
    if (c->who.kind == PRINCIPAL_KEY && c->who.key_type == KEY_PUBLISHABLE) {
        if (!(rt->flags & ROUTE_PUBLISHABLE_OK)) {
            http_problem(c, 403, "insufficient_scope", NULL,
                         "Publishable keys can only create sessions; use a secret key.");
            return;
        }
        const char *origin = http_header(c, "Origin");
        if (origin == NULL || !auth_origin_allowed(c->who.allowed_origins, origin)) {
            http_problem(c, 403, "origin_not_allowed", "Origin",
                         "This page's origin is not in the tenant's allowed_origins.");
            return;
        }
    } else if (rt->scope && !(c->who.scopes & rt->scope)) {
        http_problem(c, 403, "insufficient_scope", NULL, "This API key lacks the scope %s.",
                     auth_scope_name(rt->scope));
        return;
    }
    if (parse_body(c) != 0)
        return;
    if (auth_resolve_tenant(c) != 0 || check_path_params(c) != 0)
        return;
    if ((rt->flags & ROUTE_NEEDS_TENANT) && c->tenant_id[0] == '\0') {
        http_problem(c, 400, "tenant_header_required", "Cobrowse-Tenant",
                     "Platform admins must name the tenant with the Cobrowse-Tenant header.");
        return;
    }
    int claimed = 0;
    c->audit_pending = audit_route_mutates(rt);
    if (idem_begin(c, &claimed) != 0)
        return;
    rt->handler(c);
    if (!c->answered)
        http_problem(c, 500, "internal_error", NULL, "The handler gave no answer.");
    if (claimed)
        idem_finish(c);
}

static struct server *the_server;

static int dispatch(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    const struct route *rt = user_data;
    struct http_ctx c;
    http_ctx_init(&c, the_server, req, resp);
    c.route = rt;
    c.route_index = (int)(rt - server_routes);
    run_chain(&c);
    http_ctx_finish(&c);
    return U_CALLBACK_COMPLETE;
}

/* user_data: the listener's route flag (0, or ROUTE_PROXY_LISTENER) as a pointer-sized integer. */
static int not_found(const struct _u_request *req, struct _u_response *resp, void *user_data)
{
    unsigned listener = (unsigned)(uintptr_t)user_data;
    struct http_ctx c;
    http_ctx_init(&c, the_server, req, resp);
    char allow[128] = "";
    for (int i = 0; i < server_routes_count; i++) {
        if ((server_routes[i].flags & ROUTE_PROXY_LISTENER) == listener &&
            path_matches(server_routes[i].path, req->url_path)) {
            size_t n = strlen(allow);
            snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "", server_routes[i].method);
        }
    }
    if (allow[0]) {
        http_set_header(&c, "Allow", allow);
        http_problem(&c, 405, "method_not_allowed", NULL, "This route accepts only: %s.", allow);
    } else {
        http_problem(&c, 404, "route_not_found", NULL,
                     "No such route. The API reference is openapi/openapi.yaml.");
    }
    http_ctx_finish(&c);
    return U_CALLBACK_COMPLETE;
}

/* The two listeners (api/listen.h): the REST API's pool, and the proxy's thread per connection
 * with the body limit of a stylesheet upload. */
static void listen_specs(const struct api_config *cfg, struct listen_spec *api,
                         struct listen_spec *proxy)
{
    *api = (struct listen_spec){.name = "api",
                                .option = "--listen",
                                .host = cfg->listen_host,
                                .port = cfg->listen_port,
                                .max_body = cfg->max_body_bytes,
                                .threads = cfg->http_threads,
                                .max_connections = cfg->http_max_connections,
                                .per_ip = cfg->http_connections_per_ip,
                                .request_seconds = cfg->http_request_seconds};
    *proxy = (struct listen_spec){.name = "proxy",
                                  .option = "--proxy-listen",
                                  .host = cfg->proxy_listen_host,
                                  .port = cfg->proxy_listen_port,
                                  .max_body = HTTP_UPLOAD_BODY_BYTES,
                                  .threads = 0,
                                  .max_connections = cfg->proxy_connections,
                                  .per_ip = cfg->http_connections_per_ip < cfg->proxy_connections
                                                ? cfg->http_connections_per_ip
                                                : cfg->proxy_connections,
                                  .request_seconds = cfg->http_request_seconds};
}

int server_start(struct server *srv, const struct api_config *cfg)
{
    char fmt[160];
    struct listen_spec api, proxy;
    srv->cfg = cfg;
    the_server = srv;
    srv->db = db_pool_new(cfg->database_url, cfg->db_pool_size);
    srv->key_limits = rl_new(65536);
    srv->tenant_limits = rl_new(65536);
    srv->auth = auth_cache_new();
    if (srv->db == NULL || srv->key_limits == NULL || srv->tenant_limits == NULL ||
        srv->auth == NULL)
        return -1;
    listen_specs(cfg, &api, &proxy);
    if (listen_init(&srv->api, &api) != 0 || listen_init(&srv->proxy_listener, &proxy) != 0)
        return -1;
    for (int i = 0; i < server_routes_count; i++) {
        const struct route *rt = &server_routes[i];
        struct listener *l = rt->flags & ROUTE_PROXY_LISTENER ? &srv->proxy_listener : &srv->api;
        ulfius_format(rt->path, fmt, sizeof(fmt));
        /* ulfius calls the matching endpoint of lowest priority first: a literal segment
         * (/v1/audit_events/verify) wins over a parameter (/v1/audit_events/{id}). */
        unsigned priority = strchr(rt->path, '{') != NULL ? 1 : 0;
        if (ulfius_add_endpoint_by_val(&l->instance, rt->method, NULL, fmt, priority, dispatch,
                                       (void *)rt) != U_OK)
            return -1;
    }
    if (srv->mount != NULL && srv->mount(srv, srv->mount_arg) != 0)
        return -1;
    ulfius_set_default_endpoint(&srv->api.instance, not_found, (void *)(uintptr_t)0);
    ulfius_set_default_endpoint(&srv->proxy_listener.instance, not_found,
                                (void *)(uintptr_t)ROUTE_PROXY_LISTENER);
    if (listen_start(&srv->api, &api) != 0 || listen_start(&srv->proxy_listener, &proxy) != 0)
        return -1;
    return 0;
}

void server_stop(struct server *srv)
{
    listen_stop(&srv->proxy_listener);
    listen_stop(&srv->api);
    auth_cache_free(srv->auth);
    rl_free(srv->key_limits);
    rl_free(srv->tenant_limits);
    db_pool_free(srv->db);
    srv->auth = NULL;
    srv->key_limits = srv->tenant_limits = NULL;
    srv->db = NULL;
}
