/* core/base/timeutil.c: RFC 3339 parsing (what is accepted, what is refused) and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <time.h>

#include "core/base/timeutil.h"

#define NOV25 1795600800.0 /* 2026-11-25T10:00:00Z */

static double parse_ok(const char *s)
{
    double e = -12345;
    if (time_parse_rfc3339(s, &e) != 0)
        fail_msg("expected \"%s\" to parse", s);
    return e;
}

static void assert_rejected(const char *s)
{
    double e = -12345;
    if (time_parse_rfc3339(s, &e) != -1)
        fail_msg("expected \"%s\" to be rejected", s);
}

static void test_parse_utc_z(void **state)
{
    (void)state;
    assert_true(parse_ok("2026-11-25T10:00:00Z") == NOV25);
    assert_true(parse_ok("1970-01-01T00:00:00Z") == 0.0);
    assert_true(parse_ok("2024-12-31T23:59:59Z") == 1735689599.0);
}

static void test_parse_accepts_lowercase_t_and_z(void **state)
{
    (void)state;
    assert_true(parse_ok("2026-11-25t10:00:00z") == NOV25);
}

static void test_parse_positive_offset_is_east_of_utc(void **state)
{
    (void)state;
    /* 12:00 at +02:00 is 10:00 UTC */
    assert_true(parse_ok("2026-11-25T12:00:00+02:00") == NOV25);
}

static void test_parse_negative_half_hour_offset(void **state)
{
    (void)state;
    /* 04:30 at -05:30 is 10:00 UTC */
    assert_true(parse_ok("2026-11-25T04:30:00-05:30") == NOV25);
    assert_true(parse_ok("2026-11-25T10:00:00+00:00") == NOV25);
    assert_true(parse_ok("2026-11-25T10:00:00-00:00") == NOV25);
}

static void test_parse_offset_crossing_midnight(void **state)
{
    (void)state;
    /* 2026-11-26T01:00 at +15:00 is 2026-11-25T10:00Z */
    assert_true(parse_ok("2026-11-26T01:00:00+15:00") == NOV25);
}

static void test_parse_fractional_seconds(void **state)
{
    (void)state;
    assert_true(fabs(parse_ok("2026-11-25T10:00:00.5Z") - (NOV25 + 0.5)) < 1e-6);
    assert_true(fabs(parse_ok("2026-11-25T10:00:00.123Z") - (NOV25 + 0.123)) < 1e-6);
    assert_true(fabs(parse_ok("2026-11-25T12:00:00.250+02:00") - (NOV25 + 0.25)) < 1e-6);
    assert_true(fabs(parse_ok("2026-11-25T10:00:00.000001Z") - (NOV25 + 1e-6)) < 1e-7);
}

static void test_parse_rejects_empty_fraction(void **state)
{
    (void)state;
    assert_rejected("2026-11-25T10:00:00.Z");
}

static void test_parse_accepts_leap_day_in_leap_year(void **state)
{
    (void)state;
    assert_true(parse_ok("2028-02-29T00:00:00Z") == 1835395200.0);
    assert_true(parse_ok("2028-03-01T00:00:00Z") == 1835395200.0 + 86400);
    assert_true(parse_ok("2000-02-29T00:00:00Z") > 0); /* divisible by 400 */
}

static void test_parse_rejects_leap_day_in_common_year(void **state)
{
    (void)state;
    assert_rejected("2027-02-29T00:00:00Z");
    assert_rejected("2100-02-29T00:00:00Z"); /* divisible by 100, not 400 */
    assert_rejected("2028-02-30T00:00:00Z");
}

static void test_parse_rejects_day_past_month_end(void **state)
{
    (void)state;
    assert_rejected("2026-04-31T00:00:00Z");
    assert_rejected("2026-01-32T00:00:00Z");
    assert_rejected("2026-01-00T00:00:00Z");
}

static void test_parse_rejects_missing_t(void **state)
{
    (void)state;
    assert_rejected("2026-11-25 10:00:00Z");
    assert_rejected("2026-11-2510:00:00Z");
    assert_rejected("2026-11-25");
}

static void test_parse_rejects_missing_zone(void **state)
{
    (void)state;
    assert_rejected("2026-11-25T10:00:00");
    assert_rejected("2026-11-25T10:00:00.123");
    assert_rejected("2026-11-25T10:00:00+02");
    assert_rejected("2026-11-25T10:00:00+0200");
}

static void test_parse_rejects_garbage_suffix(void **state)
{
    (void)state;
    assert_rejected("2026-11-25T10:00:00Zjunk");
    assert_rejected("2026-11-25T10:00:00Z ");
    assert_rejected("2026-11-25T10:00:00+02:00x");
    assert_rejected("2026-11-25T10:00:00+02:00:00");
}

static void test_parse_rejects_month_13_and_zero(void **state)
{
    (void)state;
    assert_rejected("2026-13-01T00:00:00Z");
    assert_rejected("2026-00-01T00:00:00Z");
}

static void test_parse_rejects_out_of_range_time_fields(void **state)
{
    (void)state;
    assert_rejected("2026-11-25T24:00:00Z");
    assert_rejected("2026-11-25T10:60:00Z");
    assert_rejected("2026-11-25T10:00:61Z");
    assert_rejected("2026-11-25T10:00:00+24:00");
    assert_rejected("2026-11-25T10:00:00+02:60");
}

static void test_parse_rejects_malformed_input(void **state)
{
    (void)state;
    assert_rejected("");
    assert_rejected("not a date at all!!!");
    assert_rejected("2026/11/25T10:00:00Z");
    assert_rejected("2026-11-25T10.00.00Z");
    assert_rejected("+026-11-25T10:00:00Z");
    assert_rejected("2026-1a-25T10:00:00Z");
    assert_rejected("1969-12-31T23:59:59Z");
    double e;
    assert_int_equal(time_parse_rfc3339(NULL, &e), -1);
}

static void test_format_writes_rfc3339_utc(void **state)
{
    (void)state;
    char out[32];
    time_format_rfc3339((int64_t)NOV25, out, sizeof(out));
    assert_string_equal(out, "2026-11-25T10:00:00Z");
    time_format_rfc3339(0, out, sizeof(out));
    assert_string_equal(out, "1970-01-01T00:00:00Z");
    time_format_rfc3339(1835395200, out, 21); /* the documented minimum size */
    assert_string_equal(out, "2028-02-29T00:00:00Z");
}

static void test_format_then_parse_round_trips(void **state)
{
    (void)state;
    const int64_t samples[] = {0,          86399,      951782400 /* 2000-02-29 */,
                               1735689599, 1795600800, 1835395200,
                               4102444799 /* 2099-12-31T23:59:59 */};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        char out[32];
        time_format_rfc3339(samples[i], out, sizeof(out));
        assert_true(parse_ok(out) == (double)samples[i]);
    }
    /* and parse then format gives back a canonical Z string */
    char out[32];
    time_format_rfc3339((int64_t)parse_ok("2026-11-25T12:00:00+02:00"), out, sizeof(out));
    assert_string_equal(out, "2026-11-25T10:00:00Z");
}

static void test_clocks_are_sane(void **state)
{
    (void)state;
    assert_true(time_now() > 1.7e9);
    double a = time_monotonic(), b = time_monotonic();
    assert_true(b >= a);
}

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    assert_int_equal(clock_gettime(id, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Rate limits, deadlines and idle timers use time_monotonic so that a wall-clock step (NTP, an
 * operator) neither refills nor freezes them. Stepping the clock needs CAP_SYS_TIME and would
 * disturb the machine, so the test checks what is observable without it: each reading lies
 * between two readings of CLOCK_MONOTONIC taken around it, and the wall clock (which is decades
 * away from the monotonic one) does not. */
static void test_monotonic_reads_the_monotonic_clock_not_the_wall_clock(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        double before = clock_seconds(CLOCK_MONOTONIC);
        double t = time_monotonic();
        double after = clock_seconds(CLOCK_MONOTONIC);
        assert_true(before <= t && t <= after);
    }
    double wall = clock_seconds(CLOCK_REALTIME), mono = clock_seconds(CLOCK_MONOTONIC);
    assert_true(fabs(wall - mono) > 3600); /* the check above can tell the two clocks apart */
    double before = clock_seconds(CLOCK_REALTIME);
    double t = time_now();
    double after = clock_seconds(CLOCK_REALTIME);
    assert_true(before <= t && t <= after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_utc_z),
        cmocka_unit_test(test_parse_accepts_lowercase_t_and_z),
        cmocka_unit_test(test_parse_positive_offset_is_east_of_utc),
        cmocka_unit_test(test_parse_negative_half_hour_offset),
        cmocka_unit_test(test_parse_offset_crossing_midnight),
        cmocka_unit_test(test_parse_fractional_seconds),
        cmocka_unit_test(test_parse_rejects_empty_fraction),
        cmocka_unit_test(test_parse_accepts_leap_day_in_leap_year),
        cmocka_unit_test(test_parse_rejects_leap_day_in_common_year),
        cmocka_unit_test(test_parse_rejects_day_past_month_end),
        cmocka_unit_test(test_parse_rejects_missing_t),
        cmocka_unit_test(test_parse_rejects_missing_zone),
        cmocka_unit_test(test_parse_rejects_garbage_suffix),
        cmocka_unit_test(test_parse_rejects_month_13_and_zero),
        cmocka_unit_test(test_parse_rejects_out_of_range_time_fields),
        cmocka_unit_test(test_parse_rejects_malformed_input),
        cmocka_unit_test(test_format_writes_rfc3339_utc),
        cmocka_unit_test(test_format_then_parse_round_trips),
        cmocka_unit_test(test_clocks_are_sane),
        cmocka_unit_test(test_monotonic_reads_the_monotonic_clock_not_the_wall_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
