/* /v1/sessions: co-browsing sessions of the acting tenant, their join codes, and the JWTs the
 * relay accepts (a visitor token at creation, agent tokens on demand). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/routes.h"
#include "api/server.h"
#include "api/validate.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/base/token.h"
#include "core/cluster/kv.h"

#define JOIN_CODE_ATTEMPTS 8

static const char *const status_values[] = {"pending", "active", "ended", NULL};
static const struct vfield visitor_fields[] = {
    {"external_id", V_STRING, 0, 1, 1, 200, VF_NONE, NULL, NULL, 0},
    {"name", V_STRING, 0, 1, 1, 200, VF_NONE, NULL, NULL, 0},
    {"email", V_STRING, 0, 1, 3, 320, VF_EMAIL, NULL, NULL, 0},
    {"custom", V_FREE_OBJECT, 0, 0, 0, 50, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield create_fields[] = {
    {"visitor", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, visitor_fields, 0},
    {"permissions", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, validate_permission_fields, 0},
    {"expires_in_seconds", V_INT, 0, 0, 60, 86400, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
/* An agent's id is its identity in the token (consent and control follow it), so it is never
 * cut: AGENT_ID_MAX code points of at most 4 bytes always fit token_claims.sub. */
#define AGENT_ID_MAX 200
_Static_assert(AGENT_ID_MAX * 4 < sizeof(((struct token_claims *)0)->sub), "agent id fits sub");
static const struct vfield agent_fields[] = {
    {"id", V_STRING, 1, 0, 1, AGENT_ID_MAX, VF_NONE, NULL, NULL, 0},
    {"name", V_STRING, 0, 1, 1, 200, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield token_fields[] = {
    {"agent", V_OBJECT, 1, 0, 0, 0, VF_NONE, NULL, agent_fields, 0},
    {"permissions", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, validate_permission_fields, 0},
    {"ttl_seconds", V_INT, 0, 0, 60, 86400, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield end_fields[] = {
    {"reason", V_STRING, 0, 1, 1, 200, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};

void sessions_preflight(struct http_ctx *c)
{
    /* The preflight carries no key, so it cannot know the tenant: it allows the request shape,
     * and the real request is checked against the tenant's allowed_origins. */
    const char *origin = http_header(c, "Origin");
    ulfius_set_empty_body_response(c->resp, 204);
    if (origin != NULL) {
        http_set_header(c, "Access-Control-Allow-Origin", origin);
        http_set_header(c, "Access-Control-Allow-Methods", "POST");
        http_set_header(c, "Access-Control-Allow-Headers",
                        "Authorization, Content-Type, Idempotency-Key");
        http_set_header(c, "Access-Control-Max-Age", "600");
        http_set_header(c, "Vary", "Origin");
    }
    c->status = 204;
    c->answered = 1;
}

static json_t *visitor_json(json_t *in)
{
    json_t *v = json_pack("{s:n, s:n, s:n, s:{}}", "external_id", "name", "email", "custom");
    if (in != NULL) {
        json_t *norm = validate_normalize(in);
        json_object_update(v, norm);
        json_decref(norm);
    }
    return v;
}

/* Inserts session id with a fresh join code, trying another code when one is taken, and claims
 * one of the tenant's max_live live-session slots in the same statement. Returns the inserted row
 * (the caller clears it), or NULL after answering (database error, no free code, at the limit). */
static PGresult *insert_session(struct http_ctx *c, const char *id, const char *external_id,
                                const char *visitor_text, const char *perms_text, const char *ttl,
                                const char *max_live)
{
    /* Claims a live-session slot and inserts in one statement: if the tenant is at its limit
     * the slot CTE returns nothing and nothing is inserted. The trigger sessions_release_slot
     * gives the slot back when the session ends. */
    static struct db_stmt q_insert = {
        "sessions_insert",
        "WITH slot AS (INSERT INTO tenant_usage AS u (tenant_id, live_sessions) VALUES ($2, 1) "
        "  ON CONFLICT (tenant_id) DO UPDATE SET live_sessions = u.live_sessions + 1 "
        "  WHERE u.live_sessions < $8::int RETURNING 1) "
        "INSERT INTO sessions (id, tenant_id, join_code, visitor_external_id, visitor, "
        "  permissions, expires_at) "
        "SELECT $1, $2, $3, $4, $5::jsonb, $6::jsonb, now() + make_interval(secs => $7::int) "
        "FROM slot RETURNING session_json(sessions, $9)::text, "
        "  extract(epoch FROM expires_at)::bigint, extract(epoch FROM created_at)::bigint, "
        "  (SELECT json_build_object('branding', t.settings->'branding', "
        "     'masking', t.settings->'masking')::text FROM tenants t WHERE t.id = $2)",
        0};
    char code[7];
    PGresult *r = NULL;
    for (int attempt = 0; attempt < JOIN_CODE_ATTEMPTS; attempt++) {
        ids_join_code(code);
        const char *params[] = {id,         c->tenant_id, code,     external_id,      visitor_text,
                                perms_text, ttl,          max_live, c->cfg->relay_url};
        r = http_db_raw(c, &q_insert, 9, params);
        if (r == NULL)
            goto fail;
        if (db_ok(r))
            break;
        if (strcmp(db_sqlstate(r), "23505") != 0) { /* anything but a join code collision */
            log_json(LOG_ERROR, "session insert failed",
                     json_pack("{s:s, s:s}", "request_id", c->request_id, "error",
                               PQresultErrorMessage(r)));
            http_problem(c, 500, "internal_error", NULL, "The session could not be created.");
            goto fail;
        }
        PQclear(r);
        r = NULL;
    }
    if (r == NULL) {
        http_problem(c, 503, "database_unavailable", NULL, "No free join code was found; retry.");
        goto fail;
    }
    if (PQntuples(r) != 1) {
        http_set_header(c, "Retry-After", "30");
        http_problem(c, 429, "session_limit_reached", NULL,
                     "This tenant already has %s live sessions, its limit. End one first.",
                     max_live);
        goto fail;
    }
    return r;
fail:
    PQclear(r);
    return NULL;
}

/* Answers 201 with the inserted session (row r of insert_session) and a visitor token signed
 * for it, or a problem. */
static void reply_created(struct http_ctx *c, PGresult *r, const char *id, json_t *perms,
                          const struct token_limits *lim)
{
    struct token_claims tc;
    memset(&tc, 0, sizeof(tc));
    snprintf(tc.sid, sizeof(tc.sid), "%s", id);
    snprintf(tc.tid, sizeof(tc.tid), "%s", c->tenant_id);
    snprintf(tc.sub, sizeof(tc.sub), "visitor");
    ids_new("tok", tc.jti, sizeof(tc.jti));
    tc.role = TOKEN_ROLE_VISITOR;
    tc.remote_control =
        strcmp(json_string_value(json_object_get(perms, "remote_control")), "ask") == 0;
    tc.iat = tc.nbf = atoll(PQgetvalue(r, 0, 2));
    tc.exp = atoll(PQgetvalue(r, 0, 1));
    tc.lim = *lim;
    char *token = NULL;
    json_t *out = NULL, *extra = NULL;
    if (token_mint(c->cfg->jwt_secret, sizeof(c->cfg->jwt_secret), &tc, &token) != TOKEN_OK) {
        http_problem(c, 500, "internal_error", NULL, "The visitor token could not be signed.");
        goto done;
    }
    /* The SDK gets what it needs to record (masking) and to brand its prompts with the session,
     * without a second request. */
    out = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    extra = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    if (out != NULL && extra != NULL) {
        json_object_update(out, extra);
        json_object_set_new(out, "visitor_token", json_string(token));
        http_reply_json(c, 201, out);
        out = NULL;
    } else {
        http_problem(c, 500, "internal_error", NULL, "The session could not be encoded.");
    }
done:
    json_decref(out);
    json_decref(extra);
    free(token);
}

void sessions_create(struct http_ctx *c)
{
    if (http_validate_body(c, create_fields) != 0)
        return;
    struct tenant_info ti;
    if (auth_tenant_info(c, c->tenant_id, &ti) != 0)
        return;
    const char *default_rc = ti.remote_control_ask ? "ask" : "off";
    struct token_limits lim = ti.lim;
    char max_live[16];
    snprintf(max_live, sizeof(max_live), "%d", lim.concurrent_sessions);
    int per_minute = lim.sessions_per_minute;

    struct rl_result rr;
    rl_take(c->srv->tenant_limits, c->tenant_id, per_minute / 60.0, per_minute, time_monotonic(),
            &rr);
    if (!rr.allowed) {
        char v[16];
        http_set_retry_after(c, rr.retry_after, v);
        http_problem(c, 429, "rate_limited", NULL,
                     "This tenant may create %d sessions per minute. Retry after %s s.", per_minute,
                     v);
        return;
    }

    json_t *visitor = visitor_json(json_object_get(c->body, "visitor"));
    json_t *perm_in = json_object_get(c->body, "permissions");
    const char *rc = json_string_value(json_object_get(perm_in, "remote_control"));
    json_t *perms = json_pack("{s:s}", "remote_control", rc ? rc : default_rc);
    char *visitor_text = json_dumps(visitor, JSON_COMPACT);
    char *perms_text = json_dumps(perms, JSON_COMPACT);
    json_t *exp_in = json_object_get(c->body, "expires_in_seconds");
    char ttl[16], id[IDS_MAX_LEN];
    snprintf(ttl, sizeof(ttl), "%d", exp_in ? (int)json_number_value(exp_in) : 3600);
    ids_new("ses", id, sizeof(id));

    PGresult *r = insert_session(c, id, json_string_value(json_object_get(visitor, "external_id")),
                                 visitor_text, perms_text, ttl, max_live);
    if (r != NULL)
        reply_created(c, r, id, perms, &lim);
    PQclear(r);
    free(visitor_text);
    free(perms_text);
    json_decref(visitor);
    json_decref(perms);
}

void sessions_list(struct http_ctx *c)
{
    static struct db_stmt q = {
        "sessions_list",
        "SELECT session_json(s, $7)::text FROM sessions s WHERE s.tenant_id = $1 "
        "AND ($2::text IS NULL OR s.status = $2) "
        "AND ($3::text IS NULL OR s.visitor_external_id = $3) "
        "AND ($4::timestamptz IS NULL OR s.created_at >= $4) "
        "AND ($5::timestamptz IS NULL OR s.created_at <= $5) "
        "AND ($6::text IS NULL OR s.id < $6) ORDER BY s.id DESC LIMIT $8",
        0};
    static const char *const allowed[] = {"limit",       "starting_after", "status",
                                          "external_id", "created_after",  "created_before",
                                          NULL};
    int limit;
    const char *after;
    if (http_check_query(c, allowed) != 0 || http_page_params(c, "ses", &limit, &after) != 0)
        return;
    const char *status = http_param(c, "status");
    if (status != NULL) {
        int ok = 0;
        for (int i = 0; status_values[i]; i++)
            ok |= strcmp(status, status_values[i]) == 0;
        if (!ok) {
            http_problem(c, 400, "invalid_parameter", "status",
                         "status must be pending, active or ended.");
            return;
        }
    }
    const char *ext = http_param(c, "external_id");
    if (ext != NULL && (ext[0] == '\0' || validate_utf8_length(ext) > 200)) {
        http_problem(c, 400, "invalid_parameter", "external_id",
                     "external_id must be 1 to 200 characters.");
        return;
    }
    const char *names[] = {"created_after", "created_before"};
    for (int i = 0; i < 2; i++) {
        const char *v = http_param(c, names[i]);
        if (v != NULL && !validate_datetime(v)) {
            http_problem(c, 400, "invalid_parameter", names[i],
                         "%s must be an RFC 3339 date-time like 2026-01-31T12:00:00Z, with a "
                         "time-zone offset of at most 15:59.",
                         names[i]);
            return;
        }
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *params[] = {c->tenant_id,
                            status,
                            ext,
                            http_param(c, "created_after"),
                            http_param(c, "created_before"),
                            after,
                            c->cfg->relay_url,
                            lim};
    PGresult *r = http_db(c, &q, 8, params);
    if (r == NULL)
        return;
    http_reply_list(c, r, limit);
    PQclear(r);
}

/* With several relay nodes: the node that holds (or last held) the session's visitor, from the
 * cluster's Redis (docs/cluster.md); NULL on one node, before a visitor connected, or when Redis
 * does not answer (the answer then says null rather than failing). Into out. */
static const char *relay_node(struct http_ctx *c, const char *id, char *out, size_t size)
{
    if (c->srv->kv == NULL)
        return NULL;
    char key[96];
    snprintf(key, sizeof(key), "cb:{%s}:meta", id);
    const char *argv[] = {"HGET", key, "vnode"};
    const size_t lens[] = {4, strlen(key), 5};
    redisReply *r = kv_command(c->srv->kv, 3, argv, lens);
    const char *node = NULL;
    if (r != NULL && r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < size) {
        memcpy(out, r->str, r->len);
        out[r->len] = '\0';
        node = out;
    }
    if (r != NULL)
        freeReplyObject(r);
    return node;
}

void sessions_get(struct http_ctx *c)
{
    static struct db_stmt q = {
        "sessions_get",
        /* one more member, the others in their usual order */
        "SELECT left(session_json(s, $3)::text, -1) || ', \"relay_node\" : ' "
        "  || COALESCE(to_json($4::text)::text, 'null') || '}' "
        "FROM sessions s WHERE s.id = $1 AND s.tenant_id = $2",
        0};
    const char *id = http_param(c, "id");
    if (!ids_valid("ses", id)) {
        http_not_found(c, "session");
        return;
    }
    char node[80];
    const char *params[] = {id, c->tenant_id, c->cfg->relay_url,
                            relay_node(c, id, node, sizeof(node))};
    http_reply_one(c, &q, 4, params, "session");
}

void sessions_get_by_code(struct http_ctx *c)
{
    static struct db_stmt q = {"sessions_by_code",
                               "SELECT session_json(s, $3)::text FROM sessions s "
                               "WHERE s.tenant_id = $1 AND s.join_code = $2 "
                               "AND s.status <> 'ended' AND s.expires_at > now()",
                               0};
    const char *code = http_param(c, "code"); /* 6 digits: checked by the dispatcher */
    const char *params[] = {c->tenant_id, code, c->cfg->relay_url};
    http_reply_one(c, &q, 3, params, "live session with this code");
}

void sessions_end(struct http_ctx *c)
{
    static struct db_stmt q = {"sessions_end",
                               "SELECT session_json(e, $3)::text FROM sessions_end(ARRAY("
                               "  SELECT id FROM sessions WHERE id = $1 AND tenant_id = $2), "
                               "  COALESCE($4, 'ended_by_api')) e",
                               0};
    static struct db_stmt q_get = {"sessions_get_ended",
                                   "SELECT session_json(s, $3)::text FROM sessions s "
                                   "WHERE s.id = $1 AND s.tenant_id = $2",
                                   0};
    if (http_validate_body(c, end_fields) != 0)
        return;
    const char *id = http_param(c, "id");
    if (!ids_valid("ses", id)) {
        http_not_found(c, "session");
        return;
    }
    const char *params[] = {id, c->tenant_id, c->cfg->relay_url,
                            json_string_value(json_object_get(c->body, "reason"))};
    PGresult *r = http_db(c, &q, 4, params);
    if (r == NULL)
        return;
    if (PQntuples(r) == 1) {
        http_reply_text(c, 200, PQgetvalue(r, 0, 0));
        PQclear(r);
        return;
    }
    PQclear(r); /* already ended (by the API, the relay or expiry), or not this tenant's */
    r = http_db(c, &q_get, 3, params);
    if (r == NULL)
        return;
    if (PQntuples(r) == 1)
        http_problem(c, 409, "session_ended", NULL,
                     "This session has already ended; GET it to see when and why.");
    else
        http_not_found(c, "session");
    PQclear(r);
}

/* Copies src into dst[size], cut at a character boundary when it does not fit (a display name:
 * shortening it is harmless, splitting a character makes the token's JSON invalid). */
static void copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--; /* src[n] is the first byte not copied: back up to a sequence's start */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* An agent token changes no row, so its audit entry (docs/audit.md) is written here, before the
 * token exists: a token the trail does not know of is never handed out. Returns 0 or -1
 * (answered). */
static int audit_agent_token(struct http_ctx *c, const struct token_claims *tc)
{
    static struct db_stmt q = {
        "sessions_audit_agent_token",
        "SELECT audit_append($1, 'agent_token.created', 'session', $2, jsonb_build_object("
        "'token_id', $3::text, 'agent_id', $4::text, 'agent_name', $5::text, "
        "'remote_control', $6::text, 'expires_at', to_timestamp($7::bigint)))",
        0};
    char exp[24];
    snprintf(exp, sizeof(exp), "%lld", (long long)tc->exp);
    const char *params[] = {tc->tid,
                            tc->sid,
                            tc->jti,
                            tc->sub,
                            tc->name[0] ? tc->name : NULL,
                            tc->remote_control ? "ask" : "off",
                            exp};
    PGresult *r = http_db(c, &q, 7, params);
    int rc = r != NULL ? 0 : -1;
    PQclear(r);
    return rc;
}

/* Answers 201 with an agent token for session id, expiring at exp, and the viewer URL that
 * carries it; or a problem. */
static void reply_agent_token(struct http_ctx *c, const char *id, int ask,
                              const struct token_limits *lim, long long now, long long exp)
{
    json_t *agent = json_object_get(c->body, "agent");
    struct token_claims tc;
    memset(&tc, 0, sizeof(tc));
    snprintf(tc.sid, sizeof(tc.sid), "%s", id);
    snprintf(tc.tid, sizeof(tc.tid), "%s", c->tenant_id);
    snprintf(tc.sub, sizeof(tc.sub), "%s", json_string_value(json_object_get(agent, "id")));
    const char *name = json_string_value(json_object_get(agent, "name"));
    copy_utf8(tc.name, sizeof(tc.name), name ? name : "");
    ids_new("tok", tc.jti, sizeof(tc.jti));
    tc.role = TOKEN_ROLE_AGENT;
    tc.remote_control = ask;
    tc.lim = *lim;
    tc.iat = tc.nbf = now;
    tc.exp = exp;
    char *token = NULL, *url = NULL;
    if (audit_agent_token(c, &tc) != 0)
        goto done;
    if (token_mint(c->cfg->jwt_secret, sizeof(c->cfg->jwt_secret), &tc, &token) != TOKEN_OK) {
        http_problem(c, 500, "internal_error", NULL, "The agent token could not be signed.");
        goto done;
    }
    char when[32];
    time_format_rfc3339(exp, when, sizeof(when));
    /* The token travels in the fragment: browsers never send it to a server, so it stays out of
     * access logs. */
    size_t ulen = strlen(c->cfg->public_url) + strlen(c->tenant_id) + strlen(token) + 32;
    url = malloc(ulen);
    if (url == NULL) {
        http_problem(c, 500, "internal_error", NULL, "Out of memory.");
        goto done;
    }
    snprintf(url, ulen, "%s/viewer/%s#token=%s", c->cfg->public_url, c->tenant_id, token);
    json_t *out = json_pack("{s:s, s:s, s:s, s:{s:s, s:s?}, s:{s:s}, s:s, s:s, s:s}", "object",
                            "agent_token", "id", tc.jti, "session_id", id, "agent", "id", tc.sub,
                            "name", name, "permissions", "remote_control", ask ? "ask" : "off",
                            "token", token, "expires_at", when, "embed_url", url);
    if (name == NULL)
        json_object_set_new(json_object_get(out, "agent"), "name", json_null());
    http_reply_json(c, 201, out);
done:
    free(url);
    free(token);
}

void sessions_agent_token(struct http_ctx *c)
{
    static struct db_stmt q = {
        "sessions_for_token",
        "SELECT status = 'ended' OR expires_at <= now(), permissions->>'remote_control', "
        "extract(epoch FROM expires_at)::bigint FROM sessions WHERE id = $1 AND tenant_id = $2",
        0};
    if (http_validate_body(c, token_fields) != 0)
        return;
    const char *id = http_param(c, "id");
    if (!ids_valid("ses", id)) {
        http_not_found(c, "session");
        return;
    }
    const char *params[] = {id, c->tenant_id};
    PGresult *r = http_db_one(c, &q, 2, params, "session");
    if (r == NULL)
        return;
    int ended = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    int session_ask = strcmp(PQgetvalue(r, 0, 1), "ask") == 0;
    long long session_exp = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    struct tenant_info ti;
    if (auth_tenant_info(c, c->tenant_id, &ti) != 0)
        return;
    if (ended) {
        http_problem(c, 409, "session_ended", NULL,
                     "This session has ended; create a new session.");
        return;
    }
    const char *rc = json_string_value(
        json_object_get(json_object_get(c->body, "permissions"), "remote_control"));
    int ask = rc ? strcmp(rc, "ask") == 0 : session_ask;
    if (ask && !session_ask) {
        http_problem(c, 422, "invalid_field", "permissions.remote_control",
                     "The session does not allow remote control, so its agents cannot ask for "
                     "it.");
        return;
    }
    json_t *ttl_in = json_object_get(c->body, "ttl_seconds");
    long long now = (long long)time_now();
    long long exp = now + (ttl_in ? (long long)json_number_value(ttl_in) : 3600);
    if (exp > session_exp)
        exp = session_exp;
    reply_agent_token(c, id, ask, &ti.lim, now, exp);
}
