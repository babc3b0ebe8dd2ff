/* /v1/audit_events and the request's actor (api/audit.h, docs/audit.md). The entries themselves
 * are written by the database (migrations/010_audit.sql), in the transaction of each change. */
#include "api/audit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/routes.h"
#include "api/server.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"

int audit_route_mutates(const struct route *rt)
{
    if (rt == NULL || (rt->flags & ROUTE_PROXY_LISTENER))
        return 0;
    return strcmp(rt->method, "GET") != 0 && strcmp(rt->method, "HEAD") != 0 &&
           strcmp(rt->method, "OPTIONS") != 0;
}

/* The peer's address as text ("" when unknown). The socket's peer, not X-Forwarded-For: the
 * server trusts no proxy header anywhere. */
static void client_address(const struct http_ctx *c, char *out, size_t size)
{
    const struct sockaddr *sa = c->req->client_address;
    out[0] = '\0';
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

static json_t *actor_json(const struct http_ctx *c)
{
    char addr[INET6_ADDRSTRLEN];
    client_address(c, addr, sizeof(addr));
    json_t *a = json_pack("{s:s, s:s}", "request_id", c->request_id, "address", addr);
    if (a == NULL)
        return NULL;
    if (c->route != NULL && (c->route->flags & ROUTE_SESSION_TOKEN)) {
        json_object_set_new(a, "type", json_string("session_token"));
        json_object_set_new(a, "id", json_string(c->session.jti));
        json_object_set_new(
            a, "name",
            json_string(c->session.role == TOKEN_ROLE_AGENT ? c->session.name : "visitor"));
    } else if (c->who.kind == PRINCIPAL_ADMIN || c->who.kind == PRINCIPAL_KEY) {
        json_object_set_new(
            a, "type", json_string(c->who.kind == PRINCIPAL_ADMIN ? "admin_token" : "api_key"));
        json_object_set_new(a, "id", json_string(c->who.id));
    }
    return a;
}

int audit_set_actor(struct http_ctx *c)
{
    static struct db_stmt q = {"audit_set_actor", "SELECT set_config('cobrowse.actor', $1, false)",
                               0};
    json_t *a = actor_json(c);
    char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    int rc = -1;
    if (text == NULL)
        goto done;
    const char *params[] = {text};
    PGresult *r = db_exec(c->db, &q, 1, params);
    rc = r != NULL && db_ok(r) ? 0 : -1;
    if (rc == 0)
        c->audit_actor_set = 1;
    else
        log_json(LOG_ERROR, "audit actor not set",
                 json_pack("{s:s, s:s}", "request_id", c->request_id, "error",
                           r ? PQresultErrorMessage(r) : "out of memory"));
    PQclear(r);
done:
    free(text);
    return rc;
}

void audit_clear_actor(struct http_ctx *c)
{
    if (c->db == NULL || !c->audit_actor_set)
        return;
    PGconn *pg = db_pg(c->db);
    if (PQtransactionStatus(pg) != PQTRANS_IDLE && PQtransactionStatus(pg) != PQTRANS_UNKNOWN)
        PQclear(PQexec(pg, "ROLLBACK"));
    /* A connection that cannot clear it is reset by the pool on its next use, which clears it
     * too; the log line says the trail may have mislabelled nothing yet. */
    PGresult *r = PQexec(pg, "SELECT set_config('cobrowse.actor', '', false)");
    if (r == NULL || !db_ok(r))
        log_json(LOG_ERROR, "audit actor not cleared",
                 json_pack("{s:s}", "request_id", c->request_id));
    PQclear(r);
    c->audit_actor_set = 0;
}

static const char *const action_prefixes[] = {
    "tenant.",           "api_key.",     "session.", "webhook_endpoint.",
    "webhook_delivery.", "agent_token.", NULL};

/* action: a known family and a short name (the list filter's bound, not a closed list: new
 * actions need no change here). */
static int action_ok(const char *a)
{
    size_t n = strlen(a);
    if (n < 3 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((a[i] >= 'a' && a[i] <= 'z') || a[i] == '_' || a[i] == '.'))
            return 0;
    for (int i = 0; action_prefixes[i]; i++)
        if (strncmp(a, action_prefixes[i], strlen(action_prefixes[i])) == 0)
            return 1;
    return 0;
}

static int time_param(struct http_ctx *c, const char *name, const char **out)
{
    double t;
    *out = http_param(c, name);
    if (*out != NULL && (strlen(*out) > 40 || time_parse_rfc3339(*out, &t) != 0)) {
        http_problem(c, 400, "invalid_parameter", name, "%s must be an RFC 3339 date-time.", name);
        return -1;
    }
    return 0;
}

void audit_events_list(struct http_ctx *c)
{
    static struct db_stmt q = {
        "audit_list",
        "SELECT audit_entry_json(a)::text FROM audit_events a WHERE a.tenant_id = $1 "
        "AND ($2::text IS NULL OR a.action = $2) "
        "AND ($3::text IS NULL OR a.target_id = $3) "
        "AND ($4::timestamptz IS NULL OR a.occurred_at >= $4) "
        "AND ($5::timestamptz IS NULL OR a.occurred_at <= $5) "
        "AND ($6::text IS NULL OR a.id < $6) ORDER BY a.id DESC LIMIT $7",
        0};
    static const char *const allowed[] = {"limit",     "starting_after", "action",
                                          "target_id", "occurred_after", "occurred_before",
                                          NULL};
    int limit;
    const char *after, *since, *until;
    if (http_check_query(c, allowed) != 0 || http_page_params(c, "aud", &limit, &after) != 0 ||
        time_param(c, "occurred_after", &since) != 0 ||
        time_param(c, "occurred_before", &until) != 0)
        return;
    const char *action = http_param(c, "action");
    if (action != NULL && !action_ok(action)) {
        http_problem(c, 400, "invalid_parameter", "action",
                     "action must be an audit action such as tenant.updated.");
        return;
    }
    const char *target = http_param(c, "target_id");
    if (target != NULL &&
        (strlen(target) < 4 || strlen(target) > IDS_MAX_LEN || strchr(target, '_') == NULL)) {
        http_problem(c, 400, "invalid_parameter", "target_id",
                     "target_id must be an object id (ses_..., key_...).");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *params[] = {c->tenant_id, action, target, since, until, after, lim};
    PGresult *r = http_db(c, &q, 7, params);
    if (r == NULL)
        return;
    http_reply_list(c, r, limit);
    PQclear(r);
}

void audit_events_get(struct http_ctx *c)
{
    static struct db_stmt q = {"audit_get",
                               "SELECT audit_entry_json(a)::text FROM audit_events a "
                               "WHERE a.id = $1 AND a.tenant_id = $2",
                               0};
    if (http_check_query(c, NULL) != 0)
        return;
    const char *params[] = {http_param(c, "id"), c->tenant_id};
    http_reply_one(c, &q, 2, params, "audit event");
}

void audit_events_verify(struct http_ctx *c)
{
    static struct db_stmt q = {
        "audit_verify",
        "SELECT json_build_object('object', 'audit_verification', 'tenant_id', $1::text, "
        "  'intact', v.broken_id IS NULL, 'checked', v.checked, "
        "  'latest_hash', (SELECT encode(hash, 'hex') FROM audit_events "
        "                  WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1), "
        "  'first_broken', CASE WHEN v.broken_id IS NOT NULL THEN json_build_object("
        "    'id', v.broken_id, 'seq', v.broken_seq, 'reason', v.reason) END)::text "
        "FROM audit_verify($1) v",
        0};
    if (http_check_query(c, NULL) != 0)
        return;
    const char *params[] = {c->tenant_id};
    PGresult *r = http_db(c, &q, 1, params);
    if (r == NULL)
        return;
    http_reply_text(c, 200, PQgetvalue(r, 0, 0));
    PQclear(r);
}
