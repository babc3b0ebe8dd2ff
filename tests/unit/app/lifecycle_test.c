/* app/lifecycle.c: services start in order, drain and stop in reverse order, a failed start
 * stops what already started (and nothing else), /metrics joins the started services' texts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/lifecycle.h"

/* Each call appends "<verb>:<name> " to the journal. */
static char journal[512];

struct fake {
    const char *name;
    int start_rc;
};

static void note(const char *verb, void *self)
{
    const struct fake *f = self;
    size_t n = strlen(journal);
    snprintf(journal + n, sizeof(journal) - n, "%s:%s ", verb, f->name);
}

static int fake_start(void *self)
{
    note("start", self);
    return ((struct fake *)self)->start_rc;
}

static void fake_drain(void *self)
{
    note("drain", self);
}

static void fake_stop(void *self)
{
    note("stop", self);
}

static char *fake_metrics(void *self)
{
    char *text = NULL;
    if (asprintf(&text, "%s_up 1\n", ((struct fake *)self)->name) < 0)
        return NULL;
    return text;
}

static struct fake fakes[3] = {{"a", 0}, {"b", 0}, {"c", 0}};
static struct service services[3];
static struct lifecycle lc;

static int setup(void **state)
{
    (void)state;
    journal[0] = '\0';
    lifecycle_init(&lc);
    for (int i = 0; i < 3; i++) {
        fakes[i].start_rc = 0;
        services[i] = (struct service){fakes[i].name, fake_start,   fake_drain,
                                       fake_stop,     fake_metrics, &fakes[i]};
        assert_int_equal(lifecycle_add(&lc, &services[i]), 0);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lifecycle_destroy(&lc);
    return 0;
}

static void test_start_in_order_drain_and_stop_in_reverse(void **state)
{
    (void)state;
    assert_int_equal(lifecycle_start(&lc), 0);
    assert_string_equal(journal, "start:a start:b start:c ");
    journal[0] = '\0';
    lifecycle_drain(&lc);
    lifecycle_stop(&lc);
    assert_string_equal(journal, "drain:c drain:b drain:a stop:c stop:b stop:a ");
    journal[0] = '\0';
    lifecycle_stop(&lc); /* a second stop does nothing */
    assert_string_equal(journal, "");
}

static void test_failed_start_stops_only_what_started_in_reverse(void **state)
{
    (void)state;
    fakes[2].start_rc = -5;
    assert_int_equal(lifecycle_start(&lc), -5);
    assert_string_equal(journal, "start:a start:b start:c stop:b stop:a ");
    journal[0] = '\0';
    lifecycle_drain(&lc);
    lifecycle_stop(&lc);
    assert_string_equal(journal, "");
}

static void test_failed_first_start_stops_nothing(void **state)
{
    (void)state;
    fakes[0].start_rc = -1;
    assert_int_equal(lifecycle_start(&lc), -1);
    assert_string_equal(journal, "start:a ");
}

static void test_positive_start_code_is_a_failure_reported_negative(void **state)
{
    (void)state;
    fakes[1].start_rc = 3;
    assert_true(lifecycle_start(&lc) < 0);
    assert_string_equal(journal, "start:a start:b stop:a ");
}

static void test_optional_functions_may_be_missing(void **state)
{
    (void)state;
    services[1].drain = NULL;
    services[1].stop = NULL;
    services[1].metrics = NULL;
    assert_int_equal(lifecycle_start(&lc), 0);
    journal[0] = '\0';
    char *m = lifecycle_metrics(&lc);
    assert_string_equal(m, "a_up 1\nc_up 1\n");
    free(m);
    lifecycle_drain(&lc);
    lifecycle_stop(&lc);
    assert_string_equal(journal, "drain:c drain:a stop:c stop:a ");
}

static void test_metrics_only_of_started_services_in_start_order(void **state)
{
    (void)state;
    char *m = lifecycle_metrics(&lc);
    assert_string_equal(m, "");
    free(m);
    assert_int_equal(lifecycle_start(&lc), 0);
    m = lifecycle_metrics(&lc);
    assert_string_equal(m, "a_up 1\nb_up 1\nc_up 1\n");
    free(m);
    lifecycle_stop(&lc);
    m = lifecycle_metrics(&lc);
    assert_string_equal(m, "");
    free(m);
}

static void test_add_refuses_a_service_without_start(void **state)
{
    (void)state;
    struct service bad = {"bad", NULL, NULL, NULL, NULL, NULL};
    assert_int_equal(lifecycle_add(&lc, &bad), -1);
    assert_int_equal(lifecycle_add(&lc, NULL), -1);
    for (int i = 3; i < LIFECYCLE_MAX_SERVICES; i++)
        assert_int_equal(lifecycle_add(&lc, &services[0]), 0);
    assert_int_equal(lifecycle_add(&lc, &services[0]), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_in_order_drain_and_stop_in_reverse, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_start_stops_only_what_started_in_reverse, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_first_start_stops_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positive_start_code_is_a_failure_reported_negative,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_functions_may_be_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_only_of_started_services_in_start_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_refuses_a_service_without_start, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
