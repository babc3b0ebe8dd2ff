/* /v1/webhook_endpoints: the acting tenant's webhook endpoints (docs/webhooks.md, "Endpoints"),
 * their signing secrets, test events and replays. The secret is 32 random bytes, stored only
 * sealed with the server's data key (the endpoint's id as associated data, so a sealed value
 * cannot be moved to another row) and shown once, as whsec_ + base64, in the answers to create and
 * rotate_secret. Every query names the acting tenant: another tenant's endpoint is 404.
 * Threading: handlers run on the API's worker threads; no state of their own. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/routes.h"
#include "api/server.h"
#include "api/validate.h"
#include "core/base/crypto.h"
#include "core/base/ids.h"
#include "core/base/timeutil.h"

#define WEBHOOK_SECRET_BYTES    32
#define WEBHOOK_URL_MAX_BYTES   2048
#define WEBHOOK_OVERLAP_DEFAULT 86400
#define WEBHOOK_OVERLAP_MAX     604800
#define WEBHOOK_REPLAY_MAX      10000
/* Every event is delivered once per endpoint that wants it: the cap bounds what one change can
 * cost the dispatcher. Counted in the INSERT's own snapshot, so two creates at the same instant
 * may pass it by one; it is a bound on amplification, not an exact quota. */
#define WEBHOOK_ENDPOINTS_MAX 16

/* The event types of docs/webhooks.md, the only ones an endpoint may list. */
static const char *const event_types[] = {"session.created",
                                          "session.visitor_connected",
                                          "session.visitor_disconnected",
                                          "session.agent_joined",
                                          "session.agent_left",
                                          "session.control_requested",
                                          "session.control_granted",
                                          "session.control_denied",
                                          "session.control_revoked",
                                          "session.ended",
                                          "tenant.suspended",
                                          "tenant.reactivated",
                                          "api_key.created",
                                          "api_key.revoked",
                                          "webhook.test",
                                          "webhook_endpoint.disabled",
                                          NULL};
#define EVENT_TYPES_MAX 16

static const struct vfield create_fields[] = {
    {"url", V_STRING, 1, 0, 1, WEBHOOK_URL_MAX_BYTES, VF_NONE, NULL, NULL, 0},
    {"description", V_STRING, 0, 1, 1, 500, VF_NONE, NULL, NULL, 0},
    {"event_types", V_STR_ARRAY, 0, 0, 0, EVENT_TYPES_MAX, VF_NONE, event_types, NULL, 64},
    {"include_subtenants", V_BOOL, 0, 0, 0, 0, VF_NONE, NULL, NULL, 0},
    {"enabled", V_BOOL, 0, 0, 0, 0, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield update_fields[] = {
    {"url", V_STRING, 0, 0, 1, WEBHOOK_URL_MAX_BYTES, VF_NONE, NULL, NULL, 0},
    {"description", V_STRING, 0, 1, 1, 500, VF_NONE, NULL, NULL, 0},
    {"event_types", V_STR_ARRAY, 0, 0, 0, EVENT_TYPES_MAX, VF_NONE, event_types, NULL, 64},
    {"include_subtenants", V_BOOL, 0, 0, 0, 0, VF_NONE, NULL, NULL, 0},
    {"enabled", V_BOOL, 0, 0, 0, 0, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield rotate_fields[] = {
    {"overlap_seconds", V_INT, 0, 0, 0, WEBHOOK_OVERLAP_MAX, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield replay_fields[] = {
    {"since", V_STRING, 1, 0, 20, 40, VF_DATETIME, NULL, NULL, 0},
    {"until", V_STRING, 1, 0, 20, 40, VF_DATETIME, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield empty_fields[] = {{NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0}};

/* An endpoint's URL: absolute https (http too when the operator lets receivers be private, for
 * on-premise and test receivers, docs/webhooks.md), no credentials, at most 2,048 bytes. The
 * address itself is checked by the dispatcher's SSRF guard at connect time, where DNS answers
 * are known. Returns 0, or -1 after answering 422. */
static int check_url(struct http_ctx *c, const char *url)
{
    char as_https[WEBHOOK_URL_MAX_BYTES + 2];
    int http = strncmp(url, "http://", 7) == 0;
    int ok = strlen(url) <= WEBHOOK_URL_MAX_BYTES;
    if (ok && http && c->cfg->webhook_allow_private[0] != '\0') {
        /* validate_https_url takes http only for localhost: judge the rest as https. */
        snprintf(as_https, sizeof(as_https), "https://%s", url + 7);
        ok = validate_https_url(as_https);
    } else if (ok) {
        ok = strncmp(url, "https://", 8) == 0 && validate_https_url(url);
    }
    if (!ok)
        http_problem(c, 422, "invalid_field", "url",
                     "url must be an absolute https:// URL of at most %d bytes without "
                     "credentials%s.",
                     WEBHOOK_URL_MAX_BYTES,
                     c->cfg->webhook_allow_private[0] ? " (or http://)" : "");
    return ok ? 0 : -1;
}

/* A new secret for endpoint id: sealed (as bytea hex input, "\x...") into sealed_hex and shown
 * as whsec_ + base64 in shown. Returns 0, or -1 after answering 500. */
static int new_secret(struct http_ctx *c, const char *id,
                      char sealed_hex[2 * (WEBHOOK_SECRET_BYTES + CRYPTO_SEAL_OVERHEAD) + 3],
                      char shown[6 + 4 * (WEBHOOK_SECRET_BYTES + 2) / 3 + 1])
{
    unsigned char secret[WEBHOOK_SECRET_BYTES];
    unsigned char sealed[WEBHOOK_SECRET_BYTES + CRYPTO_SEAL_OVERHEAD];
    int rc = -1;
    if (ids_random(secret, sizeof(secret)) != 0)
        goto done;
    if (crypto_seal(c->cfg->data_key, secret, sizeof(secret), id, strlen(id), sealed,
                    sizeof(sealed)) != (int)sizeof(sealed))
        goto done;
    sealed_hex[0] = '\\';
    sealed_hex[1] = 'x';
    crypto_hex_encode(sealed, sizeof(sealed), sealed_hex + 2);
    memcpy(shown, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)shown + 6, secret, sizeof(secret));
    rc = 0;
done:
    OPENSSL_cleanse(secret, sizeof(secret));
    if (rc != 0)
        http_problem(c, 500, "internal_error", NULL, "The endpoint's secret could not be made.");
    return rc;
}

/* A boolean member of the body as a query parameter: "true", "false", or NULL when absent. */
static const char *bool_param(struct http_ctx *c, const char *name)
{
    json_t *v = json_object_get(c->body, name);
    return v == NULL ? NULL : json_is_true(v) ? "true" : "false";
}

/* The body's event_types as JSON text for the statements (they dedupe it), or NULL. */
static char *event_types_param(struct http_ctx *c)
{
    json_t *v = json_object_get(c->body, "event_types");
    return v == NULL ? NULL : json_dumps(v, JSON_COMPACT);
}

void webhooks_create(struct http_ctx *c)
{
    static struct db_stmt q = {
        "webhooks_insert",
        "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, "
        "  include_subtenants, enabled, disabled_reason, secret_sealed) "
        "SELECT $1, $2, $3, $4, ARRAY(SELECT DISTINCT x FROM jsonb_array_elements_text("
        "  COALESCE($5::jsonb, '[]')) x ORDER BY 1), COALESCE($6::boolean, false), "
        "  COALESCE($7::boolean, true), CASE WHEN NOT $7::boolean THEN 'manual' END, $8::bytea "
        "WHERE (SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $2 "
        "  AND deleted_at IS NULL) < $9::int "
        "RETURNING webhook_endpoint_json(webhook_endpoints)::text",
        0};
    char id[IDS_MAX_LEN], sealed[2 * (WEBHOOK_SECRET_BYTES + CRYPTO_SEAL_OVERHEAD) + 3];
    char shown[6 + 4 * (WEBHOOK_SECRET_BYTES + 2) / 3 + 1];
    char *types = NULL, max[16];
    if (http_validate_body(c, create_fields) != 0)
        return;
    const char *url = json_string_value(json_object_get(c->body, "url"));
    if (check_url(c, url) != 0)
        return;
    if (ids_new("whe", id, sizeof(id)) != 0) {
        http_problem(c, 500, "internal_error", NULL, "No randomness available.");
        return;
    }
    if (new_secret(c, id, sealed, shown) != 0)
        return;
    types = event_types_param(c);
    const char *params[] = {id,
                            c->tenant_id,
                            url,
                            json_string_value(json_object_get(c->body, "description")),
                            types,
                            bool_param(c, "include_subtenants"),
                            bool_param(c, "enabled"),
                            sealed,
                            max};
    snprintf(max, sizeof(max), "%d", WEBHOOK_ENDPOINTS_MAX);
    PGresult *r = http_db(c, &q, 9, params);
    if (r != NULL && PQntuples(r) == 1)
        http_reply_with_field(c, 201, PQgetvalue(r, 0, 0), "secret", shown);
    else if (r != NULL)
        http_problem(c, 409, "endpoint_limit_reached", NULL,
                     "This tenant has %d webhook endpoints, the most it may have. Delete one "
                     "first.",
                     WEBHOOK_ENDPOINTS_MAX);
    PQclear(r);
    OPENSSL_cleanse(shown, sizeof(shown));
    free(types);
}

void webhooks_list(struct http_ctx *c)
{
    static struct db_stmt q = {
        "webhooks_list",
        "SELECT webhook_endpoint_json(e)::text FROM webhook_endpoints e WHERE e.tenant_id = $1 "
        "AND e.deleted_at IS NULL AND ($2::text IS NULL OR e.id < $2) ORDER BY e.id DESC LIMIT $3",
        0};
    http_reply_tenant_page(c, &q, "whe");
}

void webhooks_get(struct http_ctx *c)
{
    static struct db_stmt q = {"webhooks_get",
                               "SELECT webhook_endpoint_json(e)::text FROM webhook_endpoints e "
                               "WHERE e.id = $1 AND e.tenant_id = $2 AND e.deleted_at IS NULL",
                               0};
    const char *params[] = {http_param(c, "id"), c->tenant_id};
    http_reply_one(c, &q, 2, params, "webhook endpoint");
}

void webhooks_update(struct http_ctx *c)
{
    /* Enabling a disabled endpoint clears why it was disabled and its failure run, so the
     * dispatcher's --webhook-disable-after counts afresh; enabling an enabled one changes
     * nothing (else a partner could keep a failing endpoint alive by PATCHing it). */
    static struct db_stmt q = {
        "webhooks_update",
        "UPDATE webhook_endpoints SET url = COALESCE($3, url), "
        "  description = CASE WHEN $4::boolean THEN $5 ELSE description END, "
        "  event_types = CASE WHEN $6::jsonb IS NULL THEN event_types ELSE ARRAY(SELECT DISTINCT "
        "    x FROM jsonb_array_elements_text($6::jsonb) x ORDER BY 1) END, "
        "  include_subtenants = COALESCE($7::boolean, include_subtenants), "
        "  enabled = COALESCE($8::boolean, enabled), "
        "  disabled_reason = CASE WHEN $8::boolean AND NOT enabled THEN NULL "
        "    WHEN NOT $8::boolean AND enabled THEN 'manual' ELSE disabled_reason END, "
        "  failing_since = CASE WHEN $8::boolean AND NOT enabled THEN NULL "
        "    ELSE failing_since END, updated_at = now() "
        "WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL "
        "RETURNING webhook_endpoint_json(webhook_endpoints)::text",
        0};
    if (http_validate_body(c, update_fields) != 0)
        return;
    const char *url = json_string_value(json_object_get(c->body, "url"));
    if (url != NULL && check_url(c, url) != 0)
        return;
    json_t *desc = json_object_get(c->body, "description");
    char *types = event_types_param(c);
    const char *params[] = {http_param(c, "id"),
                            c->tenant_id,
                            url,
                            desc != NULL ? "true" : "false",
                            json_string_value(desc),
                            types,
                            bool_param(c, "include_subtenants"),
                            bool_param(c, "enabled")};
    http_reply_one(c, &q, 8, params, "webhook endpoint");
    free(types);
}

void webhooks_delete(struct http_ctx *c)
{
    /* Pending deliveries end as failed: nothing will deliver them to a deleted endpoint, and a
     * delivery left pending would keep its event from the retention sweep. */
    static struct db_stmt q = {
        "webhooks_delete",
        "WITH e AS (UPDATE webhook_endpoints SET deleted_at = now(), updated_at = now() "
        "  WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL RETURNING id), "
        "d AS (UPDATE webhook_deliveries SET status = 'failed', last_error = 'endpoint deleted', "
        "  locked_until = NULL, updated_at = clock_timestamp() "
        "  WHERE endpoint_id IN (SELECT id FROM e) AND status = 'pending') "
        "SELECT id FROM e",
        0};
    const char *params[] = {http_param(c, "id"), c->tenant_id};
    PGresult *r = http_db_one(c, &q, 2, params, "webhook endpoint");
    if (r == NULL)
        return;
    PQclear(r);
    ulfius_set_empty_body_response(c->resp, 204);
    c->status = 204;
    c->answered = 1;
}

void webhooks_rotate_secret(struct http_ctx *c)
{
    /* The current sealed value becomes the previous one as it is: its associated data is the
     * endpoint's id, which does not change, so it needs no re-sealing. An overlap of 0 drops it. */
    static struct db_stmt q = {
        "webhooks_rotate",
        "UPDATE webhook_endpoints SET "
        "  previous_sealed = CASE WHEN $4::int > 0 THEN secret_sealed END, "
        "  previous_until = CASE WHEN $4::int > 0 THEN now() + make_interval(secs => $4::int) "
        "  END, secret_sealed = $3::bytea, updated_at = now() "
        "WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL "
        "RETURNING webhook_endpoint_json(webhook_endpoints)::text",
        0};
    char sealed[2 * (WEBHOOK_SECRET_BYTES + CRYPTO_SEAL_OVERHEAD) + 3];
    char shown[6 + 4 * (WEBHOOK_SECRET_BYTES + 2) / 3 + 1], overlap[16];
    if (http_validate_body(c, rotate_fields) != 0)
        return;
    json_t *o = json_object_get(c->body, "overlap_seconds");
    snprintf(overlap, sizeof(overlap), "%d",
             o != NULL ? (int)json_number_value(o) : WEBHOOK_OVERLAP_DEFAULT);
    const char *id = http_param(c, "id");
    if (new_secret(c, id, sealed, shown) != 0)
        return;
    const char *params[] = {id, c->tenant_id, sealed, overlap};
    PGresult *r = http_db_one(c, &q, 4, params, "webhook endpoint");
    if (r != NULL)
        http_reply_with_field(c, 200, PQgetvalue(r, 0, 0), "secret", shown);
    PQclear(r);
    OPENSSL_cleanse(shown, sizeof(shown));
}

static void endpoint_disabled(struct http_ctx *c)
{
    http_problem(c, 409, "endpoint_disabled", NULL,
                 "This endpoint is disabled: enable it first (PATCH with \"enabled\": true).");
}

void webhooks_test(struct http_ctx *c)
{
    /* webhook_emit with only_endpoint: a delivery to this endpoint alone, whatever types it
     * lists. The delivery is read in a second statement: it was inserted by the first one's
     * function, which that statement's own snapshot cannot see. */
    static struct db_stmt q_emit = {
        "webhooks_test_emit",
        "SELECT e.enabled, CASE WHEN e.enabled THEN audit_webhook_test(webhook_emit(e.tenant_id, "
        "  NULL, 'webhook.test', jsonb_build_object('message', 'A test event from cobrowsed.'), "
        "  e.id), e.tenant_id, e.id) END FROM webhook_endpoints e "
        "WHERE e.id = $1 AND e.tenant_id = $2 AND e.deleted_at IS NULL",
        0};
    static struct db_stmt q_delivery = {"webhooks_test_delivery",
                                        "SELECT webhook_delivery_json(d)::text FROM "
                                        "webhook_deliveries d WHERE d.event_id = $1 AND "
                                        "d.endpoint_id = $2",
                                        0};
    if (http_validate_body(c, empty_fields) != 0)
        return;
    const char *id = http_param(c, "id");
    const char *params[] = {id, c->tenant_id};
    PGresult *r = http_db_one(c, &q_emit, 2, params, "webhook endpoint");
    if (r == NULL)
        return;
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        endpoint_disabled(c);
        PQclear(r);
        return;
    }
    const char *params2[] = {PQgetvalue(r, 0, 1), id};
    PGresult *d = http_db_one(c, &q_delivery, 2, params2, "webhook delivery");
    if (d != NULL)
        http_reply_text(c, 202, PQgetvalue(d, 0, 0));
    PQclear(d);
    PQclear(r);
}

void webhooks_replay(struct http_ctx *c)
{
    static struct db_stmt q = {
        "webhooks_replay",
        "SELECT e.enabled, CASE WHEN e.enabled THEN audit_webhook_replay(webhook_replay(e.id, "
        "  $3::timestamptz, $4::timestamptz, $5::int), e.tenant_id, e.id, $3::timestamptz, "
        "$4::timestamptz) END "
        "FROM webhook_endpoints e "
        "WHERE e.id = $1 AND e.tenant_id = $2 AND e.deleted_at IS NULL",
        0};
    double since, until;
    char max[16];
    if (http_validate_body(c, replay_fields) != 0)
        return;
    const char *s = json_string_value(json_object_get(c->body, "since"));
    const char *u = json_string_value(json_object_get(c->body, "until"));
    if (time_parse_rfc3339(s, &since) != 0 || time_parse_rfc3339(u, &until) != 0 ||
        until <= since) {
        http_problem(c, 422, "invalid_field", "until", "until must be later than since.");
        return;
    }
    snprintf(max, sizeof(max), "%d", WEBHOOK_REPLAY_MAX);
    const char *id = http_param(c, "id");
    const char *params[] = {id, c->tenant_id, s, u, max};
    PGresult *r = http_db_one(c, &q, 5, params, "webhook endpoint");
    if (r == NULL)
        return;
    int count = atoi(PQgetvalue(r, 0, 1));
    if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
        endpoint_disabled(c);
    } else if (count < 0) {
        http_problem(c, 422, "invalid_field", "until",
                     "The range holds more than %d events this endpoint receives; replay it in "
                     "smaller ranges.",
                     WEBHOOK_REPLAY_MAX);
    } else {
        json_t *out = json_pack("{s:s, s:s, s:i}", "object", "webhook_replay", "endpoint_id", id,
                                "count", count);
        http_reply_json(c, 202, out);
    }
    PQclear(r);
}
