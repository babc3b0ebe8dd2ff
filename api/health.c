/* /healthz (process up), /readyz (database reachable; Redis too in a cluster), /metrics (Prometheus
 * text). */
#include <stdio.h>
#include <stdlib.h>

#include "api/metrics.h"
#include "api/routes.h"
#include "api/server.h"

void health_healthz(struct http_ctx *c)
{
    http_reply_text(c, 200, "{\"status\":\"ok\"}");
}

void health_readyz(struct http_ctx *c)
{
    struct db_conn *conn = db_acquire(c->srv->db, 1000);
    int ok = 0;
    if (conn != NULL) {
        PGresult *r = db_exec_simple(conn, "SELECT 1");
        ok = db_ok(r);
        PQclear(r);
        db_release(c->srv->db, conn);
    }
    int redis = -1;
    int draining = c->srv->relay_state ? c->srv->relay_state(c->srv->relay_state_arg, &redis) : 0;
    int ready = ok && redis != 0 && draining != 1;
    char body[160];
    snprintf(body, sizeof(body), "{\"status\":\"%s\",\"database\":\"%s\"%s%s}",
             ready ? "ready" : "unavailable", ok ? "ok" : "unreachable",
             redis < 0 ? ""
             : redis   ? ",\"redis\":\"ok\""
                       : ",\"redis\":\"down\"",
             draining == 1 ? ",\"relay\":\"draining\"" : "");
    http_reply_text(c, ready ? 200 : 503, body);
}

/* Answers 401/403 unless metrics_access allows the caller. Returns 0 when allowed, else -1. */
static int metrics_allowed(struct http_ctx *c)
{
    switch (metrics_access(c->cfg->metrics_token, http_header(c, "Authorization"),
                           c->req->client_address)) {
    case METRICS_ALLOWED:
        return 0;
    case METRICS_TOKEN_MISSING:
        http_set_header(c, "WWW-Authenticate", "Bearer realm=\"metrics\"");
        http_problem(c, 401, "missing_metrics_token", NULL,
                     "Send the scrape token: 'Authorization: Bearer <COBROWSE_METRICS_TOKEN>'.");
        return -1;
    case METRICS_TOKEN_WRONG:
        http_set_header(c, "WWW-Authenticate", "Bearer realm=\"metrics\", error=\"invalid_token\"");
        http_problem(c, 401, "invalid_metrics_token", NULL,
                     "This is not the server's scrape token (COBROWSE_METRICS_TOKEN).");
        return -1;
    case METRICS_NOT_LOOPBACK:
        http_problem(
            c, 403, "forbidden", NULL,
            "Without a scrape token (COBROWSE_METRICS_TOKEN) /metrics answers only on loopback.");
        return -1;
    }
    return -1;
}

void health_metrics(struct http_ctx *c)
{
    if (metrics_allowed(c) != 0)
        return;
    /* Every service's metrics come through the composition root (app/lifecycle.h); the REST
     * server's own are one of them. */
    char *text =
        c->srv->metrics != NULL ? c->srv->metrics(c->srv->metrics_arg) : metrics_render(c->srv->db);
    if (text == NULL) {
        http_problem(c, 500, "internal_error", NULL, "Out of memory.");
        return;
    }
    ulfius_set_string_body_response(c->resp, 200, text);
    http_set_header(c, "Content-Type", "text/plain; version=0.0.4");
    c->status = 200;
    c->answered = 1;
    free(text);
}
