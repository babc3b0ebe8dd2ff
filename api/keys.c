/* /v1/api_keys: secret (sk_) and publishable (pk_) keys of the acting tenant. The secret is
 * returned once at creation; only its HMAC, prefix and last four characters are stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/routes.h"
#include "api/server.h"
#include "api/validate.h"
#include "core/base/ids.h"
#include "core/base/timeutil.h"

static const char *const key_types[] = {"secret", "publishable", NULL};
static const struct vfield create_fields[] = {
    {"type", V_ENUM, 1, 0, 0, 0, VF_NONE, key_types, NULL, 0},
    {"name", V_STRING, 0, 1, 1, 100, VF_NONE, NULL, NULL, 0},
    {"scopes", V_STR_ARRAY, 0, 0, 0, SCOPE_COUNT, VF_SCOPE, NULL, NULL, 32},
    {"expires_at", V_STRING, 0, 1, 20, 40, VF_DATETIME, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield empty_fields[] = {{NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0}};

void keys_create(struct http_ctx *c)
{
    static struct db_stmt q = {
        "keys_insert",
        "INSERT INTO api_keys (id, tenant_id, type, name, scopes, key_hash, prefix, last4, "
        "expires_at) VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8, $9::timestamptz) "
        "RETURNING api_key_json(api_keys)::text",
        0};
    if (http_validate_body(c, create_fields) != 0)
        return;
    const char *type = json_string_value(json_object_get(c->body, "type"));
    int publishable = strcmp(type, "publishable") == 0;
    json_t *scopes = json_object_get(c->body, "scopes");
    unsigned bits = 0;
    if (publishable) {
        if (scopes != NULL) {
            http_problem(c, 422, "invalid_field", "scopes",
                         "Publishable keys have no scopes: they can only create visitor "
                         "sessions from the tenant's allowed origins.");
            return;
        }
    } else if (scopes == NULL) {
        bits = c->who.scopes; /* default: everything the creating key may do */
    } else {
        size_t i;
        json_t *s;
        json_array_foreach(scopes, i, s) bits |= auth_scope_bit(json_string_value(s));
        if (bits == 0) {
            http_problem(c, 422, "invalid_field", "scopes", "scopes must list at least one scope.");
            return;
        }
        unsigned extra = bits & ~c->who.scopes;
        if (extra) {
            http_problem(c, 422, "invalid_field", "scopes",
                         "A key cannot grant scopes it does not have itself (first: %s).",
                         auth_scope_name(extra & -extra));
            return;
        }
    }
    const char *expires = json_string_value(json_object_get(c->body, "expires_at"));
    double when;
    if (expires != NULL && (time_parse_rfc3339(expires, &when) != 0 || when <= time_now())) {
        http_problem(c, 422, "invalid_field", "expires_at", "expires_at must be in the future.");
        return;
    }

    char id[IDS_MAX_LEN], secret[64], hash[65], pgscopes[256];
    const char *prefix = publishable ? "pk_" : "sk_";
    if (ids_new("key", id, sizeof(id)) != 0 || ids_secret(prefix, secret, sizeof(secret)) != 0) {
        http_problem(c, 500, "internal_error", NULL, "No randomness available.");
        return;
    }
    auth_hash_secret(c->cfg, secret, hash);
    auth_scopes_pg_array(bits, pgscopes, sizeof(pgscopes));
    const char *last4 = secret + strlen(secret) - 4;
    const char *params[] = {
        id,       c->tenant_id, type,   json_string_value(json_object_get(c->body, "name")),
        pgscopes, hash,         prefix, last4,
        expires};
    PGresult *r = http_db(c, &q, 9, params);
    if (r == NULL)
        return;
    http_reply_with_field(c, 201, PQgetvalue(r, 0, 0), "secret", secret);
    PQclear(r);
}

void keys_list(struct http_ctx *c)
{
    static struct db_stmt q = {
        "keys_list",
        "SELECT api_key_json(k)::text FROM api_keys k WHERE k.tenant_id = $1 "
        "AND ($2::text IS NULL OR k.id < $2) ORDER BY k.id DESC LIMIT $3",
        0};
    http_reply_tenant_page(c, &q, "key");
}

void keys_get(struct http_ctx *c)
{
    static struct db_stmt q = {"keys_get",
                               "SELECT api_key_json(k)::text FROM api_keys k "
                               "WHERE k.id = $1 AND k.tenant_id = $2",
                               0};
    const char *id = http_param(c, "id");
    if (!ids_valid("key", id)) {
        http_not_found(c, "API key");
        return;
    }
    const char *params[] = {id, c->tenant_id};
    http_reply_one(c, &q, 2, params, "API key");
}

void keys_revoke(struct http_ctx *c)
{
    static struct db_stmt q = {
        "keys_revoke",
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) "
        "WHERE id = $1 AND tenant_id = $2 RETURNING api_key_json(api_keys)::text",
        0};
    if (http_validate_body(c, empty_fields) != 0)
        return;
    const char *id = http_param(c, "id");
    if (!ids_valid("key", id)) {
        http_not_found(c, "API key");
        return;
    }
    const char *params[] = {id, c->tenant_id};
    if (http_reply_one(c, &q, 2, params, "API key") == 1)
        auth_cache_invalidate(c->srv->auth);
}
