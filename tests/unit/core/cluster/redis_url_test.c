/* core/cluster/redis_url.c: the URL of --redis-url, and what its redacted form shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/cluster/redis_url.h"

#include <string.h>

static struct redis_url parse_ok(const char *url)
{
    struct redis_url u;
    char err[128] = "";
    int rc = redis_url_parse(url, &u, err, sizeof err);
    if (rc != 0)
        print_error("%s: %s\n", url, err);
    assert_int_equal(rc, 0);
    return u;
}

static void parse_bad(const char *url)
{
    struct redis_url u;
    char err[128] = "";
    if (redis_url_parse(url, &u, err, sizeof err) == 0)
        print_error("accepted: %s\n", url);
    assert_true(redis_url_parse(url, &u, err, sizeof err) < 0);
    assert_true(err[0] != '\0');
}

static void test_tcp_defaults_port_6379_db_0(void **state)
{
    (void)state;
    struct redis_url u = parse_ok("redis://127.0.0.1");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.path, "");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
    u = parse_ok("redis://cache.internal:6380/3");
    assert_string_equal(u.host, "cache.internal");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);
    u = parse_ok("redis://localhost/");
    assert_int_equal(u.db, 0);
}

static void test_credentials_are_percent_decoded(void **state)
{
    (void)state;
    struct redis_url u = parse_ok("redis://app:p%40ss%3Aw%2Fd@127.0.0.1:7000/1");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss:w/d");
    assert_int_equal(u.port, 7000);
    u = parse_ok("redis://:secret@h");
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "secret");
    u = parse_ok("redis://us%65r:a%2fb@h");
    assert_string_equal(u.user, "user");
    assert_string_equal(u.password, "a/b");
    /* an escape at the very end of the password */
    u = parse_ok("redis://:ab%21@h");
    assert_string_equal(u.password, "ab!");
}

static void test_ipv6_in_brackets(void **state)
{
    (void)state;
    struct redis_url u = parse_ok("redis://[::1]:6390/2");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 2);
    u = parse_ok("redis://[fe80::1]");
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, 6379);
}

static void test_unix_socket_with_db_and_credentials(void **state)
{
    (void)state;
    struct redis_url u = parse_ok("unix:///run/redis/redis.sock");
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.db, 0);
    u = parse_ok("unix://:pw@/tmp/r.sock?db=5");
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_string_equal(u.password, "pw");
    assert_int_equal(u.db, 5);
}

static void test_bad_urls_are_refused(void **state)
{
    (void)state;
    parse_bad("http://127.0.0.1");
    parse_bad("redis://");
    parse_bad("redis://h:0");
    parse_bad("redis://h:65536");
    parse_bad("redis://h:12x");
    parse_bad("redis://h/x");
    parse_bad("redis://h/-1");
    parse_bad("redis://h?db=1");
    parse_bad("redis://[::1");
    parse_bad("redis://[::1]x");
    parse_bad("redis://user@h");  /* credentials need the colon */
    parse_bad("redis://:p%4@h");  /* a truncated escape */
    parse_bad("redis://:p%zz@h"); /* not hex */
    parse_bad("redis://:p%00@h"); /* a NUL would cut the password short */
    parse_bad("redis://h st");    /* a space in the host */
    parse_bad("unix://relative.sock");
    parse_bad("unix:///tmp/r.sock?db=x");
    parse_bad("unix:///tmp/r.sock?x=1");
    parse_bad(NULL);
    char long_url[1100];
    memset(long_url, 'a', sizeof long_url);
    memcpy(long_url, "redis://", 8);
    long_url[sizeof long_url - 1] = '\0';
    parse_bad(long_url);
    char long_path[200] = "unix:///";
    memset(long_path + 8, 'p', 150);
    long_path[158] = '\0';
    parse_bad(long_path);
}

static void test_redacted_never_shows_the_password(void **state)
{
    (void)state;
    char out[512];
    struct redis_url u = parse_ok("redis://app:hunter2@127.0.0.1:6380/4");
    redis_url_redacted(&u, out, sizeof out);
    assert_null(strstr(out, "hunter2"));
    assert_string_equal(out, "redis://***@127.0.0.1:6380/4");
    u = parse_ok("redis://[::1]");
    assert_string_equal(redis_url_redacted(&u, out, sizeof out), "redis://[::1]:6379/0");
    u = parse_ok("unix://:pw@/tmp/r.sock?db=2");
    assert_string_equal(redis_url_redacted(&u, out, sizeof out), "unix://***@/tmp/r.sock?db=2");
}

/* An address is copied; localhost (from /etc/hosts, no DNS) becomes a loopback address; a name
 * that cannot resolve is -1. */
static void test_resolve(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(redis_url_resolve("127.0.0.1", out, sizeof(out)), 0);
    assert_string_equal(out, "127.0.0.1");
    assert_int_equal(redis_url_resolve("::1", out, sizeof(out)), 0);
    assert_string_equal(out, "::1");
    assert_int_equal(redis_url_resolve("localhost", out, sizeof(out)), 0);
    assert_true(strcmp(out, "127.0.0.1") == 0 || strcmp(out, "::1") == 0);
    assert_int_equal(redis_url_resolve("no-such-host.invalid", out, sizeof(out)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_defaults_port_6379_db_0),
        cmocka_unit_test(test_credentials_are_percent_decoded),
        cmocka_unit_test(test_ipv6_in_brackets),
        cmocka_unit_test(test_unix_socket_with_db_and_credentials),
        cmocka_unit_test(test_bad_urls_are_refused),
        cmocka_unit_test(test_redacted_never_shows_the_password),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
