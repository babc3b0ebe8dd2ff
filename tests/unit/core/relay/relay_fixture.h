/* The shared part of the unit tests of the relay's session layer (relay_session_*_test.c,
 * relay_control_test.c, relay_admit_test.c): without libwebsockets or a database. Each test
 * builds a core (struct rcore) whose seams are fakes defined here: recorded wakes and pauses, a
 * monotonic and a wall clock that are far apart, an event log, an ended set that can be made to
 * fail, and a budget table that can be made to refuse.
 *
 * Include it from exactly one .c file per test executable (it defines static state). Helpers are
 * static inline so that a test file that does not use one of them still compiles warning-free.
 * Every test frame is FRAME_BYTES long unless it says otherwise. */
#ifndef COBROWSE_TESTS_RELAY_FIXTURE_H
#define COBROWSE_TESTS_RELAY_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/frame.h"
#include "core/relay/relay_admit.h"
#include "core/relay/relay_session.h"

#define T0          1000.0
#define SID         "ses_test"
#define TENANT      "ten_test"
#define PAYLOAD     184
#define FRAME_BYTES (FRAME_HEADER_LEN + PAYLOAD) /* 200 */
#define HISTORY     2048
#define QUEUE       1024
#define IDLE        60

/* ---- the seams, faked: a recorder for the I/O, two clocks, an event log, an ended set ---- */

static struct relay_config test_cfg;
static struct rcore test_core;
static struct rcore *const core = &test_core;
static struct relay_stats *const stats = &test_core.stats;

/* Separate clocks, far apart, so that code judging one by the other fails a test. */
static double fake_now;  /* monotonic */
static double fake_wall; /* epoch seconds */
#define WALL0 1.7e9

static double fake_monotonic(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static double fake_wall_clock(void *ctx)
{
    (void)ctx;
    return fake_wall;
}

/* Moves both clocks by dt seconds (time passes for both). */
static inline void advance(double dt)
{
    fake_now += dt;
    fake_wall += dt;
}

#define MAX_WAKES 4096
static struct rconn *wakes[MAX_WAKES];
static int n_wakes;

static void fake_wake(void *ctx, struct rconn *c)
{
    (void)ctx;
    if (n_wakes < MAX_WAKES)
        wakes[n_wakes++] = c;
}

static struct rconn *timed_wakes[MAX_WAKES];
static unsigned timed_wake_ms[MAX_WAKES];
static int n_timed_wakes;

static void fake_wake_in(void *ctx, struct rconn *c, unsigned ms)
{
    (void)ctx;
    if (n_timed_wakes < MAX_WAKES) {
        timed_wakes[n_timed_wakes] = c;
        timed_wake_ms[n_timed_wakes++] = ms;
    }
}

static int n_pauses;
static void fake_pause(void *ctx, struct rconn *c, int pause)
{
    (void)ctx;
    (void)c;
    n_pauses += pause;
}

static inline int woken(const struct rconn *c)
{
    int n = 0;
    for (int i = 0; i < n_wakes; i++)
        n += wakes[i] == c;
    return n;
}

#define MAX_POSTED 64
static struct post {
    enum relay_event_type type;
    char sid[48], tenant[48], agent[208];
} posted[MAX_POSTED];
static int n_posted;

static void fake_post(void *ctx, enum relay_event_type type, const char *session_id,
                      const char *tenant_id, const char *agent_id, const char *agent_name)
{
    (void)ctx;
    (void)agent_name;
    if (n_posted == MAX_POSTED)
        return;
    struct post *e = &posted[n_posted++];
    e->type = type;
    snprintf(e->sid, sizeof(e->sid), "%s", session_id ? session_id : "");
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant_id ? tenant_id : "");
    snprintf(e->agent, sizeof(e->agent), "%s", agent_id ? agent_id : "");
}

static inline int count_events(enum relay_event_type type, const char *agent)
{
    int n = 0;
    for (int i = 0; i < n_posted; i++)
        if (posted[i].type == type && (agent == NULL || strcmp(posted[i].agent, agent) == 0))
            n++;
    return n;
}

#define MAX_ENDED 16
static char ended[MAX_ENDED][48];
static int n_ended;
static int ended_fail_adds; /* > 0: the next adds fail (out of memory), and the set is lossy */
static int ended_lossy;

static int fake_ended_contains(void *ctx, const char *session_id)
{
    (void)ctx;
    for (int i = 0; i < n_ended; i++)
        if (strcmp(ended[i], session_id) == 0)
            return 1;
    return ended_lossy ? -1 : 0;
}

static int fake_ended_add(void *ctx, const char *session_id)
{
    if (ended_fail_adds > 0) {
        ended_fail_adds--;
        ended_lossy = 1;
        return -1;
    }
    if (fake_ended_contains(ctx, session_id) != 1 && n_ended < MAX_ENDED)
        snprintf(ended[n_ended++], sizeof(ended[0]), "%s", session_id);
    return 0;
}

/* The cross-session seam: the core's own tables and a fake budget table. */
static int budget_refuse_node, budget_refuse_tenant; /* nonzero: that budget is spent */
static int n_takes;
static char last_take_key[64];

static int fake_tenant_sessions(void *ctx, const char *tenant)
{
    (void)ctx;
    return rsession_count_tenant(core, tenant);
}

static int fake_session_agents(void *ctx, const char *sid)
{
    (void)ctx;
    struct rsession *s = rsession_find(core, sid);
    return s ? s->n_agents : -1;
}

static int fake_take(void *ctx, const char *key, double rate, int burst, double now,
                     double *retry_after)
{
    (void)ctx, (void)rate, (void)burst, (void)now;
    n_takes++;
    snprintf(last_take_key, sizeof(last_take_key), "%s", key);
    int node = key[0] == '\x01';
    int refused = node ? budget_refuse_node : budget_refuse_tenant;
    *retry_after = refused ? 2.5 : 0;
    return !refused;
}

/* ---- fixtures ---- */

static inline int setup(void **state)
{
    (void)state;
    memset(&test_cfg, 0, sizeof(test_cfg));
    test_cfg.history_bytes = HISTORY;
    test_cfg.queue_bytes = QUEUE;
    test_cfg.max_memory = (size_t)1 << 30;
    test_cfg.max_frame_bytes = 65536;
    test_cfg.idle_seconds = IDLE;
    test_cfg.handshakes_per_second = 100;
    memset(&test_core, 0, sizeof(test_core));
    test_core.cfg = &test_cfg;
    test_core.io = (struct relay_io){NULL, fake_wake, fake_wake_in, fake_pause};
    test_core.clock = (struct relay_clock){NULL, fake_monotonic, fake_wall_clock};
    test_core.events = (struct relay_events){NULL, fake_post};
    test_core.ended = (struct relay_ended_set){NULL, fake_ended_add, fake_ended_contains};
    test_core.shared =
        (struct relay_shared){NULL, fake_tenant_sessions, fake_session_agents, fake_take};
    assert_int_equal(rsession_tables_init(&test_core), 0);
    fake_now = T0;
    fake_wall = WALL0;
    n_wakes = n_timed_wakes = n_posted = n_ended = n_pauses = 0;
    ended_fail_adds = ended_lossy = 0;
    budget_refuse_node = budget_refuse_tenant = n_takes = 0;
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    rsession_tables_free(&test_core);
    uint64_t mem = stats->memory_bytes, hist = stats->history_bytes, live = stats->sessions_live;
    if (mem != 0 || hist != 0 || live != 0) {
        fprintf(stderr, "teardown: memory_bytes %llu, history_bytes %llu, sessions_live %llu\n",
                (unsigned long long)mem, (unsigned long long)hist, (unsigned long long)live);
        return -1;
    }
    return 0;
}

/* ---- connections ---- */

static inline struct rconn *conn_new(enum rrole role, const char *sid, const char *sub,
                                     const char *name, int remote_control)
{
    struct rconn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->core = core;
    c->role = role;
    c->established = 1;
    snprintf(c->claims.sid, sizeof(c->claims.sid), "%s", sid);
    snprintf(c->claims.tid, sizeof(c->claims.tid), "%s", TENANT);
    snprintf(c->claims.jti, sizeof(c->claims.jti), "jti_%s", sub);
    snprintf(c->claims.sub, sizeof(c->claims.sub), "%s", sub);
    snprintf(c->claims.name, sizeof(c->claims.name), "%s", name ? name : "");
    c->claims.role = role == RROLE_AGENT ? TOKEN_ROLE_AGENT : TOKEN_ROLE_VISITOR;
    c->claims.remote_control = remote_control;
    c->claims.iat = c->claims.nbf = (int64_t)WALL0;
    c->claims.exp = (int64_t)WALL0 + 3600;
    return c;
}

static inline struct rconn *visitor_new(int remote_control)
{
    return conn_new(RROLE_VISITOR, SID, "visitor", NULL, remote_control);
}

static inline struct rconn *agent_new(const char *sub, const char *name, int remote_control)
{
    return conn_new(RROLE_AGENT, SID, sub, name, remote_control);
}

static inline struct rconn *resuming(struct rconn *c, uint64_t resume)
{
    c->has_resume = 1;
    c->resume = resume;
    return c;
}

/* Finds or creates the session of c and attaches c to it (what LWS_CALLBACK_ESTABLISHED does). */
static inline struct rsession *join(struct rconn *c)
{
    int created;
    struct rsession *s = rsession_get(core, &c->claims, &created);
    assert_non_null(s);
    rsession_attach(s, c);
    assert_ptr_equal(c->s, s);
    return s;
}

static inline void conn_free(struct rconn *c)
{
    rsession_detach(c);
    rconn_clear_queue(c);
    rframe_unref(c->rx);
    free(c);
}

/* ---- frames ---- */

static inline struct rframe *make_frame(uint8_t kind, uint64_t seq, size_t payload)
{
    struct rframe *f = rframe_new(stats, FRAME_HEADER_LEN + payload, 1);
    assert_non_null(f);
    frame_write(f->buf + RELAY_PRE, kind, 0, seq);
    memset(f->buf + RELAY_PRE + FRAME_HEADER_LEN, 'p', payload);
    f->len = FRAME_HEADER_LEN + payload;
    return f;
}

static inline void snap(struct rconn *v, uint64_t seq)
{
    rstream_visitor_frame(v, make_frame(FRAME_KIND_SNAPSHOT, seq, PAYLOAD));
}

/* A live session: visitor *v has sent snapshot 1, agent "agent-1" (*a) has joined and both
 * queues are empty again. */
static inline struct rsession *live_pair(struct rconn **v, struct rconn **a)
{
    *v = visitor_new(1);
    *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(*v);
    snap(*v, 1);
    join(*a);
    rconn_clear_queue(*v);
    rconn_clear_queue(*a);
    return s;
}

static inline void event(struct rconn *v, uint64_t seq)
{
    rstream_visitor_frame(v, make_frame(FRAME_KIND_EVENT, seq, PAYLOAD));
}

static inline void events(struct rconn *v, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++)
        event(v, seq);
}

static inline void text(struct rconn *c, const char *json)
{
    rcontrol_text(c, json, strlen(json));
}

/* ---- queue inspection ---- */

/* The next queued message of c, which must be a JSON object of this type (caller decrefs). */
static inline json_t *next_json(struct rconn *c, const char *type)
{
    struct rframe *f = rconn_dequeue(c);
    assert_non_null(f);
    if (f->binary) {
        fprintf(stderr, "expected a \"%s\" text message, got binary frame %llu\n", type,
                (unsigned long long)f->seq);
        rframe_unref(f);
        fail();
    }
    json_error_t err;
    json_t *msg = json_loadb((const char *)f->buf + RELAY_PRE, f->len, 0, &err);
    if (!json_is_object(msg))
        fprintf(stderr, "not a JSON object: %.*s\n", (int)f->len, f->buf + RELAY_PRE);
    rframe_unref(f);
    assert_true(json_is_object(msg));
    const char *got = json_string_value(json_object_get(msg, "type"));
    assert_non_null(got);
    assert_string_equal(got, type);
    return msg;
}

static inline void expect_msg(struct rconn *c, const char *type)
{
    json_decref(next_json(c, type));
}

static inline const char *str(json_t *msg, const char *key)
{
    const char *v = json_string_value(json_object_get(msg, key));
    return v ? v : "<missing>";
}

static inline long long num(json_t *msg, const char *key)
{
    json_t *v = json_object_get(msg, key);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* The next queued message of c must be the binary frame seq. */
static inline void expect_frame(struct rconn *c, uint64_t seq)
{
    struct rframe *f = rconn_dequeue(c);
    assert_non_null(f);
    if (!f->binary) {
        fprintf(stderr, "expected frame %llu, got text %.*s\n", (unsigned long long)seq,
                (int)f->len, f->buf + RELAY_PRE);
        rframe_unref(f);
        fail();
    }
    struct frame_header h;
    assert_int_equal(frame_parse(f->buf + RELAY_PRE, f->len, &h), 0);
    uint64_t got = h.seq, tagged = f->seq;
    rframe_unref(f);
    assert_int_equal(got, seq);
    assert_int_equal(tagged, seq);
}

static inline void expect_frames(struct rconn *c, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++)
        expect_frame(c, seq);
}

static inline void expect_empty(struct rconn *c)
{
    struct rframe *f = rconn_peek(c);
    if (f != NULL) {
        if (f->binary)
            fprintf(stderr, "unexpected frame %llu in the queue\n", (unsigned long long)f->seq);
        else
            fprintf(stderr, "unexpected message in the queue: %.*s\n", (int)f->len,
                    f->buf + RELAY_PRE);
    }
    assert_null(rconn_peek(c));
    assert_int_equal(c->qlen, 0);
    assert_int_equal(c->qbytes, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif
