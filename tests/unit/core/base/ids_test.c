/* core/base/ids.c: id format and validation, time ordering, secrets, join codes, randomness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/base/ids.h"

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_ids_new_has_prefix_underscore_and_26_crockford_chars(void **state)
{
    (void)state;
    char id[IDS_MAX_LEN];
    assert_int_equal(ids_new("ses", id, sizeof(id)), 0);
    assert_int_equal(strlen(id), 3 + 1 + IDS_BODY_LEN);
    assert_memory_equal(id, "ses_", 4);
    for (size_t i = 4; i < strlen(id); i++)
        assert_non_null(strchr(crockford, id[i]));
    assert_true(id[4] <= '7');
    assert_int_equal(ids_valid("ses", id), 1);
}

static void test_ids_new_refuses_small_buffer_and_long_prefix(void **state)
{
    (void)state;
    char id[IDS_MAX_LEN];
    assert_int_equal(ids_new("ses", id, 3 + 1 + IDS_BODY_LEN), -1); /* no room for NUL */
    assert_int_equal(ids_new("ses", id, 3 + 1 + IDS_BODY_LEN + 1), 0);
    assert_int_equal(ids_new("abcdefghijklm", id, sizeof(id)), -1); /* 13 > 12 */
    assert_int_equal(ids_new("abcdefghijkl", id, sizeof(id)), 0);
    assert_int_equal(ids_valid("abcdefghijkl", id), 1);
}

static void test_ids_valid_accepts_known_good_id(void **state)
{
    (void)state;
    assert_int_equal(ids_valid("ses", "ses_01M881EV6E9182A88VPH0A13T5"), 1);
    assert_int_equal(ids_valid("ten", "ten_7ZZZZZZZZZZZZZZZZZZZZZZZZZ"), 1);
}

static void test_ids_valid_rejects_wrong_prefix(void **state)
{
    (void)state;
    char id[IDS_MAX_LEN];
    assert_int_equal(ids_new("ses", id, sizeof(id)), 0);
    assert_int_equal(ids_valid("ten", id), 0);
    assert_int_equal(ids_valid("se", id), 0);   /* "se" then 's' where '_' is expected */
    assert_int_equal(ids_valid("sess", id), 0); /* longer prefix */
    assert_int_equal(ids_valid("ses", "ses-01M881EV6E9182A88VPH0A13T5"), 0);
    assert_int_equal(ids_valid("ses", "01M881EV6E9182A88VPH0A13T5"), 0);
    assert_int_equal(ids_valid("ses", "SES_01M881EV6E9182A88VPH0A13T5"), 0);
}

static void test_ids_valid_rejects_wrong_length(void **state)
{
    (void)state;
    assert_int_equal(ids_valid("ses", "ses_01M881EV6E9182A88VPH0A13T"), 0);   /* 25 */
    assert_int_equal(ids_valid("ses", "ses_01M881EV6E9182A88VPH0A13T55"), 0); /* 27 */
    assert_int_equal(ids_valid("ses", "ses_"), 0);
    assert_int_equal(ids_valid("ses", ""), 0);
}

static void test_ids_valid_rejects_lowercase(void **state)
{
    (void)state;
    assert_int_equal(ids_valid("ses", "ses_01m881ev6e9182a88vph0a13t5"), 0);
    assert_int_equal(ids_valid("ses", "ses_01M881EV6E9182A88VPH0A13t5"), 0);
}

static void test_ids_valid_rejects_excluded_letters_ilou(void **state)
{
    (void)state;
    const char *bad = "ILOU";
    for (int i = 0; bad[i]; i++) {
        char id[] = "ses_01M881EV6E9182A88VPH0A13T5";
        id[20] = bad[i];
        assert_int_equal(ids_valid("ses", id), 0);
    }
    assert_int_equal(ids_valid("ses", "ses_01M881EV6E9182A88VPH0A13T!"), 0);
    assert_int_equal(ids_valid("ses", "ses_01M881EV6E9182A88VPH0A13T "), 0);
}

static void test_ids_valid_rejects_null(void **state)
{
    (void)state;
    assert_int_equal(ids_valid("ses", NULL), 0);
    assert_int_equal(ids_valid(NULL, "ses_01M881EV6E9182A88VPH0A13T5"), 0);
}

static void test_ids_valid_rejects_first_char_above_7(void **state)
{
    (void)state;
    assert_int_equal(ids_valid("ses", "ses_71M881EV6E9182A88VPH0A13T5"), 1);
    assert_int_equal(ids_valid("ses", "ses_81M881EV6E9182A88VPH0A13T5"), 0);
    assert_int_equal(ids_valid("ses", "ses_Z1M881EV6E9182A88VPH0A13T5"), 0);
}

static void test_ids_new_at_encodes_time_in_first_ten_chars(void **state)
{
    (void)state;
    char id[IDS_MAX_LEN];
    assert_int_equal(ids_new_at("x", 0, id, sizeof(id)), 0);
    assert_memory_equal(id, "x_0000000000", 12);
    assert_int_equal(ids_new_at("x", 31, id, sizeof(id)), 0);
    assert_memory_equal(id, "x_000000000Z", 12);
    assert_int_equal(ids_new_at("x", 32, id, sizeof(id)), 0);
    assert_memory_equal(id, "x_0000000010", 12);
    /* the largest 48-bit time still yields a valid id */
    assert_int_equal(ids_new_at("x", (1ull << 48) - 1, id, sizeof(id)), 0);
    assert_memory_equal(id, "x_7ZZZZZZZZZ", 12);
    assert_int_equal(ids_valid("x", id), 1);
}

static void test_ids_new_at_sorts_lexicographically_by_time(void **state)
{
    (void)state;
    enum { N = 2000 };
    char(*ids)[IDS_MAX_LEN] = calloc(N, IDS_MAX_LEN);
    assert_non_null(ids);
    uint64_t ms = 1700000000000ull;
    for (int i = 0; i < N; i++) {
        ms += 1 + (uint64_t)(i % 7) * 997; /* strictly increasing, varied steps */
        assert_int_equal(ids_new_at("ses", ms, ids[i], IDS_MAX_LEN), 0);
    }
    for (int i = 1; i < N; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    /* Crossing a 5-bit boundary and far-apart times still order correctly. */
    char a[IDS_MAX_LEN], b[IDS_MAX_LEN];
    assert_int_equal(ids_new_at("ses", 31, a, sizeof(a)), 0);
    assert_int_equal(ids_new_at("ses", 32, b, sizeof(b)), 0);
    assert_true(strcmp(a, b) < 0);
    assert_int_equal(ids_new_at("ses", 1000, a, sizeof(a)), 0);
    assert_int_equal(ids_new_at("ses", 4102444800000ull, b, sizeof(b)), 0); /* year 2100 */
    assert_true(strcmp(a, b) < 0);
    free(ids);
}

static void test_ids_new_10k_ids_are_unique(void **state)
{
    (void)state;
    enum { N = 10000 };
    char(*ids)[IDS_MAX_LEN] = calloc(N, IDS_MAX_LEN);
    assert_non_null(ids);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ids_new("ses", ids[i], IDS_MAX_LEN), 0);
        assert_int_equal(ids_valid("ses", ids[i]), 1);
    }
    qsort(ids, N, IDS_MAX_LEN, cmp_id);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void test_ids_new_at_same_time_differs_in_random_part(void **state)
{
    (void)state;
    char a[IDS_MAX_LEN], b[IDS_MAX_LEN];
    assert_int_equal(ids_new_at("ses", 1234567, a, sizeof(a)), 0);
    assert_int_equal(ids_new_at("ses", 1234567, b, sizeof(b)), 0);
    assert_memory_equal(a, b, 4 + 10);
    assert_string_not_equal(a + 14, b + 14);
}

static void test_ids_secret_has_prefix_52_lowercase_base32_chars(void **state)
{
    (void)state;
    char s[64];
    assert_int_equal(ids_secret("sk_live_", s, sizeof(s)), 0);
    assert_int_equal(strlen(s), 8 + IDS_SECRET_LEN);
    assert_memory_equal(s, "sk_live_", 8);
    for (size_t i = 8; i < strlen(s); i++)
        assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", s[i]));
}

static void test_ids_secret_refuses_small_buffer(void **state)
{
    (void)state;
    char s[64];
    assert_int_equal(ids_secret("pk_", s, 3 + IDS_SECRET_LEN), -1);
    assert_int_equal(ids_secret("pk_", s, 3 + IDS_SECRET_LEN + 1), 0);
    assert_int_equal(strlen(s), 3 + IDS_SECRET_LEN);
}

static void test_ids_secret_values_are_unique_and_use_whole_alphabet(void **state)
{
    (void)state;
    enum { N = 2000 };
    char **s = calloc(N, sizeof(*s));
    assert_non_null(s);
    int seen[128] = {0};
    for (int i = 0; i < N; i++) {
        s[i] = malloc(IDS_SECRET_LEN + 4);
        assert_non_null(s[i]);
        assert_int_equal(ids_secret("sk_", s[i], IDS_SECRET_LEN + 4), 0);
        for (const char *p = s[i] + 3; *p; p++)
            seen[(unsigned char)*p]++;
    }
    qsort(s, N, sizeof(*s), cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(s[i - 1], s[i]);
    /* 104,000 chars over 32 symbols: each expected 3250 times */
    for (const char *c = "abcdefghijklmnopqrstuvwxyz234567"; *c; c++) {
        assert_true(seen[(unsigned char)*c] > 2700);
        assert_true(seen[(unsigned char)*c] < 3800);
    }
    for (int i = 0; i < N; i++)
        free(s[i]);
    free(s);
}

static void test_ids_join_code_is_always_six_digits(void **state)
{
    (void)state;
    for (int i = 0; i < 5000; i++) {
        char code[7];
        memset(code, 'x', sizeof(code));
        assert_int_equal(ids_join_code(code), 0);
        assert_int_equal(strlen(code), 6);
        for (int k = 0; k < 6; k++)
            assert_true(code[k] >= '0' && code[k] <= '9');
    }
}

static void test_ids_join_code_digits_are_roughly_uniform(void **state)
{
    (void)state;
    enum { N = 60000 };
    int first[10] = {0}, last[10] = {0};
    for (int i = 0; i < N; i++) {
        char code[7];
        assert_int_equal(ids_join_code(code), 0);
        first[code[0] - '0']++;
        last[code[5] - '0']++;
    }
    /* expected 6000 each, sd ~73: a band of +-600 is > 8 sigma */
    for (int d = 0; d < 10; d++) {
        assert_true(first[d] > 5400 && first[d] < 6600);
        assert_true(last[d] > 5400 && last[d] < 6600);
    }
}

/* A scripted random source for ids_join_code_with: hands out the 32-bit values of `script` in
 * order, then fails. Single-threaded tests only (static state). */
static const uint32_t *script;
static size_t script_len, script_pos;

static int scripted_random(void *buf, size_t len)
{
    if (len != sizeof(uint32_t) || script_pos >= script_len)
        return -1;
    memcpy(buf, &script[script_pos++], sizeof(uint32_t));
    return 0;
}

static void play(const uint32_t *values, size_t n)
{
    script = values;
    script_len = n;
    script_pos = 0;
}

/* The largest multiple of 10^6 that fits in 32 bits: draws from here up to UINT32_MAX would make
 * codes 000000..967295 more likely than the others if they were used. */
#define JOIN_LIMIT 4294000000u

static void test_ids_join_code_redraws_values_of_the_biased_tail(void **state)
{
    (void)state;
    char code[7];
    const uint32_t tail_then_ok[] = {JOIN_LIMIT, JOIN_LIMIT + 1, UINT32_MAX - 1, UINT32_MAX,
                                     123456};
    play(tail_then_ok, 5);
    assert_int_equal(ids_join_code_with(scripted_random, code), 0);
    assert_string_equal(code, "123456");
    assert_int_equal(script_pos, 5); /* the four tail values were drawn and thrown away */

    const uint32_t just_below[] = {JOIN_LIMIT - 1};
    play(just_below, 1);
    assert_int_equal(ids_join_code_with(scripted_random, code), 0);
    assert_string_equal(code, "999999");

    const uint32_t zero_pads[] = {42};
    play(zero_pads, 1);
    assert_int_equal(ids_join_code_with(scripted_random, code), 0);
    assert_string_equal(code, "000042");

    const uint32_t only_tail[] = {UINT32_MAX};
    play(only_tail, 1);
    assert_int_equal(ids_join_code_with(scripted_random, code), -1); /* the source failed */
}

/* Every 32-bit value from 4,293,000,000 to UINT32_MAX, in order. */
#define WINDOW_START 4293000000u
static uint64_t window_next;

static int window_random(void *buf, size_t len)
{
    if (len != sizeof(uint32_t) || window_next > UINT32_MAX)
        return -1;
    uint32_t v = (uint32_t)window_next++;
    memcpy(buf, &v, sizeof(v));
    return 0;
}

static void test_ids_join_code_is_uniform_over_the_top_of_the_range(void **state)
{
    (void)state;
    /* The last 1,967,296 draws: a full round of 10^6 codes, then the 967,296-value tail. Fed
     * through the generator they must give each code exactly once; with plain modulo, codes
     * below 967296 would come out twice (the bias, magnified to where a test sees it). */
    unsigned char *seen = calloc(1000000, 1);
    assert_non_null(seen);
    window_next = WINDOW_START;
    char code[7];
    long codes = 0, twice = 0;
    while (ids_join_code_with(window_random, code) == 0) {
        long c = strtol(code, NULL, 10);
        twice += seen[c]++ > 0;
        codes++;
    }
    assert_int_equal(codes, 1000000);
    assert_int_equal(twice, 0);
    free(seen);
}

static void test_ids_random_fills_whole_buffer(void **state)
{
    (void)state;
    enum { LEN = 4096 };
    unsigned char *a = calloc(1, LEN), *b = calloc(1, LEN);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ids_random(a, LEN), 0);
    assert_int_equal(ids_random(b, LEN), 0);
    assert_memory_not_equal(a, b, LEN);
    /* zero bytes should be ~1/256 of output; an unfilled tail would push this far up */
    int zeros = 0;
    for (int i = 0; i < LEN; i++)
        zeros += a[i] == 0;
    assert_true(zeros < 60);
    /* the last 32 bytes are written too */
    int tail_nonzero = 0;
    for (int i = LEN - 32; i < LEN; i++)
        tail_nonzero += a[i] != 0;
    assert_true(tail_nonzero > 16);
    assert_int_equal(ids_random(a, 0), 0);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids_new_has_prefix_underscore_and_26_crockford_chars),
        cmocka_unit_test(test_ids_new_refuses_small_buffer_and_long_prefix),
        cmocka_unit_test(test_ids_valid_accepts_known_good_id),
        cmocka_unit_test(test_ids_valid_rejects_wrong_prefix),
        cmocka_unit_test(test_ids_valid_rejects_wrong_length),
        cmocka_unit_test(test_ids_valid_rejects_lowercase),
        cmocka_unit_test(test_ids_valid_rejects_excluded_letters_ilou),
        cmocka_unit_test(test_ids_valid_rejects_null),
        cmocka_unit_test(test_ids_valid_rejects_first_char_above_7),
        cmocka_unit_test(test_ids_new_at_encodes_time_in_first_ten_chars),
        cmocka_unit_test(test_ids_new_at_sorts_lexicographically_by_time),
        cmocka_unit_test(test_ids_new_10k_ids_are_unique),
        cmocka_unit_test(test_ids_new_at_same_time_differs_in_random_part),
        cmocka_unit_test(test_ids_secret_has_prefix_52_lowercase_base32_chars),
        cmocka_unit_test(test_ids_secret_refuses_small_buffer),
        cmocka_unit_test(test_ids_secret_values_are_unique_and_use_whole_alphabet),
        cmocka_unit_test(test_ids_join_code_is_always_six_digits),
        cmocka_unit_test(test_ids_join_code_digits_are_roughly_uniform),
        cmocka_unit_test(test_ids_join_code_redraws_values_of_the_biased_tail),
        cmocka_unit_test(test_ids_join_code_is_uniform_over_the_top_of_the_range),
        cmocka_unit_test(test_ids_random_fills_whole_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
