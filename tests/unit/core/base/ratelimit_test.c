/* core/base/ratelimit.c: GCRA burst, refill, per-key isolation and the bounded table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/base/ratelimit.h"

#define RATE  10.0
#define BURST 5
#define T0    1000.0

static int setup(void **state)
{
    struct rl_table *t = rl_new(1024);
    if (t == NULL)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    rl_free(*state);
    return 0;
}

static int take(struct rl_table *t, const char *key, double now, struct rl_result *r)
{
    rl_take(t, key, RATE, BURST, now, r);
    return r->allowed;
}

static void test_burst_allows_exactly_five_at_one_instant(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(take(t, "k", T0, &r), 1);
        assert_int_equal(r.limit, BURST);
        assert_true(r.retry_after == 0.0);
    }
    assert_int_equal(take(t, "k", T0, &r), 0);
    assert_int_equal(r.limit, BURST);
    assert_int_equal(r.remaining, 0);
}

static void test_refused_request_reports_retry_after_one_interval(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    for (int i = 0; i < BURST; i++)
        take(t, "k", T0, &r);
    assert_int_equal(take(t, "k", T0, &r), 0);
    assert_float_equal(r.retry_after, 0.1, 1e-6);
    assert_float_equal(r.reset, 0.5, 1e-6);
    /* refusals do not consume: asking again still says 0.1 s */
    assert_int_equal(take(t, "k", T0, &r), 0);
    assert_float_equal(r.retry_after, 0.1, 1e-6);
    /* halfway there, half the wait is left */
    assert_int_equal(take(t, "k", T0 + 0.05, &r), 0);
    assert_float_equal(r.retry_after, 0.05, 1e-6);
}

static void test_one_more_allowed_after_one_interval(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    for (int i = 0; i < BURST; i++)
        take(t, "k", T0, &r);
    assert_int_equal(take(t, "k", T0, &r), 0);
    assert_int_equal(take(t, "k", T0 + 0.1, &r), 1);
    assert_int_equal(r.remaining, 0);
    /* and exactly one: the next at the same instant is refused */
    assert_int_equal(take(t, "k", T0 + 0.1, &r), 0);
    assert_float_equal(r.retry_after, 0.1, 1e-6);
}

static void test_remaining_counts_down_to_zero(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    const int want[BURST] = {4, 3, 2, 1, 0};
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(take(t, "k", T0, &r), 1);
        assert_int_equal(r.remaining, want[i]);
        assert_float_equal(r.reset, 0.1 * (i + 1), 1e-6);
    }
}

static void test_steady_rate_is_sustained_without_refusal(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    for (int i = 0; i < BURST; i++)
        take(t, "k", T0, &r);
    /* after the burst, exactly one request per 0.1 s keeps fitting for 10 s */
    for (int i = 1; i <= 100; i++) {
        assert_int_equal(take(t, "k", T0 + 0.1 * i, &r), 1);
        assert_int_equal(take(t, "k", T0 + 0.1 * i, &r), 0);
    }
}

static void test_keys_are_independent(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    for (int i = 0; i < BURST; i++)
        assert_int_equal(take(t, "tenant-a", T0, &r), 1);
    assert_int_equal(take(t, "tenant-a", T0, &r), 0);
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(take(t, "tenant-b", T0, &r), 1);
        assert_int_equal(r.remaining, BURST - 1 - i);
    }
    assert_int_equal(take(t, "tenant-b", T0, &r), 0);
    assert_int_equal(take(t, "tenant-a", T0, &r), 0);
}

static void test_long_idle_refills_burst_completely(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    for (int i = 0; i < BURST; i++)
        take(t, "k", T0, &r);
    assert_int_equal(take(t, "k", T0, &r), 0);
    double later = T0 + 3600;
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(take(t, "k", later, &r), 1);
        assert_int_equal(r.remaining, BURST - 1 - i);
    }
    assert_int_equal(take(t, "k", later, &r), 0);
}

static void test_partial_idle_refills_proportionally(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    for (int i = 0; i < BURST; i++)
        take(t, "k", T0, &r);
    /* 0.3 s later three requests fit, not four */
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(t, "k", T0 + 0.3, &r), 1);
    assert_int_equal(take(t, "k", T0 + 0.3, &r), 0);
}

static void test_burst_of_one_allows_one_per_interval(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    rl_take(t, "single", 2.0, 1, T0, &r);
    assert_int_equal(r.allowed, 1);
    assert_int_equal(r.remaining, 0);
    rl_take(t, "single", 2.0, 1, T0, &r);
    assert_int_equal(r.allowed, 0);
    assert_float_equal(r.retry_after, 0.5, 1e-6);
    rl_take(t, "single", 2.0, 1, T0 + 0.5, &r);
    assert_int_equal(r.allowed, 1);
}

static void test_tiny_table_with_many_keys_never_crashes_and_limits_hot_key(void **state)
{
    (void)state;
    struct rl_table *t = rl_new(1);
    assert_non_null(t);
    struct rl_result r;
    char key[32];
    for (int i = 0; i < BURST; i++)
        assert_int_equal(take(t, "hot", T0, &r), 1);
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 500; i++) {
            snprintf(key, sizeof(key), "cold-%d-%d", round, i);
            take(t, key, T0, &r);
            assert_int_equal(r.limit, BURST);
        }
        /* the hot key keeps its state despite the churn around it */
        assert_int_equal(take(t, "hot", T0, &r), 0);
    }
    rl_free(t);
}

static void test_zero_capacity_table_still_works(void **state)
{
    (void)state;
    struct rl_table *t = rl_new(0);
    assert_non_null(t);
    struct rl_result r;
    for (int i = 0; i < BURST; i++)
        assert_int_equal(take(t, "k", T0, &r), 1);
    assert_int_equal(take(t, "k", T0, &r), 0);
    rl_free(t);
}

static void test_long_keys_are_handled_without_overflow(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    char key[300];
    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    for (int i = 0; i < BURST; i++)
        assert_int_equal(take(t, key, T0, &r), 1);
    assert_int_equal(take(t, key, T0, &r), 0);
}

/* Threads hammering one key at one instant: the shard's lock must make the burst exact (the
 * ThreadSanitizer build of scripts/test.sh also runs this and reports any unlocked access). */
enum { THREADS = 4, TAKES_PER_THREAD = 2000, BIG_BURST = 1000 };

struct hammer {
    struct rl_table *t;
    int allowed;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    struct rl_result r;
    char key[32];
    for (int i = 0; i < TAKES_PER_THREAD; i++) {
        rl_take(h->t, "shared", 1.0, BIG_BURST, T0, &r);
        h->allowed += r.allowed;
        snprintf(key, sizeof(key), "own-%p-%d", (void *)h, i % 50); /* other shards meanwhile */
        rl_take(h->t, key, RATE, BURST, T0, &r);
    }
    return NULL;
}

static void test_concurrent_takes_on_one_key_allow_exactly_the_burst(void **state)
{
    (void)state;
    struct rl_table *t = rl_new(1024);
    assert_non_null(t);
    pthread_t th[THREADS];
    struct hammer h[THREADS];
    for (int i = 0; i < THREADS; i++) {
        h[i] = (struct hammer){.t = t, .allowed = 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    }
    int allowed = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        allowed += h[i].allowed;
    }
    assert_int_equal(allowed, BIG_BURST);
    rl_free(t);
    rl_free(NULL); /* documented as a no-op: a crash here fails the test */
}

static void test_take_n_spends_n_tokens_and_refuses_what_does_not_fit(void **state)
{
    struct rl_table *t = *state;
    struct rl_result r;
    /* 1000 bytes/s, burst 4000: 3000 fit, another 1500 do not, 1000 do. */
    rl_take_n(t, "s", 1000, 4000, 3000, T0, &r);
    assert_int_equal(r.allowed, 1);
    rl_take_n(t, "s", 1000, 4000, 1500, T0, &r);
    assert_int_equal(r.allowed, 0);
    assert_float_equal(r.retry_after, 0.5, 1e-6);
    rl_take_n(t, "s", 1000, 4000, 1000, T0, &r);
    assert_int_equal(r.allowed, 1);
    rl_take_n(t, "s", 1000, 4000, 1500, T0 + 1.5, &r);
    assert_int_equal(r.allowed, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_allows_exactly_five_at_one_instant, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_request_reports_retry_after_one_interval,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_more_allowed_after_one_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remaining_counts_down_to_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_steady_rate_is_sustained_without_refusal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_keys_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_idle_refills_burst_completely, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_idle_refills_proportionally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_of_one_allows_one_per_interval, setup, teardown),
        cmocka_unit_test(test_tiny_table_with_many_keys_never_crashes_and_limits_hot_key),
        cmocka_unit_test(test_zero_capacity_table_still_works),
        cmocka_unit_test_setup_teardown(test_long_keys_are_handled_without_overflow, setup,
                                        teardown),
        cmocka_unit_test(test_concurrent_takes_on_one_key_allow_exactly_the_burst),
        cmocka_unit_test_setup_teardown(test_take_n_spends_n_tokens_and_refuses_what_does_not_fit,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
