/* core/base/passwd: Argon2id hashing of console users' passwords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "core/base/passwd.h"

static void test_hash_then_verify(void **state)
{
    (void)state;
    char h[PASSWD_ENCODED_MAX];
    const char *pw = "correct horse battery";
    assert_int_equal(passwd_hash(pw, strlen(pw), h, sizeof(h)), PASSWD_OK);
    assert_true(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
    assert_int_equal(passwd_verify(h, pw, strlen(pw)), 1);
    assert_int_equal(passwd_verify(h, "correct horse batterY", strlen(pw)), 0);
    assert_int_equal(passwd_verify(h, pw, strlen(pw) - 1), 0);
    assert_int_equal(passwd_needs_rehash(h), 0);
}

static void test_each_hash_has_its_own_salt(void **state)
{
    (void)state;
    char a[PASSWD_ENCODED_MAX], b[PASSWD_ENCODED_MAX];
    assert_int_equal(passwd_hash("same password", 13, a, sizeof(a)), PASSWD_OK);
    assert_int_equal(passwd_hash("same password", 13, b, sizeof(b)), PASSWD_OK);
    assert_string_not_equal(a, b);
    assert_int_equal(passwd_verify(b, "same password", 13), 1);
}

static void test_lengths(void **state)
{
    (void)state;
    char h[PASSWD_ENCODED_MAX], big[PASSWD_MAX_LEN + 2];
    assert_int_equal(passwd_hash("short", 5, h, sizeof(h)), PASSWD_TOO_SHORT);
    memset(big, 'x', sizeof(big));
    assert_int_equal(passwd_hash(big, PASSWD_MAX_LEN + 1, h, sizeof(h)), PASSWD_TOO_LONG);
    assert_int_equal(passwd_hash(big, PASSWD_MAX_LEN, h, sizeof(h)), PASSWD_OK);
    assert_int_equal(passwd_verify(h, big, PASSWD_MAX_LEN), 1);
    assert_int_equal(passwd_hash("long enough pw", 14, h, 16), PASSWD_ERROR); /* no room */
}

static void test_bytes_beyond_ascii(void **state)
{
    (void)state;
    char h[PASSWD_ENCODED_MAX];
    const char *pw = "p\xc3\xa4ssw\xc3\xb6rd \xe2\x9c\x93"; /* UTF-8 */
    assert_int_equal(passwd_hash(pw, strlen(pw), h, sizeof(h)), PASSWD_OK);
    assert_int_equal(passwd_verify(h, pw, strlen(pw)), 1);
}

static void test_malformed_and_weaker_hashes(void **state)
{
    (void)state;
    assert_int_equal(passwd_verify(NULL, "whatever pw", 11), 0);
    assert_int_equal(passwd_verify("", "whatever pw", 11), 0);
    assert_int_equal(
        passwd_verify("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "whatever pw", 11),
        0); /* not Argon2id */
    assert_int_equal(passwd_verify("$argon2id$v=19$m=19456,t=2,p=1$!!$??", "whatever pw", 11), 0);
    assert_int_equal(passwd_verify_unknown("whatever pw", 11), 0);
    assert_int_equal(passwd_needs_rehash("$argon2id$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA"), 1);
    assert_int_equal(passwd_needs_rehash("$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA"), 0);
    assert_int_equal(passwd_needs_rehash("garbage"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_then_verify),
        cmocka_unit_test(test_each_hash_has_its_own_salt),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_bytes_beyond_ascii),
        cmocka_unit_test(test_malformed_and_weaker_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
