/* core/base/token.c: minting and every way verification must refuse a token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jwt.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/token.h"

static const unsigned char key[32] = "0123456789abcdef0123456789abcde";
static const unsigned char other_key[32] = "ffffffffffffffffffffffffffffffff";
#define NOW 1800000000

static struct token_claims sample(void)
{
    struct token_claims c;
    memset(&c, 0, sizeof(c));
    strcpy(c.sid, "ses_01M881EV6E9182A88VPH0A13T5");
    strcpy(c.tid, "ten_01M881EV3PABTDTDKG64ZHZEEA");
    strcpy(c.jti, "tok_01M881EV94CMW1ENGK9TX2VZAA");
    strcpy(c.sub, "agent-7");
    strcpy(c.name, "Bob");
    c.role = TOKEN_ROLE_AGENT;
    c.remote_control = 1;
    c.iat = c.nbf = NOW;
    c.exp = NOW + 600;
    return c;
}

static char *mint(struct token_claims c)
{
    char *t = NULL;
    assert_int_equal(token_mint(key, sizeof(key), &c, &t), TOKEN_OK);
    return t;
}

/* Signs arbitrary claims JSON with an arbitrary algorithm, to forge tokens. */
static char *forge(const char *claims_json, jwt_alg_t alg, const unsigned char *k, int klen)
{
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims_json), 0);
    assert_int_equal(jwt_set_alg(jwt, alg, k, klen), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    return t;
}

static const char *valid_claims =
    "{\"iss\":\"cobrowse\",\"aud\":\"cobrowse-relay\",\"sub\":\"visitor\",\"sid\":\"ses_1\","
    "\"tid\":\"ten_1\",\"jti\":\"tok_1\",\"role\":\"visitor\",\"iat\":1800000000,"
    "\"nbf\":1800000000,\"exp\":1800000600,\"perm\":{\"remote_control\":\"off\"}}";

static void test_mint_then_verify_round_trips_claims(void **state)
{
    (void)state;
    char *t = mint(sample());
    struct token_claims out;
    assert_int_equal(
        token_verify(key, sizeof(key), t, NOW + 10, "ses_01M881EV6E9182A88VPH0A13T5", &out),
        TOKEN_OK);
    assert_string_equal(out.sid, "ses_01M881EV6E9182A88VPH0A13T5");
    assert_string_equal(out.tid, "ten_01M881EV3PABTDTDKG64ZHZEEA");
    assert_string_equal(out.sub, "agent-7");
    assert_string_equal(out.name, "Bob");
    assert_int_equal(out.role, TOKEN_ROLE_AGENT);
    assert_int_equal(out.remote_control, 1);
    assert_int_equal(out.exp, NOW + 600);
    free(t);
}

static void test_forged_valid_claims_accepted_as_baseline(void **state)
{
    (void)state; /* proves forge() makes tokens verify() accepts, so the refusals below mean it */
    char *t = forge(valid_claims, JWT_ALG_HS256, key, sizeof(key));
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, NULL, &out), TOKEN_OK);
    free(t);
}

static void test_alg_none_rejected(void **state)
{
    (void)state;
    char *t = forge(valid_claims, JWT_ALG_NONE, NULL, 0);
    struct token_claims out;
    int rc = token_verify(key, sizeof(key), t, NOW, NULL, &out);
    assert_true(rc == TOKEN_EMALFORMED || rc == TOKEN_ESIGNATURE || rc == TOKEN_EALGORITHM);
    free(t);
    /* "header.payload." with an empty signature must not slip through either */
    const char *unsigned_tok = "eyJhbGciOiJub25lIn0.eyJzaWQiOiJzZXNfMSJ9.";
    assert_int_not_equal(token_verify(key, sizeof(key), unsigned_tok, NOW, NULL, &out), TOKEN_OK);
}

static void test_other_algorithm_with_same_key_rejected(void **state)
{
    (void)state;
    char *t = forge(valid_claims, JWT_ALG_HS512, key, sizeof(key));
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, NULL, &out), TOKEN_EALGORITHM);
    free(t);
}

static void test_wrong_key_rejected(void **state)
{
    (void)state;
    char *t = forge(valid_claims, JWT_ALG_HS256, other_key, sizeof(other_key));
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, NULL, &out), TOKEN_ESIGNATURE);
    free(t);
}

static void test_expired_rejected_after_leeway(void **state)
{
    (void)state;
    char *t = mint(sample());
    struct token_claims out;
    assert_int_equal(
        token_verify(key, sizeof(key), t, NOW + 600 + TOKEN_LEEWAY_SECONDS, NULL, &out),
        TOKEN_EEXPIRED);
    assert_int_equal(
        token_verify(key, sizeof(key), t, NOW + 600 + TOKEN_LEEWAY_SECONDS - 1, NULL, &out),
        TOKEN_OK);
    free(t);
}

static void test_not_yet_valid_rejected(void **state)
{
    (void)state;
    struct token_claims c = sample();
    c.nbf = NOW + 300;
    char *t = mint(c);
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, NULL, &out), TOKEN_ENOTYET);
    assert_int_equal(token_verify(key, sizeof(key), t, NOW + 300, NULL, &out), TOKEN_OK);
    /* the leeway is exact: valid from nbf - leeway on, not a second before */
    assert_int_equal(
        token_verify(key, sizeof(key), t, NOW + 300 - TOKEN_LEEWAY_SECONDS, NULL, &out), TOKEN_OK);
    assert_int_equal(
        token_verify(key, sizeof(key), t, NOW + 300 - TOKEN_LEEWAY_SECONDS - 1, NULL, &out),
        TOKEN_ENOTYET);
    free(t);
}

static void test_wrong_audience_rejected(void **state)
{
    (void)state;
    char claims[1024];
    strcpy(claims, valid_claims);
    char *aud = strstr(claims, "cobrowse-relay");
    memcpy(aud, "cobrowse-other", 14);
    char *t = forge(claims, JWT_ALG_HS256, key, sizeof(key));
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, NULL, &out), TOKEN_EAUDIENCE);
    free(t);
}

static void test_wrong_session_rejected(void **state)
{
    (void)state;
    char *t = mint(sample());
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, "ses_01M881EV6E9182A88VPH0A13T6", &out),
                     TOKEN_ESESSION);
    free(t);
}

static void test_missing_exp_rejected(void **state)
{
    (void)state;
    const char *claims = "{\"iss\":\"cobrowse\",\"aud\":\"cobrowse-relay\",\"sub\":\"v\","
                         "\"sid\":\"ses_1\",\"tid\":\"ten_1\",\"jti\":\"tok_1\",\"role\":"
                         "\"visitor\",\"iat\":1,\"nbf\":1,\"perm\":{\"remote_control\":\"off\"}}";
    char *t = forge(claims, JWT_ALG_HS256, key, sizeof(key));
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, NULL, &out), TOKEN_ECLAIMS);
    free(t);
}

static void test_unknown_role_rejected(void **state)
{
    (void)state;
    char claims[1024];
    strcpy(claims, valid_claims);
    char *role = strstr(claims, "\"role\":\"visitor\"");
    memcpy(role, "\"role\":\"admin\"  ", 16);
    char *t = forge(claims, JWT_ALG_HS256, key, sizeof(key));
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), t, NOW, NULL, &out), TOKEN_ECLAIMS);
    free(t);
}

static void test_garbage_and_oversized_rejected(void **state)
{
    (void)state;
    struct token_claims out;
    assert_int_equal(token_verify(key, sizeof(key), "not a token", NOW, NULL, &out),
                     TOKEN_EMALFORMED);
    assert_int_equal(token_verify(key, sizeof(key), "", NOW, NULL, &out), TOKEN_EMALFORMED);
    char *big = malloc(TOKEN_MAX_LEN + 10);
    memset(big, 'a', TOKEN_MAX_LEN + 9);
    big[TOKEN_MAX_LEN + 9] = '\0';
    assert_int_equal(token_verify(key, sizeof(key), big, NOW, NULL, &out), TOKEN_EMALFORMED);
    free(big);
}

static void test_verify_without_key_refuses(void **state)
{
    (void)state; /* libjwt accepts anything when no key is given: we must never allow that */
    char *t = mint(sample());
    struct token_claims out;
    assert_int_equal(token_verify(NULL, 0, t, NOW, NULL, &out), TOKEN_EINTERNAL);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mint_then_verify_round_trips_claims),
        cmocka_unit_test(test_forged_valid_claims_accepted_as_baseline),
        cmocka_unit_test(test_alg_none_rejected),
        cmocka_unit_test(test_other_algorithm_with_same_key_rejected),
        cmocka_unit_test(test_wrong_key_rejected),
        cmocka_unit_test(test_expired_rejected_after_leeway),
        cmocka_unit_test(test_not_yet_valid_rejected),
        cmocka_unit_test(test_wrong_audience_rejected),
        cmocka_unit_test(test_wrong_session_rejected),
        cmocka_unit_test(test_missing_exp_rejected),
        cmocka_unit_test(test_unknown_role_rejected),
        cmocka_unit_test(test_garbage_and_oversized_rejected),
        cmocka_unit_test(test_verify_without_key_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
