/* /healthz (process up), /readyz (database reachable), /metrics (Prometheus text). */
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
    if (ok)
        http_reply_text(c, 200, "{\"status\":\"ready\",\"database\":\"ok\"}");
    else
        http_reply_text(c, 503, "{\"status\":\"unavailable\",\"database\":\"unreachable\"}");
}

void health_metrics(struct http_ctx *c)
{
    char *text = metrics_render(c->srv->db, c->srv->relay);
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
