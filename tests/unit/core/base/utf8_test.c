/* core/base/utf8.c: RFC 3629 validation, including the sequences attackers use to smuggle bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/base/utf8.h"

/* Validates len bytes copied into an exact-size heap block, so that any read past the end is
 * caught by AddressSanitizer in the sanitizer build. */
static int valid(const char *bytes, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, bytes, len);
    int r = utf8_valid(p, len);
    free(p);
    return r;
}

#define VALID(lit) valid(lit, sizeof(lit) - 1)

static void test_ascii_is_valid(void **state)
{
    (void)state;
    assert_int_equal(VALID("hello, world"), 1);
    assert_int_equal(VALID("\x01\x7f"), 1);
    assert_int_equal(VALID(""), 1);
}

static void test_two_byte_sequences_are_valid(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xc2\x80"), 1);    /* U+0080, smallest */
    assert_int_equal(VALID("caf\xc3\xa9"), 1); /* café */
    assert_int_equal(VALID("\xdf\xbf"), 1);    /* U+07FF, largest */
}

static void test_three_byte_sequences_are_valid(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xe0\xa0\x80"), 1); /* U+0800, smallest */
    assert_int_equal(VALID("\xe2\x82\xac"), 1); /* € */
    assert_int_equal(VALID("\xed\x9f\xbf"), 1); /* U+D7FF, just below the surrogates */
    assert_int_equal(VALID("\xee\x80\x80"), 1); /* U+E000, just above them */
    assert_int_equal(VALID("\xef\xbf\xbf"), 1); /* U+FFFF */
}

static void test_four_byte_sequences_are_valid(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xf0\x90\x80\x80"), 1); /* U+10000, smallest */
    assert_int_equal(VALID("\xf0\x9f\x98\x80"), 1); /* emoji */
    assert_int_equal(VALID("\xf4\x8f\xbf\xbf"), 1); /* U+10FFFF, largest */
}

static void test_mixed_text_at_buffer_end_is_valid(void **state)
{
    (void)state;
    assert_int_equal(VALID("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"), 1);
    assert_int_equal(VALID("a\xf0\x9f\x98\x80"), 1); /* multi-byte sequence ending exactly at len */
}

static void test_overlong_encodings_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xc0\x80"), 0);         /* NUL, the classic smuggling trick */
    assert_int_equal(VALID("\xc1\xbf"), 0);         /* U+007F in two bytes */
    assert_int_equal(VALID("\xe0\x80\x80"), 0);     /* NUL in three bytes */
    assert_int_equal(VALID("\xe0\x9f\xbf"), 0);     /* U+07FF in three bytes */
    assert_int_equal(VALID("\xf0\x80\x80\x80"), 0); /* NUL in four bytes */
    assert_int_equal(VALID("\xf0\x8f\xbf\xbf"), 0); /* U+FFFF in four bytes */
    assert_int_equal(VALID("\xc0\xaf"), 0);         /* overlong '/' */
}

static void test_surrogates_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xed\xa0\x80"), 0);             /* U+D800 */
    assert_int_equal(VALID("\xed\xbf\xbf"), 0);             /* U+DFFF */
    assert_int_equal(VALID("\xed\xa0\xbd\xed\xb8\x80"), 0); /* CESU-8 surrogate pair */
}

static void test_code_points_above_10ffff_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xf4\x90\x80\x80"), 0); /* U+110000 */
    assert_int_equal(VALID("\xf5\x80\x80\x80"), 0);
    assert_int_equal(VALID("\xf7\xbf\xbf\xbf"), 0);
    assert_int_equal(VALID("\xf8\x88\x80\x80\x80"), 0);     /* old 5-byte form */
    assert_int_equal(VALID("\xfc\x84\x80\x80\x80\x80"), 0); /* old 6-byte form */
}

static void test_truncated_sequences_at_buffer_end_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xc3"), 0);
    assert_int_equal(VALID("abc\xc3"), 0);
    assert_int_equal(VALID("\xe2\x82"), 0);
    assert_int_equal(VALID("\xe2"), 0);
    assert_int_equal(VALID("\xf0\x9f\x98"), 0);
    assert_int_equal(VALID("abc\xf0\x9f"), 0);
    /* a valid buffer cut short by len: only len bytes count */
    assert_int_equal(valid("\xe2\x82\xac", 2), 0);
    assert_int_equal(valid("\xf0\x9f\x98\x80", 3), 0);
}

static void test_truncated_sequences_mid_buffer_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xc3z"), 0);
    assert_int_equal(VALID("\xe2\x82z"), 0);
    assert_int_equal(VALID("\xf0\x9f\x98z"), 0);
    assert_int_equal(VALID("\xe2\xc3\xa9"), 0); /* a new lead byte where a continuation belongs */
}

static void test_stray_continuation_bytes_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("\x80"), 0);
    assert_int_equal(VALID("a\xbf"), 0);
    assert_int_equal(VALID("\xc3\xa9\xa9"), 0); /* one continuation too many */
}

static void test_nul_byte_inside_is_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("ab\0cd"), 0);
    assert_int_equal(VALID("\0"), 0);
    assert_int_equal(VALID("abc\0"), 0);
    assert_int_equal(VALID("\xc3\0"), 0);
}

static void test_invalid_lead_bytes_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xff"), 0);
    assert_int_equal(VALID("\xfe"), 0);
    assert_int_equal(VALID("abc\xff"), 0);
    assert_int_equal(VALID("\xff\xbf\xbf\xbf"), 0);
}

static void test_every_single_byte_above_7f_alone_is_rejected(void **state)
{
    (void)state;
    for (int b = 0x80; b <= 0xff; b++) {
        char c = (char)b;
        assert_int_equal(valid(&c, 1), 0);
    }
    for (int b = 0x01; b < 0x80; b++) {
        char c = (char)b;
        assert_int_equal(valid(&c, 1), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_is_valid),
        cmocka_unit_test(test_two_byte_sequences_are_valid),
        cmocka_unit_test(test_three_byte_sequences_are_valid),
        cmocka_unit_test(test_four_byte_sequences_are_valid),
        cmocka_unit_test(test_mixed_text_at_buffer_end_is_valid),
        cmocka_unit_test(test_overlong_encodings_are_rejected),
        cmocka_unit_test(test_surrogates_are_rejected),
        cmocka_unit_test(test_code_points_above_10ffff_are_rejected),
        cmocka_unit_test(test_truncated_sequences_at_buffer_end_are_rejected),
        cmocka_unit_test(test_truncated_sequences_mid_buffer_are_rejected),
        cmocka_unit_test(test_stray_continuation_bytes_are_rejected),
        cmocka_unit_test(test_nul_byte_inside_is_rejected),
        cmocka_unit_test(test_invalid_lead_bytes_are_rejected),
        cmocka_unit_test(test_every_single_byte_above_7f_alone_is_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
