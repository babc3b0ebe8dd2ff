/* Authentication of API callers and resolution of the acting tenant.
 *
 * A bearer token is hashed (HMAC-SHA256 with the server's key-hash secret) and looked up by hash;
 * the stored hash is compared in constant time. Lookups are cached per node for
 * cfg->key_cache_seconds; any change to keys or tenants made through this node clears the cache at
 * once (auth_cache_invalidate), other nodes see it within that time.
 * Threading: every function may be called from any HTTP worker thread.
 */
#ifndef COBROWSE_API_AUTH_H
#define COBROWSE_API_AUTH_H

#include "api/http.h"
#include "core/base/token.h"

struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *cache);
/* Forgets every cached lookup (after a key is revoked or a tenant changes). */
void auth_cache_invalidate(struct auth_cache *cache);

/* Authenticates the Authorization header into c->who. Returns 0, or -1 after answering
 * 401/403/503. */
int auth_authenticate(struct http_ctx *c);

/* Authenticates 'Authorization: Bearer <session JWT>' (a visitor or agent token, core/base/token.h)
 * into c->session, c->who (PRINCIPAL_SESSION, id = the token's jti) and c->tenant_id. Returns 0,
 * or -1 after answering 401 invalid_token (missing, an API key, malformed, forged, expired,
 * another algorithm). */
int auth_session_token(struct http_ctx *c);

/* Applies the Cobrowse-Tenant header: sets c->tenant_id. Returns 0, or -1 after answering
 * 400/403/404. */
int auth_resolve_tenant(struct http_ctx *c);

/* What session creation and agent tokens need to know about a tenant: its default remote control
 * permission and its effective limits (capped by its parent's). Cached per node like keys. */
struct tenant_info {
    int remote_control_ask;
    struct token_limits lim;
};
/* Fills *out for tenant_id. Returns 0, or -1 after answering (404 if it does not exist). */
int auth_tenant_info(struct http_ctx *c, const char *tenant_id, struct tenant_info *out);

/* Scope names <-> bits. */
const char *auth_scope_name(unsigned bit);
unsigned auth_scope_bit(const char *name); /* 0 if unknown */
/* Parses "a,b,c" (as stored) into bits. */
unsigned auth_scopes_parse_csv(const char *csv);
/* Writes a PostgreSQL array literal {a,b} of the scopes in bits into out. */
void auth_scopes_pg_array(unsigned bits, char *out, size_t out_size);
json_t *auth_scopes_json(unsigned bits);

/* Hashes a presented secret into out[65] (hex). */
void auth_hash_secret(const struct api_config *cfg, const char *secret, char out[65]);

/* 1 if origin is listed in the JSON array text allowed_json, else 0. */
int auth_origin_allowed(const char *allowed_json, const char *origin);

#endif
