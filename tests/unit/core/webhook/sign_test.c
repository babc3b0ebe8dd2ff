/* core/webhook/sign.c against a vector computed with npm standardwebhooks 1.1.1 (the reference
 * verifier partners use): `new Webhook(whsec).sign(id, new Date(ts * 1000), body)`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/webhook/sign.h"

/* The secret's bytes are i * 7 + 1, the previous one's 255 - i (i = 0..31). */
#define WHSEC    "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o="
#define PREVIOUS "whsec_//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA="
#define MSG_ID   "msg_01JBX5B8D0F3G6H9J2K4M7N9P1"
#define TS       1795804800LL
#define BODY                                                                                       \
    "{\"id\":\"msg_01JBX5B8D0F3G6H9J2K4M7N9P1\",\"type\":\"session.ended\",\"timestamp\":"         \
    "\"2026-11-27T18:40:00.123Z\",\"tenant_id\":\"ten_1\",\"session_id\":\"ses_1\",\"seq\":7,"     \
    "\"data\":{\"reason\":\"ended_by_agent\",\"session_id\":\"ses_1\"}}"
#define SIG      "v1,dRIIwVK3TV3Udq4qu7QJ2Rm/8ZAeej5GMcdldoGgaZQ="
#define SIG_PREV "v1,TEV5aWccW29IE68a+ibqibut42WbAxzmpOop/S5PPT4="

static void secrets(unsigned char cur[SIGN_SECRET_LEN], unsigned char prev[SIGN_SECRET_LEN])
{
    for (int i = 0; i < SIGN_SECRET_LEN; i++) {
        cur[i] = (unsigned char)(i * 7 + 1);
        prev[i] = (unsigned char)(255 - i);
    }
}

static void test_signature_matches_standardwebhooks(void **state)
{
    (void)state;
    unsigned char cur[SIGN_SECRET_LEN], prev[SIGN_SECRET_LEN];
    char out[SIGN_HEADER_SIZE];
    secrets(cur, prev);
    assert_int_equal(sign_header(cur, NULL, MSG_ID, TS, BODY, strlen(BODY), out), 0);
    assert_string_equal(out, SIG);
}

static void test_rotation_overlap_signs_with_both_new_first(void **state)
{
    (void)state;
    unsigned char cur[SIGN_SECRET_LEN], prev[SIGN_SECRET_LEN];
    char out[SIGN_HEADER_SIZE];
    secrets(cur, prev);
    assert_int_equal(sign_header(cur, prev, MSG_ID, TS, BODY, strlen(BODY), out), 0);
    assert_string_equal(out, SIG " " SIG_PREV);
}

static void test_every_signed_part_changes_the_signature(void **state)
{
    (void)state;
    unsigned char cur[SIGN_SECRET_LEN], prev[SIGN_SECRET_LEN];
    char out[SIGN_HEADER_SIZE];
    secrets(cur, prev);
    assert_int_equal(sign_header(cur, NULL, MSG_ID, TS + 1, BODY, strlen(BODY), out), 0);
    assert_string_not_equal(out, SIG);
    assert_int_equal(sign_header(cur, NULL, "msg_other", TS, BODY, strlen(BODY), out), 0);
    assert_string_not_equal(out, SIG);
    assert_int_equal(sign_header(cur, NULL, MSG_ID, TS, BODY, strlen(BODY) - 1, out), 0);
    assert_string_not_equal(out, SIG);
    /* A '.' in the id would let "a.b" + "1" and "a" + "b.1"... sign the same text. */
    assert_int_equal(sign_header(cur, NULL, "msg.1", TS, BODY, strlen(BODY), out), -1);
}

static void test_whsec_round_trip(void **state)
{
    (void)state;
    unsigned char cur[SIGN_SECRET_LEN], prev[SIGN_SECRET_LEN], back[SIGN_SECRET_LEN];
    char s[SIGN_WHSEC_SIZE];
    secrets(cur, prev);
    sign_secret_encode(cur, s);
    assert_string_equal(s, WHSEC);
    assert_int_equal(sign_secret_decode(WHSEC, back), 0);
    assert_memory_equal(back, cur, SIGN_SECRET_LEN);
    assert_int_equal(sign_secret_decode(PREVIOUS, back), 0);
    assert_memory_equal(back, prev, SIGN_SECRET_LEN);
}

static void test_whsec_decode_refuses_other_spellings(void **state)
{
    (void)state;
    unsigned char out[SIGN_SECRET_LEN];
    const char *bad[] = {
        NULL,
        "",
        "AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=",        /* no prefix */
        "whsk_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=",   /* wrong prefix */
        "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o",   /* no padding */
        "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09p=",  /* non-zero trailing bits */
        "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM0=o=",  /* padding inside */
        "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM09o=A", /* too long */
        "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsX-09o=",  /* URL alphabet */
        "whsec_AQgPFh0kKzI5QEdOVVxjanF4f4aNlJuiqbC3vsXM0Q==",  /* 31 bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sign_secret_decode(bad[i], out) != -1)
            fail_msg("accepted %s", bad[i] ? bad[i] : "NULL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_matches_standardwebhooks),
        cmocka_unit_test(test_rotation_overlap_signs_with_both_new_first),
        cmocka_unit_test(test_every_signed_part_changes_the_signature),
        cmocka_unit_test(test_whsec_round_trip),
        cmocka_unit_test(test_whsec_decode_refuses_other_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
