/* /v1/webhook_endpoints/{id}/deliveries and /v1/webhook_deliveries/{id}: what the dispatcher did
 * with each event for an endpoint of the acting tenant (docs/webhooks.md), with every attempt, and
 * a retry on demand. A delivery belongs to its endpoint's tenant (webhook_deliveries.tenant_id):
 * every query names the acting tenant, so another tenant's delivery is 404.
 * Threading: handlers run on the API's worker threads; no state of their own. */
#include <stdio.h>
#include <string.h>

#include "api/routes.h"
#include "api/server.h"
#include "api/validate.h"

static const char *const status_values[] = {"pending", "succeeded", "failed", NULL};
static const struct vfield empty_fields[] = {{NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0}};

/* Returns 0 if status (a query parameter, NULL when absent) is absent or valid, or -1 after
 * answering 400. */
static int check_status(struct http_ctx *c, const char *status)
{
    for (int i = 0; status != NULL && status_values[i]; i++)
        if (strcmp(status, status_values[i]) == 0)
            return 0;
    if (status == NULL)
        return 0;
    http_problem(c, 400, "invalid_parameter", "status",
                 "status must be pending, succeeded or failed.");
    return -1;
}

void webhook_deliveries_list(struct http_ctx *c)
{
    /* The endpoint is looked up first so that another tenant's (or a deleted) endpoint is 404,
     * not an empty list. Newest first: delivery ids sort by creation time. */
    static struct db_stmt q_endpoint = {"webhook_deliveries_endpoint",
                                        "SELECT 1 FROM webhook_endpoints WHERE id = $1 AND "
                                        "tenant_id = $2 AND deleted_at IS NULL",
                                        0};
    static struct db_stmt q = {
        "webhook_deliveries_list",
        "SELECT webhook_delivery_json(d)::text FROM webhook_deliveries d "
        "WHERE d.endpoint_id = $1 AND d.tenant_id = $2 AND ($3::text IS NULL OR d.status = $3) "
        "AND ($4::text IS NULL OR d.id < $4) ORDER BY d.id DESC LIMIT $5",
        0};
    static const char *const allowed[] = {"limit", "starting_after", "status", NULL};
    int limit;
    const char *after;
    if (http_check_query(c, allowed) != 0 || http_page_params(c, "whd", &limit, &after) != 0)
        return;
    const char *status = http_param(c, "status");
    if (check_status(c, status) != 0)
        return;
    const char *id = http_param(c, "id");
    const char *params[] = {id, c->tenant_id};
    PGresult *r = http_db_one(c, &q_endpoint, 2, params, "webhook endpoint");
    if (r == NULL)
        return;
    PQclear(r);
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *params2[] = {id, c->tenant_id, status, after, lim};
    r = http_db(c, &q, 5, params2);
    if (r == NULL)
        return;
    http_reply_list(c, r, limit);
    PQclear(r);
}

void webhook_deliveries_get(struct http_ctx *c)
{
    static struct db_stmt q = {"webhook_deliveries_get",
                               "SELECT webhook_delivery_detail_json(d)::text FROM "
                               "webhook_deliveries d WHERE d.id = $1 AND d.tenant_id = $2",
                               0};
    const char *params[] = {http_param(c, "id"), c->tenant_id};
    http_reply_one(c, &q, 2, params, "webhook delivery");
}

void webhook_deliveries_retry(struct http_ctx *c)
{
    /* Pending again, due now, lease cleared; the attempt count stays (it is history, and the
     * dispatcher's schedule decides what one more failure means). Row-locked so that a
     * dispatcher recording a success at the same moment is either seen (409) or waits. A
     * delivery whose endpoint is disabled or deleted would go nowhere: 409 too. */
    static struct db_stmt q = {
        "webhook_deliveries_retry",
        "WITH cur AS (SELECT d.id, d.status, e.enabled AND e.deleted_at IS NULL AS live "
        "  FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id "
        "  WHERE d.id = $1 AND d.tenant_id = $2 FOR UPDATE OF d), "
        "upd AS (UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = now(), "
        "  locked_until = NULL, updated_at = clock_timestamp() FROM cur "
        "  WHERE d.id = cur.id AND cur.status <> 'succeeded' AND cur.live "
        "  RETURNING webhook_delivery_json(d)::text AS j, d.tenant_id, d.id, d.event_id), "
        "woke AS (SELECT pg_notify('cobrowse_webhook', '') FROM upd), "
        "aud AS (SELECT audit_append(upd.tenant_id, 'webhook_delivery.retried', "
        "  'webhook_delivery', upd.id, jsonb_build_object('event_id', upd.event_id)) FROM upd) "
        "SELECT cur.status, cur.live, (SELECT j FROM upd), (SELECT count(*) FROM woke), "
        "  (SELECT count(*) FROM aud) FROM cur",
        0};
    if (http_validate_body(c, empty_fields) != 0)
        return;
    const char *params[] = {http_param(c, "id"), c->tenant_id};
    PGresult *r = http_db_one(c, &q, 2, params, "webhook delivery");
    if (r == NULL)
        return;
    if (strcmp(PQgetvalue(r, 0, 0), "succeeded") == 0)
        http_problem(c, 409, "delivery_succeeded", NULL,
                     "This delivery has succeeded already; replay its event instead.");
    else if (strcmp(PQgetvalue(r, 0, 1), "t") != 0)
        http_problem(c, 409, "endpoint_disabled", NULL,
                     "This delivery's endpoint is disabled or deleted: enable it first.");
    else
        http_reply_text(c, 200, PQgetvalue(r, 0, 2));
    PQclear(r);
}
