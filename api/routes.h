/* Prototypes of every route handler, grouped by the file that implements them. The table that
 * binds them to methods and paths is `server_routes` in api/server.c. */
#ifndef COBROWSE_API_ROUTES_H
#define COBROWSE_API_ROUTES_H

#include "api/http.h"

/* api/health.c */
void health_healthz(struct http_ctx *c);
void health_readyz(struct http_ctx *c);
void health_metrics(struct http_ctx *c);

/* api/tenants.c */
void tenants_create(struct http_ctx *c);
void tenants_list(struct http_ctx *c);
void tenants_get(struct http_ctx *c);
void tenants_update(struct http_ctx *c);
void tenants_delete(struct http_ctx *c);
void tenants_suspend(struct http_ctx *c);
void tenants_reactivate(struct http_ctx *c);

/* api/keys.c */
void keys_create(struct http_ctx *c);
void keys_list(struct http_ctx *c);
void keys_get(struct http_ctx *c);
void keys_revoke(struct http_ctx *c);

/* api/sessions.c */
void sessions_create(struct http_ctx *c);
void sessions_list(struct http_ctx *c);
void sessions_get(struct http_ctx *c);
void sessions_get_by_code(struct http_ctx *c);
void sessions_end(struct http_ctx *c);
void sessions_agent_token(struct http_ctx *c);
void sessions_preflight(struct http_ctx *c);
/* The session as a session token's holder sees it (/v1/token/session...), see openapi.yaml. */
void sessions_token_get(struct http_ctx *c);
void sessions_token_end(struct http_ctx *c);
void sessions_token_preflight(struct http_ctx *c);
void sessions_token_stylesheets(struct http_ctx *c);

/* api/webhooks.c: the acting tenant's webhook endpoints (docs/webhooks.md). */
void webhooks_create(struct http_ctx *c);
void webhooks_list(struct http_ctx *c);
void webhooks_get(struct http_ctx *c);
void webhooks_update(struct http_ctx *c);
void webhooks_delete(struct http_ctx *c);
void webhooks_rotate_secret(struct http_ctx *c);
void webhooks_test(struct http_ctx *c);
void webhooks_replay(struct http_ctx *c);

/* api/webhook_deliveries.c: an endpoint's deliveries, one delivery with its attempts, retry. */
void webhook_deliveries_list(struct http_ctx *c);
void webhook_deliveries_get(struct http_ctx *c);
void webhook_deliveries_retry(struct http_ctx *c);

/* api/audit.c: the acting tenant's audit trail (docs/audit.md). */
void audit_events_list(struct http_ctx *c);
void audit_events_get(struct http_ctx *c);
void audit_events_verify(struct http_ctx *c);
/* api/usage.c: usage for billing per tenant and UTC day or month, JSON or CSV (docs/billing.md). */
void usage_get(struct http_ctx *c);

/* api/proxy.c: the stylesheet, font and image proxy (the cap in the path is the credential). */
void proxy_get(struct http_ctx *c);

#endif
