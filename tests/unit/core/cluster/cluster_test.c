/* core/cluster/cluster*.c and the Lua scripts against a real redis-server (redis_fixture.h): the
 * client runs on a libev loop in the test's thread, which is run until a callback fires (or a
 * timeout fails the test). A second, synchronous hiredis connection reads and writes keys
 * directly to set up and check what the scripts did. */
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

static void on_state(void *ctx, int up)
{
    (void)ctx;
    if (T.n_states < 16)
        T.states[T.n_states++] = up;
}

static void on_message(void *ctx, const char *sid, const unsigned char *data, size_t len)
{
    (void)ctx;
    if (T.n_msgs >= MAX_MSGS)
        return;
    struct msg *m = &T.msgs[T.n_msgs++];
    snprintf(m->sid, sizeof m->sid, "%s", sid);
    m->len = len < sizeof m->data ? len : sizeof m->data;
    memcpy(m->data, data, m->len);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    T.timed_out = 1;
    ev_break(loop, EVBREAK_ONE);
}

/* Runs the loop until pred() holds; fails the test after WAIT_S. */
static void wait_pred(int (*pred)(const void *), const void *arg)
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

static int flag_set(const void *flag)
{
    return *(const int *)flag != 0;
}
static void wait_for(const int *flag)
{
    wait_pred(flag_set, flag);
}
static int is_up(const void *arg)
{
    return cluster_is_up(arg);
}
static int is_down(const void *arg)
{
    return !cluster_is_up(arg);
}
static void wait_up(void)
{
    wait_pred(is_up, T.cl);
}

static struct cluster *new_cluster(const char *url, const char *node)
{
    struct cluster_config cfg = {.url = url, .node_id = node, .key_ttl_seconds = 600};
    struct cluster_hooks hooks = {.ctx = NULL, .state = on_state, .message = on_message};
    return cluster_new(T.loop, &cfg, hooks);
}

static int setup(void **state)
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

static int teardown(void **state)
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
static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(T.sync, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static long long cmd_int(const char *fmt, const char *a1)
{
    redisReply *r = cmd(fmt, a1);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* HGET as a string ("" when missing) into a static buffer. */
static const char *hget(const char *key, const char *field)
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
static void on_done(void *arg, int status)
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
static void on_admit(void *arg, int status, const struct cluster_admit_reply *r)
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
static void on_claim(void *arg, int status, const struct cluster_claim_reply *r)
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
static void on_append(void *arg, int status, enum cluster_append_result result, uint64_t last)
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
static void on_sync(void *arg, int status, const struct cluster_sync_reply *r)
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
static void on_idle(void *arg, int status, int idle, int wait_ms)
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

static struct admit_rec admit(const char *tenant, const char *sid, int agent, int resume,
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

static struct claim_rec claim(const char *sid, uint64_t have)
{
    struct claim_rec c = {0};
    cluster_claim(T.cl, sid, have, EPOCH, 30000, on_claim, &c);
    wait_for(&c.fired);
    assert_int_equal(c.status, CLUSTER_OK);
    return c;
}

static struct append_rec append(const char *sid, uint64_t gen, uint64_t seq, int snapshot,
                                const char *frame)
{
    struct append_rec a = {0};
    cluster_append(T.cl, sid, gen, seq, snapshot, (const unsigned char *)frame, strlen(frame),
                   on_append, &a);
    wait_for(&a.fired);
    assert_int_equal(a.status, CLUSTER_OK);
    return a;
}

static struct sync_rec sync_from(const char *sid, uint64_t after)
{
    struct sync_rec s = {0};
    cluster_sync(T.cl, sid, after, on_sync, &s);
    wait_for(&s.fired);
    assert_int_equal(s.status, CLUSTER_OK);
    return s;
}

static struct idle_rec idle(const char *sid, int idle_ms)
{
    struct idle_rec i = {0};
    cluster_idle(T.cl, sid, idle_ms, on_idle, &i);
    wait_for(&i.fired);
    assert_int_equal(i.status, CLUSTER_OK);
    return i;
}

static void done_ok(struct done_rec *d)
{
    wait_for(&d->fired);
    assert_int_equal(d->status, CLUSTER_OK);
    assert_int_equal(d->calls, 1);
}

static void subscribe(const char *sid)
{
    struct done_rec d = {0};
    cluster_subscribe(T.cl, sid, on_done, &d);
    done_ok(&d);
}

static int count_msgs(const char *sid, const char *prefix, size_t plen);
static int marker_arrived(const void *arg)
{
    return count_msgs("marker", "M", 1) > *(const int *)arg;
}

/* Publishes on a marker session the test subscribed to and waits for it: every message
 * published before it has arrived by then (one connection, one order). */
static void flush_messages(void)
{
    subscribe("marker");
    int before = count_msgs("marker", "M", 1);
    struct done_rec d = {0};
    cluster_publish(T.cl, "marker", (const unsigned char *)"M", 1, on_done, &d);
    done_ok(&d);
    wait_pred(marker_arrived, &before);
}

static int count_msgs(const char *sid, const char *prefix, size_t plen)
{
    int n = 0;
    for (int i = 0; i < T.n_msgs; i++)
        if (strcmp(T.msgs[i].sid, sid) == 0 && T.msgs[i].len >= plen &&
            memcmp(T.msgs[i].data, prefix, plen) == 0)
            n++;
    return n;
}

/* ---- admission ---- */

static void test_admit_session_limit_counts_live_sessions_and_resume_skips_it(void **state)
{
    (void)state;
    assert_string_equal(admit("t1", "s1", 0, 0, NULL, 2, 0, 0, 30000).refused, "");
    assert_string_equal(admit("t1", "s2", 0, 0, NULL, 2, 0, 0, 30000).refused, "");
    struct admit_rec no = admit("t1", "s3", 0, 0, NULL, 2, 0, 0, 30000);
    assert_string_equal(no.refused, "session_limit");
    assert_int_equal(no.retry_ms, 30000);
    /* a session already live skips the budgets; so does a resume */
    assert_string_equal(admit("t1", "s1", 0, 0, NULL, 2, 0, 0, 30000).refused, "");
    assert_string_equal(admit("t1", "s3", 0, 1, NULL, 2, 0, 0, 30000).refused, "");
    assert_int_equal(cmd_int("ZCARD %s", "cb:t:{t1}:live"), 3);
    /* another tenant has its own count; no limit (0) means none */
    assert_string_equal(admit("t2", "s4", 0, 0, NULL, 2, 0, 0, 30000).refused, "");
    assert_string_equal(admit("t1", "s5", 0, 0, NULL, 0, 0, 0, 30000).refused, "");
}

static void test_admit_expired_live_sessions_do_not_count(void **state)
{
    (void)state;
    assert_string_equal(admit("t1", "s1", 0, 0, NULL, 1, 0, 0, 30000).refused, "");
    assert_string_equal(admit("t1", "s2", 0, 0, NULL, 1, 0, 0, 30000).refused, "session_limit");
    freeReplyObject(cmd("ZADD cb:t:{t1}:live 1 s1")); /* its presence ran out long ago */
    assert_string_equal(admit("t1", "s2", 0, 0, NULL, 1, 0, 0, 30000).refused, "");
    assert_int_equal(cmd_int("ZCARD %s", "cb:t:{t1}:live"), 1); /* s2 only: s1 was dropped */
}

static void test_admit_rate_is_gcra_with_retry_and_burst(void **state)
{
    (void)state;
    /* 60 a minute: one a second, burst 1 */
    assert_string_equal(admit("t1", "s1", 0, 0, NULL, 0, 60, 0, 30000).refused, "");
    struct admit_rec no = admit("t1", "s2", 0, 0, NULL, 0, 60, 0, 30000);
    assert_string_equal(no.refused, "rate_limited");
    assert_true(no.retry_ms > 0 && no.retry_ms <= 1000);
    /* a refusal spends nothing: the state is still one interval ahead, not two */
    no = admit("t1", "s2", 0, 0, NULL, 0, 60, 0, 30000);
    assert_true(no.retry_ms > 0 && no.retry_ms <= 1000);
    /* the priority lane: a resume passes */
    assert_string_equal(admit("t1", "s2", 0, 1, NULL, 0, 60, 0, 30000).refused, "");
    /* 180 a minute: burst 3, one every 333 ms */
    for (int i = 0; i < 3; i++) {
        char sid[8];
        snprintf(sid, sizeof sid, "b%d", i);
        assert_string_equal(admit("t2", sid, 0, 0, NULL, 0, 180, 0, 30000).refused, "");
    }
    no = admit("t2", "b3", 0, 0, NULL, 0, 180, 0, 30000);
    assert_string_equal(no.refused, "rate_limited");
    assert_true(no.retry_ms > 0 && no.retry_ms <= 334);
}

static void test_admit_agent_limit_same_member_twice_and_expiry(void **state)
{
    (void)state;
    assert_string_equal(admit("t1", "s1", 1, 0, "n/1 {}", 0, 0, 1, 30000).refused, "");
    assert_string_equal(admit("t1", "s1", 1, 0, "n/1 {}", 0, 0, 1, 30000).refused, "");
    struct admit_rec no = admit("t1", "s1", 1, 0, "n/2 {}", 0, 0, 1, 30000);
    assert_string_equal(no.refused, "agent_limit");
    assert_int_equal(no.retry_ms, 0);
    freeReplyObject(cmd("ZADD cb:{s1}:agents 1 %s", "n/1 {}"));
    assert_string_equal(admit("t1", "s1", 1, 0, "n/2 {}", 0, 0, 1, 30000).refused, "");
    assert_int_equal(cmd_int("ZCARD %s", "cb:{s1}:agents"), 1);
    assert_true(cmd_int("PTTL %s", "cb:{s1}:agents") > 0);
}

static void test_admit_agent_refused_spends_no_session_budget(void **state)
{
    (void)state;
    freeReplyObject(cmd("ZADD cb:{s1}:agents 99999999999999 %s", "n/1 {}"));
    assert_string_equal(admit("t1", "s1", 1, 0, "n/2 {}", 0, 60, 1, 30000).refused, "agent_limit");
    assert_int_equal(cmd_int("EXISTS %s", "cb:t:{t1}:new"), 0);
    assert_int_equal(cmd_int("EXISTS %s", "cb:t:{t1}:live"), 0);
}

/* ---- the visitor's claim ---- */

static void test_claim_creates_meta_increments_gen_publishes_and_lists_live_agents(void **state)
{
    (void)state;
    subscribe("s1");
    freeReplyObject(cmd("ZADD cb:{s1}:agents 1 %s", "old/1 {}"));
    freeReplyObject(cmd("ZADD cb:{s1}:agents 99999999999999 %s", "n/7 {\"id\":\"a\"}"));
    struct claim_rec c = claim("s1", 41);
    assert_int_equal(c.gen, 1);
    assert_int_equal(c.last, 41);
    assert_int_equal(c.snap, 0);
    assert_string_equal(c.epoch, EPOCH);
    assert_int_equal(c.n_agents, 1);
    assert_string_equal(c.agents[0], "n/7 {\"id\":\"a\"}");
    assert_string_equal(hget("cb:{s1}:meta", "vnode"), "node-a");
    /* a second claim keeps the history (its epoch), fences the first, and raises last to the
     * claiming node's have (frames it applied while Redis was down) */
    struct claim_rec c2 = {0};
    cluster_claim(T.cl, "s1", 99, "ffffffffffffffffffffffffffffffff", 30000, on_claim, &c2);
    wait_for(&c2.fired);
    assert_int_equal(c2.gen, 2);
    assert_int_equal(c2.last, 99);
    struct claim_rec c3 = claim("s1", 7); /* never lowered */
    assert_int_equal(c3.last, 99);
    assert_string_equal(c2.epoch, EPOCH);
    flush_messages();
    const char *m1 = "Cnode-a {\"t\":\"visitor\",\"state\":\"connected\",\"gen\":1}";
    const char *m2 = "Cnode-a {\"t\":\"visitor\",\"state\":\"connected\",\"gen\":2}";
    assert_int_equal(count_msgs("s1", m1, strlen(m1)), 1);
    assert_int_equal(count_msgs("s1", m2, strlen(m2)), 1);
}

/* ---- appends ---- */

static void test_append_ok_duplicate_gap_fenced_lost(void **state)
{
    (void)state;
    assert_int_equal(append("s1", 1, 1, 0, "x").result, CLUSTER_APPEND_LOST);
    assert_int_equal(append("s1", 1, 1, 0, "x").last, 0);
    claim("s1", 0);
    struct append_rec a = append("s1", 1, 1, 0, "f1");
    assert_int_equal(a.result, CLUSTER_APPEND_OK);
    assert_int_equal(a.last, 1);
    a = append("s1", 1, 1, 0, "f1");
    assert_int_equal(a.result, CLUSTER_APPEND_DUPLICATE);
    assert_int_equal(a.last, 1);
    a = append("s1", 1, 3, 0, "f3");
    assert_int_equal(a.result, CLUSTER_APPEND_GAP);
    assert_int_equal(a.last, 1);
    a = append("s1", 7, 2, 0, "f2");
    assert_int_equal(a.result, CLUSTER_APPEND_FENCED);
    assert_int_equal(a.last, 1);
    assert_int_equal(append("s1", 1, 2, 0, "f2").result, CLUSTER_APPEND_OK);
    assert_int_equal(cmd_int("XLEN %s", "cb:{s1}:h"), 2);
    assert_string_equal(hget("cb:{s1}:meta", "last"), "2");
}

static void test_append_snapshot_may_jump_trims_and_sets_snap(void **state)
{
    (void)state;
    claim("s1", 0);
    for (uint64_t s = 1; s <= 3; s++)
        assert_int_equal(append("s1", 1, s, 0, "e").result, CLUSTER_APPEND_OK);
    struct append_rec a = append("s1", 1, 10, 1, "SNAP");
    assert_int_equal(a.result, CLUSTER_APPEND_OK);
    assert_int_equal(a.last, 10);
    assert_int_equal(cmd_int("XLEN %s", "cb:{s1}:h"), 1);
    assert_string_equal(hget("cb:{s1}:meta", "snap"), "10");
    assert_int_equal(append("s1", 1, 11, 0, "e11").result, CLUSTER_APPEND_OK);
    assert_int_equal(cmd_int("XLEN %s", "cb:{s1}:h"), 2);
}

static void test_append_publishes_F_and_the_frame_bytes(void **state)
{
    (void)state;
    subscribe("s1");
    claim("s1", 0);
    const unsigned char frame[] = {0x00, 0xff, 'a', 0x00, '\r', '\n', 0x80};
    struct append_rec a = {0};
    cluster_append(T.cl, "s1", 1, 1, 0, frame, sizeof frame, on_append, &a);
    wait_for(&a.fired);
    assert_int_equal(a.result, CLUSTER_APPEND_OK);
    flush_messages();
    int found = 0;
    for (int i = 0; i < T.n_msgs; i++)
        if (T.msgs[i].len == sizeof frame + 1 && T.msgs[i].data[0] == 'F' &&
            memcmp(T.msgs[i].data + 1, frame, sizeof frame) == 0)
            found++;
    assert_int_equal(found, 1);
    /* and the history holds the same bytes */
    struct sync_rec s = sync_from("s1", 0);
    assert_int_equal(s.n_frames, 1);
    assert_int_equal(s.lens[0], sizeof frame);
    assert_memory_equal(s.frames[0], frame, sizeof frame);
}

/* ---- the history ---- */

static void test_sync_reads_after_or_from_the_snapshot(void **state)
{
    (void)state;
    claim("s1", 0);
    append("s1", 1, 1, 0, "e1");
    append("s1", 1, 2, 1, "S2");
    append("s1", 1, 3, 0, "e3");
    append("s1", 1, 4, 0, "e4");
    struct sync_rec s = sync_from("s1", 2);
    assert_int_equal(s.exists, 1);
    assert_string_equal(s.epoch, EPOCH);
    assert_int_equal(s.gen, 1);
    assert_int_equal(s.last, 4);
    assert_int_equal(s.snap, 2);
    assert_int_equal(s.n_frames, 2);
    assert_memory_equal(s.frames[0], "e3", 2);
    assert_memory_equal(s.frames[1], "e4", 2);
    /* older than the snapshot (or 0): from the snapshot on */
    s = sync_from("s1", 0);
    assert_int_equal(s.n_frames, 3);
    assert_memory_equal(s.frames[0], "S2", 2);
    s = sync_from("s1", 1);
    assert_int_equal(s.n_frames, 3);
    s = sync_from("s1", 4);
    assert_int_equal(s.n_frames, 0);
}

static void test_sync_of_a_missing_session_says_so(void **state)
{
    (void)state;
    struct sync_rec s = sync_from("nope", 0);
    assert_int_equal(s.exists, 0);
    assert_int_equal(s.n_frames, 0);
}

static void test_sync_visitor_flag_and_consent(void **state)
{
    (void)state;
    claim("s1", 0);
    struct sync_rec s = sync_from("s1", 0);
    assert_int_equal(s.visitor, 1);
    assert_string_equal(s.consent, "");
    struct done_rec d = {0};
    cluster_consent(T.cl, "s1", "granted", on_done, &d);
    done_ok(&d);
    struct done_rec l = {0};
    cluster_left(T.cl, "s1", NULL, 1, on_done, &l);
    done_ok(&l);
    s = sync_from("s1", 0);
    assert_int_equal(s.visitor, 0);
    assert_string_equal(s.consent, "granted");
    /* consent never creates a history */
    struct done_rec d2 = {0};
    cluster_consent(T.cl, "s2", "denied", on_done, &d2);
    done_ok(&d2);
    assert_int_equal(cmd_int("EXISTS %s", "cb:{s2}:meta"), 0);
}

/* ---- presence ---- */

static void test_touch_extends_presence_of_live_agents_and_the_current_visitor(void **state)
{
    (void)state;
    claim("s1", 0); /* gen 1 */
    freeReplyObject(cmd("HSET cb:{s1}:meta vexp 5"));
    freeReplyObject(cmd("ZADD cb:{s1}:agents 5 %s", "n/1 {}"));
    const char *members[] = {"n/1 {}"};
    struct done_rec d = {0};
    cluster_touch(T.cl, "t1", "s1", 2, members, 1, 30000, on_done, &d); /* gen 2: not ours */
    done_ok(&d);
    assert_string_equal(hget("cb:{s1}:meta", "vexp"), "5");
    assert_true(cmd_int("ZCARD %s", "cb:t:{t1}:live") == 1);
    struct done_rec d2 = {0};
    cluster_touch(T.cl, "t1", "s1", 1, members, 1, 30000, on_done, &d2);
    done_ok(&d2);
    assert_true(atoll(hget("cb:{s1}:meta", "vexp")) > 5);
    redisReply *r = cmd("ZSCORE cb:{s1}:agents %s", "n/1 {}");
    assert_true(atoll(r->str) > 5);
    freeReplyObject(r);
    assert_true(cmd_int("PTTL %s", "cb:t:{t1}:live") > 0);
    assert_true(cmd_int("PTTL %s", "cb:{s1}:meta") > 0);
}

static void test_left_and_idle(void **state)
{
    (void)state;
    assert_int_equal(idle("s1", 60000).idle, 1); /* no meta: idle */
    claim("s1", 0);
    freeReplyObject(cmd("ZADD cb:{s1}:agents 99999999999999 %s", "n/1 {}"));
    struct idle_rec i = idle("s1", 0);
    assert_int_equal(i.idle, 0); /* the visitor and an agent are present */
    assert_true(i.wait_ms >= 1000);
    struct done_rec d = {0};
    cluster_left(T.cl, "s1", "n/1 {}", 0, on_done, &d);
    done_ok(&d);
    assert_int_equal(cmd_int("ZCARD %s", "cb:{s1}:agents"), 0);
    /* a stale visitor generation does not clear the presence of the current one */
    struct done_rec d1 = {0};
    cluster_left(T.cl, "s1", NULL, 9, on_done, &d1);
    done_ok(&d1);
    assert_int_equal(idle("s1", 0).idle, 0);
    struct done_rec d2 = {0};
    cluster_left(T.cl, "s1", NULL, 1, on_done, &d2);
    done_ok(&d2);
    assert_true(atoll(hget("cb:{s1}:meta", "left")) > 0);
    i = idle("s1", 600000);
    assert_int_equal(i.idle, 0); /* nobody, but left just now */
    assert_true(i.wait_ms >= 1000 && i.wait_ms <= 600000);
    assert_int_equal(idle("s1", 0).idle, 1);
    freeReplyObject(cmd("HSET cb:{s1}:meta left 1"));
    assert_int_equal(idle("s1", 600000).idle, 1);
    /* left never creates a history */
    struct done_rec d3 = {0};
    cluster_left(T.cl, "s2", NULL, 1, on_done, &d3);
    done_ok(&d3);
    assert_int_equal(cmd_int("EXISTS %s", "cb:{s2}:meta"), 0);
}

static void test_end_deletes_the_session_and_is_idempotent(void **state)
{
    (void)state;
    admit("t1", "s1", 1, 0, "n/1 {}", 0, 0, 0, 30000);
    claim("s1", 0);
    append("s1", 1, 1, 0, "e1");
    for (int k = 0; k < 2; k++) {
        struct done_rec d = {0};
        cluster_end(T.cl, "t1", "s1", on_done, &d);
        done_ok(&d);
    }
    assert_int_equal(cmd_int("EXISTS %s", "cb:{s1}:meta"), 0);
    assert_int_equal(cmd_int("EXISTS %s", "cb:{s1}:h"), 0);
    assert_int_equal(cmd_int("EXISTS %s", "cb:{s1}:agents"), 0);
    assert_int_equal(cmd_int("ZCARD %s", "cb:t:{t1}:live"), 0);
}

/* ---- Pub/Sub ---- */

static void test_publish_subscribe_round_trip_binary(void **state)
{
    (void)state;
    subscribe("s1");
    const unsigned char data[] = {'U', 0x00, 0x01, 0xfe, '\n'};
    struct done_rec d = {0};
    cluster_publish(T.cl, "s1", data, sizeof data, on_done, &d);
    done_ok(&d);
    flush_messages();
    int found = 0;
    for (int i = 0; i < T.n_msgs; i++)
        found += strcmp(T.msgs[i].sid, "s1") == 0 && T.msgs[i].len == sizeof data &&
                 memcmp(T.msgs[i].data, data, sizeof data) == 0;
    assert_int_equal(found, 1);
    struct cluster_stats st;
    cluster_stats(T.cl, &st);
    assert_true(st.messages_in >= 2);
    assert_int_equal(st.subscriptions, 2); /* s1 and the marker */
}

static void test_subscribe_twice_is_one_subscription(void **state)
{
    (void)state;
    struct done_rec a = {0}, b = {0};
    cluster_subscribe(T.cl, "s1", on_done, &a);
    cluster_subscribe(T.cl, "s1", on_done, &b); /* before the first is confirmed */
    done_ok(&a);
    done_ok(&b);
    subscribe("s1"); /* after: answered at once */
    cluster_publish(T.cl, "s1", (const unsigned char *)"x", 1, NULL, NULL);
    flush_messages();
    assert_int_equal(count_msgs("s1", "x", 1), 1);
}

static void test_unsubscribe_stops_messages_and_resubscribe_works(void **state)
{
    (void)state;
    subscribe("s1");
    cluster_unsubscribe(T.cl, "s1");
    cluster_publish(T.cl, "s1", (const unsigned char *)"x", 1, NULL, NULL);
    flush_messages();
    assert_int_equal(count_msgs("s1", "x", 1), 0);
    /* unsubscribe then subscribe before Redis answered the first: still subscribed after */
    subscribe("s1");
    cluster_unsubscribe(T.cl, "s1");
    struct done_rec d = {0};
    cluster_subscribe(T.cl, "s1", on_done, &d);
    done_ok(&d);
    cluster_publish(T.cl, "s1", (const unsigned char *)"y", 1, NULL, NULL);
    flush_messages();
    assert_int_equal(count_msgs("s1", "y", 1), 1);
    redisReply *r = cmd("PUBSUB NUMSUB cb:{s1}:m");
    assert_int_equal(r->element[1]->integer, 1);
    freeReplyObject(r);
}

/* ---- failures ---- */

static void test_requests_while_down_are_answered_inside_the_call(void **state)
{
    (void)state;
    char url[200];
    snprintf(url, sizeof url, "unix://%s/nobody.sock", T.rf.dir);
    struct cluster *down = new_cluster(url, "node-b");
    assert_non_null(down);
    assert_int_equal(cluster_is_up(down), 0);
    struct admit_rec a = {0};
    struct cluster_admit req = {.tenant = "t1", .session = "s1", .presence_ttl_ms = 1000};
    cluster_admit(down, &req, on_admit, &a);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, CLUSTER_DOWN);
    struct append_rec ap = {0};
    cluster_append(down, "s1", 1, 1, 0, (const unsigned char *)"x", 1, on_append, &ap);
    assert_int_equal(ap.calls, 1);
    assert_int_equal(ap.status, CLUSTER_DOWN);
    struct done_rec d = {0}, s = {0};
    cluster_publish(down, "s1", (const unsigned char *)"x", 1, on_done, &d);
    cluster_subscribe(down, "s1", on_done, &s);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, CLUSTER_DOWN);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.status, CLUSTER_DOWN);
    struct cluster_stats st;
    cluster_stats(down, &st);
    assert_int_equal(st.down_answers, 4);
    assert_true(cluster_rtt_ms(down) < 0);
    cluster_free(down);
}

static void test_bad_url_or_node_id_is_refused(void **state)
{
    (void)state;
    assert_null(new_cluster("http://x", "node-b"));
    assert_null(new_cluster(T.rf.url, "bad node"));
    assert_null(new_cluster(T.rf.url, ""));
}

static int states_down_then_up(const void *arg)
{
    (void)arg;
    return T.n_states >= 3 && T.states[1] == 0 && T.states[2] == 1;
}

static void test_redis_restart_down_then_up_with_subscriptions_and_scripts_back(void **state)
{
    (void)state;
    subscribe("s1");
    assert_int_equal(T.n_states, 1);
    assert_int_equal(T.states[0], 1);
    assert_int_equal(redis_fixture_restart(&T.rf), 0);
    wait_pred(states_down_then_up, NULL);
    assert_int_equal(T.n_states, 3);
    /* the subscription is back: a message published after the reconnect arrives */
    redisFree(T.sync);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/redis.sock", T.rf.dir);
    T.sync = redisConnectUnix(sock);
    assert_true(T.sync && !T.sync->err);
    assert_int_equal(cmd_int("PUBLISH %s z", "cb:{s1}:m"), 1);
    flush_messages();
    assert_int_equal(count_msgs("s1", "z", 1), 1);
    /* the scripts are loaded again (the new server has none) */
    struct claim_rec c = claim("s1", 5);
    assert_int_equal(c.gen, 1);
    assert_int_equal(c.last, 5);
    struct cluster_stats st;
    cluster_stats(T.cl, &st);
    assert_true(st.reconnects >= 2);
}

static void test_in_flight_requests_are_answered_down_when_the_connection_drops(void **state)
{
    (void)state;
    struct append_rec a[5] = {{0}};
    for (int i = 0; i < 5; i++)
        cluster_append(T.cl, "s1", 1, 1, 0, (const unsigned char *)"x", 1, on_append, &a[i]);
    assert_int_equal(redis_fixture_restart(&T.rf), 0);
    wait_pred(is_down, T.cl);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(a[i].calls, 1);
        /* written before the kill: answered, or lost with the connection */
        assert_true(a[i].status == CLUSTER_OK || a[i].status == CLUSTER_DOWN);
    }
    wait_up();
    for (int i = 0; i < 5; i++)
        assert_int_equal(a[i].calls, 1);
}

static void test_noscript_after_script_flush_is_retried_once(void **state)
{
    (void)state;
    claim("s1", 0);
    freeReplyObject(cmd("SCRIPT FLUSH"));
    struct append_rec a = append("s1", 1, 1, 0, "f1");
    assert_int_equal(a.result, CLUSTER_APPEND_OK);
    assert_int_equal(a.calls, 1);
    /* loaded again by the retry: the next call runs by its sha */
    assert_int_equal(append("s1", 1, 2, 0, "f2").result, CLUSTER_APPEND_OK);
    struct cluster_stats st;
    cluster_stats(T.cl, &st);
    assert_int_equal(st.errors, 0);
}

static void test_free_answers_each_request_in_flight_once(void **state)
{
    (void)state;
    struct done_rec d[4] = {{0}};
    struct sync_rec s = {0};
    struct done_rec sub = {0};
    for (int i = 0; i < 4; i++)
        cluster_publish(T.cl, "s1", (const unsigned char *)"x", 1, on_done, &d[i]);
    cluster_sync(T.cl, "s1", 0, on_sync, &s);
    cluster_subscribe(T.cl, "s2", on_done, &sub);
    cluster_free(T.cl);
    T.cl = NULL;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].status, CLUSTER_DOWN);
    }
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.status, CLUSTER_DOWN);
    assert_int_equal(sub.calls, 1);
    assert_int_equal(sub.status, CLUSTER_DOWN);
}

static int both_refused(const void *cl)
{
    struct cluster_stats st;
    cluster_stats(cl, &st);
    return st.reconnects >= 2; /* each connection lost once, at its AUTH */
}

static void test_auth_and_db_from_the_url_on_both_connections(void **state)
{
    (void)state;
    freeReplyObject(cmd("ACL SETUSER app on >p@ss:w ~* &* +@all"));
    char url[300];
    snprintf(url, sizeof url, "unix://app:p%%40ss%%3Aw@%s/redis.sock?db=3", T.rf.dir);
    struct cluster *main_cl = T.cl;
    T.cl = new_cluster(url, "node-b");
    assert_non_null(T.cl);
    wait_up();
    admit("t9", "s9", 0, 0, NULL, 0, 0, 0, 30000);
    freeReplyObject(cmd("SELECT 3"));
    assert_int_equal(cmd_int("ZCARD %s", "cb:t:{t9}:live"), 1);
    freeReplyObject(cmd("SELECT 0"));
    assert_int_equal(cmd_int("EXISTS %s", "cb:t:{t9}:live"), 0);
    subscribe("s9"); /* the subscribe connection authenticated too */
    cluster_free(T.cl);
    /* a wrong password never comes up */
    snprintf(url, sizeof url, "unix://app:wrong@%s/redis.sock", T.rf.dir);
    T.cl = new_cluster(url, "node-c");
    assert_non_null(T.cl);
    wait_pred(both_refused, T.cl);
    assert_int_equal(cluster_is_up(T.cl), 0);
    cluster_free(T.cl);
    T.cl = main_cl;
}

static void test_a_hung_redis_is_dropped_and_reconnected(void **state)
{
    (void)state;
    kill(T.rf.pid, SIGSTOP); /* answers nothing, closes nothing: only the pings can tell */
    wait_pred(is_down, T.cl);
    kill(T.rf.pid, SIGCONT);
    wait_up();
    assert_int_equal(T.n_states, 3);
    assert_int_equal(T.states[1], 0);
    assert_int_equal(T.states[2], 1);
}

static int rtt_known(const void *cl)
{
    return cluster_rtt_ms(cl) >= 0;
}

static void test_rtt_is_measured(void **state)
{
    (void)state;
    wait_pred(rtt_known, T.cl);
    assert_true(cluster_rtt_ms(T.cl) >= 0);
}

#define T_(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T_(test_admit_session_limit_counts_live_sessions_and_resume_skips_it),
        T_(test_admit_expired_live_sessions_do_not_count),
        T_(test_admit_rate_is_gcra_with_retry_and_burst),
        T_(test_admit_agent_limit_same_member_twice_and_expiry),
        T_(test_admit_agent_refused_spends_no_session_budget),
        T_(test_claim_creates_meta_increments_gen_publishes_and_lists_live_agents),
        T_(test_append_ok_duplicate_gap_fenced_lost),
        T_(test_append_snapshot_may_jump_trims_and_sets_snap),
        T_(test_append_publishes_F_and_the_frame_bytes),
        T_(test_sync_reads_after_or_from_the_snapshot),
        T_(test_sync_of_a_missing_session_says_so),
        T_(test_sync_visitor_flag_and_consent),
        T_(test_touch_extends_presence_of_live_agents_and_the_current_visitor),
        T_(test_left_and_idle),
        T_(test_end_deletes_the_session_and_is_idempotent),
        T_(test_publish_subscribe_round_trip_binary),
        T_(test_subscribe_twice_is_one_subscription),
        T_(test_unsubscribe_stops_messages_and_resubscribe_works),
        T_(test_requests_while_down_are_answered_inside_the_call),
        T_(test_bad_url_or_node_id_is_refused),
        T_(test_redis_restart_down_then_up_with_subscriptions_and_scripts_back),
        T_(test_in_flight_requests_are_answered_down_when_the_connection_drops),
        T_(test_noscript_after_script_flush_is_retried_once),
        T_(test_free_answers_each_request_in_flight_once),
        T_(test_rtt_is_measured),
        T_(test_auth_and_db_from_the_url_on_both_connections),
        T_(test_a_hung_redis_is_dropped_and_reconnected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
