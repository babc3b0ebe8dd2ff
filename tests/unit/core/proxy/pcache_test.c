/* core/proxy/pcache.c: LRU order and the byte bound, references that outlive replacement,
 * oversize entries, stats, the RFC 9111 freshness rules, and many threads at once (TSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/proxy/pcache.h"

#define NOW ((time_t)1789998400) /* a fixed wall clock: D_NOW below */

static struct pcache_entry entry(const char *key, const char *body)
{
    struct pcache_entry e;
    memset(&e, 0, sizeof e);
    e.key = key;
    e.status = 200;
    e.content_type = "text/css";
    e.etag = "\"v1\"";
    e.body = body;
    e.body_len = strlen(body);
    e.stored_at = NOW;
    e.fresh_until = NOW + 60;
    return e;
}

static int has(struct pcache *c, const char *key)
{
    const struct pcache_entry *e = pcache_get(c, key);
    pcache_release(c, e);
    return e != NULL;
}

/* The bytes one entry costs in a cache, measured rather than assumed. */
static size_t cost_of(const char *key, const char *body)
{
    struct pcache *c = pcache_new(1 << 20);
    struct pcache_entry e = entry(key, body);
    assert_int_equal(pcache_put(c, &e), 0);
    struct pcache_stats s;
    pcache_stats(c, &s);
    pcache_free(c);
    return s.bytes;
}

static void test_get_returns_a_copy_of_what_was_put(void **state)
{
    (void)state;
    struct pcache *c = pcache_new(1 << 20);
    char key[] = "t1|css|https://a.example/x.css", body[] = "a:hover{color:red}";
    struct pcache_entry e = entry(key, body);
    e.last_modified = "Wed, 21 Oct 2015 07:28:00 GMT";
    e.must_revalidate = 1;
    assert_int_equal(pcache_put(c, &e), 0);
    memset(body, 'x', sizeof body - 1); /* the cache must not point at the caller's buffers */
    const struct pcache_entry *g = pcache_get(c, "t1|css|https://a.example/x.css");
    assert_non_null(g);
    assert_string_equal(g->key, "t1|css|https://a.example/x.css");
    assert_int_equal(g->status, 200);
    assert_string_equal(g->content_type, "text/css");
    assert_string_equal(g->etag, "\"v1\"");
    assert_string_equal(g->last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
    assert_int_equal(g->body_len, strlen("a:hover{color:red}"));
    assert_memory_equal(g->body, "a:hover{color:red}", g->body_len);
    assert_int_equal(g->body[g->body_len], '\0');
    assert_int_equal(g->fresh_until, NOW + 60);
    assert_int_equal(g->must_revalidate, 1);
    pcache_release(c, g);
    assert_null(pcache_get(c, "t2|css|https://a.example/x.css")); /* other tenant, other key */
    pcache_free(c);
}

static void test_least_recently_used_goes_first_and_bytes_stay_bounded(void **state)
{
    (void)state;
    char body[200];
    memset(body, 'b', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    size_t one = cost_of("k0", body);
    /* Room for exactly 8 entries, each exactly an eighth (the largest storable). */
    struct pcache *c = pcache_new(one * 8);
    char key[8];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "k%d", i);
        struct pcache_entry e = entry(key, body);
        assert_int_equal(pcache_put(c, &e), 0);
    }
    struct pcache_stats s;
    pcache_stats(c, &s);
    assert_int_equal(s.entries, 8);
    assert_int_equal(s.bytes, one * 8);
    assert_int_equal(s.evictions, 0);
    assert_true(has(c, "k0")); /* k0 now most recent: k1 is the oldest */
    struct pcache_entry e = entry("k8", body);
    assert_int_equal(pcache_put(c, &e), 0);
    assert_false(has(c, "k1"));
    assert_true(has(c, "k0"));
    e = entry("k9", body);
    assert_int_equal(pcache_put(c, &e), 0);
    assert_false(has(c, "k2"));
    for (int i = 3; i <= 9; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_true(has(c, key));
    }
    pcache_stats(c, &s);
    assert_int_equal(s.entries, 8);
    assert_true(s.bytes <= one * 8);
    assert_int_equal(s.evictions, 2);
    pcache_free(c);
}

static void test_replacement_while_a_reader_holds_the_old_entry(void **state)
{
    (void)state;
    struct pcache *c = pcache_new(1 << 20);
    struct pcache_entry e = entry("k", "old body");
    assert_int_equal(pcache_put(c, &e), 0);
    const struct pcache_entry *old = pcache_get(c, "k");
    e = entry("k", "new body, longer");
    assert_int_equal(pcache_put(c, &e), 0);
    /* ASan reports a use-after-free here if the replaced entry was freed under the reader. */
    assert_string_equal(old->body, "old body");
    assert_string_equal(old->key, "k");
    const struct pcache_entry *cur = pcache_get(c, "k");
    assert_string_equal(cur->body, "new body, longer");
    struct pcache_stats s;
    pcache_stats(c, &s);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, cost_of("k", "new body, longer"));
    pcache_release(c, old);
    pcache_release(c, cur);
    pcache_free(c);
}

static void test_eviction_while_a_reader_holds_the_entry(void **state)
{
    (void)state;
    size_t one = cost_of("b0", "body");
    struct pcache *c = pcache_new(one * 8);
    struct pcache_entry e = entry("a0", "body");
    assert_int_equal(pcache_put(c, &e), 0);
    const struct pcache_entry *held = pcache_get(c, "a0");
    char key[8];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "b%d", i);
        e = entry(key, "body");
        assert_int_equal(pcache_put(c, &e), 0);
    }
    assert_false(has(c, "a0"));
    assert_string_equal(held->body, "body");
    pcache_release(c, held);
    pcache_free(c);
}

static void test_entry_over_an_eighth_is_not_stored_and_drops_the_old_one(void **state)
{
    (void)state;
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t small = cost_of("k", "small");
    struct pcache *c = pcache_new(small * 8); /* an eighth fits "small", not 599 bytes */
    struct pcache_entry e = entry("k", "small");
    assert_int_equal(pcache_put(c, &e), 0);
    e = entry("k", big);
    assert_int_equal(pcache_put(c, &e), 1);
    assert_false(has(c, "k"));
    struct pcache_stats s;
    pcache_stats(c, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    pcache_free(c);
}

static void test_stats_count_hits_and_misses(void **state)
{
    (void)state;
    struct pcache *c = pcache_new(1 << 20);
    struct pcache_entry e = entry("k", "body");
    pcache_put(c, &e);
    has(c, "k");
    has(c, "k");
    has(c, "nope");
    struct pcache_stats s;
    pcache_stats(c, &s);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.misses, 1);
    assert_int_equal(s.entries, 1);
    pcache_free(c);
}

static void test_refresh_extends_freshness_and_keeps_the_body(void **state)
{
    (void)state;
    struct pcache *c = pcache_new(1 << 20);
    struct pcache_entry e = entry("k", "body");
    pcache_put(c, &e);
    const struct pcache_entry *before = pcache_get(c, "k");
    assert_int_equal(pcache_refresh(c, "k", NOW + 3600), 0);
    assert_int_equal(before->fresh_until, NOW + 60); /* immutable: readers see a new entry */
    const struct pcache_entry *after = pcache_get(c, "k");
    assert_int_equal(after->fresh_until, NOW + 3600);
    assert_string_equal(after->body, "body");
    assert_string_equal(after->etag, "\"v1\"");
    pcache_release(c, before);
    pcache_release(c, after);
    assert_int_equal(pcache_refresh(c, "gone", NOW), -1);
    struct pcache_stats s;
    pcache_stats(c, &s);
    assert_int_equal(s.entries, 1);
    pcache_free(c);
}

/* ---- pcache_policy ---- */

static struct pcache_policy policy(const char *cc, const char *expires, const char *date,
                                   const char *age, const char *lm)
{
    struct pcache_policy p;
    memset(&p, 0x55, sizeof p);
    pcache_policy(cc, expires, date, age, lm, 300, NOW, &p);
    return p;
}

/* NOW as an HTTP-date, and offsets from it. */
#define D_NOW     "Mon, 21 Sep 2026 13:46:40 GMT"
#define D_NOW_P1H "Mon, 21 Sep 2026 14:46:40 GMT"
#define D_NOW_M1H "Mon, 21 Sep 2026 12:46:40 GMT"
#define D_NOW_M1D "Sun, 20 Sep 2026 13:46:40 GMT"
#define D_NOW_M1Y "Sun, 21 Sep 2025 13:46:40 GMT"

static void test_policy_dates_parse_as_expected(void **state)
{
    (void)state;
    /* Guards the constants above: the other tests mean nothing if D_NOW is not NOW. */
    struct pcache_policy p = policy(NULL, D_NOW_P1H, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 3600);
}

static void test_policy_s_maxage_over_max_age_over_expires(void **state)
{
    (void)state;
    struct pcache_policy p = policy("max-age=60, s-maxage=120", D_NOW_P1H, D_NOW, NULL, NULL);
    assert_int_equal(p.store, 1);
    assert_int_equal(p.fresh_for, 120);
    assert_int_equal(p.revalidate, 0);
    p = policy("s-maxage=0, max-age=600", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age=60", D_NOW_P1H, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 60);
    p = policy("public", D_NOW_P1H, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 3600);
    p = policy("Max-Age=\"90\"", NULL, D_NOW, NULL, NULL); /* case and quotes tolerated */
    assert_int_equal(p.fresh_for, 90);
    p = policy("max-age=90, max-age=10", NULL, D_NOW, NULL, NULL); /* the first one */
    assert_int_equal(p.fresh_for, 90);
}

static void test_policy_age_and_apparent_age_subtracted(void **state)
{
    (void)state;
    struct pcache_policy p = policy("max-age=600", NULL, D_NOW, "100", NULL);
    assert_int_equal(p.fresh_for, 500);
    p = policy("max-age=600", NULL, D_NOW_M1H, NULL, NULL); /* Date an hour ago */
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age=7200", NULL, D_NOW_M1H, "60", NULL); /* the larger of the two ages */
    assert_int_equal(p.fresh_for, 3600);
    p = policy("max-age=600", NULL, D_NOW, "900", NULL);
    assert_int_equal(p.fresh_for, 0);
    p = policy(NULL, D_NOW_P1H, D_NOW, "600", NULL);
    assert_int_equal(p.fresh_for, 3000);
}

static void test_policy_no_store_and_private_not_stored(void **state)
{
    (void)state;
    struct pcache_policy p = policy("no-store", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.store, 0);
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age=600, private", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.store, 0);
    p = policy("private=\"set-cookie\", max-age=600", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.store, 0);
    p = policy("public,NO-STORE", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.store, 0);
    p = policy("no-storey", NULL, D_NOW, NULL, NULL); /* not a directive we know */
    assert_int_equal(p.store, 1);
}

static void test_policy_no_cache_and_must_revalidate(void **state)
{
    (void)state;
    struct pcache_policy p = policy("no-cache, max-age=600", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.store, 1);
    assert_int_equal(p.fresh_for, 0);
    assert_int_equal(p.revalidate, 1);
    p = policy("must-revalidate, max-age=600", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.store, 1);
    assert_int_equal(p.fresh_for, 600);
    assert_int_equal(p.revalidate, 1);
    p = policy("proxy-revalidate, max-age=60", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.revalidate, 1);
    p = policy("max-age=60", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.revalidate, 0);
}

static void test_policy_heuristic_from_last_modified_capped_at_a_day(void **state)
{
    (void)state;
    struct pcache_policy p = policy(NULL, NULL, D_NOW, NULL, D_NOW_M1H);
    assert_int_equal(p.fresh_for, 360);
    p = policy(NULL, NULL, D_NOW, NULL, D_NOW_M1D);
    assert_int_equal(p.fresh_for, 8640);
    p = policy(NULL, NULL, D_NOW, NULL, D_NOW_M1Y);
    assert_int_equal(p.fresh_for, 86400);
    p = policy(NULL, NULL, D_NOW, "60", D_NOW_M1H);
    assert_int_equal(p.fresh_for, 300);
    p = policy(NULL, NULL, D_NOW, NULL, D_NOW_P1H); /* modified in the future: no heuristic */
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age=5", NULL, D_NOW, NULL, D_NOW_M1Y); /* explicit beats heuristic */
    assert_int_equal(p.fresh_for, 5);
    p = policy(NULL, NULL, D_NOW, NULL, NULL); /* nothing at all: the configured default */
    assert_int_equal(p.fresh_for, 300);
    assert_int_equal(p.store, 1);
}

static void test_policy_bad_values_mean_stale_not_fresh(void **state)
{
    (void)state;
    struct pcache_policy p = policy(NULL, "0", D_NOW, NULL, NULL);
    assert_int_equal(p.store, 1);
    assert_int_equal(p.fresh_for, 0);
    p = policy(NULL, "not a date", D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 0);
    p = policy(NULL, D_NOW_M1H, D_NOW, NULL, NULL); /* already expired */
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age=abc", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age=-5", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 0);
    p = policy("max-age=99999999999999999999", NULL, D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 2147483648L);
    p = policy("max-age=60", NULL, "yesterday", NULL, NULL); /* bad Date: taken as now */
    assert_int_equal(p.fresh_for, 60);
    p = policy(NULL, NULL, D_NOW, NULL, "garbage"); /* bad Last-Modified: no heuristic */
    assert_int_equal(p.fresh_for, 300);
    p = policy("max-age=60", NULL, D_NOW, "soon", NULL); /* bad Age ignored */
    assert_int_equal(p.fresh_for, 60);
}

static void test_policy_obsolete_date_formats(void **state)
{
    (void)state;
    struct pcache_policy p = policy(NULL, "Monday, 21-Sep-26 14:46:40 GMT", D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 3600);
    p = policy(NULL, "Mon Sep 21 14:46:40 2026", D_NOW, NULL, NULL);
    assert_int_equal(p.fresh_for, 3600);
}

/* ---- threads ---- */

struct worker {
    struct pcache *c;
    int id;
    unsigned long bad;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char key[16], body[64];
    for (int i = 0; i < 4000; i++) {
        int k = (i * 7 + w->id) % 40;
        snprintf(key, sizeof key, "k%d", k);
        if (i % 5 == 0) {
            snprintf(body, sizeof body, "%s-%d-%d", key, w->id, i);
            struct pcache_entry e = entry(key, body);
            pcache_put(w->c, &e);
        } else if (i % 17 == 0) {
            pcache_refresh(w->c, key, NOW + i);
        } else {
            const struct pcache_entry *e = pcache_get(w->c, key);
            /* Every body starts with its key: a torn or freed entry shows up here. */
            if (e != NULL && strncmp(e->body, key, strlen(key)) != 0)
                w->bad++;
            pcache_release(w->c, e);
        }
    }
    return NULL;
}

static void test_many_threads_get_put_release(void **state)
{
    (void)state;
    /* Small enough that puts evict while other threads hold entries. */
    struct pcache *c = pcache_new(cost_of("k10", "k10-1-1000") * 16);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.c = c, .id = i, .bad = 0};
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    struct pcache_stats s;
    pcache_stats(c, &s);
    assert_true(s.bytes <= cost_of("k10", "k10-1-1000") * 16);
    assert_true(s.hits > 0);
    assert_true(s.evictions > 0);
    pcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_returns_a_copy_of_what_was_put),
        cmocka_unit_test(test_least_recently_used_goes_first_and_bytes_stay_bounded),
        cmocka_unit_test(test_replacement_while_a_reader_holds_the_old_entry),
        cmocka_unit_test(test_eviction_while_a_reader_holds_the_entry),
        cmocka_unit_test(test_entry_over_an_eighth_is_not_stored_and_drops_the_old_one),
        cmocka_unit_test(test_stats_count_hits_and_misses),
        cmocka_unit_test(test_refresh_extends_freshness_and_keeps_the_body),
        cmocka_unit_test(test_policy_dates_parse_as_expected),
        cmocka_unit_test(test_policy_s_maxage_over_max_age_over_expires),
        cmocka_unit_test(test_policy_age_and_apparent_age_subtracted),
        cmocka_unit_test(test_policy_no_store_and_private_not_stored),
        cmocka_unit_test(test_policy_no_cache_and_must_revalidate),
        cmocka_unit_test(test_policy_heuristic_from_last_modified_capped_at_a_day),
        cmocka_unit_test(test_policy_bad_values_mean_stale_not_fresh),
        cmocka_unit_test(test_policy_obsolete_date_formats),
        cmocka_unit_test(test_many_threads_get_put_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
