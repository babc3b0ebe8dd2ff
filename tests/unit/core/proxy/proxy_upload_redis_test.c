/* core/proxy/proxy_upload_redis.c through proxy_upload.h's interface, against a real
 * redis-server (tests/unit/core/cluster/redis_fixture.h): round trip and replace, two nodes
 * sharing uploads, the per-session sheet and byte bounds (oldest out), the TTL, tenant and
 * session isolation, bytes intact, a restart and an outage, Redis refusing the write, ids that
 * could alias, and many threads at once (TSan in CI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/crypto.h"
#include "core/proxy/proxy_upload.h"
#include "tests/unit/core/cluster/redis_fixture.h"

#define TEN  "ten_01JD3K5Q8W2X7Y9Z0ABCDEFGHJ"
#define SES  "ses_01JD3K5Q8W2X7Y9Z0ABCDEFGHJ"
#define SES2 "ses_01JD3K5Q8W2X7Y9Z0ABCDEFGHK"
#define TEN2 "ten_01JD3K5Q8W2X7Y9Z0ABCDEFGHK"
#define URL  "https://shop.example/a.css"
#define NOW  ((time_t)1789998400) /* unused by the Redis store */

struct ctx {
    struct redis_fixture f;
    struct proxy_uploads *u;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    if (c == NULL || redis_fixture_start(&c->f) != 0 ||
        (c->u = proxy_uploads_new_redis(c->f.url)) == NULL) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    proxy_uploads_free(c->u);
    redis_fixture_stop(&c->f);
    free(c);
    return 0;
}

static int put(struct proxy_uploads *u, const char *ten, const char *ses, const char *url,
               const char *text)
{
    return proxy_uploads_put(u, ten, ses, url, text, strlen(text), NOW);
}

/* 1 when (ten, ses, url) holds exactly text. */
static int holds(struct proxy_uploads *u, const char *ten, const char *ses, const char *url,
                 const char *text, size_t len)
{
    size_t got = 0;
    char *t = proxy_uploads_get(u, ten, ses, url, NOW, &got);
    int same = t != NULL && got == len && memcmp(t, text, len) == 0 && t[len] == '\0';
    free(t);
    return same;
}

static int absent(struct proxy_uploads *u, const char *ten, const char *ses, const char *url)
{
    size_t got = 0;
    char *t = proxy_uploads_get(u, ten, ses, url, NOW, &got);
    free(t);
    return t == NULL;
}

static redisReply *direct(const struct redis_fixture *f, const char *fmt, const char *arg)
{
    redisContext *rc = redisConnectUnix(strstr(f->url, "://") + 3);
    assert_true(rc != NULL && rc->err == 0);
    redisReply *r = redisCommand(rc, fmt, arg);
    redisFree(rc);
    return r;
}

static void test_put_get_and_replace(void **state)
{
    struct ctx *c = *state;
    assert_true(absent(c->u, TEN, SES, URL));
    assert_int_equal(put(c->u, TEN, SES, URL, "a{color:red}"), 0);
    assert_true(holds(c->u, TEN, SES, URL, "a{color:red}", 12));
    assert_int_equal(put(c->u, TEN, SES, URL, "b{}"), 0);
    assert_true(holds(c->u, TEN, SES, URL, "b{}", 3));
    struct proxy_uploads_stats st;
    proxy_uploads_stats(c->u, &st);
    assert_int_equal(st.shared, 1);
    assert_int_equal(st.stored, 2);
    assert_int_equal(st.evicted, 0); /* a replaced sheet is not evicted */
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.sheets, 0); /* not counted in Redis (proxy_upload.h) */
}

static void test_another_node_sees_the_upload(void **state)
{
    struct ctx *c = *state;
    struct proxy_uploads *other = proxy_uploads_new_redis(c->f.url);
    assert_non_null(other);
    assert_int_equal(put(c->u, TEN, SES, URL, "a{}"), 0);
    assert_true(holds(other, TEN, SES, URL, "a{}", 3));
    assert_int_equal(put(other, TEN, SES, URL, "b{}"), 0);
    assert_true(holds(c->u, TEN, SES, URL, "b{}", 3));
    proxy_uploads_free(other);
}

static void test_tenants_and_sessions_are_apart(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(put(c->u, TEN, SES, URL, "mine{}"), 0);
    assert_true(absent(c->u, TEN, SES2, URL));
    assert_true(absent(c->u, TEN2, SES, URL));
    assert_true(absent(c->u, TEN, SES, "https://shop.example/b.css"));
    /* Filling another session does not push this one's sheet out. */
    for (int i = 0; i < PROXY_UPLOAD_SESSION_SHEETS + 1; i++) {
        char url[64];
        snprintf(url, sizeof(url), "https://shop.example/%d.css", i);
        assert_int_equal(put(c->u, TEN, SES2, url, "x{}"), 0);
    }
    assert_true(holds(c->u, TEN, SES, URL, "mine{}", 6));
}

static void test_binary_and_utf8_text_intact(void **state)
{
    struct ctx *c = *state;
    static const char text[] =
        "a::after{content:'\xc3\xa9\xe2\x86\x92\xf0\x9f\x98\x80'}\0\r\n$9\r\n\xff";
    size_t len = sizeof(text) - 1;
    assert_int_equal(proxy_uploads_put(c->u, TEN, SES, URL, text, len, NOW), 0);
    assert_true(holds(c->u, TEN, SES, URL, text, len));
}

static void url_of(int i, char *out, size_t size)
{
    snprintf(out, size, "https://shop.example/%d.css", i);
}

static void test_session_sheet_bound_drops_the_oldest(void **state)
{
    struct ctx *c = *state;
    char url[64];
    for (int i = 0; i < PROXY_UPLOAD_SESSION_SHEETS; i++) {
        url_of(i, url, sizeof(url));
        assert_int_equal(put(c->u, TEN, SES, url, "x{}"), 0);
    }
    /* Replacing sheet 0 makes it the newest: 1 is now the oldest. */
    url_of(0, url, sizeof(url));
    assert_int_equal(put(c->u, TEN, SES, url, "y{}"), 0);
    url_of(PROXY_UPLOAD_SESSION_SHEETS, url, sizeof(url));
    assert_int_equal(put(c->u, TEN, SES, url, "z{}"), 0);
    url_of(1, url, sizeof(url));
    assert_true(absent(c->u, TEN, SES, url));
    url_of(0, url, sizeof(url));
    assert_true(holds(c->u, TEN, SES, url, "y{}", 3));
    url_of(2, url, sizeof(url));
    assert_true(holds(c->u, TEN, SES, url, "x{}", 3));
    redisReply *r = direct(&c->f, "ZCARD %s", "cb:up:{" TEN ":" SES "}");
    assert_int_equal(r->integer, PROXY_UPLOAD_SESSION_SHEETS);
    freeReplyObject(r);
    struct proxy_uploads_stats st;
    proxy_uploads_stats(c->u, &st);
    assert_int_equal(st.evicted, 1);
}

static void test_session_byte_bound_drops_the_oldest(void **state)
{
    struct ctx *c = *state;
    char url[64];
    size_t quarter = PROXY_UPLOAD_SESSION_BYTES / 4;
    char *text = malloc(quarter);
    assert_non_null(text);
    memset(text, 'q', quarter);
    for (int i = 0; i < 4; i++) { /* exactly the bound: all kept */
        url_of(i, url, sizeof(url));
        assert_int_equal(proxy_uploads_put(c->u, TEN, SES, url, text, quarter, NOW), 0);
    }
    url_of(0, url, sizeof(url));
    assert_true(holds(c->u, TEN, SES, url, text, quarter));
    assert_int_equal(
        proxy_uploads_put(c->u, TEN, SES, "https://shop.example/small.css", "s{}", 3, NOW), 0);
    /* Over the bound by 3 bytes: the oldest went; the one read last was not refreshed by the read.
     */
    assert_true(absent(c->u, TEN, SES, url));
    url_of(1, url, sizeof(url));
    assert_true(holds(c->u, TEN, SES, url, text, quarter));
    /* Larger than the session may ever hold, or than one sheet may be: refused. */
    assert_int_equal(
        proxy_uploads_put(c->u, TEN, SES, url, text, PROXY_UPLOAD_SESSION_BYTES + 1, NOW), 1);
    assert_int_equal(proxy_uploads_put(c->u, TEN, SES, url, text, PROXY_UPLOAD_MAX_BYTES + 1, NOW),
                     1);
    free(text);
}

static void test_sheet_and_index_expire_after_the_ttl(void **state)
{
    struct ctx *c = *state;
    char sha[CRYPTO_HEX_SHA256], key[256];
    assert_int_equal(put(c->u, TEN, SES, URL, "a{}"), 0);
    assert_int_equal(crypto_sha256_hex(URL, strlen(URL), sha), 0);
    snprintf(key, sizeof(key), "cb:up:{%s:%s}:%s", TEN, SES, sha);
    const char *keys[] = {key, "cb:up:{" TEN ":" SES "}"};
    for (int i = 0; i < 2; i++) {
        redisReply *r = direct(&c->f, "TTL %s", keys[i]);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_true(r->integer > PROXY_UPLOAD_TTL_SECONDS - 60);
        assert_true(r->integer <= PROXY_UPLOAD_TTL_SECONDS);
        freeReplyObject(r);
    }
    /* A sheet Redis expired is gone from the session's set at the next put. */
    freeReplyObject(direct(&c->f, "DEL %s", key));
    assert_true(absent(c->u, TEN, SES, URL));
    assert_int_equal(put(c->u, TEN, SES, "https://shop.example/b.css", "b{}"), 0);
    redisReply *r = direct(&c->f, "ZCARD %s", keys[1]);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
}

static void test_restart_loses_uploads_but_not_a_request(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(put(c->u, TEN, SES, URL, "a{}"), 0);
    assert_int_equal(redis_fixture_restart(&c->f), 0);
    assert_true(absent(c->u, TEN, SES, URL));             /* the server came back empty */
    assert_int_equal(put(c->u, TEN, SES, URL, "b{}"), 0); /* the script is loaded again */
    assert_true(holds(c->u, TEN, SES, URL, "b{}", 3));
    struct proxy_uploads_stats st;
    proxy_uploads_stats(c->u, &st);
    assert_int_equal(st.errors, 0);
}

static void test_outage_refuses_puts_and_finds_nothing(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(put(c->u, TEN, SES, URL, "a{}"), 0);
    redisReply *r = direct(&c->f, "SHUTDOWN %s", "NOSAVE");
    if (r != NULL)
        freeReplyObject(r);
    assert_true(absent(c->u, TEN, SES, URL));
    assert_int_equal(put(c->u, TEN, SES, URL, "b{}"), -1);
    struct proxy_uploads_stats st;
    proxy_uploads_stats(c->u, &st);
    assert_int_equal(st.errors, 2);
}

static void test_redis_refusing_the_write_is_an_error(void **state)
{
    struct ctx *c = *state;
    freeReplyObject(direct(&c->f, "CONFIG SET maxmemory-policy %s", "noeviction"));
    freeReplyObject(direct(&c->f, "CONFIG SET maxmemory %s", "1"));
    assert_int_equal(put(c->u, TEN, SES, URL, "a{}"), -1);
    struct proxy_uploads_stats st;
    proxy_uploads_stats(c->u, &st);
    assert_int_equal(st.errors, 1);
    assert_int_equal(st.stored, 0);
}

static void test_ids_that_could_alias_are_refused(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(put(c->u, "ten:a", SES, URL, "a{}"), -1);
    assert_int_equal(put(c->u, TEN, "ses}x", URL, "a{}"), -1);
    assert_int_equal(put(c->u, TEN, "", URL, "a{}"), -1);
    assert_true(absent(c->u, TEN, "ses:x", URL));
}

#define THREADS 8
#define ROUNDS  40

struct worker {
    struct proxy_uploads *u;
    int id, bad;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char ses[64], url[64], text[64];
    snprintf(ses, sizeof(ses), "ses_%d", w->id);
    for (int i = 0; i < ROUNDS; i++) {
        snprintf(url, sizeof(url), "https://shop.example/%d.css", i % 5);
        snprintf(text, sizeof(text), "w%d{n:%d}", w->id, i);
        if (put(w->u, TEN, ses, url, text) != 0 || !holds(w->u, TEN, ses, url, text, strlen(text)))
            w->bad++;
        /* One URL every thread shares in one session: some thread's copy, whole. */
        if (put(w->u, TEN, SES, URL, text) != 0 || absent(w->u, TEN, SES, URL))
            w->bad++;
    }
    return NULL;
}

static void test_many_threads_at_once(void **state)
{
    struct ctx *c = *state;
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.u = c->u, .id = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    struct proxy_uploads_stats st;
    proxy_uploads_stats(c->u, &st);
    assert_int_equal(st.stored, THREADS * ROUNDS * 2);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as cobrowsed (core/cluster/kv.h) */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_get_and_replace),
        T(test_another_node_sees_the_upload),
        T(test_tenants_and_sessions_are_apart),
        T(test_binary_and_utf8_text_intact),
        T(test_session_sheet_bound_drops_the_oldest),
        T(test_session_byte_bound_drops_the_oldest),
        T(test_sheet_and_index_expire_after_the_ttl),
        T(test_restart_loses_uploads_but_not_a_request),
        T(test_outage_refuses_puts_and_finds_nothing),
        T(test_redis_refusing_the_write_is_an_error),
        T(test_ids_that_could_alias_are_refused),
        T(test_many_threads_at_once),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
