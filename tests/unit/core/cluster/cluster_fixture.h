/* The shared part of the unit tests of core/cluster/cluster*.c and the Lua scripts
 * (cluster_test.c: the scripts' semantics; cluster_failure_test.c: the connection's failure
 * paths), against a real redis-server (redis_fixture.h): the client runs on a libev loop in the
 * test's thread, which is run until a callback fires (or a timeout fails the test). A second,
 * synchronous hiredis connection reads and writes keys directly to set up and check what the
 * scripts did.
 *
 * Include it from exactly one .c file per test executable (it defines static state, T). Helpers
 * are static inline so that a test file that does not use one of them still compiles
 * warning-free. Threading: the test's thread only (the loop, the client and T are its own). */
#ifndef COBROWSE_TESTS_CORE_CLUSTER_CLUSTER_FIXTURE_H
#define COBROWSE_TESTS_CORE_CLUSTER_CLUSTER_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/cluster/cluster.h"
#include "tests/unit/core/cluster/redis_fixture.h"

#include <ev.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_S   10.0 /* a condition not met by then fails the test */
#define MAX_MSGS 64

struct msg {
    char sid[65];
    unsigned char data[256];
    size_t len;
};

static struct {
    struct redis_fixture rf;
    struct ev_loop *loop;
    struct cluster *cl;
    redisContext *sync; /* the test's own connection */
    int states[16], n_states;
    struct msg msgs[MAX_MSGS];
    int n_msgs;
    int timed_out;
} T;

static inline void on_state(void *ctx, int up)
{
    (void)ctx;
    if (T.n_states < 16)
        T.states[T.n_states++] = up;
}

static inline void on_message(void *ctx, const char *sid, const unsigned char *data, size_t len)
{
    (void)ctx;
    if (T.n_msgs >= MAX_MSGS)
        return;
    struct msg *m = &T.msgs[T.n_msgs++];
    snprintf(m->sid, sizeof m->sid, "%s", sid);
    m->len = len < sizeof m->data ? len : sizeof m->data;
    memcpy(m->data, data, m->len);
}

static inline void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    T.timed_out = 1;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until pred() holds; fails the test after WAIT_S. */
static inline void wait_pred(int (*pred)(const void *), const void *arg)
{
    ev_timer t;
    ev_timer_init(&t, on_timeout, WAIT_S, 0.);
    ev_timer_start(T.loop, &t);
    T.timed_out = 0;
    while (!pred(arg) && !T.timed_out)
        ev_run(T.loop, EVRUN_ONCE);
    ev_timer_stop(T.loop, &t);
    assert_true(pred(arg));
}

static inline int flag_set(const void *flag)
{
    return *(const int *)flag != 0;
}
static inline void wait_for(const int *flag)
{
    wait_pred(flag_set, flag);
}
static inline int is_up(const void *arg)
{
    return cluster_is_up(arg);
}
static inline int is_down(const void *arg)
{
    return !cluster_is_up(arg);
}
static inline void wait_up(void)
{
    wait_pred(is_up, T.cl);
}

static inline struct cluster *new_cluster(const char *url, const char *node)
{
    struct cluster_config cfg = {.url = url, .node_id = node, .key_ttl_seconds = 600};
    struct cluster_hooks hooks = {.ctx = NULL, .state = on_state, .message = on_message};
    return cluster_new(T.loop, &cfg, hooks);
}

static inline int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof T);
    if (redis_fixture_start(&T.rf) < 0)
        return -1;
    T.loop = ev_loop_new(EVFLAG_AUTO);
    T.cl = new_cluster(T.rf.url, "node-a");
    if (!T.cl)
        return -1;
    char sock[128];
    snprintf(sock, sizeof sock, "%s/redis.sock", T.rf.dir);
    T.sync = redisConnectUnix(sock);
    if (!T.sync || T.sync->err)
        return -1;
    wait_up();
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    cluster_free(T.cl);
    if (T.sync)
        redisFree(T.sync);
    ev_loop_destroy(T.loop);
    redis_fixture_stop(&T.rf);
    return 0;
}

/* A command on the test's own connection; the reply is the caller's to free. */
static inline redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(T.sync, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static inline long long cmd_int(const char *fmt, const char *a1)
{
    redisReply *r = cmd(fmt, a1);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* HGET as a string ("" when missing) into a static buffer. */
static inline const char *hget(const char *key, const char *field)
{
    static char out[128];
    redisReply *r = cmd("HGET %s %s", key, field);
    snprintf(out, sizeof out, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

/* ---- recorded answers ---- */

struct done_rec {
    int fired, calls, status;
};
static inline void on_done(void *arg, int status)
{
    struct done_rec *d = arg;
    d->fired = 1;
    d->calls++;
    d->status = status;
}

struct admit_rec {
    int fired, calls, status, retry_ms;
    char refused[32];
};
static inline void on_admit(void *arg, int status, const struct cluster_admit_reply *r)
{
    struct admit_rec *a = arg;
    a->fired = 1;
    a->calls++;
    a->status = status;
    if (r) {
        snprintf(a->refused, sizeof a->refused, "%s", r->refused ? r->refused : "");
        a->retry_ms = r->retry_ms;
    }
}

struct claim_rec {
    int fired, calls, status;
    uint64_t gen, last, snap;
    char epoch[33];
    size_t n_agents;
    char agents[4][128];
};
static inline void on_claim(void *arg, int status, const struct cluster_claim_reply *r)
{
    struct claim_rec *c = arg;
    c->fired = 1;
    c->calls++;
    c->status = status;
    if (!r)
        return;
    c->gen = r->gen;
    c->last = r->last;
    c->snap = r->snap;
    snprintf(c->epoch, sizeof c->epoch, "%s", r->epoch);
    c->n_agents = r->n_agents;
    for (size_t i = 0; i < r->n_agents && i < 4; i++)
        snprintf(c->agents[i], sizeof c->agents[i], "%s", r->agents[i]);
}

struct append_rec {
    int fired, calls, status;
    enum cluster_append_result result;
    uint64_t last;
};
static inline void on_append(void *arg, int status, enum cluster_append_result result,
                             uint64_t last)
{
    struct append_rec *a = arg;
    a->fired = 1;
    a->calls++;
    a->status = status;
    a->result = result;
    a->last = last;
}

struct sync_rec {
    int fired, calls, status, exists, visitor;
    uint64_t gen, last, snap;
    char epoch[33], consent[16];
    size_t n_frames;
    char frames[8][64];
    size_t lens[8];
};
static inline void on_sync(void *arg, int status, const struct cluster_sync_reply *r)
{
    struct sync_rec *s = arg;
    s->fired = 1;
    s->calls++;
    s->status = status;
    if (!r)
        return;
    s->exists = r->exists;
    s->visitor = r->visitor;
    s->gen = r->gen;
    s->last = r->last;
    s->snap = r->snap;
    snprintf(s->epoch, sizeof s->epoch, "%s", r->epoch);
    snprintf(s->consent, sizeof s->consent, "%s", r->consent);
    s->n_frames = r->n_frames;
    for (size_t i = 0; i < r->n_frames && i < 8; i++) {
        s->lens[i] = r->frame_lens[i] < 64 ? r->frame_lens[i] : 64;
        memcpy(s->frames[i], r->frames[i], s->lens[i]);
    }
}

struct idle_rec {
    int fired, calls, status, idle, wait_ms;
};
static inline void on_idle(void *arg, int status, int idle, int wait_ms)
{
    struct idle_rec *i = arg;
    i->fired = 1;
    i->calls++;
    i->status = status;
    i->idle = idle;
    i->wait_ms = wait_ms;
}

/* ---- synchronous wrappers: one request, the loop run until it is answered ---- */

#define EPOCH "0123456789abcdef0123456789abcdef"

static inline struct admit_rec admit(const char *tenant, const char *sid, int agent, int resume,
                                     const char *member, int cs, int spm, int aps, int ttl)
{
    struct admit_rec a = {0};
    struct cluster_admit req = {.tenant = tenant,
                                .session = sid,
                                .agent = agent,
                                .resume = resume,
                                .member = member,
                                .concurrent_sessions = cs,
                                .sessions_per_minute = spm,
                                .agents_per_session = aps,
                                .presence_ttl_ms = ttl};
    cluster_admit(T.cl, &req, on_admit, &a);
    wait_for(&a.fired);
    assert_int_equal(a.status, CLUSTER_OK);
    return a;
}

static inline struct claim_rec claim(const char *sid, uint64_t have)
{
    struct claim_rec c = {0};
    cluster_claim(T.cl, sid, have, EPOCH, 30000, on_claim, &c);
    wait_for(&c.fired);
    assert_int_equal(c.status, CLUSTER_OK);
    return c;
}

static inline struct append_rec append(const char *sid, uint64_t gen, uint64_t seq, int snapshot,
                                       const char *frame)
{
    struct append_rec a = {0};
    cluster_append(T.cl, sid, gen, seq, snapshot, (const unsigned char *)frame, strlen(frame),
                   on_append, &a);
    wait_for(&a.fired);
    assert_int_equal(a.status, CLUSTER_OK);
    return a;
}

static inline struct sync_rec sync_from(const char *sid, uint64_t after)
{
    struct sync_rec s = {0};
    cluster_sync(T.cl, sid, after, on_sync, &s);
    wait_for(&s.fired);
    assert_int_equal(s.status, CLUSTER_OK);
    return s;
}

static inline struct idle_rec idle(const char *sid, int idle_ms)
{
    struct idle_rec i = {0};
    cluster_idle(T.cl, sid, idle_ms, on_idle, &i);
    wait_for(&i.fired);
    assert_int_equal(i.status, CLUSTER_OK);
    return i;
}

static inline void done_ok(struct done_rec *d)
{
    wait_for(&d->fired);
    assert_int_equal(d->status, CLUSTER_OK);
    assert_int_equal(d->calls, 1);
}

static inline void subscribe(const char *sid)
{
    struct done_rec d = {0};
    cluster_subscribe(T.cl, sid, on_done, &d);
    done_ok(&d);
}

static inline int count_msgs(const char *sid, const char *prefix, size_t plen);
static inline int marker_arrived(const void *arg)
{
    return count_msgs("marker", "M", 1) > *(const int *)arg;
}

/* Publishes on a marker session the test subscribed to and waits for it: every message
 * published before it has arrived by then (one connection, one order). */
static inline void flush_messages(void)
{
    subscribe("marker");
    int before = count_msgs("marker", "M", 1);
    struct done_rec d = {0};
    cluster_publish(T.cl, "marker", (const unsigned char *)"M", 1, on_done, &d);
    done_ok(&d);
    wait_pred(marker_arrived, &before);
}

static inline int count_msgs(const char *sid, const char *prefix, size_t plen)
{
    int n = 0;
    for (int i = 0; i < T.n_msgs; i++)
        if (strcmp(T.msgs[i].sid, sid) == 0 && T.msgs[i].len >= plen &&
            memcmp(T.msgs[i].data, prefix, plen) == 0)
            n++;
    return n;
}

#define T_(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

#endif
