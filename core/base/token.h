/* Session tokens: HS256 JWTs bound to one session, one tenant and one role.
 *
 * libjwt 1.10 validates only the signature, and accepts any algorithm the key fits (HS384/512,
 * and "none" when no key is given). token_verify therefore always passes the key, pins HS256,
 * and checks exp, nbf, aud, iss, the role and the presence of every claim itself.
 * Thread-safe: no shared state; the caller owns every buffer.
 */
#ifndef COBROWSE_CORE_TOKEN_H
#define COBROWSE_CORE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_AUDIENCE       "cobrowse-relay"
#define TOKEN_ISSUER         "cobrowse"
#define TOKEN_LEEWAY_SECONDS 30   /* clock skew tolerated on exp and nbf */
#define TOKEN_MAX_LEN        4096 /* longer input is rejected before parsing */

enum token_role { TOKEN_ROLE_VISITOR = 1, TOKEN_ROLE_AGENT = 2 };

/* The tenant's effective limits when the token was minted (claim "lim"); 0 means absent. */
struct token_limits {
    int concurrent_sessions, sessions_per_minute, frames_per_second, bytes_per_second,
        agents_per_session;
};

/* An agent id is at most 200 code points (docs/rest-api.md) of at most 4 bytes each. */
#define TOKEN_SUB_BYTES (200 * 4 + 4)

struct token_claims {
    char sid[48];              /* session id */
    char tid[48];              /* tenant id */
    char jti[48];              /* token id */
    char sub[TOKEN_SUB_BYTES]; /* "visitor" or the agent's id, never cut (api/sessions.c) */
    char name[208];
    enum token_role role;
    int remote_control; /* 0 off, 1 ask */
    struct token_limits lim;
    int64_t iat, nbf, exp;
};

enum token_error {
    TOKEN_OK = 0,
    TOKEN_EMALFORMED = -1, /* not a JWT, or too long */
    TOKEN_ESIGNATURE = -2, /* bad signature or not signed with our key */
    TOKEN_EALGORITHM = -3, /* signed with another algorithm than HS256 */
    TOKEN_EEXPIRED = -4,
    TOKEN_ENOTYET = -5,   /* nbf in the future */
    TOKEN_EAUDIENCE = -6, /* aud or iss not ours */
    TOKEN_ECLAIMS = -7,   /* a claim missing or of the wrong type */
    TOKEN_ESESSION = -8,  /* bound to another session than expected */
    TOKEN_EINTERNAL = -9,
};

/* Signs claims into a new JWT string in *out (caller frees with free()). */
int token_mint(const unsigned char *key, size_t key_len, const struct token_claims *c, char **out);

/* Verifies token at time now (epoch seconds). If expected_sid is non-NULL the token must be bound
 * to that session. Fills *out on success. Returns TOKEN_OK or a negative token_error. */
int token_verify(const unsigned char *key, size_t key_len, const char *token, int64_t now,
                 const char *expected_sid, struct token_claims *out);

const char *token_error_str(int err);
const char *token_role_str(enum token_role role);

#endif
