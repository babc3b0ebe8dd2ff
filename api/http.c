#include "api/http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/audit.h"
#include "api/deadline.h"
#include "api/metrics.h"
#include "api/server.h"
#include "api/validate.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"

void http_set_header(struct http_ctx *c, const char *name, const char *value)
{
    u_map_put(c->resp->map_header, name, value);
}

const char *http_header(struct http_ctx *c, const char *name)
{
    return u_map_get_case(c->req->map_header, name);
}

const char *http_param(struct http_ctx *c, const char *name)
{
    return u_map_get(c->req->map_url, name);
}

void http_reply_text(struct http_ctx *c, int status, const char *json_text)
{
    ulfius_set_string_body_response(c->resp, (unsigned)status, json_text);
    http_set_header(c, "Content-Type", "application/json");
    c->status = status;
    c->answered = 1;
}

void http_reply_json(struct http_ctx *c, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        http_problem(c, 500, "internal_error", NULL, "The response could not be encoded.");
        return;
    }
    http_reply_text(c, status, text);
    free(text);
}

static const char *status_title(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Internal Server Error";
    }
}

void http_problem(struct http_ctx *c, int status, const char *code, const char *field,
                  const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    char type[128];
    snprintf(type, sizeof(type), "urn:cobrowse:problem:%s", code);
    json_t *p =
        json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "type", type, "title", status_title(status),
                  "status", status, "detail", detail, "code", code, "request_id", c->request_id);
    if (field != NULL)
        json_object_set_new(p, "field", json_string(field));
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    ulfius_set_string_body_response(c->resp, (unsigned)status, text ? text : "{}");
    free(text);
    http_set_header(c, "Content-Type", "application/problem+json");
    c->status = status;
    c->problem_code = code;
    c->answered = 1;
}

void http_not_found(struct http_ctx *c, const char *what)
{
    http_problem(c, 404, "not_found", NULL,
                 "No such %s for this tenant. Check the id and the Cobrowse-Tenant header.", what);
}

/* A statement on its own (autocommit) that PostgreSQL chose as a deadlock's victim or could not
 * serialize was rolled back whole: running it again is safe, and the other side has finished or
 * moved on (the dispatcher's recording of a failed attempt and an endpoint's deletion lock the
 * same two rows in opposite orders, for example). Inside a transaction the caller's earlier
 * statements are gone too: not retried. */
static int retryable(struct http_ctx *c, PGresult *r)
{
    const char *state = PQresultStatus(r) == PGRES_FATAL_ERROR ? db_sqlstate(r) : "";
    return (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0) &&
           PQtransactionStatus(db_pg(c->db)) == PQTRANS_IDLE;
}

PGresult *http_db_raw(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params)
{
    if (c->db == NULL) {
        c->db = db_acquire(c->srv->db, 5000);
        if (c->db == NULL) {
            http_problem(c, 503, "database_unavailable", NULL,
                         "The database is unavailable. Retry later with the same Idempotency-Key.");
            return NULL;
        }
    }
    if (c->audit_pending) {
        c->audit_pending = 0;
        if (audit_set_actor(c) != 0) {
            http_problem(c, 503, "database_unavailable", NULL,
                         "The change could not be recorded in the audit trail. Retry later.");
            return NULL;
        }
    }
    PGresult *r = db_exec(c->db, stmt, n, params);
    for (int retry = 0; retry < 2 && r != NULL && retryable(c, r); retry++) {
        log_json(LOG_WARN, "statement retried",
                 json_pack("{s:s, s:s, s:s}", "request_id", c->request_id, "statement", stmt->name,
                           "sqlstate", db_sqlstate(r)));
        PQclear(r);
        r = db_exec(c->db, stmt, n, params);
    }
    if (r == NULL || PQstatus(db_pg(c->db)) != CONNECTION_OK) {
        PQclear(r);
        log_json(LOG_ERROR, "database connection lost",
                 json_pack("{s:s, s:s}", "request_id", c->request_id, "statement", stmt->name));
        http_problem(c, 503, "database_unavailable", NULL,
                     "The database connection was lost. Retry later.");
        return NULL;
    }
    return r;
}

void http_db_done(struct http_ctx *c)
{
    audit_clear_actor(c);
    if (c->db != NULL)
        db_release(c->srv->db, c->db);
    c->db = NULL;
}

PGresult *http_db(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params)
{
    PGresult *r = http_db_raw(c, stmt, n, params);
    if (r == NULL)
        return NULL;
    if (!db_ok(r)) {
        log_json(LOG_ERROR, "query failed",
                 json_pack("{s:s, s:s, s:s, s:s}", "request_id", c->request_id, "statement",
                           stmt->name, "sqlstate", db_sqlstate(r), "error",
                           PQresultErrorMessage(r)));
        PQclear(r);
        http_problem(c, 500, "internal_error", NULL,
                     "The request failed on our side; the log line with this request_id says why.");
        return NULL;
    }
    return r;
}

int http_page_params(struct http_ctx *c, const char *id_prefix, int *limit, const char **after)
{
    const char *l = http_param(c, "limit");
    *limit = 20;
    *after = NULL;
    if (l != NULL) {
        char *end = NULL;
        long v = strtol(l, &end, 10);
        if (l[0] == '\0' || *end != '\0' || v < 1 || v > 100) {
            http_problem(c, 400, "invalid_parameter", "limit",
                         "limit must be an integer from 1 to 100.");
            return -1;
        }
        *limit = (int)v;
    }
    const char *a = http_param(c, "starting_after");
    if (a != NULL) {
        if (!ids_valid(id_prefix, a)) {
            http_problem(c, 400, "invalid_parameter", "starting_after",
                         "starting_after must be the id of an object from the previous page "
                         "(%s_...).",
                         id_prefix);
            return -1;
        }
        *after = a;
    }
    return 0;
}

void http_reply_tenant_page(struct http_ctx *c, struct db_stmt *q, const char *prefix)
{
    static const char *const allowed[] = {"limit", "starting_after", NULL};
    int limit;
    const char *after;
    if (http_check_query(c, allowed) != 0 || http_page_params(c, prefix, &limit, &after) != 0)
        return;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *params[] = {c->tenant_id, after, lim};
    PGresult *r = http_db(c, q, 3, params);
    if (r == NULL)
        return;
    http_reply_list(c, r, limit);
    PQclear(r);
}

void http_reply_list(struct http_ctx *c, PGresult *res, int limit)
{
    int n = PQntuples(res);
    int has_more = n > limit;
    if (has_more)
        n = limit;
    size_t cap = 64;
    for (int i = 0; i < n; i++)
        cap += (size_t)PQgetlength(res, i, 0) + 1;
    char *out = malloc(cap);
    if (out == NULL) {
        http_problem(c, 500, "internal_error", NULL, "Out of memory.");
        return;
    }
    size_t pos = (size_t)snprintf(out, cap, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n; i++) {
        if (i > 0)
            out[pos++] = ',';
        size_t len = (size_t)PQgetlength(res, i, 0);
        memcpy(out + pos, PQgetvalue(res, i, 0), len);
        pos += len;
    }
    snprintf(out + pos, cap - pos, "],\"has_more\":%s}", has_more ? "true" : "false");
    http_reply_text(c, 200, out);
    free(out);
}

int http_check_query(struct http_ctx *c, const char *const *allowed)
{
    const char **keys = u_map_enum_keys(c->req->map_url);
    for (int i = 0; keys != NULL && keys[i] != NULL; i++) {
        int ok = 0;
        for (int k = 0; allowed != NULL && allowed[k] != NULL && !ok; k++)
            ok = strcmp(keys[i], allowed[k]) == 0;
        /* path parameters ({id}, {code}) share the map with the query string */
        char brace[80];
        snprintf(brace, sizeof(brace), "{%s}", keys[i]);
        if (!ok && strstr(c->route->path, brace) != NULL)
            ok = 1;
        if (!ok) {
            http_problem(c, 400, "invalid_parameter", keys[i], "Unknown query parameter '%.64s'.",
                         keys[i]);
            return -1;
        }
    }
    return 0;
}

void http_reply_with_field(struct http_ctx *c, int status, const char *obj, const char *key,
                           const char *value)
{
    json_t *v = json_string(value);
    char *enc = v ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    json_decref(v);
    size_t olen = strlen(obj);
    if (enc == NULL || olen < 2 || obj[olen - 1] != '}') {
        free(enc);
        http_problem(c, 500, "internal_error", NULL, "The response could not be encoded.");
        return;
    }
    size_t cap = olen + strlen(key) + strlen(enc) + 8;
    char *out = malloc(cap);
    if (out != NULL) {
        snprintf(out, cap, "%.*s,\"%s\":%s}", (int)(olen - 1), obj, key, enc);
        http_reply_text(c, status, out);
    } else {
        http_problem(c, 500, "internal_error", NULL, "Out of memory.");
    }
    free(out);
    free(enc);
}

void http_reply_verror(struct http_ctx *c, const struct verror *err)
{
    http_problem(c, err->status, err->code, err->field[0] ? err->field : NULL, "%s", err->detail);
}

int http_validate_body(struct http_ctx *c, const struct vfield *fields)
{
    struct verror err;
    json_t *empty = NULL;
    const json_t *body = c->body;
    if (body == NULL)
        body = empty = json_object();
    int rc = validate_object(body, fields, &err);
    json_decref(empty);
    if (rc != 0) {
        http_reply_verror(c, &err);
        return -1;
    }
    return 0;
}

PGresult *http_db_one(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params,
                      const char *what)
{
    PGresult *r = http_db(c, stmt, n, params);
    if (r != NULL && PQntuples(r) != 1) {
        PQclear(r);
        http_not_found(c, what);
        return NULL;
    }
    return r;
}

int http_reply_one(struct http_ctx *c, struct db_stmt *stmt, int n, const char *const *params,
                   const char *what)
{
    PGresult *r = http_db(c, stmt, n, params);
    if (r == NULL)
        return -1;
    int found = PQntuples(r) == 1;
    if (found)
        http_reply_text(c, 200, PQgetvalue(r, 0, 0));
    else
        http_not_found(c, what);
    PQclear(r);
    return found;
}

void http_set_retry_after(struct http_ctx *c, double seconds, char out[16])
{
    int s = (int)(seconds + 0.999);
    snprintf(out, 16, "%d", s < 1 ? 1 : s);
    http_set_header(c, "Retry-After", out);
}

void http_ctx_finish(struct http_ctx *c)
{
    http_set_header(c, "X-Request-Id", c->request_id);
    /* API answers are never stored by a browser or a proxy: some carry a secret shown once (a new
     * API key, a webhook secret). The browser files and the proxy set their own. */
    if (!u_map_has_key_case(c->resp->map_header, "Cache-Control"))
        http_set_header(c, "Cache-Control", "no-store");
    double elapsed = time_monotonic() - c->started;
    metrics_observe(c->route_index, c->status, elapsed);
    audit_clear_actor(c);
    if (c->db != NULL)
        db_release(c->srv->db, c->db);
    enum log_level lvl = c->status >= 500 ? LOG_ERROR : LOG_INFO;
    if (log_enabled(lvl)) {
        json_t *f = json_pack("{s:s, s:s, s:s, s:i, s:f}", "request_id", c->request_id, "method",
                              c->req->http_verb, "route", c->route ? c->route->path : "unmatched",
                              "status", c->status, "duration_ms", elapsed * 1000.0);
        if (c->who.id[0])
            json_object_set_new(f, "principal", json_string(c->who.id));
        if (c->tenant_id[0])
            json_object_set_new(f, "tenant", json_string(c->tenant_id));
        if (c->problem_code)
            json_object_set_new(f, "code", json_string(c->problem_code));
        log_json(lvl, "request", f);
    }
    json_decref(c->body);
    free(c->who.allowed_origins);
    deadline_handler_leave();
}

void http_ctx_init(struct http_ctx *c, struct server *srv, const struct _u_request *req,
                   struct _u_response *resp)
{
    deadline_handler_enter();
    memset(c, 0, sizeof(*c));
    c->srv = srv;
    c->cfg = srv->cfg;
    c->req = req;
    c->resp = resp;
    c->route_index = -1;
    c->started = time_monotonic();
    if (ids_new("req", c->request_id, sizeof(c->request_id)) != 0)
        snprintf(c->request_id, sizeof(c->request_id), "req_unknown");
}
