/* /v1/token/session: the routes authenticated by one of a session's own tokens (the SDK with the
 * visitor token, the viewer with an agent token) rather than by an API key. Prototypes in
 * api/routes.h; the key-authenticated session routes are in api/sessions.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "api/server.h"
#include "core/base/timeutil.h"
#include "core/base/token.h"
#include "core/proxy/proxy.h"
#include "core/proxy/proxy_upload.h"

/* ---------------------------------------------------------------------------------------------
 * /v1/token/session: the session seen by the holder of one of its tokens (the SDK with the
 * visitor token, the viewer with an agent token). The token was verified by the dispatcher;
 * every query is bound to its session and tenant (c->session.sid, c->session.tid). */

void sessions_token_preflight(struct http_ctx *c)
{
    ulfius_set_empty_body_response(c->resp, 204);
    http_set_header(c, "Access-Control-Allow-Origin", "*");
    http_set_header(c, "Access-Control-Allow-Methods", "GET, POST");
    http_set_header(c, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    http_set_header(c, "Access-Control-Max-Age", "600");
    c->status = 204;
    c->answered = 1;
}

/* The agent's proxy base URL (docs/proxy.md): the proxy listener's public URL + /v1/proxy/<cap>,
 * the cap expiring with the agent's token. Visitors get none (the viewer is the agent's).
 * Returns 1 when written. */
static int proxy_base(struct http_ctx *c, char *out, size_t size)
{
    const struct token_claims *tc = &c->session;
    char cap[PROXY_CAP_MAX];
    if (tc->role != TOKEN_ROLE_AGENT || c->srv->proxy == NULL ||
        proxy_cap_make(proxy_key(c->srv->proxy), tc->tid, tc->sid, tc->exp, cap, sizeof(cap)) != 0)
        return 0;
    int n = snprintf(out, size, "%s/v1/proxy/%s", c->cfg->proxy_public_url, cap);
    return n > 0 && (size_t)n < size;
}

/* Answers status with the session_context of the token's session; 404 if it is gone. */
static void reply_context(struct http_ctx *c, int status)
{
    static struct db_stmt q = {
        "sessions_token_context",
        "SELECT json_build_object('object', 'session_context', 'session_id', s.id, "
        "  'tenant_id', s.tenant_id, 'role', $3::text, 'status', s.status, "
        "  'join_code', s.join_code, 'relay_url', $4::text, "
        "  'permissions', json_build_object('remote_control', $5::text), 'agent', $6::json, "
        "  'branding', t.settings->'branding', 'masking', t.settings->'masking', "
        "  'allowed_origins', t.settings->'allowed_origins', "
        "  'asset_origins', COALESCE(t.settings->'asset_origins', '[]'::jsonb), "
        "  'proxy_base', $8::text, 'stylesheet_upload_url', $9::text, 'ended_at', s.ended_at, "
        "  'end_reason', s.end_reason, 'expires_at', s.expires_at, "
        "  'token_expires_at', to_timestamp($7::bigint))::text "
        "FROM sessions s JOIN tenants t ON t.id = s.tenant_id "
        "WHERE s.id = $1 AND s.tenant_id = $2 AND t.status <> 'deleted'",
        0};
    const struct token_claims *tc = &c->session;
    char *agent = NULL;
    if (tc->role == TOKEN_ROLE_AGENT) {
        json_t *a = json_pack("{s:s, s:s?}", "id", tc->sub, "name", tc->name[0] ? tc->name : NULL);
        if (tc->name[0] == '\0')
            json_object_set_new(a, "name", json_null());
        agent = json_dumps(a, JSON_COMPACT);
        json_decref(a);
    } else {
        agent = strdup("null");
    }
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)tc->exp);
    char base[sizeof(c->cfg->proxy_public_url) + PROXY_CAP_MAX + 16];
    int has_base = proxy_base(c, base, sizeof(base));
    /* Where the SDK uploads a stylesheet the proxy could not fetch: the proxy listener. */
    char upload[sizeof(c->cfg->proxy_public_url) + 40];
    snprintf(upload, sizeof(upload), "%s/v1/token/session/stylesheets", c->cfg->proxy_public_url);
    int visitor = tc->role == TOKEN_ROLE_VISITOR;
    const char *params[] = {tc->sid,
                            tc->tid,
                            token_role_str(tc->role),
                            c->cfg->relay_url,
                            tc->remote_control ? "ask" : "off",
                            agent,
                            exp,
                            has_base ? base : NULL,
                            visitor ? upload : NULL};
    PGresult *r = agent != NULL ? http_db(c, &q, 9, params) : NULL;
    if (agent == NULL)
        http_problem(c, 500, "internal_error", NULL, "Out of memory.");
    if (r != NULL) {
        if (PQntuples(r) == 1)
            http_reply_text(c, status, PQgetvalue(r, 0, 0));
        else
            http_not_found(c, "session");
        PQclear(r);
    }
    free(agent);
}

/* A token outlives its tenant's suspension (it is checked without the database), so both token
 * routes ask: a suspended tenant (or one under a suspended parent) is 403 like its API keys.
 * Returns 0, or -1 after answering. */
static int token_tenant_active(struct http_ctx *c)
{
    static struct db_stmt q = {"sessions_token_tenant",
                               "SELECT t.status, COALESCE(p.status, 'active') FROM tenants t "
                               "LEFT JOIN tenants p ON p.id = t.parent_id WHERE t.id = $1",
                               0};
    const char *params[] = {c->session.tid};
    PGresult *r = http_db(c, &q, 1, params);
    if (r == NULL)
        return -1;
    int found = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "deleted") != 0;
    int suspended = found && (strcmp(PQgetvalue(r, 0, 0), "suspended") == 0 ||
                              strcmp(PQgetvalue(r, 0, 1), "active") != 0);
    PQclear(r);
    if (!found) {
        http_not_found(c, "session");
        return -1;
    }
    if (suspended) {
        http_problem(c, 403, "tenant_suspended", NULL,
                     "This session's tenant is suspended; its tokens are refused.");
        return -1;
    }
    return 0;
}

/* The token's session exists and is open (not ended, not past expires_at): 404 or 409 otherwise.
 * A token outlives its session's end until it expires, so a route that stores something for the
 * session asks. Returns 0, or -1 after answering. */
static int token_session_open(struct http_ctx *c)
{
    static struct db_stmt q = {
        "sessions_token_open",
        "SELECT s.status <> 'ended' AND s.expires_at > now() FROM sessions s "
        "WHERE s.id = $1 AND s.tenant_id = $2",
        0};
    const char *params[] = {c->session.sid, c->session.tid};
    PGresult *r = http_db(c, &q, 2, params);
    if (r == NULL)
        return -1;
    int found = PQntuples(r) == 1, open = found && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!found)
        http_not_found(c, "session");
    else if (!open)
        http_problem(c, 409, "session_ended", NULL,
                     "This session has ended; nothing more is stored for it.");
    return open ? 0 : -1;
}

void sessions_token_get(struct http_ctx *c)
{
    if (token_tenant_active(c) != 0)
        return;
    reply_context(c, 200);
}

void sessions_token_end(struct http_ctx *c)
{
    /* The same change as POST /v1/sessions/{id}/end: the NOTIFY trigger on sessions makes the
     * relay close every connection of the session (4001). */
    static struct db_stmt q = {
        "sessions_token_end",
        "SELECT 1 FROM sessions_end(ARRAY(SELECT s.id FROM sessions s "
        "  JOIN tenants t ON t.id = s.tenant_id "
        "  WHERE s.id = $1 AND s.tenant_id = $2 AND t.status <> 'deleted'), $3)",
        0};
    static struct db_stmt q_exists = {
        "sessions_token_exists",
        "SELECT 1 FROM sessions s JOIN tenants t ON t.id = s.tenant_id "
        "WHERE s.id = $1 AND s.tenant_id = $2 AND t.status <> 'deleted'",
        0};
    const struct token_claims *tc = &c->session;
    const char *reason = tc->role == TOKEN_ROLE_AGENT ? "ended_by_agent" : "ended_by_visitor";
    if (token_tenant_active(c) != 0)
        return;
    const char *params[] = {tc->sid, tc->tid, reason};
    PGresult *r = http_db(c, &q, 3, params);
    if (r == NULL)
        return;
    int ended_now = PQntuples(r) == 1;
    PQclear(r);
    if (ended_now) {
        reply_context(c, 200);
        return;
    }
    r = http_db(c, &q_exists, 2, params);
    if (r == NULL)
        return;
    if (PQntuples(r) == 1)
        http_problem(c, 409, "session_ended", NULL,
                     "This session has already ended; GET /v1/token/session says when and why.");
    else
        http_not_found(c, "session");
    PQclear(r);
}

/* The visitor's upload budget: the token's bytes_per_second, with a burst of UPLOAD_BURST_SECONDS
 * of it, per session (one GCRA bucket, rl_take_n). Returns 0, or -1 after answering 429. */
#define UPLOAD_BURST_SECONDS 4

static int take_upload_budget(struct http_ctx *c, size_t len)
{
    const struct token_claims *tc = &c->session;
    double rate = tc->lim.bytes_per_second > 0 ? tc->lim.bytes_per_second : 1;
    double burst = rate * UPLOAD_BURST_SECONDS;
    char key[64];
    snprintf(key, sizeof(key), "css:%s", tc->sid);
    struct rl_result rr;
    rl_take_n(c->srv->key_limits, key, rate, burst > 2e9 ? 2000000000 : (int)burst,
              len > 0 ? (int)len : 1, time_monotonic(), &rr);
    if (rr.allowed)
        return 0;
    if ((double)len > burst) {
        http_problem(c, 429, "byte_budget_exceeded", "text",
                     "This stylesheet (%zu bytes) is larger than the session's upload burst "
                     "(%d seconds of %d bytes per second).",
                     len, UPLOAD_BURST_SECONDS, tc->lim.bytes_per_second);
        return -1;
    }
    char v[16];
    http_set_retry_after(c, rr.retry_after, v);
    http_problem(c, 429, "byte_budget_exceeded", "text",
                 "The session's byte budget (%d bytes per second) is spent. Retry after %s s.",
                 tc->lim.bytes_per_second, v);
    return -1;
}

/* Checks the body's members: url (an absolute http(s) URL of at most 2048 bytes) and text (at
 * most 1 MiB), nothing else. Returns 0, or -1 after answering. */
static int upload_body(struct http_ctx *c, const char **url, const char **text, size_t *len)
{
    const char *k;
    json_t *v;
    json_object_foreach(c->body, k, v)
    {
        if (strcmp(k, "url") != 0 && strcmp(k, "text") != 0) {
            http_problem(c, 400, "unknown_field", k, "Unknown field; the body is {url, text}.");
            return -1;
        }
    }
    json_t *u = json_object_get(c->body, "url"), *t = json_object_get(c->body, "text");
    char b64[PROXY_TARGET_B64_MAX + 1], decoded[PROXY_URL_MAX + 1];
    if (!json_is_string(u) || json_string_length(u) > PROXY_URL_MAX ||
        proxy_target_encode(json_string_value(u), b64, sizeof(b64)) < 0 ||
        proxy_target_decode(b64, decoded, sizeof(decoded)) != PROXY_SIGN_OK) {
        http_problem(c, 400, "invalid_parameter", "url",
                     "url must be the stylesheet's absolute http(s) URL (at most 2048 bytes).");
        return -1;
    }
    if (!json_is_string(t) || json_string_length(t) > PROXY_UPLOAD_MAX_BYTES ||
        strlen(json_string_value(t)) != json_string_length(t)) {
        http_problem(c, 400, "invalid_parameter", "text",
                     "text must be the stylesheet's text: at most 1048576 bytes, no NUL.");
        return -1;
    }
    *url = json_string_value(u);
    *text = json_string_value(t);
    *len = json_string_length(t);
    return 0;
}

void sessions_token_stylesheets(struct http_ctx *c)
{
    const struct token_claims *tc = &c->session;
    const char *url = NULL, *text = NULL;
    size_t len = 0;
    if (tc->role != TOKEN_ROLE_VISITOR) {
        http_problem(c, 403, "visitor_token_required", NULL,
                     "Only the visitor's browser uploads stylesheets (its token).");
        return;
    }
    if (upload_body(c, &url, &text, &len) != 0 || token_tenant_active(c) != 0 ||
        token_session_open(c) != 0 || take_upload_budget(c, len) != 0)
        return;
    if (c->srv->proxy == NULL) {
        http_problem(c, 503, "proxy_unavailable", NULL, "The proxy is not running on this node.");
        return;
    }
    int rc = proxy_upload(c->srv->proxy, tc->tid, tc->sid, url, text, len);
    if (rc > 0) {
        http_problem(c, 413, "body_too_large", NULL,
                     "The stylesheet is larger than the store takes.");
        return;
    }
    if (rc < 0) { /* out of memory, or Redis (--redis-url) unreachable or full: logged there */
        char v[16];
        http_set_retry_after(c, 1, v);
        http_problem(c, 503, "proxy_unavailable", NULL,
                     "The stylesheet store is unavailable. Retry shortly.");
        return;
    }
    ulfius_set_empty_body_response(c->resp, 204);
    c->status = 204;
    c->answered = 1;
}
