/* /v1/token/session: the routes authenticated by one of a session's own tokens (the SDK with the
 * visitor token, the viewer with an agent token) rather than by an API key. Prototypes in
 * api/routes.h; the key-authenticated session routes are in api/sessions.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "api/server.h"
#include "core/base/token.h"

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
        "  'allowed_origins', t.settings->'allowed_origins', 'ended_at', s.ended_at, "
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
    const char *params[] = {tc->sid,
                            tc->tid,
                            token_role_str(tc->role),
                            c->cfg->relay_url,
                            tc->remote_control ? "ask" : "off",
                            agent,
                            exp};
    PGresult *r = agent != NULL ? http_db(c, &q, 7, params) : NULL;
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
