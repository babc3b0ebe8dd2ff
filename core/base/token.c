#include "core/base/token.h"

#include <stdint.h>

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/b64url.h"
#include "core/base/crypto.h"

const char *token_role_str(enum token_role role)
{
    return role == TOKEN_ROLE_AGENT ? "agent" : "visitor";
}

const char *token_error_str(int err)
{
    switch (err) {
    case TOKEN_OK:
        return "ok";
    case TOKEN_EMALFORMED:
        return "token is malformed";
    case TOKEN_ESIGNATURE:
        return "token signature is invalid";
    case TOKEN_EALGORITHM:
        return "token algorithm is not HS256";
    case TOKEN_EEXPIRED:
        return "token has expired";
    case TOKEN_ENOTYET:
        return "token is not valid yet";
    case TOKEN_EAUDIENCE:
        return "token audience or issuer is wrong";
    case TOKEN_ECLAIMS:
        return "token claims are missing or invalid";
    case TOKEN_ESESSION:
        return "token is for another session";
    default:
        return "token could not be processed";
    }
}

/* An HS256 JWT is b64url(header) "." b64url(claims) "." b64url(HMAC-SHA256 of the first two).
 * Minting it directly costs one HMAC; libjwt would parse and re-serialize the claims first
 * (measured: JSON work was the largest user-space cost of session creation). Verification
 * still goes through libjwt plus the checks in token_verify. */
static char *sign_hs256(const unsigned char *key, size_t key_len, const char *claims)
{
    static const char header[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; /* {"alg":"HS256","typ":"JWT"} */
    size_t clen = strlen(claims), hlen = sizeof(header) - 1;
    size_t cap = hlen + 1 + (clen + 2) / 3 * 4 + 1 + 44 + 1;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    memcpy(out, header, hlen);
    out[hlen] = '.';
    size_t n = hlen + 1 + b64url_encode((const unsigned char *)claims, clen, out + hlen + 1);
    unsigned char mac[32];
    if (crypto_hmac_sha256(key, key_len, out, n, mac) != 0) {
        free(out);
        return NULL;
    }
    out[n] = '.';
    b64url_encode(mac, sizeof(mac), out + n + 1);
    return out;
}

int token_mint(const unsigned char *key, size_t key_len, const struct token_claims *c, char **out)
{
    json_t *claims = NULL;
    char *json = NULL;
    int rc = TOKEN_EINTERNAL;
    *out = NULL;
    if (key == NULL || key_len < 32)
        return TOKEN_EINTERNAL;

    claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:{s:s}}", "iss",
                       TOKEN_ISSUER, "aud", TOKEN_AUDIENCE, "sub", c->sub, "sid", c->sid, "tid",
                       c->tid, "jti", c->jti, "role", token_role_str(c->role), "iat",
                       (json_int_t)c->iat, "nbf", (json_int_t)c->nbf, "exp", (json_int_t)c->exp,
                       "perm", "remote_control", c->remote_control ? "ask" : "off");
    if (claims == NULL)
        goto done;
    if (c->name[0] != '\0')
        json_object_set_new(claims, "name", json_string(c->name));
    if (c->lim.frames_per_second > 0)
        json_object_set_new(
            claims, "lim",
            json_pack("{s:i, s:i, s:i, s:i, s:i}", "concurrent_sessions",
                      c->lim.concurrent_sessions, "sessions_per_minute", c->lim.sessions_per_minute,
                      "frames_per_second", c->lim.frames_per_second, "bytes_per_second",
                      c->lim.bytes_per_second, "agents_per_session", c->lim.agents_per_session));
    json = json_dumps(claims, JSON_COMPACT);
    if (json == NULL)
        goto done;
    *out = sign_hs256(key, key_len, json);
    rc = *out ? TOKEN_OK : TOKEN_EINTERNAL;
done:
    free(json);
    json_decref(claims);
    return rc;
}

static int copy_str(json_t *claims, const char *name, char *dst, size_t dst_size, int required)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL && !required) {
        dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= dst_size)
        return -1;
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int get_int(json_t *claims, const char *name, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    if (!json_is_integer(v))
        return -1;
    *out = json_integer_value(v);
    return 0;
}

/* Cheap structural check before libjwt: three base64url parts, bounded length. */
static int looks_like_jwt(const char *token)
{
    size_t n = strnlen(token, TOKEN_MAX_LEN + 1);
    if (n == 0 || n > TOKEN_MAX_LEN)
        return 0;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = token[i];
        if (ch == '.')
            dots++;
        else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
            return 0;
    }
    return dots == 2;
}

/* Reads the claims past iss and aud into out: times, ids, name, limits, role and remote control.
 * Returns 0, or -1 when one is missing, of the wrong type or out of range. */
static int read_claims(json_t *claims, struct token_claims *out)
{
    const char *role = json_string_value(json_object_get(claims, "role"));
    json_t *perm = json_object_get(claims, "perm");
    const char *rctl = json_string_value(json_object_get(perm, "remote_control"));
    if (get_int(claims, "exp", &out->exp) || get_int(claims, "nbf", &out->nbf) ||
        get_int(claims, "iat", &out->iat) ||
        copy_str(claims, "sid", out->sid, sizeof(out->sid), 1) ||
        copy_str(claims, "tid", out->tid, sizeof(out->tid), 1) ||
        copy_str(claims, "jti", out->jti, sizeof(out->jti), 1) ||
        copy_str(claims, "sub", out->sub, sizeof(out->sub), 1) ||
        copy_str(claims, "name", out->name, sizeof(out->name), 0) || role == NULL || rctl == NULL) {
        return -1;
    }
    json_t *lim = json_object_get(claims, "lim");
    if (lim != NULL) {
        const char *names[] = {"concurrent_sessions", "sessions_per_minute", "frames_per_second",
                               "bytes_per_second", "agents_per_session"};
        int *dst[] = {&out->lim.concurrent_sessions, &out->lim.sessions_per_minute,
                      &out->lim.frames_per_second, &out->lim.bytes_per_second,
                      &out->lim.agents_per_session};
        for (int i = 0; i < 5; i++) {
            json_t *v = json_object_get(lim, names[i]);
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > 2000000000) {
                return -1;
            }
            *dst[i] = (int)json_integer_value(v);
        }
    }
    if (strcmp(role, "visitor") == 0)
        out->role = TOKEN_ROLE_VISITOR;
    else if (strcmp(role, "agent") == 0)
        out->role = TOKEN_ROLE_AGENT;
    else
        return -1;
    if (strcmp(rctl, "ask") == 0)
        out->remote_control = 1;
    else if (strcmp(rctl, "off") == 0)
        out->remote_control = 0;
    else
        return -1;
    return 0;
}

int token_verify(const unsigned char *key, size_t key_len, const char *token, int64_t now,
                 const char *expected_sid, struct token_claims *out)
{
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL;
    int rc;
    memset(out, 0, sizeof(*out));
    if (key == NULL || key_len < 32)
        return TOKEN_EINTERNAL; /* never call jwt_decode without a key: it would accept "none" */
    if (token == NULL || !looks_like_jwt(token))
        return TOKEN_EMALFORMED;

    int err = jwt_decode(&jwt, token, key, (int)key_len);
    if (err != 0 || jwt == NULL) {
        rc = err == EINVAL ? TOKEN_ESIGNATURE : TOKEN_EMALFORMED;
        goto done;
    }
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        rc = TOKEN_EALGORITHM;
        goto done;
    }
    grants = jwt_get_grants_json(jwt, NULL);
    claims = grants ? json_loads(grants, 0, NULL) : NULL;
    if (!json_is_object(claims)) {
        rc = TOKEN_ECLAIMS;
        goto done;
    }
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    const char *aud = json_string_value(json_object_get(claims, "aud"));
    if (iss == NULL || aud == NULL || strcmp(iss, TOKEN_ISSUER) != 0 ||
        strcmp(aud, TOKEN_AUDIENCE) != 0) {
        rc = TOKEN_EAUDIENCE;
        goto done;
    }
    if (read_claims(claims, out) != 0) {
        rc = TOKEN_ECLAIMS;
        goto done;
    }
    if (now >= out->exp + TOKEN_LEEWAY_SECONDS) {
        rc = TOKEN_EEXPIRED;
        goto done;
    }
    if (now + TOKEN_LEEWAY_SECONDS < out->nbf) {
        rc = TOKEN_ENOTYET;
        goto done;
    }
    if (expected_sid != NULL && strcmp(expected_sid, out->sid) != 0) {
        rc = TOKEN_ESESSION;
        goto done;
    }
    rc = TOKEN_OK;
done:
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    if (rc != TOKEN_OK) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
