/* core/webhook/schedule.c: the retry schedule option, jitter bounds, Retry-After, durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/webhook/schedule.h"

static double fixed(void *arg)
{
    return *(const double *)arg;
}

static void test_default_schedule_parses(void **state)
{
    (void)state;
    struct schedule s;
    char err[128];
    assert_int_equal(schedule_parse("0,5s,5m,30m,2h,5h,10h,14h,20h,24h", &s, err, sizeof err), 0);
    assert_int_equal(s.attempts, 10);
    const long long want[] = {0,        5000,     300000,   1800000,  7200000,
                              18000000, 36000000, 50400000, 72000000, 86400000};
    for (int i = 0; i < 10; i++)
        assert_int_equal(s.delay_ms[i], want[i]);
    assert_int_equal(schedule_parse(" 0 , 500ms,1s ", &s, err, sizeof err), 0);
    assert_int_equal(s.attempts, 3);
    assert_int_equal(s.delay_ms[1], 500);
    assert_int_equal(s.delay_ms[2], 1000);
}

static void test_bad_schedules_refused(void **state)
{
    (void)state;
    struct schedule s;
    char err[128];
    const char *bad[] = {
        "",  "0,", ",5s", "5", "5x", "-5s", "1.5s", "8d", "5 s", "0,,1s", "99999999999999999999d",
        NULL};
    for (int i = 0; bad[i] != NULL; i++)
        if (schedule_parse(bad[i], &s, err, sizeof err) != -1)
            fail_msg("accepted \"%s\"", bad[i]);
    char many[200] = "0";
    for (int i = 1; i <= SCHEDULE_MAX_ATTEMPTS; i++)
        strcat(many, ",1s");
    assert_int_equal(schedule_parse(many, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "steps"));
    assert_int_equal(schedule_parse("7d", &s, err, sizeof err), 0);
}

static void test_durations(void **state)
{
    (void)state;
    assert_int_equal(schedule_parse_duration("5d"), 5LL * 86400000);
    assert_int_equal(schedule_parse_duration("90m"), 5400000);
    assert_int_equal(schedule_parse_duration("250ms"), 250);
    assert_int_equal(schedule_parse_duration("0"), 0);
    assert_int_equal(schedule_parse_duration("12"), -1);
    assert_int_equal(schedule_parse_duration("d"), -1);
    assert_int_equal(schedule_parse_duration("5D"), -1);
    assert_int_equal(schedule_parse_duration(NULL), -1);
}

static void test_next_delay_follows_the_schedule_within_jitter(void **state)
{
    (void)state;
    struct schedule s;
    char err[128];
    assert_int_equal(schedule_parse("0,10s,100s", &s, err, sizeof err), 0);
    double lo = 0.0, mid = 0.5, hi = 0.999999;
    assert_int_equal(schedule_next_ms(&s, 1, -1, fixed, &mid), 10000);
    assert_int_equal(schedule_next_ms(&s, 1, -1, fixed, &lo), 8000);
    long long top = schedule_next_ms(&s, 1, -1, fixed, &hi);
    assert_true(top > 11990 && top < 12000);
    assert_int_equal(schedule_next_ms(&s, 2, -1, fixed, &mid), 100000);
    /* After the last attempt there is none. */
    assert_int_equal(schedule_next_ms(&s, 3, -1, fixed, &mid), -1);
    assert_int_equal(schedule_next_ms(&s, 0, -1, fixed, &mid), -1);
}

static void test_retry_after_honoured_only_when_later(void **state)
{
    (void)state;
    struct schedule s;
    char err[128];
    double mid = 0.5;
    assert_int_equal(schedule_parse("0,10s,100s", &s, err, sizeof err), 0);
    assert_int_equal(schedule_next_ms(&s, 1, 60000, fixed, &mid), 60000);
    assert_int_equal(schedule_next_ms(&s, 1, 2000, fixed, &mid), 10000);
    /* No attempt left: Retry-After does not add one. */
    assert_int_equal(schedule_next_ms(&s, 3, 60000, fixed, &mid), -1);
}

static void test_retry_after_forms(void **state)
{
    (void)state;
    double now = 1445412480.0; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(schedule_retry_after_ms("120", now), 120000);
    assert_int_equal(schedule_retry_after_ms("0", now), 0);
    assert_int_equal(schedule_retry_after_ms("Wed, 21 Oct 2015 07:30:00 GMT", now), 120000);
    assert_int_equal(schedule_retry_after_ms("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    /* At most 24 h, however it is written. */
    assert_int_equal(schedule_retry_after_ms("999999999999", now), SCHEDULE_RETRY_AFTER_MAX_MS);
    assert_int_equal(schedule_retry_after_ms("Fri, 01 Jan 2100 00:00:00 GMT", now),
                     SCHEDULE_RETRY_AFTER_MAX_MS);
    assert_int_equal(schedule_retry_after_ms(NULL, now), -1);
    assert_int_equal(schedule_retry_after_ms("soon", now), -1);
    assert_int_equal(schedule_retry_after_ms("-5", now), -1);
    assert_int_equal(schedule_retry_after_ms("12abc", now), -1);
    assert_int_equal(schedule_retry_after_ms("Wed, 21 Oct 2015 07:30:00 PST", now), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_schedule_parses),
        cmocka_unit_test(test_bad_schedules_refused),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_next_delay_follows_the_schedule_within_jitter),
        cmocka_unit_test(test_retry_after_honoured_only_when_later),
        cmocka_unit_test(test_retry_after_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
