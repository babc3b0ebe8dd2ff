#include "api/auth.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/limits.h"
#include "api/server.h"
#include "core/base/crypto.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/hash.h"
#include "core/base/timeutil.h"

#define AC_SLOTS        4096 /* direct-mapped: a collision simply evicts */
#define AC_LOCKS        64
#define ADMIN_RPS       1000.0
#define LAST_USED_EVERY 60.0 /* seconds between last_used_at writes per key and node */
#define TOKEN_MAX       128

#define SCOPE_NAME(id, name) name,
static const char *const scope_names[] = {SCOPES(SCOPE_NAME)};
#define N_SCOPES SCOPE_COUNT

/* What the database said about a token; judged again on every request (expiry is exact). */
struct ac_entry {
    char hash[65];
    uint64_t gen;
    double fetched;
    double last_used_written;
    int found, revoked;
    double expires_at; /* 0: never */
    char tenant_status[16], parent_status[16];
    struct principal p; /* allowed_origins owned by the entry */
};

struct tc_entry {
    char tenant[48];
    uint64_t gen;
    double fetched;
    struct tenant_info info;
};

struct auth_cache {
    uint64_t gen;
    pthread_mutex_t locks[AC_LOCKS];
    struct ac_entry slots[AC_SLOTS];
    struct tc_entry tenants[AC_SLOTS];
};

struct auth_cache *auth_cache_new(void)
{
    struct auth_cache *ac = calloc(1, sizeof(*ac));
    if (ac == NULL)
        return NULL;
    ac->gen = 1;
    for (int i = 0; i < AC_LOCKS; i++)
        pthread_mutex_init(&ac->locks[i], NULL);
    return ac;
}

void auth_cache_free(struct auth_cache *ac)
{
    if (ac == NULL)
        return;
    for (int i = 0; i < AC_SLOTS; i++)
        free(ac->slots[i].p.allowed_origins);
    for (int i = 0; i < AC_LOCKS; i++)
        pthread_mutex_destroy(&ac->locks[i]);
    free(ac);
}

void auth_cache_invalidate(struct auth_cache *ac)
{
    __atomic_add_fetch(&ac->gen, 1, __ATOMIC_SEQ_CST);
}

const char *auth_scope_name(unsigned bit)
{
    for (int i = 0; i < N_SCOPES; i++)
        if (bit == (1u << i))
            return scope_names[i];
    return NULL;
}

unsigned auth_scope_bit(const char *name)
{
    for (int i = 0; i < N_SCOPES; i++)
        if (strcmp(name, scope_names[i]) == 0)
            return 1u << i;
    return 0;
}

unsigned auth_scopes_parse_csv(const char *csv)
{
    unsigned bits = 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", csv);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        bits |= auth_scope_bit(t);
    return bits;
}

void auth_scopes_pg_array(unsigned bits, char *out, size_t out_size)
{
    size_t pos = (size_t)snprintf(out, out_size, "{");
    int first = 1;
    for (int i = 0; i < N_SCOPES && pos < out_size; i++) {
        if (bits & (1u << i)) {
            pos += (size_t)snprintf(out + pos, out_size - pos, "%s%s", first ? "" : ",",
                                    scope_names[i]);
            first = 0;
        }
    }
    if (pos < out_size)
        snprintf(out + pos, out_size - pos, "}");
}

json_t *auth_scopes_json(unsigned bits)
{
    json_t *a = json_array();
    for (int i = 0; i < N_SCOPES; i++)
        if (bits & (1u << i))
            json_array_append_new(a, json_string(scope_names[i]));
    return a;
}

void auth_hash_secret(const struct api_config *cfg, const char *secret, char out[65])
{
    if (crypto_hmac_hex(cfg->key_hash_secret, sizeof(cfg->key_hash_secret), secret, strlen(secret),
                        out) != 0)
        out[0] = '\0';
}

int auth_origin_allowed(const char *allowed_json, const char *origin)
{
    if (allowed_json == NULL || origin == NULL)
        return 0;
    json_t *a = json_loads(allowed_json, 0, NULL);
    int ok = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v) && strcasecmp(json_string_value(v), origin) == 0) {
            ok = 1;
            break;
        }
    }
    json_decref(a);
    return ok;
}

static uint64_t slot_of(const char *hash)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 4) | (uint64_t)(hash[i] >= 'a' ? hash[i] - 'a' + 10 : hash[i] - '0');
    return v % AC_SLOTS;
}

static void copy_field(char *dst, size_t size, PGresult *r, int col)
{
    snprintf(dst, size, "%s", PQgetisnull(r, 0, col) ? "" : PQgetvalue(r, 0, col));
}

/* Loads the facts about a token from the database into e. Returns 0, or -1 if answered. */
static int load_entry(struct http_ctx *c, const char *token, const char *hash, struct ac_entry *e)
{
    static struct db_stmt q_admin = {"auth_admin",
                                     "SELECT id, token_hash FROM admin_tokens "
                                     "WHERE token_hash = $1 AND revoked_at IS NULL",
                                     0};
    static struct db_stmt q_key = {
        "auth_key",
        "SELECT k.id, k.key_hash, k.type, array_to_string(k.scopes, ','), "
        "  k.revoked_at IS NOT NULL, COALESCE(extract(epoch FROM k.expires_at)::float8, 0), "
        "  k.tenant_id, t.status, COALESCE(t.parent_id, ''), COALESCE(p.status, ''), "
        "  LEAST((t.settings->'limits'->>'api_requests_per_second')::int, "
        "        COALESCE((p.settings->'limits'->>'api_requests_per_second')::int, 2147483647)), "
        "  t.settings->'allowed_origins' "
        "FROM api_keys k JOIN tenants t ON t.id = k.tenant_id "
        "LEFT JOIN tenants p ON p.id = t.parent_id WHERE k.key_hash = $1",
        0};
    const char *params[] = {hash};
    int is_admin = strncmp(token, "adm_", 4) == 0;
    PGresult *r = http_db(c, is_admin ? &q_admin : &q_key, 1, params);
    if (r == NULL)
        return -1;
    free(e->p.allowed_origins);
    memset(e, 0, sizeof(*e));
    snprintf(e->hash, sizeof(e->hash), "%s", hash);
    if (PQntuples(r) == 1 && crypto_equal(PQgetvalue(r, 0, 1), hash, 64)) {
        e->found = 1;
        copy_field(e->p.id, sizeof(e->p.id), r, 0);
        if (is_admin) {
            e->p.kind = PRINCIPAL_ADMIN;
            e->p.scopes = SCOPE_ALL;
            e->p.api_rps = ADMIN_RPS;
        } else {
            e->p.kind = PRINCIPAL_KEY;
            e->p.key_type =
                strcmp(PQgetvalue(r, 0, 2), "publishable") == 0 ? KEY_PUBLISHABLE : KEY_SECRET;
            e->p.scopes = auth_scopes_parse_csv(PQgetvalue(r, 0, 3));
            e->revoked = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
            e->expires_at = atof(PQgetvalue(r, 0, 5));
            copy_field(e->p.tenant_id, sizeof(e->p.tenant_id), r, 6);
            copy_field(e->tenant_status, sizeof(e->tenant_status), r, 7);
            copy_field(e->p.parent_id, sizeof(e->p.parent_id), r, 8);
            copy_field(e->parent_status, sizeof(e->parent_status), r, 9);
            e->p.api_rps = atof(PQgetvalue(r, 0, 10));
            if (e->p.key_type == KEY_PUBLISHABLE && !PQgetisnull(r, 0, 11))
                e->p.allowed_origins = strdup(PQgetvalue(r, 0, 11));
        }
    }
    PQclear(r);
    return 0;
}

static void touch_last_used(struct http_ctx *c, const struct principal *p)
{
    static struct db_stmt q_key = {"auth_touch_key",
                                   "UPDATE api_keys SET last_used_at = now() WHERE id = $1", 0};
    static struct db_stmt q_admin = {
        "auth_touch_admin", "UPDATE admin_tokens SET last_used_at = now() WHERE id = $1", 0};
    const char *params[] = {p->id};
    PQclear(http_db(c, p->kind == PRINCIPAL_ADMIN ? &q_admin : &q_key, 1, params));
}

/* The API key of the Authorization header, its hash in hash. Returns the key (it points into the
 * header), or NULL after answering 401 (missing, not Bearer, unknown prefix, too long) or 500. */
static const char *bearer_key(struct http_ctx *c, char hash[65])
{
    const char *h = http_header(c, "Authorization");
    if (h == NULL || h[0] == '\0') {
        http_problem(c, 401, "missing_api_key", NULL,
                     "Send your API key as 'Authorization: Bearer sk_...'.");
        return NULL;
    }
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        http_problem(c, 401, "missing_api_key", NULL,
                     "The Authorization header must be 'Bearer <key>'.");
        return NULL;
    }
    const char *token = h + 7;
    size_t tlen = strnlen(token, TOKEN_MAX + 1);
    int known_prefix = strncmp(token, "sk_", 3) == 0 || strncmp(token, "pk_", 3) == 0 ||
                       strncmp(token, "adm_", 4) == 0;
    if (!known_prefix || tlen > TOKEN_MAX) {
        http_problem(c, 401, "invalid_api_key", NULL,
                     "The API key is not valid: keys start with sk_, pk_ or adm_.");
        return NULL;
    }
    auth_hash_secret(c->cfg, token, hash);
    if (hash[0] == '\0') {
        http_problem(c, 500, "internal_error", NULL, "The API key could not be checked.");
        return NULL;
    }
    return token;
}

int auth_authenticate(struct http_ctx *c)
{
    struct auth_cache *ac = c->srv->auth;
    char hash[65];
    const char *token = bearer_key(c, hash);
    if (token == NULL)
        return -1;

    uint64_t gen = __atomic_load_n(&ac->gen, __ATOMIC_SEQ_CST);
    double now = time_now();
    uint64_t slot = slot_of(hash);
    pthread_mutex_t *lock = &ac->locks[slot % AC_LOCKS];
    struct ac_entry local;
    memset(&local, 0, sizeof(local));

    pthread_mutex_lock(lock);
    struct ac_entry *e = &ac->slots[slot];
    int hit = c->cfg->key_cache_seconds > 0 && e->gen == gen && e->hash[0] != '\0' &&
              crypto_equal(e->hash, hash, 64) && now - e->fetched < c->cfg->key_cache_seconds;
    if (hit) {
        local = *e;
        local.p.allowed_origins = e->p.allowed_origins ? strdup(e->p.allowed_origins) : NULL;
    }
    pthread_mutex_unlock(lock);

    if (!hit) {
        if (load_entry(c, token, hash, &local) != 0)
            return -1;
        local.gen = gen;
        local.fetched = now;
        pthread_mutex_lock(lock);
        if (e->gen == gen && crypto_equal(e->hash, hash, 64))
            local.last_used_written = e->last_used_written;
        free(e->p.allowed_origins);
        *e = local;
        e->p.allowed_origins = local.p.allowed_origins ? strdup(local.p.allowed_origins) : NULL;
        pthread_mutex_unlock(lock);
    }

    int rc = -1;
    if (!local.found) {
        http_problem(c, 401, "invalid_api_key", NULL,
                     "The API key is not valid. Check that you copied it whole.");
    } else if (local.revoked) {
        http_problem(c, 401, "invalid_api_key", NULL, "This API key has been revoked.");
    } else if (local.expires_at > 0 && now >= local.expires_at) {
        char when[32];
        time_format_rfc3339((int64_t)local.expires_at, when, sizeof(when));
        http_problem(c, 401, "invalid_api_key", NULL, "This API key expired at %s.", when);
    } else if (strcmp(local.tenant_status, "deleted") == 0) {
        http_problem(c, 401, "invalid_api_key", NULL, "This API key's tenant has been deleted.");
    } else if (strcmp(local.tenant_status, "suspended") == 0 ||
               strcmp(local.parent_status, "suspended") == 0) {
        http_problem(c, 403, "tenant_suspended", NULL,
                     "This tenant is suspended. Contact your platform operator.");
    } else {
        rc = 0;
    }
    if (rc != 0) {
        free(local.p.allowed_origins);
        return -1;
    }
    c->who = local.p; /* takes ownership of allowed_origins */

    if (now - local.last_used_written >= LAST_USED_EVERY) {
        pthread_mutex_lock(lock);
        int mine = e->gen == gen && crypto_equal(e->hash, hash, 64) &&
                   now - e->last_used_written >= LAST_USED_EVERY;
        if (mine)
            e->last_used_written = now;
        pthread_mutex_unlock(lock);
        if (mine || c->cfg->key_cache_seconds == 0)
            touch_last_used(c, &c->who);
        if (c->answered)
            return -1;
    }
    return 0;
}

int auth_session_token(struct http_ctx *c)
{
    const char *h = http_header(c, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
        http_problem(c, 401, "invalid_token", NULL,
                     "Send the session token as 'Authorization: Bearer <JWT>' (the session's "
                     "visitor_token or an agent token).");
        return -1;
    }
    const char *token = h + 7;
    if (strncmp(token, "sk_", 3) == 0 || strncmp(token, "pk_", 3) == 0 ||
        strncmp(token, "adm_", 4) == 0) {
        http_problem(c, 401, "invalid_token", NULL,
                     "This route takes a session token (a JWT), not an API key.");
        return -1;
    }
    int rc = token_verify(c->cfg->jwt_secret, sizeof(c->cfg->jwt_secret), token,
                          (int64_t)time_now(), NULL, &c->session);
    if (rc != TOKEN_OK) {
        http_problem(c, 401, "invalid_token", NULL, "The session token is not valid: %s.",
                     token_error_str(rc));
        return -1;
    }
    c->who.kind = PRINCIPAL_SESSION;
    snprintf(c->who.id, sizeof(c->who.id), "%s", c->session.jti);
    snprintf(c->who.tenant_id, sizeof(c->who.tenant_id), "%s", c->session.tid);
    snprintf(c->tenant_id, sizeof(c->tenant_id), "%s", c->session.tid);
    return 0;
}

int auth_resolve_tenant(struct http_ctx *c)
{
    static struct db_stmt q_any = {
        "auth_tenant_any", "SELECT status FROM tenants WHERE id = $1 AND status <> 'deleted'", 0};
    static struct db_stmt q_child = {"auth_tenant_child",
                                     "SELECT status FROM tenants WHERE id = $1 AND parent_id = $2 "
                                     "AND status <> 'deleted'",
                                     0};
    const char *h = http_header(c, "Cobrowse-Tenant");
    if (h == NULL) {
        snprintf(c->tenant_id, sizeof(c->tenant_id), "%s", c->who.tenant_id);
        c->tenant_is_self = c->who.kind == PRINCIPAL_KEY;
        return 0;
    }
    if (!ids_valid("ten", h)) {
        http_problem(c, 400, "tenant_header_invalid", "Cobrowse-Tenant",
                     "Cobrowse-Tenant must be a tenant id (ten_...).");
        return -1;
    }
    if (c->who.kind == PRINCIPAL_KEY && c->who.key_type == KEY_PUBLISHABLE) {
        http_problem(c, 403, "forbidden", "Cobrowse-Tenant",
                     "Publishable keys act on their own tenant only.");
        return -1;
    }
    if (c->who.kind == PRINCIPAL_KEY && strcmp(h, c->who.tenant_id) == 0) {
        snprintf(c->tenant_id, sizeof(c->tenant_id), "%s", h);
        c->tenant_is_self = 1;
        return 0;
    }
    PGresult *r;
    if (c->who.kind == PRINCIPAL_ADMIN) {
        const char *params[] = {h};
        r = http_db(c, &q_any, 1, params);
    } else {
        const char *params[] = {h, c->who.tenant_id};
        r = http_db(c, &q_child, 2, params);
    }
    if (r == NULL)
        return -1;
    int found = PQntuples(r) == 1;
    int suspended = found && strcmp(PQgetvalue(r, 0, 0), "suspended") == 0;
    PQclear(r);
    if (!found) {
        http_problem(c, 404, "not_found", "Cobrowse-Tenant",
                     "No such tenant among the ones this key may act on.");
        return -1;
    }
    if (suspended && c->who.kind != PRINCIPAL_ADMIN) {
        http_problem(c, 403, "tenant_suspended", "Cobrowse-Tenant",
                     "This sub-tenant is suspended; reactivate it first.");
        return -1;
    }
    snprintf(c->tenant_id, sizeof(c->tenant_id), "%s", h);
    c->tenant_is_self = 0;
    return 0;
}

static void parse_limits(const char *text, struct token_limits *lim)
{
    json_t *j = json_loads(text, 0, NULL);
#define LIMIT_PARSE(name, lo, hi, dflt)                                                            \
    lim->name = (int)json_integer_value(json_object_get(j, #name));
    LIMITS_TOKEN(LIMIT_PARSE)
    json_decref(j);
}

int auth_tenant_info(struct http_ctx *c, const char *tenant_id, struct tenant_info *out)
{
    static struct db_stmt q = {
        "auth_tenant_info",
        "SELECT t.settings->'permissions'->>'remote_control', "
        "  limits_min(t.settings->'limits', p.settings->'limits')::text "
        "FROM tenants t LEFT JOIN tenants p ON p.id = t.parent_id WHERE t.id = $1",
        0};
    struct auth_cache *ac = c->srv->auth;
    uint64_t gen = __atomic_load_n(&ac->gen, __ATOMIC_SEQ_CST);
    double now = time_now();
    uint64_t h = hash_fnv1a(tenant_id);
    uint64_t slot = h % AC_SLOTS;
    pthread_mutex_t *lock = &ac->locks[slot % AC_LOCKS];
    struct tc_entry *e = &ac->tenants[slot];
    pthread_mutex_lock(lock);
    int hit = c->cfg->key_cache_seconds > 0 && e->gen == gen && strcmp(e->tenant, tenant_id) == 0 &&
              now - e->fetched < c->cfg->key_cache_seconds;
    if (hit)
        *out = e->info;
    pthread_mutex_unlock(lock);
    if (hit)
        return 0;

    const char *params[] = {tenant_id};
    PGresult *r = http_db_one(c, &q, 1, params, "tenant");
    if (r == NULL)
        return -1;
    memset(out, 0, sizeof(*out));
    out->remote_control_ask = strcmp(PQgetvalue(r, 0, 0), "ask") == 0;
    parse_limits(PQgetvalue(r, 0, 1), &out->lim);
    PQclear(r);
    pthread_mutex_lock(lock);
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant_id);
    e->gen = gen;
    e->fetched = now;
    e->info = *out;
    pthread_mutex_unlock(lock);
    return 0;
}
