/* api/metrics.c, pure parts: who may read /metrics (metrics_access). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "api/metrics.h"

#define TOKEN "scrape-token-0123456789abcdef"

static struct sockaddr_in v4(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    return a;
}

static struct sockaddr_in6 v6(const char *ip)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &a.sin6_addr), 1);
    return a;
}

static void test_without_token_loopback_clients_are_allowed(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("127.0.0.1"), b = v4("127.255.0.9");
    struct sockaddr_in6 c = v6("::1"), d = v6("::ffff:127.0.0.1");
    assert_int_equal(metrics_access("", NULL, (struct sockaddr *)&a), METRICS_ALLOWED);
    assert_int_equal(metrics_access("", NULL, (struct sockaddr *)&b), METRICS_ALLOWED);
    assert_int_equal(metrics_access(NULL, NULL, (struct sockaddr *)&c), METRICS_ALLOWED);
    assert_int_equal(metrics_access("", NULL, (struct sockaddr *)&d), METRICS_ALLOWED);
}

static void test_without_token_other_clients_are_refused(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("10.0.0.1"), b = v4("128.0.0.1");
    struct sockaddr_in6 c = v6("::2"), d = v6("::ffff:10.0.0.1");
    assert_int_equal(metrics_access("", NULL, (struct sockaddr *)&a), METRICS_NOT_LOOPBACK);
    assert_int_equal(metrics_access("", NULL, (struct sockaddr *)&b), METRICS_NOT_LOOPBACK);
    assert_int_equal(metrics_access("", NULL, (struct sockaddr *)&c), METRICS_NOT_LOOPBACK);
    assert_int_equal(metrics_access("", NULL, (struct sockaddr *)&d), METRICS_NOT_LOOPBACK);
    assert_int_equal(metrics_access("", "Bearer anything", NULL), METRICS_NOT_LOOPBACK);
}

static void test_with_token_loopback_needs_the_token_too(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("127.0.0.1");
    assert_int_equal(metrics_access(TOKEN, NULL, (struct sockaddr *)&a), METRICS_TOKEN_MISSING);
    assert_int_equal(metrics_access(TOKEN, "Basic " TOKEN, (struct sockaddr *)&a),
                     METRICS_TOKEN_MISSING);
}

static void test_with_token_only_the_exact_token_is_allowed(void **state)
{
    (void)state;
    struct sockaddr_in a = v4("10.0.0.1");
    const struct sockaddr *p = (struct sockaddr *)&a;
    assert_int_equal(metrics_access(TOKEN, "Bearer " TOKEN, p), METRICS_ALLOWED);
    assert_int_equal(metrics_access(TOKEN, "bearer " TOKEN, p), METRICS_ALLOWED);
    assert_int_equal(metrics_access(TOKEN, "Bearer " TOKEN "x", p), METRICS_TOKEN_WRONG);
    assert_int_equal(metrics_access(TOKEN, "Bearer scrape-token", p), METRICS_TOKEN_WRONG);
    assert_int_equal(metrics_access(TOKEN, "Bearer ", p), METRICS_TOKEN_WRONG);
    assert_int_equal(metrics_access(TOKEN, "Bearer Scrape-token-0123456789abcdef", p),
                     METRICS_TOKEN_WRONG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_without_token_loopback_clients_are_allowed),
        cmocka_unit_test(test_without_token_other_clients_are_refused),
        cmocka_unit_test(test_with_token_loopback_needs_the_token_too),
        cmocka_unit_test(test_with_token_only_the_exact_token_is_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
