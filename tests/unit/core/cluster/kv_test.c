/* core/cluster/kv.c against a real redis-server (tests/unit/core/cluster/redis_fixture.h): lazy
 * connect, binary-safe commands, AUTH and SELECT from the URL without logging the password,
 * timeouts, a restart costing no failed command, an outage answered NULL then recovered, the
 * retry delay, EVALSHA after NOSCRIPT, and many threads on a small pool (TSan in CI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cluster/kv.h"
#include "tests/unit/core/cluster/redis_fixture.h"

static struct kv *open_kv(const char *url, int pool, int command_ms, int retry_ms)
{
    struct kv_config c = {.url = url,
                          .pool = pool,
                          .connect_timeout_ms = 1000,
                          .command_timeout_ms = command_ms,
                          .retry_ms = retry_ms};
    return kv_new(&c);
}

static int setup(void **state)
{
    struct redis_fixture *f = calloc(1, sizeof(*f));
    if (f == NULL || redis_fixture_start(f) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    redis_fixture_stop(*state);
    free(*state);
    return 0;
}

/* A connection of the test's own, beside the client under test. */
static redisReply *direct(const struct redis_fixture *f, const char *fmt, const char *arg)
{
    redisContext *c = redisConnectUnix(strstr(f->url, "://") + 3);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisReply *r = redisCommand(c, fmt, arg);
    redisFree(c);
    return r;
}

static redisReply *cmd(struct kv *kv, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return kv_command(kv, argc, argv, lens);
}

static int ok(redisReply *r)
{
    int good = r != NULL && r->type != REDIS_REPLY_ERROR;
    if (r != NULL)
        freeReplyObject(r);
    return good;
}

static void test_bytes_with_nul_and_utf8_round_trip(void **state)
{
    struct redis_fixture *f = *state;
    struct kv *kv = open_kv(f->url, 2, 1000, 0);
    assert_non_null(kv);
    static const char value[] = "a\0b\xc3\xa9\xe2\x86\x92\xf0\x9f\x98\x80\r\n$3\r\n";
    const char *set[] = {"SET", "k\0\xff", value};
    size_t set_lens[] = {3, 3, sizeof(value) - 1};
    assert_true(ok(kv_command(kv, 3, set, set_lens)));
    const char *get[] = {"GET", "k\0\xff"};
    size_t get_lens[] = {3, 3};
    redisReply *r = kv_command(kv, 2, get, get_lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_int_equal(r->len, sizeof(value) - 1);
    assert_memory_equal(r->str, value, sizeof(value) - 1);
    freeReplyObject(r);
    kv_free(kv);
}

static void test_connects_lazily_and_refuses_a_bad_url(void **state)
{
    (void)state;
    struct kv *kv = open_kv("unix:///nonexistent/redis.sock", 1, 1000, 0);
    assert_non_null(kv); /* nothing was tried yet */
    struct kv_stats st;
    kv_stats(kv, &st);
    assert_int_equal(st.connects, 0);
    const char *ping[] = {"PING"};
    assert_null(cmd(kv, 1, ping));
    kv_stats(kv, &st);
    assert_int_equal(st.failures, 1);
    kv_free(kv);
    assert_null(open_kv("http://localhost:6379", 1, 1000, 0));
    assert_null(open_kv(NULL, 1, 1000, 0));
}

/* Runs fn with stderr (the log) into a file; returns what was logged (malloc'd). */
static char *logged(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/kv-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    assert_true(fd >= 0 && saved >= 0);
    fflush(stderr);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *out = calloc(1, 65536);
    assert_non_null(out);
    assert_true(pread(fd, out, 65535, 0) >= 0);
    close(fd);
    unlink(path);
    return out;
}

struct auth_case {
    const char *url, *key;
    redisReply *reply;
};

static void auth_run(void *arg)
{
    struct auth_case *a = arg;
    struct kv *kv = open_kv(a->url, 1, 1000, 0);
    assert_non_null(kv);
    const char *set[] = {"SET", a->key, "here"};
    a->reply = cmd(kv, 3, set);
    kv_free(kv);
}

static void test_auth_and_select_from_the_url_never_logging_the_password(void **state)
{
    struct redis_fixture *f = *state;
    const char *path = strstr(f->url, "://") + 3;
    char url[256];
    assert_true(ok(direct(f, "ACL SETUSER proxy on >%s ~* &* +@all", "s3cr%t-pw")));
    assert_true(ok(direct(f, "CONFIG SET requirepass %s", "def4ult-pw")));
    /* A user and its password (percent-escaped in the URL), and db 3. */
    snprintf(url, sizeof(url), "unix://proxy:s3cr%%25t-pw@%s?db=3", path);
    struct auth_case a = {.url = url, .key = "in3"};
    free(logged(auth_run, &a));
    assert_true(ok(a.reply));
    /* The default user's password alone. */
    snprintf(url, sizeof(url), "unix://:def4ult-pw@%s", path);
    a.url = url;
    a.key = "in0";
    free(logged(auth_run, &a));
    assert_true(ok(a.reply));
    /* db 3 got its key, db 0 not. */
    redisContext *c = redisConnectUnix(path);
    assert_non_null(c);
    assert_true(ok(redisCommand(c, "AUTH def4ult-pw")));
    redisReply *r = redisCommand(c, "EXISTS in3 in0");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_true(ok(redisCommand(c, "SELECT 3")));
    r = redisCommand(c, "EXISTS in3 in0");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = redisCommand(c, "GET in3");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    redisFree(c);
    /* A wrong password: NULL, logged, and the log holds neither password. */
    snprintf(url, sizeof(url), "unix://proxy:wr0ng-pw@%s", path);
    a.url = url;
    char *log = logged(auth_run, &a);
    assert_null(a.reply);
    assert_non_null(strstr(log, "redis unreachable"));
    assert_null(strstr(log, "wr0ng-pw"));
    assert_null(strstr(log, "s3cr"));
    free(log);
}

static void test_restart_costs_no_failed_command(void **state)
{
    struct redis_fixture *f = *state;
    struct kv *kv = open_kv(f->url, 1, 1000, 60000);
    const char *set[] = {"SET", "a", "1"}, *get[] = {"GET", "a"};
    assert_true(ok(cmd(kv, 3, set)));
    assert_int_equal(redis_fixture_restart(f), 0);
    /* The pooled connection is dead: the command is sent again on a new one. */
    redisReply *r = cmd(kv, 2, get);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_NIL); /* the restarted server is empty */
    freeReplyObject(r);
    struct kv_stats st;
    kv_stats(kv, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.failures, 0);
    kv_free(kv);
}

static void shutdown_server(const struct redis_fixture *f)
{
    redisReply *r = direct(f, "SHUTDOWN %s", "NOSAVE");
    if (r != NULL)
        freeReplyObject(r);
}

static void test_outage_answers_null_then_reconnects(void **state)
{
    struct redis_fixture *f = *state;
    struct kv *kv = open_kv(f->url, 2, 1000, 0);
    const char *ping[] = {"PING"};
    assert_true(ok(cmd(kv, 1, ping)));
    shutdown_server(f);
    assert_null(cmd(kv, 1, ping));
    assert_null(cmd(kv, 1, ping));
    assert_int_equal(redis_fixture_restart(f), 0);
    assert_true(ok(cmd(kv, 1, ping)));
    kv_free(kv);
}

static void test_failed_connect_holds_off_connects_for_retry_ms(void **state)
{
    struct redis_fixture *f = *state;
    struct kv *kv = open_kv(f->url, 1, 1000, 600000);
    const char *ping[] = {"PING"};
    shutdown_server(f);
    assert_null(cmd(kv, 1, ping));
    assert_int_equal(redis_fixture_restart(f), 0);
    assert_null(cmd(kv, 1, ping)); /* Redis is back, but the delay has not passed */
    struct kv_stats st;
    kv_stats(kv, &st);
    assert_int_equal(st.connects, 0);
    kv_free(kv);
}

static void test_command_timeout_fails_the_command_not_the_next(void **state)
{
    struct redis_fixture *f = *state;
    struct kv *kv = open_kv(f->url, 1, 100, 0);
    /* Without the timeout this would answer nil after 3 s. */
    const char *blpop[] = {"BLPOP", "nothing", "3"}, *ping[] = {"PING"};
    assert_null(cmd(kv, 3, blpop));
    assert_true(ok(cmd(kv, 1, ping)));
    kv_free(kv);
}

static const char ECHO_SCRIPT[] = "return {KEYS[1], ARGV[1]}";

static void eval_echo(struct kv *kv, const struct kv_script *s)
{
    const char *argv[] = {"key", "arg"};
    size_t lens[] = {3, 3};
    redisReply *r = kv_eval(kv, s, 1, 2, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->str, "key");
    assert_string_equal(r->element[1]->str, "arg");
    freeReplyObject(r);
}

static void test_evalsha_loads_the_script_after_noscript(void **state)
{
    struct redis_fixture *f = *state;
    struct kv *kv = open_kv(f->url, 1, 1000, 0);
    struct kv_script s;
    assert_int_equal(kv_script_init(&s, ECHO_SCRIPT), 0);
    eval_echo(kv, &s); /* never loaded: NOSCRIPT first */
    redisReply *r = direct(f, "SCRIPT EXISTS %s", s.sha);
    assert_int_equal(r->element[0]->integer, 1); /* the SHA-1 is Redis's */
    freeReplyObject(r);
    assert_true(ok(direct(f, "SCRIPT %s", "FLUSH")));
    eval_echo(kv, &s);
    assert_int_equal(redis_fixture_restart(f), 0);
    eval_echo(kv, &s);
    kv_free(kv);
}

#define THREADS 8
#define ROUNDS  200

static void *incr_many(void *arg)
{
    const char *incr[] = {"INCR", "counter"};
    for (int i = 0; i < ROUNDS; i++)
        if (!ok(cmd(arg, 2, incr)))
            return arg;
    return NULL;
}

static void test_many_threads_share_a_small_pool(void **state)
{
    struct redis_fixture *f = *state;
    struct kv *kv = open_kv(f->url, 2, 1000, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, incr_many, kv), 0);
    for (int i = 0; i < THREADS; i++) {
        void *failed = NULL;
        pthread_join(t[i], &failed);
        assert_null(failed);
    }
    const char *get[] = {"GET", "counter"};
    redisReply *r = cmd(kv, 2, get);
    assert_string_equal(r->str, "1600");
    freeReplyObject(r);
    struct kv_stats st;
    kv_stats(kv, &st);
    assert_true(st.connects >= 1 && st.connects <= 2); /* never more than the pool */
    assert_int_equal(st.commands, THREADS * ROUNDS + 1);
    kv_free(kv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as cobrowsed (kv.h) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bytes_with_nul_and_utf8_round_trip, setup, teardown),
        cmocka_unit_test(test_connects_lazily_and_refuses_a_bad_url),
        cmocka_unit_test_setup_teardown(
            test_auth_and_select_from_the_url_never_logging_the_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_costs_no_failed_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_answers_null_then_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_connect_holds_off_connects_for_retry_ms, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_command_timeout_fails_the_command_not_the_next, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_evalsha_loads_the_script_after_noscript, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_many_threads_share_a_small_pool, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
