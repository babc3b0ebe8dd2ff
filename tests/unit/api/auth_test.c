/* api/auth.c, pure parts: secret hashing, scope names and bits, allowed-origin matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "core/base/crypto.h"

static const char *const all_scopes[] = {"tenants:read",       "tenants:write", "api_keys:read",
                                         "api_keys:write",     "sessions:read", "sessions:write",
                                         "agent_tokens:write", "webhooks:read", "webhooks:write",
                                         "audit:read",         "usage:read"};
#define N_SCOPES 11

static void config_with_key(struct api_config *cfg, unsigned char fill)
{
    memset(cfg, 0, sizeof(*cfg));
    memset(cfg->key_hash_secret, fill, sizeof(cfg->key_hash_secret));
}

static void assert_lower_hex_64(const char *h)
{
    assert_int_equal(strlen(h), 64);
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            fail_msg("non-lowercase-hex char '%c' at %d in %s", h[i], i, h);
}

static void test_hash_secret_is_64_lowercase_hex(void **state)
{
    (void)state;
    struct api_config cfg;
    config_with_key(&cfg, 0x11);
    char out[65];
    auth_hash_secret(&cfg, "sk_live_abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst", out);
    assert_lower_hex_64(out);
    auth_hash_secret(&cfg, "", out);
    assert_lower_hex_64(out);
}

static void test_hash_secret_is_deterministic_for_same_secret_and_key(void **state)
{
    (void)state;
    struct api_config a, b;
    config_with_key(&a, 0x11);
    config_with_key(&b, 0x11);
    b.listen_port = 9999; /* unrelated settings do not matter */
    char h1[65], h2[65], h3[65];
    auth_hash_secret(&a, "sk_test_secret", h1);
    auth_hash_secret(&a, "sk_test_secret", h2);
    auth_hash_secret(&b, "sk_test_secret", h3);
    assert_string_equal(h1, h2);
    assert_string_equal(h1, h3);
}

static void test_hash_secret_is_hmac_sha256_keyed_by_config(void **state)
{
    (void)state;
    struct api_config cfg;
    config_with_key(&cfg, 0x5a);
    char got[65], want[65];
    auth_hash_secret(&cfg, "sk_test_secret", got);
    assert_int_equal(crypto_hmac_hex(cfg.key_hash_secret, sizeof(cfg.key_hash_secret),
                                     "sk_test_secret", strlen("sk_test_secret"), want),
                     0);
    assert_string_equal(got, want);
    /* and not a plain hash of the secret */
    char plain[65];
    assert_int_equal(crypto_sha256_hex("sk_test_secret", strlen("sk_test_secret"), plain), 0);
    assert_string_not_equal(got, plain);
}

static void test_hash_secret_differs_with_another_config_key(void **state)
{
    (void)state;
    struct api_config a, b;
    config_with_key(&a, 0x11);
    config_with_key(&b, 0x11);
    b.key_hash_secret[API_SECRET_LEN - 1] ^= 0x01; /* last byte of the key, one bit */
    char h1[65], h2[65];
    auth_hash_secret(&a, "sk_test_secret", h1);
    auth_hash_secret(&b, "sk_test_secret", h2);
    assert_string_not_equal(h1, h2);
}

static void test_hash_secret_differs_for_secrets_one_char_apart(void **state)
{
    (void)state;
    struct api_config cfg;
    config_with_key(&cfg, 0x11);
    char h1[65], h2[65], h3[65];
    auth_hash_secret(&cfg, "sk_test_secret0", h1);
    auth_hash_secret(&cfg, "sk_test_secret1", h2);
    auth_hash_secret(&cfg, "sk_test_secret", h3);
    assert_string_not_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    assert_string_not_equal(h2, h3);
}

static void test_scope_bit_and_name_round_trip_for_all_scopes(void **state)
{
    (void)state;
    unsigned seen = 0;
    for (int i = 0; i < N_SCOPES; i++) {
        unsigned bit = auth_scope_bit(all_scopes[i]);
        assert_int_not_equal(bit, 0);
        assert_int_equal(bit & (bit - 1), 0); /* exactly one bit */
        assert_int_equal(seen & bit, 0);      /* distinct from the others */
        seen |= bit;
        const char *name = auth_scope_name(bit);
        assert_non_null(name);
        assert_string_equal(name, all_scopes[i]);
    }
}

static void test_unknown_scope_name_maps_to_zero(void **state)
{
    (void)state;
    assert_int_equal(auth_scope_bit("tenants:admin"), 0);
    assert_int_equal(auth_scope_bit(""), 0);
    assert_int_equal(auth_scope_bit("Tenants:Read"), 0);
    assert_int_equal(auth_scope_bit("tenants:read "), 0);
    assert_int_equal(auth_scope_bit("tenants"), 0);
}

static void test_scope_name_of_non_scope_bit_is_null(void **state)
{
    (void)state;
    assert_null(auth_scope_name(0));
    assert_null(auth_scope_name(1u << N_SCOPES));
    assert_null(auth_scope_name(1u << 31));
    unsigned two = auth_scope_bit("tenants:read") | auth_scope_bit("tenants:write");
    assert_null(auth_scope_name(two));
}

static void test_scopes_parse_csv_sets_listed_bits(void **state)
{
    (void)state;
    unsigned bits = auth_scopes_parse_csv("tenants:read,sessions:write");
    assert_int_equal(bits, auth_scope_bit("tenants:read") | auth_scope_bit("sessions:write"));
    assert_int_equal(auth_scopes_parse_csv(""), 0);
    assert_int_equal(auth_scopes_parse_csv("sessions:read"), auth_scope_bit("sessions:read"));
}

static void test_scopes_parse_csv_ignores_unknown_and_empty_items(void **state)
{
    (void)state;
    assert_int_equal(auth_scopes_parse_csv("bogus,api_keys:read,,nope"),
                     auth_scope_bit("api_keys:read"));
    assert_int_equal(auth_scopes_parse_csv(",,,"), 0);
    assert_int_equal(auth_scopes_parse_csv("tenants:read,tenants:read"),
                     auth_scope_bit("tenants:read"));
}

static void test_scopes_parse_csv_of_all_scopes_sets_every_bit(void **state)
{
    (void)state;
    unsigned bits = auth_scopes_parse_csv("tenants:read,tenants:write,api_keys:read,"
                                          "api_keys:write,sessions:read,sessions:write,"
                                          "agent_tokens:write,webhooks:read,webhooks:write,"
                                          "audit:read,usage:read");
    assert_int_equal(__builtin_popcount(bits), N_SCOPES);
    for (int i = 0; i < N_SCOPES; i++)
        assert_true(bits & auth_scope_bit(all_scopes[i]));
}

static void test_scopes_pg_array_formats_braces_and_commas(void **state)
{
    (void)state;
    char out[256];
    auth_scopes_pg_array(auth_scope_bit("tenants:read") | auth_scope_bit("sessions:write"), out,
                         sizeof(out));
    assert_string_equal(out, "{tenants:read,sessions:write}");
    auth_scopes_pg_array(auth_scope_bit("api_keys:write"), out, sizeof(out));
    assert_string_equal(out, "{api_keys:write}");
    auth_scopes_pg_array(0, out, sizeof(out));
    assert_string_equal(out, "{}");
}

static void test_scopes_pg_array_round_trips_through_csv(void **state)
{
    (void)state;
    char out[256];
    unsigned all = 0;
    for (int i = 0; i < N_SCOPES; i++)
        all |= auth_scope_bit(all_scopes[i]);
    auth_scopes_pg_array(all, out, sizeof(out));
    assert_int_equal(out[0], '{');
    assert_int_equal(out[strlen(out) - 1], '}');
    out[strlen(out) - 1] = '\0';
    assert_int_equal(auth_scopes_parse_csv(out + 1), all);
}

static void test_scopes_pg_array_truncates_safely_in_small_buffer(void **state)
{
    (void)state;
    unsigned all = auth_scopes_parse_csv("tenants:read,tenants:write,api_keys:read,"
                                         "api_keys:write,sessions:read,sessions:write,"
                                         "agent_tokens:write");
    for (size_t size = 1; size < 40; size++) {
        char *out = malloc(size); /* exact size so ASan sees any overflow */
        assert_non_null(out);
        auth_scopes_pg_array(all, out, size);
        assert_true(strlen(out) < size);
        free(out);
    }
}

static void test_scopes_json_lists_names(void **state)
{
    (void)state;
    json_t *a = auth_scopes_json(auth_scope_bit("sessions:read") | auth_scope_bit("tenants:read"));
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "tenants:read");
    assert_string_equal(json_string_value(json_array_get(a, 1)), "sessions:read");
    json_decref(a);
    a = auth_scopes_json(0);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);
}

static void test_origin_allowed_on_exact_match(void **state)
{
    (void)state;
    const char *list = "[\"https://a.example\",\"http://localhost:3000\"]";
    assert_int_equal(auth_origin_allowed(list, "https://a.example"), 1);
    assert_int_equal(auth_origin_allowed(list, "http://localhost:3000"), 1);
}

static void test_origin_match_is_case_insensitive(void **state)
{
    (void)state;
    assert_int_equal(auth_origin_allowed("[\"https://A.Example\"]", "https://a.example"), 1);
    assert_int_equal(auth_origin_allowed("[\"https://a.example\"]", "HTTPS://A.EXAMPLE"), 1);
}

static void test_origin_prefix_or_suffix_is_not_a_match(void **state)
{
    (void)state;
    const char *list = "[\"https://a.example\"]";
    assert_int_equal(auth_origin_allowed(list, "https://a.example.evil.com"), 0);
    assert_int_equal(auth_origin_allowed(list, "https://a.exampl"), 0);
    assert_int_equal(auth_origin_allowed(list, "https://evil-a.example"), 0);
    assert_int_equal(auth_origin_allowed(list, "https://a.example:8443"), 0);
    assert_int_equal(auth_origin_allowed(list, "http://a.example"), 0);
    assert_int_equal(auth_origin_allowed(list, ""), 0);
}

static void test_origin_not_allowed_by_empty_or_non_string_list(void **state)
{
    (void)state;
    assert_int_equal(auth_origin_allowed("[]", "https://a.example"), 0);
    assert_int_equal(auth_origin_allowed("[1,null,{}]", "https://a.example"), 0);
    assert_int_equal(auth_origin_allowed("{\"https://a.example\":1}", "https://a.example"), 0);
    assert_int_equal(auth_origin_allowed("\"https://a.example\"", "https://a.example"), 0);
}

static void test_origin_null_or_invalid_json_is_not_allowed(void **state)
{
    (void)state;
    assert_int_equal(auth_origin_allowed(NULL, "https://a.example"), 0);
    assert_int_equal(auth_origin_allowed("[\"https://a.example\"]", NULL), 0);
    assert_int_equal(auth_origin_allowed("[\"https://a.example\"", "https://a.example"), 0);
    assert_int_equal(auth_origin_allowed("not json", "https://a.example"), 0);
    assert_int_equal(auth_origin_allowed("", "https://a.example"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_secret_is_64_lowercase_hex),
        cmocka_unit_test(test_hash_secret_is_deterministic_for_same_secret_and_key),
        cmocka_unit_test(test_hash_secret_is_hmac_sha256_keyed_by_config),
        cmocka_unit_test(test_hash_secret_differs_with_another_config_key),
        cmocka_unit_test(test_hash_secret_differs_for_secrets_one_char_apart),
        cmocka_unit_test(test_scope_bit_and_name_round_trip_for_all_scopes),
        cmocka_unit_test(test_unknown_scope_name_maps_to_zero),
        cmocka_unit_test(test_scope_name_of_non_scope_bit_is_null),
        cmocka_unit_test(test_scopes_parse_csv_sets_listed_bits),
        cmocka_unit_test(test_scopes_parse_csv_ignores_unknown_and_empty_items),
        cmocka_unit_test(test_scopes_parse_csv_of_all_scopes_sets_every_bit),
        cmocka_unit_test(test_scopes_pg_array_formats_braces_and_commas),
        cmocka_unit_test(test_scopes_pg_array_round_trips_through_csv),
        cmocka_unit_test(test_scopes_pg_array_truncates_safely_in_small_buffer),
        cmocka_unit_test(test_scopes_json_lists_names),
        cmocka_unit_test(test_origin_allowed_on_exact_match),
        cmocka_unit_test(test_origin_match_is_case_insensitive),
        cmocka_unit_test(test_origin_prefix_or_suffix_is_not_a_match),
        cmocka_unit_test(test_origin_not_allowed_by_empty_or_non_string_list),
        cmocka_unit_test(test_origin_null_or_invalid_json_is_not_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
