/* core/base/crypto.c: HMAC/SHA-256 against published vectors, constant-time compare, hex codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/base/crypto.h"

static void test_hmac_sha256_matches_rfc4231_case_2(void **state)
{
    (void)state;
    const char *key = "Jefe", *msg = "what do ya want for nothing?";
    char out[CRYPTO_HEX_SHA256];
    assert_int_equal(crypto_hmac_hex(key, strlen(key), msg, strlen(msg), out), 0);
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_hmac_sha256_matches_rfc4231_case_1(void **state)
{
    (void)state;
    unsigned char key[20];
    memset(key, 0x0b, sizeof(key));
    const char *msg = "Hi There";
    char out[CRYPTO_HEX_SHA256];
    assert_int_equal(crypto_hmac_hex(key, sizeof(key), msg, strlen(msg), out), 0);
    assert_string_equal(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

static void test_hmac_sha256_changes_with_key_and_message(void **state)
{
    (void)state;
    char a[CRYPTO_HEX_SHA256], b[CRYPTO_HEX_SHA256], c[CRYPTO_HEX_SHA256];
    assert_int_equal(crypto_hmac_hex("k1", 2, "msg", 3, a), 0);
    assert_int_equal(crypto_hmac_hex("k2", 2, "msg", 3, b), 0);
    assert_int_equal(crypto_hmac_hex("k1", 2, "msh", 3, c), 0);
    assert_string_not_equal(a, b);
    assert_string_not_equal(a, c);
}

static void test_sha256_of_abc_matches_fips_vector(void **state)
{
    (void)state;
    char out[CRYPTO_HEX_SHA256];
    assert_int_equal(crypto_sha256_hex("abc", 3, out), 0);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_sha256_of_empty_input_matches_vector(void **state)
{
    (void)state;
    char out[CRYPTO_HEX_SHA256];
    assert_int_equal(crypto_sha256_hex("", 0, out), 0);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_crypto_equal_true_for_identical_buffers(void **state)
{
    (void)state;
    unsigned char a[64], b[64];
    for (int i = 0; i < 64; i++)
        a[i] = b[i] = (unsigned char)(i * 7);
    assert_int_equal(crypto_equal(a, b, sizeof(a)), 1);
    assert_int_equal(crypto_equal(a, b, 0), 1);
}

static void test_crypto_equal_false_for_one_bit_difference_at_end(void **state)
{
    (void)state;
    unsigned char a[64], b[64];
    for (int i = 0; i < 64; i++)
        a[i] = b[i] = (unsigned char)(i * 7);
    b[63] ^= 0x01;
    assert_int_equal(crypto_equal(a, b, sizeof(a)), 0);
    b[63] ^= 0x01;
    b[0] ^= 0x80;
    assert_int_equal(crypto_equal(a, b, sizeof(a)), 0);
    /* only the first len bytes are compared */
    assert_int_equal(crypto_equal(a + 1, b + 1, 63), 1);
}

static void test_hex_encode_is_lowercase_and_nul_terminated(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0xff};
    char out[2 * sizeof(in) + 1];
    memset(out, 'x', sizeof(out));
    crypto_hex_encode(in, sizeof(in), out);
    assert_string_equal(out, "0001abcdefff");
    crypto_hex_encode(in, 0, out);
    assert_string_equal(out, "");
}

static void test_hex_round_trip_preserves_all_byte_values(void **state)
{
    (void)state;
    unsigned char in[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)i;
    crypto_hex_encode(in, sizeof(in), hex);
    assert_int_equal(strlen(hex), 512);
    memset(back, 0, sizeof(back));
    assert_int_equal(crypto_hex_decode(hex, back, sizeof(back)), 256);
    assert_memory_equal(in, back, sizeof(in));
}

static void test_hex_decode_accepts_uppercase(void **state)
{
    (void)state;
    unsigned char out[4];
    assert_int_equal(crypto_hex_decode("DEADbeef", out, sizeof(out)), 4);
    const unsigned char want[] = {0xde, 0xad, 0xbe, 0xef};
    assert_memory_equal(out, want, 4);
}

static void test_hex_decode_rejects_odd_length(void **state)
{
    (void)state;
    unsigned char out[8];
    assert_int_equal(crypto_hex_decode("abc", out, sizeof(out)), -1);
    assert_int_equal(crypto_hex_decode("a", out, sizeof(out)), -1);
}

static void test_hex_decode_rejects_non_hex(void **state)
{
    (void)state;
    unsigned char out[8];
    assert_int_equal(crypto_hex_decode("zz", out, sizeof(out)), -1);
    assert_int_equal(crypto_hex_decode("0g", out, sizeof(out)), -1);
    assert_int_equal(crypto_hex_decode("00 1", out, sizeof(out)), -1);
    assert_int_equal(crypto_hex_decode("-1", out, sizeof(out)), -1);
    assert_int_equal(crypto_hex_decode("0x12", out, sizeof(out)), -1);
}

static void test_hex_decode_rejects_output_too_long_without_overflow(void **state)
{
    (void)state;
    unsigned char out[5];
    memset(out, 0xaa, sizeof(out));
    /* 4 bytes of hex into a 3-byte window: refused, and byte 3 is untouched */
    assert_int_equal(crypto_hex_decode("01020304", out, 3), -1);
    assert_int_equal(out[3], 0xaa);
    assert_int_equal(crypto_hex_decode("010203", out, 3), 3);
    assert_int_equal(out[3], 0xaa);
}

static void test_hex_decode_empty_string_decodes_zero_bytes(void **state)
{
    (void)state;
    unsigned char out[1];
    assert_int_equal(crypto_hex_decode("", out, sizeof(out)), 0);
}

/* crypto_seal picks its nonce at random, so no fixed vector applies: the tests check what a
 * caller relies on (a round trip, a fresh nonce, refusals). */
static void test_seal_round_trip_with_aad(void **state)
{
    (void)state;
    unsigned char key[32], sealed[64 + CRYPTO_SEAL_OVERHEAD], opened[64];
    memset(key, 7, sizeof(key));
    const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    int n = crypto_seal(key, secret, sizeof(secret), "whe_1", 5, sealed, sizeof(sealed));
    assert_int_equal(n, (int)sizeof(secret) + CRYPTO_SEAL_OVERHEAD);
    assert_int_equal(crypto_open(key, sealed, (size_t)n, "whe_1", 5, opened, sizeof(opened)),
                     (int)sizeof(secret));
    assert_memory_equal(opened, secret, sizeof(secret));
}

static void test_seal_uses_a_fresh_nonce_each_time(void **state)
{
    (void)state;
    unsigned char key[32] = {1}, a[16 + CRYPTO_SEAL_OVERHEAD], b[16 + CRYPTO_SEAL_OVERHEAD];
    assert_int_equal(crypto_seal(key, "0123456789abcdef", 16, NULL, 0, a, sizeof(a)),
                     (int)sizeof(a));
    assert_int_equal(crypto_seal(key, "0123456789abcdef", 16, NULL, 0, b, sizeof(b)),
                     (int)sizeof(b));
    assert_memory_not_equal(a, b, 12);
    assert_memory_not_equal(a + 12, b + 12, 16);
}

static void test_open_refuses_wrong_key_aad_or_any_flipped_bit(void **state)
{
    (void)state;
    unsigned char key[32] = {1}, other[32] = {2}, sealed[8 + CRYPTO_SEAL_OVERHEAD], out[8];
    int n = crypto_seal(key, "secret!!", 8, "whe_1", 5, sealed, sizeof(sealed));
    assert_int_equal(n, (int)sizeof(sealed));
    assert_int_equal(crypto_open(other, sealed, (size_t)n, "whe_1", 5, out, sizeof(out)), -1);
    assert_int_equal(crypto_open(key, sealed, (size_t)n, "whe_2", 5, out, sizeof(out)), -1);
    assert_int_equal(crypto_open(key, sealed, (size_t)n, NULL, 0, out, sizeof(out)), -1);
    for (int i = 0; i < n * 8; i++) {
        sealed[i / 8] ^= (unsigned char)(1u << (i % 8));
        assert_int_equal(crypto_open(key, sealed, (size_t)n, "whe_1", 5, out, sizeof(out)), -1);
        sealed[i / 8] ^= (unsigned char)(1u << (i % 8));
    }
    assert_int_equal(crypto_open(key, sealed, (size_t)n, "whe_1", 5, out, sizeof(out)), 8);
}

static void test_seal_and_open_refuse_short_buffers(void **state)
{
    (void)state;
    unsigned char key[32] = {1}, sealed[8 + CRYPTO_SEAL_OVERHEAD], out[8];
    assert_int_equal(crypto_seal(key, "secret!!", 8, NULL, 0, sealed, sizeof(sealed) - 1), -1);
    int n = crypto_seal(key, "secret!!", 8, NULL, 0, sealed, sizeof(sealed));
    assert_int_equal(crypto_open(key, sealed, (size_t)n, NULL, 0, out, 7), -1);
    assert_int_equal(crypto_open(key, sealed, CRYPTO_SEAL_OVERHEAD - 1, NULL, 0, out, 8), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hmac_sha256_matches_rfc4231_case_2),
        cmocka_unit_test(test_hmac_sha256_matches_rfc4231_case_1),
        cmocka_unit_test(test_hmac_sha256_changes_with_key_and_message),
        cmocka_unit_test(test_sha256_of_abc_matches_fips_vector),
        cmocka_unit_test(test_sha256_of_empty_input_matches_vector),
        cmocka_unit_test(test_crypto_equal_true_for_identical_buffers),
        cmocka_unit_test(test_crypto_equal_false_for_one_bit_difference_at_end),
        cmocka_unit_test(test_hex_encode_is_lowercase_and_nul_terminated),
        cmocka_unit_test(test_hex_round_trip_preserves_all_byte_values),
        cmocka_unit_test(test_hex_decode_accepts_uppercase),
        cmocka_unit_test(test_hex_decode_rejects_odd_length),
        cmocka_unit_test(test_hex_decode_rejects_non_hex),
        cmocka_unit_test(test_hex_decode_rejects_output_too_long_without_overflow),
        cmocka_unit_test(test_hex_decode_empty_string_decodes_zero_bytes),
        cmocka_unit_test(test_seal_round_trip_with_aad),
        cmocka_unit_test(test_seal_uses_a_fresh_nonce_each_time),
        cmocka_unit_test(test_open_refuses_wrong_key_aad_or_any_flipped_bit),
        cmocka_unit_test(test_seal_and_open_refuse_short_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
