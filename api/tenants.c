/* /v1/tenants: resellers (top-level) and their sub-tenants, with branding, origins, masking,
 * permissions and limits stored as one `settings` JSON document per tenant.
 * Visibility: an admin at platform level sees every tenant; otherwise the acting tenant sees
 * itself and its direct children, and manages (suspend, delete) only its children. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "api/limits.h"
#include "api/routes.h"
#include "api/server.h"
#include "api/validate.h"
#include "core/base/ids.h"

#define LIMIT_NAME(name, lo, hi, dflt) #name,
static const char *const limit_names[] = {LIMITS_ALL(LIMIT_NAME) NULL};

static const struct vfield branding_fields[] = {
    {"product_name", V_STRING, 0, 1, 1, 200, VF_NONE, NULL, NULL, 0},
    {"logo_url", V_STRING, 0, 1, 1, 2048, VF_HTTPS_URL, NULL, NULL, 0},
    {"primary_color", V_STRING, 0, 1, 7, 7, VF_COLOR, NULL, NULL, 0},
    {"accent_color", V_STRING, 0, 1, 7, 7, VF_COLOR, NULL, NULL, 0},
    {"consent_text", V_STRING, 0, 1, 1, 2000, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
static const struct vfield masking_fields[] = {
    {"selectors", V_STR_ARRAY, 0, 0, 0, 100, VF_SELECTOR, NULL, NULL, 200},
    {"mask_all_inputs", V_BOOL, 0, 0, 0, 0, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
#define LIMIT_FIELD(name, lo, hi, dflt) {#name, V_INT, 0, 0, lo, hi, VF_NONE, NULL, NULL, 0},
static const struct vfield limit_fields[] = {
    LIMITS_ALL(LIMIT_FIELD){NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};
#define SETTINGS_FIELDS                                                                            \
    {"branding", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, branding_fields, 0},                         \
        {"allowed_origins", V_STR_ARRAY, 0, 0, 0, 50, VF_ORIGIN, NULL, NULL, 255},                 \
        {"asset_origins", V_STR_ARRAY, 0, 0, 0, 50, VF_ORIGIN, NULL, NULL, 255},                   \
        {"masking", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, masking_fields, 0},                       \
        {"permissions", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, validate_permission_fields, 0},       \
        {"limits", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, limit_fields, 0},                          \
    {                                                                                              \
        NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0                                                      \
    }
static const struct vfield create_fields[] = {
    {"name", V_STRING, 1, 0, 1, 200, VF_NONE, NULL, NULL, 0},
    SETTINGS_FIELDS,
};
static const struct vfield update_fields[] = {
    {"name", V_STRING, 0, 0, 1, 200, VF_NONE, NULL, NULL, 0},
    SETTINGS_FIELDS,
};
static const struct vfield empty_fields[] = {{NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0}};

/* Limits of a new reseller when the admin gives none. */
static json_t *default_settings(void)
{
    json_t *s = json_pack("{s:{s:n, s:n, s:n, s:n, s:n}, s:[], s:{s:[], s:b}, s:{s:s}, s:{}}",
                          "branding", "product_name", "logo_url", "primary_color", "accent_color",
                          "consent_text", "allowed_origins", "masking", "selectors",
                          "mask_all_inputs", 1, "permissions", "remote_control", "off", "limits");
    json_t *limits = json_object_get(s, "limits");
#define LIMIT_DEFAULT(name, lo, hi, dflt) json_object_set_new(limits, #name, json_integer(dflt));
    LIMITS_ALL(LIMIT_DEFAULT)
    return s;
}

/* Merges the settings fields of body into base (a new reference returned; base untouched) and
 * checks the result's limits against parent_limits (may be NULL). Answers 422 on failure. */
static json_t *merge_settings(struct http_ctx *c, json_t *base, json_t *parent_limits)
{
    json_t *out = json_deep_copy(base);
    json_t *in = validate_normalize(c->body);
    json_object_del(in, "name");
    json_object_update_recursive(out, in);
    json_decref(in);
    json_t *limits = json_object_get(out, "limits");
    for (int i = 0; parent_limits && limit_names[i]; i++) {
        json_t *mine = json_object_get(limits, limit_names[i]);
        json_t *theirs = json_object_get(parent_limits, limit_names[i]);
        if (json_is_integer(mine) && json_is_integer(theirs) &&
            json_integer_value(mine) > json_integer_value(theirs)) {
            char field[64];
            snprintf(field, sizeof(field), "limits.%s", limit_names[i]);
            http_problem(c, 422, "invalid_field", field,
                         "%s cannot exceed the parent tenant's limit (%lld).", field,
                         (long long)json_integer_value(theirs));
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static char *dump(json_t *v)
{
    return json_dumps(v, JSON_COMPACT);
}

void tenants_create(struct http_ctx *c)
{
    static struct db_stmt q_parent = {
        "tenants_parent",
        "SELECT parent_id IS NOT NULL, settings->'limits' FROM tenants "
        "WHERE id = $1 AND status <> 'deleted'",
        0};
    static struct db_stmt q_insert = {
        "tenants_insert",
        "INSERT INTO tenants (id, parent_id, name, settings) VALUES ($1, $2, $3, $4::jsonb) "
        "RETURNING tenant_json(tenants)::text",
        0};
    if (http_validate_body(c, create_fields) != 0)
        return;
    json_t *base = default_settings(), *parent_limits = NULL, *settings = NULL;
    char *settings_text = NULL;
    const char *parent = c->tenant_id[0] ? c->tenant_id : NULL;
    if (parent != NULL) {
        const char *params[] = {parent};
        PGresult *r = http_db_one(c, &q_parent, 1, params, "tenant");
        if (r == NULL)
            goto done;
        int parent_is_sub = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        parent_limits = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
        PQclear(r);
        if (parent_is_sub) {
            http_problem(c, 403, "forbidden", NULL,
                         "Sub-tenants cannot have sub-tenants: only resellers (top-level "
                         "tenants) can create them.");
            goto done;
        }
        /* A new customer starts with its reseller's limits. */
        json_object_set(base, "limits", parent_limits);
    }
    settings = merge_settings(c, base, parent_limits);
    if (settings == NULL)
        goto done;
    char id[IDS_MAX_LEN];
    ids_new("ten", id, sizeof(id));
    settings_text = dump(settings);
    const char *params[] = {id, parent, json_string_value(json_object_get(c->body, "name")),
                            settings_text};
    PGresult *r = http_db(c, &q_insert, 4, params);
    if (r == NULL)
        goto done;
    http_reply_text(c, 201, PQgetvalue(r, 0, 0));
    PQclear(r);
done:
    free(settings_text);
    json_decref(settings);
    json_decref(parent_limits);
    json_decref(base);
}

void tenants_list(struct http_ctx *c)
{
    static struct db_stmt q = {
        "tenants_list",
        "SELECT tenant_json(t)::text FROM tenants t WHERE t.status <> 'deleted' "
        "AND (($1 = '' AND t.parent_id IS NULL) OR t.parent_id = $1) "
        "AND ($2::text IS NULL OR t.status = $2) AND ($3::text IS NULL OR t.id < $3) "
        "ORDER BY t.id DESC LIMIT $4",
        0};
    static const char *const allowed[] = {"limit", "starting_after", "status", NULL};
    int limit;
    const char *after;
    if (http_check_query(c, allowed) != 0 || http_page_params(c, "ten", &limit, &after) != 0)
        return;
    const char *status = http_param(c, "status");
    if (status && strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0) {
        http_problem(c, 400, "invalid_parameter", "status", "status must be active or suspended.");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *params[] = {c->tenant_id, status, after, lim};
    PGresult *r = http_db(c, &q, 4, params);
    if (r == NULL)
        return;
    http_reply_list(c, r, limit);
    PQclear(r);
}

/* Target of a tenant route, as far as the caller may see it. */
struct target {
    int found;
    int is_self;    /* the acting tenant itself */
    int is_child;   /* a direct child of the acting tenant */
    int has_parent; /* the target is a sub-tenant */
    json_t *settings, *parent_limits;
};

static int load_target(struct http_ctx *c, const char *id, struct target *t)
{
    static struct db_stmt q = {
        "tenants_target",
        "SELECT t.settings::text, t.parent_id IS NOT NULL, COALESCE(t.parent_id, '') = $2, "
        "  (p.settings->'limits')::text "
        "FROM tenants t LEFT JOIN tenants p ON p.id = t.parent_id "
        "WHERE t.id = $1 AND t.status <> 'deleted' "
        "AND ($2 = '' OR t.id = $2 OR t.parent_id = $2) FOR UPDATE OF t",
        0};
    memset(t, 0, sizeof(*t));
    if (!ids_valid("ten", id)) {
        http_not_found(c, "tenant");
        return -1;
    }
    const char *params[] = {id, c->tenant_id};
    PGresult *r = http_db_one(c, &q, 2, params, "tenant");
    if (r == NULL)
        return -1;
    t->found = 1;
    t->settings = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    t->has_parent = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    t->is_self = c->tenant_id[0] != '\0' && strcmp(id, c->tenant_id) == 0;
    t->is_child = !t->is_self && (c->tenant_id[0] == '\0' || strcmp(PQgetvalue(r, 0, 2), "t") == 0);
    if (!PQgetisnull(r, 0, 3))
        t->parent_limits = json_loads(PQgetvalue(r, 0, 3), 0, NULL);
    PQclear(r);
    return 0;
}

static void target_free(struct target *t)
{
    json_decref(t->settings);
    json_decref(t->parent_limits);
}

void tenants_get(struct http_ctx *c)
{
    static struct db_stmt q = {
        "tenants_get",
        "SELECT tenant_json(t)::text FROM tenants t WHERE t.id = $1 AND "
        "t.status <> 'deleted' AND ($2 = '' OR t.id = $2 OR t.parent_id = $2)",
        0};
    const char *id = http_param(c, "id");
    if (!ids_valid("ten", id)) {
        http_not_found(c, "tenant");
        return;
    }
    const char *params[] = {id, c->tenant_id};
    http_reply_one(c, &q, 2, params, "tenant");
}

static struct db_stmt q_begin = {"begin", "BEGIN", 0};
static struct db_stmt q_commit = {"commit", "COMMIT", 0};

/* Commits the transaction of a tenant change and answers 200 with the changed tenant (column 0
 * of r, which it frees). Cached keys and tenant info on this node are forgotten at once, since
 * status, limits and origins may have changed. */
static void commit_and_reply(struct http_ctx *c, PGresult *r)
{
    PGresult *cr = http_db(c, &q_commit, 0, NULL);
    if (cr != NULL) {
        http_reply_text(c, 200, PQgetvalue(r, 0, 0));
        auth_cache_invalidate(c->srv->auth);
    }
    PQclear(cr);
    PQclear(r);
}

void tenants_update(struct http_ctx *c)
{
    static struct db_stmt q = {
        "tenants_update",
        "UPDATE tenants SET name = COALESCE($2, name), settings = $3::jsonb, updated_at = now() "
        "WHERE id = $1 RETURNING tenant_json(tenants)::text",
        0};
    if (http_validate_body(c, update_fields) != 0)
        return;
    const char *id = http_param(c, "id");
    struct target t;
    json_t *settings = NULL;
    char *text = NULL;
    PGresult *r = http_db(c, &q_begin, 0, NULL);
    if (r == NULL)
        return;
    PQclear(r);
    if (load_target(c, id, &t) != 0)
        return; /* the dispatcher rolls back on release */
    if (t.is_self && c->who.kind == PRINCIPAL_KEY && json_object_get(c->body, "limits")) {
        http_problem(c, 403, "forbidden", "limits",
                     "A tenant's limits are set by its parent; a tenant cannot raise its own.");
        goto done;
    }
    settings = merge_settings(c, t.settings, t.has_parent ? t.parent_limits : NULL);
    if (settings == NULL)
        goto done;
    text = dump(settings);
    const char *params[] = {id, json_string_value(json_object_get(c->body, "name")), text};
    r = http_db(c, &q, 3, params);
    if (r == NULL)
        goto done;
    commit_and_reply(c, r);
done:
    free(text);
    json_decref(settings);
    target_free(&t);
}

/* Common to delete, suspend and reactivate: opens a transaction and checks that the caller is
 * the tenant's parent (or the admin); only then may it act on the tenant. */
static int load_managed(struct http_ctx *c, const char *id)
{
    PGresult *b = http_db(c, &q_begin, 0, NULL);
    if (b == NULL)
        return -1;
    PQclear(b);
    struct target t;
    if (load_target(c, id, &t) != 0)
        return -1;
    int self = t.is_self;
    target_free(&t);
    if (self) {
        http_problem(c, 403, "forbidden", NULL,
                     "A tenant cannot do this to itself; its parent tenant (or the platform "
                     "admin) can.");
        return -1;
    }
    return 0;
}

void tenants_delete(struct http_ctx *c)
{
    static struct db_stmt q = {
        "tenants_delete",
        "WITH doomed AS (UPDATE tenants SET status = 'deleted', deleted_at = now(), "
        "  updated_at = now() WHERE (id = $1 OR parent_id = $1) AND status <> 'deleted' "
        "  RETURNING id), "
        "s AS (SELECT 1 FROM sessions_end(ARRAY(SELECT id FROM sessions "
        "  WHERE tenant_id IN (SELECT id FROM doomed) AND status <> 'ended'), "
        "  'tenant_deleted')), "
        "k AS (UPDATE api_keys SET revoked_at = now() WHERE tenant_id IN (SELECT id FROM doomed) "
        "  AND revoked_at IS NULL RETURNING 1) "
        "SELECT (SELECT count(*) FROM doomed), (SELECT count(*) FROM s), (SELECT count(*) FROM k)",
        0};
    const char *id = http_param(c, "id");
    if (load_managed(c, id) != 0)
        return;
    const char *params[] = {id};
    PGresult *r = http_db(c, &q, 1, params);
    if (r == NULL)
        return;
    PQclear(r);
    r = http_db(c, &q_commit, 0, NULL);
    if (r == NULL)
        return;
    PQclear(r);
    auth_cache_invalidate(c->srv->auth);
    http_reply_json(c, 200,
                    json_pack("{s:s, s:s, s:b}", "id", id, "object", "tenant", "deleted", 1));
}

static void set_status(struct http_ctx *c, const char *status)
{
    static struct db_stmt q_suspend = {
        "tenants_suspend",
        "UPDATE tenants SET status = 'suspended', updated_at = now() WHERE id = $1 "
        "AND status <> 'deleted' RETURNING tenant_json(tenants)::text",
        0};
    /* A suspended tenant's live sessions end with it (and its sub-tenants'). */
    static struct db_stmt q_end_sessions = {
        "tenants_suspend_sessions",
        "SELECT count(*) FROM sessions_end(ARRAY(SELECT id FROM sessions "
        "  WHERE status <> 'ended' AND tenant_id IN "
        "  (SELECT id FROM tenants WHERE id = $1 OR parent_id = $1)), 'tenant_suspended')",
        0};
    static struct db_stmt q_reactivate = {
        "tenants_reactivate",
        "UPDATE tenants SET status = 'active', updated_at = now() WHERE id = $1 "
        "AND status <> 'deleted' RETURNING tenant_json(tenants)::text",
        0};
    if (http_validate_body(c, empty_fields) != 0)
        return;
    const char *id = http_param(c, "id");
    if (load_managed(c, id) != 0)
        return;
    const char *params[] = {id};
    PGresult *r;
    int suspend = strcmp(status, "suspended") == 0;
    if (suspend) {
        r = http_db(c, &q_end_sessions, 1, params);
        if (r == NULL)
            return;
        PQclear(r);
    }
    r = http_db(c, suspend ? &q_suspend : &q_reactivate, 1, params);
    if (r == NULL)
        return;
    commit_and_reply(c, r);
}

void tenants_suspend(struct http_ctx *c)
{
    set_status(c, "suspended");
}

void tenants_reactivate(struct http_ctx *c)
{
    set_status(c, "active");
}
