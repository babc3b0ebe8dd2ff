/* core/relay_session.c and core/relay_control.c: sequence numbers, history, resume, fan-out,
 * backpressure, fencing, budgets, control policy and lifecycle, without libwebsockets or a
 * database. The symbols the session layer takes from core/relay.c and core/relay_worker.c are
 * defined here (a fake clock, recorded wakes and events), so the linker never pulls those objects
 * from the static library. Every test frame is FRAME_BYTES long unless it says otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/frame.h"
#include "core/relay_state.h"

#define T0          1000.0
#define SID         "ses_test"
#define TENANT      "ten_test"
#define PAYLOAD     184
#define FRAME_BYTES (FRAME_HEADER_LEN + PAYLOAD) /* 200 */
#define HISTORY     2048
#define QUEUE       1024
#define IDLE        60

/* ---- what core/relay.c and core/relay_worker.c would provide ---- */

static struct relay_config test_cfg;
const struct relay_config *relay_cfg = &test_cfg;

static double fake_now;
#define MAX_WAKES 4096
static struct rconn *wakes[MAX_WAKES];
static int n_wakes;

void relay_io_wake(struct rconn *c)
{
    if (n_wakes < MAX_WAKES)
        wakes[n_wakes++] = c;
}

void relay_io_pause(struct rconn *c, int pause)
{
    (void)c;
    (void)pause;
}

double relay_io_now(void)
{
    return fake_now;
}

double relay_io_wall(void)
{
    return fake_now;
}

static int woken(const struct rconn *c)
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

void relay_worker_post(enum relay_event_type type, const char *session_id, const char *tenant_id,
                       const char *agent_id, const char *agent_name)
{
    (void)agent_name;
    if (n_posted == MAX_POSTED)
        return;
    struct post *e = &posted[n_posted++];
    e->type = type;
    snprintf(e->sid, sizeof(e->sid), "%s", session_id ? session_id : "");
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant_id ? tenant_id : "");
    snprintf(e->agent, sizeof(e->agent), "%s", agent_id ? agent_id : "");
}

static int count_events(enum relay_event_type type, const char *agent)
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

int relay_is_ended(const char *session_id)
{
    for (int i = 0; i < n_ended; i++)
        if (strcmp(ended[i], session_id) == 0)
            return 1;
    return 0;
}

void relay_mark_ended(const char *session_id)
{
    if (!relay_is_ended(session_id) && n_ended < MAX_ENDED)
        snprintf(ended[n_ended++], sizeof(ended[0]), "%s", session_id);
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    (void)state;
    memset(&test_cfg, 0, sizeof(test_cfg));
    test_cfg.history_bytes = HISTORY;
    test_cfg.queue_bytes = QUEUE;
    test_cfg.max_memory = (size_t)1 << 30;
    test_cfg.max_frame_bytes = 65536;
    test_cfg.idle_seconds = IDLE;
    memset(&relay_stats, 0, sizeof(relay_stats));
    fake_now = T0;
    n_wakes = n_posted = n_ended = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rsession_free_all();
    uint64_t mem = relay_stats.memory_bytes, hist = relay_stats.history_bytes,
             live = relay_stats.sessions_live;
    if (mem != 0 || hist != 0 || live != 0) {
        fprintf(stderr, "teardown: memory_bytes %llu, history_bytes %llu, sessions_live %llu\n",
                (unsigned long long)mem, (unsigned long long)hist, (unsigned long long)live);
        return -1;
    }
    return 0;
}

/* ---- connections ---- */

static struct rconn *conn_new(enum rrole role, const char *sid, const char *sub, const char *name,
                              int remote_control)
{
    struct rconn *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->role = role;
    c->established = 1;
    snprintf(c->claims.sid, sizeof(c->claims.sid), "%s", sid);
    snprintf(c->claims.tid, sizeof(c->claims.tid), "%s", TENANT);
    snprintf(c->claims.jti, sizeof(c->claims.jti), "jti_%s", sub);
    snprintf(c->claims.sub, sizeof(c->claims.sub), "%s", sub);
    snprintf(c->claims.name, sizeof(c->claims.name), "%s", name ? name : "");
    c->claims.role = role == RROLE_AGENT ? TOKEN_ROLE_AGENT : TOKEN_ROLE_VISITOR;
    c->claims.remote_control = remote_control;
    c->claims.iat = c->claims.nbf = (int64_t)T0;
    c->claims.exp = (int64_t)T0 + 3600;
    return c;
}

static struct rconn *visitor_new(int remote_control)
{
    return conn_new(RROLE_VISITOR, SID, "visitor", NULL, remote_control);
}

static struct rconn *agent_new(const char *sub, const char *name, int remote_control)
{
    return conn_new(RROLE_AGENT, SID, sub, name, remote_control);
}

static struct rconn *resuming(struct rconn *c, uint64_t resume)
{
    c->has_resume = 1;
    c->resume = resume;
    return c;
}

/* Finds or creates the session of c and attaches c to it (what LWS_CALLBACK_ESTABLISHED does). */
static struct rsession *join(struct rconn *c)
{
    int created;
    struct rsession *s = rsession_get(&c->claims, &created);
    assert_non_null(s);
    rsession_attach(s, c);
    assert_ptr_equal(c->s, s);
    return s;
}

static void conn_free(struct rconn *c)
{
    rsession_detach(c);
    rconn_clear_queue(c);
    rframe_unref(c->rx);
    free(c);
}

/* ---- frames ---- */

static struct rframe *make_frame(uint8_t kind, uint64_t seq, size_t payload)
{
    struct rframe *f = rframe_new(FRAME_HEADER_LEN + payload, 1);
    assert_non_null(f);
    frame_write(f->buf + RELAY_PRE, kind, 0, seq);
    memset(f->buf + RELAY_PRE + FRAME_HEADER_LEN, 'p', payload);
    f->len = FRAME_HEADER_LEN + payload;
    return f;
}

static void snap(struct rconn *v, uint64_t seq)
{
    rsession_visitor_frame(v, make_frame(FRAME_KIND_SNAPSHOT, seq, PAYLOAD));
}

static void event(struct rconn *v, uint64_t seq)
{
    rsession_visitor_frame(v, make_frame(FRAME_KIND_EVENT, seq, PAYLOAD));
}

static void events(struct rconn *v, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++)
        event(v, seq);
}

static void text(struct rconn *c, const char *json)
{
    rsession_text(c, json, strlen(json));
}

/* ---- queue inspection ---- */

/* The next queued message of c, which must be a JSON object of this type (caller decrefs). */
static json_t *next_json(struct rconn *c, const char *type)
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

static void expect_msg(struct rconn *c, const char *type)
{
    json_decref(next_json(c, type));
}

static const char *str(json_t *msg, const char *key)
{
    const char *v = json_string_value(json_object_get(msg, key));
    return v ? v : "<missing>";
}

static long long num(json_t *msg, const char *key)
{
    json_t *v = json_object_get(msg, key);
    assert_true(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* The next queued message of c must be the binary frame seq. */
static void expect_frame(struct rconn *c, uint64_t seq)
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

static void expect_frames(struct rconn *c, uint64_t from, uint64_t to)
{
    for (uint64_t seq = from; seq <= to; seq++)
        expect_frame(c, seq);
}

static void expect_empty(struct rconn *c)
{
    if (c->qhead != NULL) {
        struct rframe *f = c->qhead->f;
        if (f->binary)
            fprintf(stderr, "unexpected frame %llu in the queue\n", (unsigned long long)f->seq);
        else
            fprintf(stderr, "unexpected message in the queue: %.*s\n", (int)f->len,
                    f->buf + RELAY_PRE);
    }
    assert_null(c->qhead);
    assert_int_equal(c->qbytes, 0);
}

/* ---- sequence numbers and fan-out ---- */

static void test_in_order_frames_are_stored_and_fanned_out_to_every_agent_once_in_order(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    struct rsession *s = join(v);
    json_t *hello = next_json(v, "hello");
    assert_string_equal(str(hello, "role"), "visitor");
    assert_string_equal(str(hello, "session_id"), SID);
    assert_int_equal(num(hello, "have"), 0);
    assert_int_equal(num(hello, "next_seq"), 1);
    assert_string_equal(str(json_object_get(hello, "permissions"), "remote_control"), "ask");
    assert_int_equal(json_array_size(json_object_get(hello, "agents")), 0);
    assert_int_equal(num(json_object_get(hello, "limits"), "max_frame_bytes"), 65536);
    json_decref(hello);
    expect_empty(v);

    struct rconn *a1 = agent_new("agent-1", "Ann", 1), *a2 = agent_new("agent-2", "Bob", 1);
    join(a1);
    join(a2);
    struct rconn *agents[] = {a1, a2};
    for (int i = 0; i < 2; i++) { /* no page yet */
        json_t *h = next_json(agents[i], "hello");
        assert_string_equal(str(h, "resume"), "reset");
        assert_string_equal(str(h, "visitor"), "connected");
        json_decref(h);
        expect_msg(agents[i], "waiting_snapshot");
        expect_empty(agents[i]);
    }
    /* the visitor has sent nothing yet: it starts with a snapshot anyway, no request */
    expect_msg(v, "agent_joined");
    expect_msg(v, "agent_joined");
    expect_empty(v);

    assert_int_equal(v->ack_pending, 0);
    n_wakes = 0;
    snap(v, 1);
    events(v, 2, 5);

    assert_int_equal(s->have, 5);
    assert_int_equal(s->snapshot_seq, 1);
    assert_int_equal(s->hist_n, 5);
    assert_int_equal(s->hist_bytes, 5 * FRAME_BYTES);
    assert_int_equal(relay_stats.history_bytes, 5 * FRAME_BYTES);
    for (size_t i = 0; i < s->hist_n; i++)
        assert_int_equal(s->hist[i]->seq, i + 1);
    assert_int_equal(s->hist[0]->refs, 3); /* shared by the history and both queues, not copied */
    assert_int_equal(relay_stats.frames_in, 5);
    assert_int_equal(relay_stats.bytes_in, 5 * FRAME_BYTES);
    assert_int_equal(relay_stats.drop_duplicate + relay_stats.drop_gap + relay_stats.drop_rate, 0);
    assert_true(woken(a1) > 0 && woken(a2) > 0);
    for (int i = 0; i < 2; i++) {
        expect_frames(agents[i], 1, 5);
        expect_empty(agents[i]);
    }
    assert_int_equal(v->ack_pending, 1);
    assert_true(woken(v) > 0);
    expect_empty(v); /* acks are written by the I/O layer from s->have, not queued */

    conn_free(a1);
    conn_free(a2);
    conn_free(v);
}

static void test_duplicates_are_dropped_and_counted_and_agents_see_each_seq_once(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v);
    snap(v, 1);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    events(v, 2, 3);
    event(v, 2);
    event(v, 3);
    snap(v, 1);
    events(v, 2, 3);
    event(v, 4);

    assert_int_equal(relay_stats.drop_duplicate, 5);
    assert_int_equal(relay_stats.drop_gap, 0);
    assert_int_equal(s->have, 4);
    assert_int_equal(s->hist_n, 4);
    assert_int_equal(s->snapshot_seq, 1);
    expect_frames(a, 2, 4);
    expect_empty(a);
    assert_int_equal(v->ack_pending, 1);
    expect_empty(v); /* no resend for duplicates */

    conn_free(a);
    conn_free(v);
}

static void
test_event_after_gap_is_dropped_visitor_gets_one_resend_and_missing_frame_resumes(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v);
    join(a);
    snap(v, 1);
    events(v, 2, 3);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    event(v, 5); /* 4 is missing */
    event(v, 6);
    event(v, 7);
    assert_int_equal(relay_stats.drop_gap, 3);
    assert_int_equal(s->have, 3);
    assert_int_equal(s->hist_n, 3);
    assert_int_equal(s->want_from, 4);
    json_t *r = next_json(v, "resend");
    assert_int_equal(num(r, "from"), 4);
    json_decref(r);
    expect_empty(v); /* exactly one resend for the gap */
    expect_empty(a); /* nothing after the gap reached the agent */

    events(v, 4, 7); /* the visitor resends from 4 */
    assert_int_equal(s->have, 7);
    assert_int_equal(s->want_from, 0);
    assert_int_equal(s->hist_n, 7);
    expect_frames(a, 4, 7);
    expect_empty(a);
    expect_empty(v);

    event(v, 9); /* a new gap gets its own resend */
    r = next_json(v, "resend");
    assert_int_equal(num(r, "from"), 8);
    json_decref(r);
    expect_empty(v);
    expect_empty(a);

    conn_free(a);
    conn_free(v);
}

static void test_snapshot_after_gap_is_accepted_and_agents_get_reset_gap_before_it(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v);
    join(a);
    snap(v, 1);
    events(v, 2, 3);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    event(v, 5); /* a gap: resend{from:4} */
    snap(v, 7);  /* the visitor no longer has 4..6: a new page */
    assert_int_equal(s->have, 7);
    assert_int_equal(s->snapshot_seq, 7);
    assert_int_equal(s->want_from, 0);
    assert_int_equal(s->hist_n, 1);
    assert_int_equal(s->hist_bytes, FRAME_BYTES);
    json_t *reset = next_json(a, "reset");
    assert_int_equal(num(reset, "seq"), 7);
    assert_string_equal(str(reset, "reason"), "gap");
    json_decref(reset);
    expect_frame(a, 7);
    expect_empty(a);
    expect_msg(v, "resend");
    expect_empty(v);

    event(v, 8);
    expect_frame(a, 8);
    expect_empty(a);

    conn_free(a);
    conn_free(v);
}

/* ---- joining and resuming ---- */

static void
test_late_joiner_gets_hello_reset_then_reset_join_then_snapshot_and_every_frame_after(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    join(v);
    snap(v, 1);
    events(v, 2, 3);
    snap(v, 4);
    events(v, 5, 6);
    rconn_clear_queue(v);

    struct rconn *a = agent_new("agent-7", "Bob", 1);
    join(a);
    json_t *h = next_json(a, "hello");
    assert_string_equal(str(h, "role"), "agent");
    assert_string_equal(str(h, "session_id"), SID);
    assert_string_equal(str(h, "visitor"), "connected");
    assert_string_equal(str(h, "resume"), "reset");
    assert_int_equal(num(h, "from"), 4);
    assert_string_equal(str(json_object_get(h, "permissions"), "remote_control"), "ask");
    assert_string_equal(str(h, "remote_control"), "none");
    json_decref(h);
    json_t *reset = next_json(a, "reset");
    assert_int_equal(num(reset, "seq"), 4);
    assert_string_equal(str(reset, "reason"), "join");
    json_decref(reset);
    expect_frames(a, 4, 6);
    expect_empty(a);

    json_t *joined = next_json(v, "agent_joined");
    json_t *want = json_pack("{s:s, s:s}", "id", "agent-7", "name", "Bob");
    assert_true(json_equal(json_object_get(joined, "agent"), want));
    json_decref(want);
    json_decref(joined);
    expect_empty(v);
    assert_int_equal(count_events(REV_VISITOR_CONNECTED, NULL), 1);
    assert_int_equal(count_events(REV_AGENT_JOINED, "agent-7"), 1);

    event(v, 7);
    expect_frame(a, 7);
    expect_empty(a);

    conn_free(a);
    assert_int_equal(count_events(REV_AGENT_LEFT, "agent-7"), 1);
    expect_msg(v, "agent_left");
    conn_free(v);
}

static void test_agent_resume_inside_history_continues_and_older_than_snapshot_is_reset(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    join(v);
    snap(v, 1);
    events(v, 2, 5);

    struct rconn *a = resuming(agent_new("agent-1", NULL, 1), 3);
    join(a);
    json_t *h = next_json(a, "hello");
    assert_string_equal(str(h, "resume"), "continue");
    assert_int_equal(num(h, "from"), 4);
    json_decref(h);
    expect_frames(a, 4, 5); /* exactly the frames after its resume seq */
    expect_empty(a);
    assert_int_equal(relay_stats.resumes_agent, 1);

    struct rconn *b = resuming(agent_new("agent-2", NULL, 1), 5); /* it has everything */
    join(b);
    h = next_json(b, "hello");
    assert_string_equal(str(h, "resume"), "continue");
    assert_int_equal(num(h, "from"), 6);
    json_decref(h);
    expect_empty(b);

    snap(v, 6);
    event(v, 7);
    struct rconn *c = resuming(agent_new("agent-3", NULL, 1), 5); /* before the new snapshot */
    join(c);
    h = next_json(c, "hello");
    assert_string_equal(str(h, "resume"), "reset");
    assert_int_equal(num(h, "from"), 6);
    json_decref(h);
    json_t *reset = next_json(c, "reset");
    assert_int_equal(num(reset, "seq"), 6);
    assert_string_equal(str(reset, "reason"), "resume_too_old");
    json_decref(reset);
    expect_frames(c, 6, 7);
    expect_empty(c);

    expect_frames(a, 6, 7); /* live agents just continue across a snapshot without a gap */
    expect_empty(a);
    expect_frames(b, 6, 7);
    expect_empty(b);

    conn_free(a);
    conn_free(b);
    conn_free(c);
    conn_free(v);
}

/* ---- history ---- */

static void test_history_overflow_requests_one_snapshot_and_new_snapshot_clears_history(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v);
    snap(v, 1);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    events(v, 2, 10); /* 10 frames: exactly HISTORY - 48 bytes */
    assert_int_equal(s->hist_bytes, 10 * FRAME_BYTES);
    expect_empty(v);
    event(v, 11); /* past history_bytes */
    json_t *req = next_json(v, "snapshot_request");
    assert_string_equal(str(req, "reason"), "history_full");
    json_decref(req);
    events(v, 12, 13); /* still stored (below twice the limit), no second request */
    expect_empty(v);
    assert_int_equal(s->hist_n, 13);
    assert_int_equal(s->hist_incomplete, 0);
    expect_frames(a, 2, 13); /* the live agent keeps up: no gap, no reset */
    expect_empty(a);

    snap(v, 14);
    event(v, 15);
    assert_int_equal(s->snapshot_seq, 14);
    assert_int_equal(s->hist_n, 2);
    assert_int_equal(s->hist_bytes, 2 * FRAME_BYTES);
    assert_int_equal(relay_stats.history_bytes, 2 * FRAME_BYTES);
    assert_int_equal(s->snapshot_requested, 0);
    expect_frames(a, 14, 15);
    expect_empty(a);

    struct rconn *late = agent_new("agent-2", NULL, 1);
    join(late);
    expect_msg(late, "hello");
    json_t *reset = next_json(late, "reset");
    assert_int_equal(num(reset, "seq"), 14);
    assert_string_equal(str(reset, "reason"), "join");
    json_decref(reset);
    expect_frames(late, 14, 15);
    expect_empty(late);

    conn_free(late);
    conn_free(a);
    conn_free(v);
}

static void
test_history_past_twice_the_limit_is_incomplete_and_joiners_wait_for_the_snapshot(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v);
    join(a);
    snap(v, 1);
    events(v, 2, 20); /* 4000 bytes: below 2 * HISTORY */
    assert_int_equal(s->hist_incomplete, 0);
    expect_msg(a, "hello");
    expect_msg(a, "waiting_snapshot");
    expect_frames(a, 1, 20);
    event(v, 21); /* 4200 bytes */
    assert_int_equal(s->hist_incomplete, 1);
    assert_int_equal(s->hist_n, 0);
    assert_int_equal(relay_stats.history_bytes, 0);
    event(v, 22);
    rconn_clear_queue(v);
    expect_frames(a, 21, 22); /* live agents still get every frame */
    expect_empty(a);

    struct rconn *late = agent_new("agent-2", NULL, 1);
    join(late);
    json_t *h = next_json(late, "hello");
    assert_string_equal(str(h, "resume"), "reset");
    assert_int_equal(num(h, "from"), 23);
    json_decref(h);
    expect_msg(late, "waiting_snapshot");
    expect_empty(late);
    expect_msg(v, "agent_joined"); /* the snapshot was already requested: no second request */
    expect_empty(v);

    snap(v, 23);
    assert_int_equal(s->hist_incomplete, 0);
    assert_int_equal(s->hist_n, 1);
    expect_frame(late, 23);
    expect_empty(late);
    expect_frame(a, 23);
    expect_empty(a);

    conn_free(late);
    conn_free(a);
    conn_free(v);
}

static void test_events_before_any_snapshot_request_a_snapshot_and_joiners_wait_for_it(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v);
    rconn_clear_queue(v);

    event(v, 1); /* a page update without a page */
    assert_int_equal(s->have, 1);
    assert_int_equal(s->hist_incomplete, 1);
    assert_int_equal(s->hist_n, 0);
    json_t *req = next_json(v, "snapshot_request");
    assert_string_equal(str(req, "reason"), "gap");
    json_decref(req);
    expect_empty(v);

    join(a);
    json_t *h = next_json(a, "hello");
    assert_string_equal(str(h, "resume"), "reset");
    assert_int_equal(num(h, "from"), 2);
    json_decref(h);
    expect_msg(a, "waiting_snapshot");
    expect_empty(a);
    expect_msg(v, "agent_joined"); /* already requested: no second request */
    expect_empty(v);

    snap(v, 2);
    assert_int_equal(s->hist_incomplete, 0);
    assert_int_equal(s->snapshot_seq, 2);
    expect_frame(a, 2);
    expect_empty(a);

    conn_free(a);
    conn_free(v);
}

/* ---- backpressure ---- */

static void test_slow_agent_is_reset_and_closed_4008_if_slow_again_within_10_seconds(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *slow = agent_new("agent-slow", NULL, 1),
                 *fast = agent_new("agent-fast", NULL, 1);
    struct rsession *s = join(v);
    join(slow);
    join(fast);
    rconn_clear_queue(fast);

    /* slow never reads. Its queue holds the whole history, which the bound allows for ... */
    snap(v, 1);
    events(v, 2, 6);
    assert_int_equal(slow->close_code, 0);
    assert_true(slow->qbytes > 6 * FRAME_BYTES);
    assert_int_equal(relay_stats.slow_resets, 0);
    expect_frames(fast, 1, 6);
    /* ... until a snapshot drops the history: 7 frames queued > queue_bytes + 1 frame of history */
    snap(v, 7);
    assert_int_equal(relay_stats.slow_resets, 1);
    assert_float_equal(slow->slow_reset_at, T0, 1e-9);
    json_t *reset = next_json(slow, "reset");
    assert_int_equal(num(reset, "seq"), 7);
    assert_string_equal(str(reset, "reason"), "slow_consumer");
    json_decref(reset);
    expect_frame(slow, 7);
    expect_empty(slow);
    expect_frame(fast, 7);
    expect_empty(fast);

    /* slow again (it read the reset and frame 7, then stopped), but 11 s later: reset again */
    fake_now = T0 + 11;
    events(v, 8, 13);
    expect_frames(fast, 8, 13);
    snap(v, 14);
    assert_int_equal(slow->close_code, 0);
    assert_int_equal(relay_stats.slow_resets, 2);
    reset = next_json(slow, "reset");
    assert_int_equal(num(reset, "seq"), 14);
    assert_string_equal(str(reset, "reason"), "slow_consumer");
    json_decref(reset);
    expect_frame(slow, 14);
    expect_empty(slow);
    expect_frame(fast, 14);

    /* slow again within 10 s of the last reset: closed */
    fake_now = T0 + 16;
    events(v, 15, 20);
    expect_frames(fast, 15, 20);
    snap(v, 21);
    assert_int_equal(slow->close_code, 4008);
    assert_int_equal(relay_stats.slow_closes, 1);
    assert_int_equal(relay_stats.slow_resets, 2);
    expect_empty(slow);
    event(v, 22);
    expect_empty(slow); /* a closing connection gets nothing more */

    expect_frames(fast, 21, 22); /* the fast agent is never disturbed */
    expect_empty(fast);
    assert_int_equal(fast->close_code, 0);
    assert_int_equal(s->have, 22);

    conn_free(slow);
    conn_free(fast);
    conn_free(v);
}

/* ---- fencing ---- */

static void test_second_visitor_fences_the_first_with_4002_and_its_input_is_ignored(void **st)
{
    (void)st;
    struct rconn *v1 = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v1);
    join(a);
    snap(v1, 1);
    event(v1, 2);
    rconn_clear_queue(a);

    struct rconn *v2 = resuming(visitor_new(1), 2);
    join(v2);
    assert_int_equal(v1->fenced, 1);
    assert_int_equal(v1->close_code, 4002);
    assert_null(v1->s);
    assert_ptr_equal(s->visitor, v2);
    assert_int_equal(relay_stats.conns_visitor, 1); /* the fenced one is counted out */
    expect_empty(v1); /* its queue was dropped: only the close goes out */
    assert_true(woken(v1) > 0);
    json_t *h = next_json(v2, "hello");
    assert_int_equal(num(h, "have"), 2);
    assert_int_equal(num(h, "next_seq"), 3);
    assert_int_equal(json_array_size(json_object_get(h, "agents")), 1);
    json_decref(h);
    expect_empty(v2);
    json_t *vis = next_json(a, "visitor");
    assert_string_equal(str(vis, "state"), "connected");
    json_decref(vis);
    expect_empty(a);

    uint64_t frames_in = relay_stats.frames_in;
    event(v1, 3); /* the fenced connection still sends: ignored */
    snap(v1, 4);
    text(v1, "{\"type\":\"consent\",\"remote_control\":\"granted\"}");
    assert_int_equal(relay_stats.frames_in, frames_in);
    assert_int_equal(s->have, 2);
    assert_int_equal(s->consent_all, RCONSENT_NONE);
    expect_empty(a);
    expect_empty(v1);

    event(v2, 3);
    assert_int_equal(s->have, 3);
    expect_frame(a, 3);
    expect_empty(a);

    conn_free(v1); /* the fenced one leaves: the session keeps its visitor */
    assert_ptr_equal(s->visitor, v2);
    assert_int_equal(relay_stats.conns_visitor, 1);
    assert_int_equal(count_events(REV_VISITOR_DISCONNECTED, NULL), 0);
    expect_empty(a);
    conn_free(a);
    conn_free(v2);
    assert_int_equal(relay_stats.conns_visitor, 0);
    assert_int_equal(relay_stats.conns_agent, 0);
}

/* ---- budgets ---- */

static void
test_frame_budget_slow_down_from_5th_frame_at_4_per_second_and_resend_accepted(void **st)
{
    (void)st;
    /* 1/4 s is exact in binary, so the GCRA boundary is tested without rounding. */
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    v->claims.lim.frames_per_second = 4;
    struct rsession *s = join(v);
    assert_int_equal(s->lim.frames_per_second, 4);
    json_t *h = next_json(v, "hello");
    assert_int_equal(num(json_object_get(h, "limits"), "frames_per_second"), 4);
    json_decref(h);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    snap(v, 1);
    events(v, 2, 4);
    expect_empty(v);
    event(v, 5); /* the 5th at the same instant */
    assert_int_equal(s->have, 4);
    assert_int_equal(s->hist_n, 4);
    assert_int_equal(relay_stats.drop_rate, 1);
    json_t *sd = next_json(v, "slow_down");
    assert_string_equal(str(sd, "reason"), "frame_rate");
    assert_int_equal(num(sd, "from"), 5);
    assert_true(num(sd, "retry_after_ms") > 0 && num(sd, "retry_after_ms") <= 1000);
    json_decref(sd);
    event(v, 6); /* pipelined behind 5: a gap now, and no second message */
    event(v, 5); /* resent too early: refused again, and told so (never silence) */
    json_t *again = next_json(v, "slow_down");
    assert_int_equal(num(again, "from"), 5);
    json_decref(again);
    expect_empty(v);
    expect_frames(a, 1, 4);
    expect_empty(a);

    fake_now = T0 + 1.0;
    events(v, 5, 6);
    assert_int_equal(s->have, 6);
    assert_int_equal(s->want_from, 0);
    assert_int_equal(s->hist_n, 6);
    expect_empty(v);
    expect_frames(a, 5, 6);
    expect_empty(a);

    conn_free(a);
    conn_free(v);
}

static void test_byte_budget_slow_down_and_big_frame_passes_on_empty_bucket(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    v->claims.lim.bytes_per_second = 1024;
    test_cfg.history_bytes = (size_t)1 << 20; /* only the budget is under test */
    struct rsession *s = join(v);
    rconn_clear_queue(v);

    /* 256-byte frames cost 1/4 s each */
    rsession_visitor_frame(v, make_frame(FRAME_KIND_SNAPSHOT, 1, 256 - FRAME_HEADER_LEN));
    for (uint64_t seq = 2; seq <= 4; seq++)
        rsession_visitor_frame(v, make_frame(FRAME_KIND_EVENT, seq, 256 - FRAME_HEADER_LEN));
    expect_empty(v);
    rsession_visitor_frame(v, make_frame(FRAME_KIND_EVENT, 5, 256 - FRAME_HEADER_LEN));
    assert_int_equal(s->have, 4);
    json_t *sd = next_json(v, "slow_down");
    assert_string_equal(str(sd, "reason"), "byte_rate");
    assert_int_equal(num(sd, "from"), 5);
    json_decref(sd);
    expect_empty(v);

    fake_now = T0 + 2.0; /* bucket empty: a frame bigger than a second's budget still passes */
    rsession_visitor_frame(v, make_frame(FRAME_KIND_EVENT, 5, 2048));
    assert_int_equal(s->have, 5);
    expect_empty(v);

    conn_free(v);
}

static void test_node_memory_ceiling_makes_the_visitor_slow_down_memory(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    struct rsession *s = join(v);
    rconn_clear_queue(v);

    test_cfg.max_memory = 64; /* the incoming frame alone is past it */
    snap(v, 1);
    assert_int_equal(s->have, 0);
    assert_int_equal(relay_stats.drop_memory, 1);
    json_t *sd = next_json(v, "slow_down");
    assert_string_equal(str(sd, "reason"), "memory");
    assert_int_equal(num(sd, "from"), 1);
    assert_int_equal(num(sd, "retry_after_ms"), 500);
    json_decref(sd);

    test_cfg.max_memory = (size_t)1 << 30;
    snap(v, 1);
    assert_int_equal(s->have, 1);
    expect_empty(v);

    conn_free(v);
}

static void test_memory_pressure_makes_idle_sessions_drop_their_history(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    struct rconn *v2 =
        conn_new(RROLE_VISITOR, "ses_01M881EV6E9182A88VPH0A13T9", "visitor", NULL, 1);
    struct rsession *idle = join(v), *busy = join(v2);
    snap(v, 1);
    events(v, 2, 5);
    snap(v2, 1);
    events(v2, 2, 5);
    rsession_detach(v); /* nobody is connected to the first session any more */
    assert_true(idle->hist_n > 0);

    test_cfg.max_memory = (size_t)1 << 30; /* far from the ceiling: nothing is dropped */
    rsession_tick(fake_now);
    assert_true(idle->hist_n > 0);

    test_cfg.max_memory = relay_stats.memory_bytes; /* at the ceiling */
    rsession_tick(fake_now);
    assert_int_equal(idle->hist_n, 0);
    assert_int_equal(idle->hist_incomplete, 1);
    assert_true(busy->hist_n > 0); /* a session with a visitor keeps its page */
    test_cfg.max_memory = (size_t)1 << 30;

    conn_free(v2);
    conn_free(v);
}

/* ---- control policy ---- */

static void test_pointer_is_forwarded_to_the_visitor_as_control_with_agent_and_action(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", "Bob", 1);
    join(v);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    text(a, "{\"type\":\"pointer\",\"x\":120,\"y\":340,\"ref\":\"c-16\",\"extra\":\"dropped\"}");
    json_t *got = next_json(v, "control");
    json_t *want = json_pack("{s:s, s:{s:s, s:s}, s:{s:s, s:i, s:i, s:s}}", "type", "control",
                             "agent", "id", "agent-7", "name", "Bob", "action", "type", "pointer",
                             "x", 120, "y", 340, "ref", "c-16");
    assert_true(
        json_equal(got, want)); /* re-serialized: unknown fields are not forwarded, ref is */
    json_decref(want);
    json_decref(got);

    text(a, "{\"type\":\"highlight\",\"x\":1.5,\"y\":2,\"w\":200,\"h\":40}");
    got = next_json(v, "control");
    json_t *action = json_object_get(got, "action");
    assert_string_equal(str(action, "type"), "highlight");
    assert_true(json_real_value(json_object_get(action, "x")) == 1.5);
    assert_int_equal(num(action, "h"), 40);
    json_decref(got);
    expect_empty(v);
    expect_empty(a);
    assert_int_equal(relay_stats.control_forwarded, 2);
    assert_int_equal(relay_stats.control_refused, 0);

    conn_free(a);
    conn_free(v);
}

static void expect_refused(struct rconn *a, const char *action, const char *reason, const char *ref)
{
    json_t *r = next_json(a, "refused");
    assert_string_equal(str(r, "action"), action);
    assert_string_equal(str(r, "reason"), reason);
    if (ref)
        assert_string_equal(str(r, "ref"), ref);
    else
        assert_null(json_object_get(r, "ref"));
    json_decref(r);
}

static void test_click_without_consent_is_refused_no_consent_with_ref_echoed(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", "Bob", 1);
    join(v);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    text(a, "{\"type\":\"click\",\"x\":120,\"y\":340,\"ref\":\"c-17\"}");
    expect_refused(a, "click", "no_consent", "c-17");
    text(a, "{\"type\":\"scroll\",\"x\":0,\"y\":1200}");
    expect_refused(a, "scroll", "no_consent", NULL);
    text(a, "{\"type\":\"key\",\"key\":\"a\"}");
    expect_refused(a, "key", "no_consent", NULL);
    expect_empty(a);
    expect_empty(v);
    assert_int_equal(relay_stats.control_refused, 3);

    conn_free(a);
    conn_free(v);
}

static void test_request_control_refused_remote_control_off_by_token_or_session(void **st)
{
    (void)st;
    /* the session allows it, this agent's token does not */
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", NULL, 0);
    join(v);
    join(a);
    json_t *h = next_json(a, "hello");
    assert_string_equal(str(json_object_get(h, "permissions"), "remote_control"), "off");
    json_decref(h);
    rconn_clear_queue(a);
    rconn_clear_queue(v);
    text(a, "{\"type\":\"request_control\",\"ref\":\"r1\"}");
    expect_refused(a, "request_control", "remote_control_off", "r1");
    text(v, "{\"type\":\"consent\",\"agent_id\":\"agent-7\",\"remote_control\":\"granted\"}");
    expect_msg(a, "consent");
    text(a, "{\"type\":\"click\",\"x\":1,\"y\":2}"); /* consent does not override the token */
    expect_refused(a, "click", "remote_control_off", NULL);
    expect_empty(a);
    expect_empty(v);
    assert_int_equal(count_events(REV_CONTROL_REQUESTED, NULL), 0);
    conn_free(a);
    conn_free(v);
    rsession_free_all();

    /* the session does not allow it (the visitor token carries the session's permission) */
    v = visitor_new(0);
    a = agent_new("agent-7", NULL, 1);
    join(v);
    join(a);
    h = next_json(v, "hello");
    assert_string_equal(str(json_object_get(h, "permissions"), "remote_control"), "off");
    json_decref(h);
    h = next_json(a, "hello");
    assert_string_equal(str(json_object_get(h, "permissions"), "remote_control"), "off");
    json_decref(h);
    rconn_clear_queue(a);
    rconn_clear_queue(v);
    text(a, "{\"type\":\"request_control\"}");
    expect_refused(a, "request_control", "remote_control_off", NULL);
    text(a, "{\"type\":\"pointer\",\"x\":1,\"y\":2}"); /* pointing needs no permission */
    expect_msg(v, "control");
    expect_empty(a);
    expect_empty(v);
    conn_free(a);
    conn_free(v);
}

static void test_consent_granted_forwards_click_and_revoked_refuses_again(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", "Bob", 1),
                 *other = agent_new("agent-8", NULL, 1);
    struct rsession *s = join(v);
    join(a);
    join(other);
    rconn_clear_queue(v);
    rconn_clear_queue(a);
    rconn_clear_queue(other);

    text(a, "{\"type\":\"request_control\",\"ref\":\"rc\"}");
    json_t *c = next_json(v, "control");
    assert_string_equal(str(json_object_get(c, "action"), "type"), "request_control");
    json_decref(c);
    assert_int_equal(count_events(REV_CONTROL_REQUESTED, "agent-7"), 1);

    text(v, "{\"type\":\"consent\",\"agent_id\":\"agent-7\",\"remote_control\":\"granted\"}");
    json_t *cons = next_json(a, "consent");
    assert_string_equal(str(cons, "remote_control"), "granted");
    json_decref(cons);
    expect_empty(other); /* consent for one agent is told to that agent only */
    assert_int_equal(count_events(REV_CONTROL_GRANTED, "agent-7"), 1);
    assert_string_equal(rsession_consent(s, "agent-7"), "granted");
    assert_string_equal(rsession_consent(s, "agent-8"), "none");

    text(a, "{\"type\":\"click\",\"x\":120,\"y\":340,\"ref\":\"c-17\"}");
    c = next_json(v, "control");
    json_t *want =
        json_pack("{s:s, s:i, s:i, s:s}", "type", "click", "x", 120, "y", 340, "ref", "c-17");
    assert_true(json_equal(json_object_get(c, "action"), want));
    json_decref(want);
    json_decref(c);
    text(a, "{\"type\":\"key\",\"key\":\"Enter\"}");
    c = next_json(v, "control");
    assert_string_equal(str(json_object_get(c, "action"), "key"), "Enter");
    json_decref(c);
    text(other, "{\"type\":\"click\",\"x\":1,\"y\":1}");
    expect_refused(other, "click", "no_consent", NULL);
    expect_empty(a);

    /* an agent joining now is told its current consent */
    struct rconn *again = agent_new("agent-7", "Bob", 1);
    join(again);
    json_t *h = next_json(again, "hello");
    assert_string_equal(str(h, "remote_control"), "granted");
    json_decref(h);
    conn_free(again);
    rconn_clear_queue(v);

    text(v, "{\"type\":\"consent\",\"agent_id\":\"agent-7\",\"remote_control\":\"revoked\"}");
    cons = next_json(a, "consent");
    assert_string_equal(str(cons, "remote_control"), "revoked");
    json_decref(cons);
    assert_int_equal(count_events(REV_CONTROL_REVOKED, "agent-7"), 1);
    text(a, "{\"type\":\"click\",\"x\":120,\"y\":340,\"ref\":\"c-18\"}");
    expect_refused(a, "click", "no_consent", "c-18");
    expect_empty(v);

    /* consent without agent_id applies to every agent */
    text(v, "{\"type\":\"consent\",\"remote_control\":\"granted\"}");
    expect_msg(a, "consent");
    expect_msg(other, "consent");
    text(other, "{\"type\":\"scroll\",\"x\":0,\"y\":10}");
    expect_msg(v, "control");
    /* release_control ends this agent's control */
    text(other, "{\"type\":\"release_control\"}");
    expect_msg(v, "control");
    assert_string_equal(rsession_consent(s, "agent-8"), "none");
    text(other, "{\"type\":\"scroll\",\"x\":0,\"y\":10}");
    expect_refused(other, "scroll", "no_consent", NULL);
    expect_empty(v);
    expect_empty(a);
    expect_empty(other);

    conn_free(a);
    conn_free(other);
    conn_free(v);
}

static void test_malformed_actions_are_refused_invalid(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", NULL, 1);
    join(v);
    join(a);
    text(v, "{\"type\":\"consent\",\"remote_control\":\"granted\"}");
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    static const struct {
        const char *msg, *action;
    } bad[] = {
        {"{\"type\":\"click\",\"y\":340,\"ref\":\"m1\"}", "click"},           /* missing x */
        {"{\"type\":\"click\",\"x\":1e300,\"y\":1,\"ref\":\"m2\"}", "click"}, /* huge */
        {"{\"type\":\"click\",\"x\":-1e8,\"y\":1,\"ref\":\"m3\"}", "click"},
        {"{\"type\":\"pointer\",\"x\":\"12\",\"y\":1,\"ref\":\"m4\"}", "pointer"},
        {"{\"type\":\"pointer\",\"x\":null,\"y\":1,\"ref\":\"m5\"}", "pointer"},
        {"{\"type\":\"highlight\",\"x\":1,\"y\":1,\"w\":2,\"ref\":\"m6\"}", "highlight"},
        {"{\"type\":\"key\",\"ref\":\"m7\"}", "key"},
        {"{\"type\":\"key\",\"key\":\"\",\"ref\":\"m8\"}", "key"},
        {"{\"type\":\"key\",\"key\":\"0123456789012345678901234567890123\",\"ref\":\"m9\"}", "key"},
        {"{\"type\":\"teleport\",\"x\":1,\"y\":1,\"ref\":\"m10\"}", "teleport"},
        {"{\"type\":7,\"ref\":\"m11\"}", ""},
        {"{\"x\":1,\"y\":1,\"ref\":\"m12\"}", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char ref[8];
        snprintf(ref, sizeof(ref), "m%zu", i + 1);
        text(a, bad[i].msg);
        expect_refused(a, bad[i].action, "invalid", ref);
        expect_empty(a);
    }
    expect_empty(v); /* nothing malformed reaches the visitor */
    assert_int_equal(relay_stats.control_forwarded, 0);

    conn_free(a);
    conn_free(v);
}

static void test_agent_json_that_is_not_an_object_is_refused_invalid(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", NULL, 1);
    join(v);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    static const char *const bad[] = {"[1,2]",
                                      "\"pointer\"",
                                      "42",
                                      "null",
                                      "not json",
                                      "",
                                      "{\"type\":\"pointer\",\"type\":\"click\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        text(a, bad[i]);
        expect_refused(a, "", "invalid", NULL);
        expect_empty(a);
    }
    text(v, "[1,2]"); /* the visitor is never answered: unknown or malformed input is ignored */
    text(v, "{\"type\":\"something_newer\"}");
    expect_empty(v);
    expect_empty(a);

    conn_free(a);
    conn_free(v);
}

static void test_actions_needing_the_visitor_are_refused_visitor_absent(void **st)
{
    (void)st;
    struct rconn *a = agent_new("agent-7", NULL, 1);
    join(a);
    rconn_clear_queue(a);
    text(a, "{\"type\":\"pointer\",\"x\":1,\"y\":2,\"ref\":\"p\"}");
    expect_refused(a, "pointer", "visitor_absent", "p");
    text(a, "{\"type\":\"request_control\"}");
    expect_refused(a, "request_control", "visitor_absent", NULL);
    text(a, "{\"type\":\"release_control\"}"); /* needs nothing */
    expect_empty(a);
    conn_free(a);
}

/* ---- lifecycle ---- */

static void test_rsession_end_closes_everyone_with_4001_and_frees_the_session(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a1 = agent_new("agent-1", NULL, 1),
                 *a2 = agent_new("agent-2", NULL, 1);
    struct rsession *s = join(v);
    join(a1);
    join(a2);
    snap(v, 1);
    assert_int_equal(relay_stats.sessions_live, 1);

    rsession_end(s, "ended_by_api");
    assert_null(rsession_find(SID));
    assert_true(relay_is_ended(SID));
    struct rconn *all[] = {v, a1, a2};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(all[i]->close_code, 4001);
        assert_null(all[i]->s);
        assert_true(woken(all[i]) > 0);
    }
    assert_int_equal(relay_stats.sessions_live, 0);
    assert_int_equal(relay_stats.conns_visitor, 0);
    assert_int_equal(relay_stats.conns_agent, 0);
    assert_int_equal(relay_stats.history_bytes, 0);
    assert_int_equal(rsession_count_tenant(TENANT), 0);

    rsession_visitor_frame(v, make_frame(FRAME_KIND_EVENT, 2, PAYLOAD)); /* too late: ignored */
    text(a1, "{\"type\":\"pointer\",\"x\":1,\"y\":2}");
    for (int i = 0; i < 3; i++)
        conn_free(all[i]);
}

static void test_idle_session_with_nobody_attached_ends_after_idle_seconds(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    join(v);
    assert_int_equal(count_events(REV_VISITOR_CONNECTED, NULL), 1);
    fake_now = T0 + 10;
    conn_free(v);
    assert_int_equal(count_events(REV_VISITOR_DISCONNECTED, NULL), 1);

    /* another session keeps an agent attached the whole time */
    struct rconn *busy = conn_new(RROLE_AGENT, "ses_busy", "agent-1", NULL, 1);
    join(busy);

    rsession_tick(T0 + 10 + IDLE - 1);
    assert_non_null(rsession_find(SID));
    assert_int_equal(count_events(REV_SESSION_IDLE, NULL), 0);

    rsession_tick(T0 + 10 + IDLE);
    assert_null(rsession_find(SID));
    assert_int_equal(count_events(REV_SESSION_IDLE, NULL), 1);
    for (int i = 0; i < n_posted; i++)
        if (posted[i].type == REV_SESSION_IDLE) {
            assert_string_equal(posted[i].sid, SID);
            assert_string_equal(posted[i].tenant, TENANT);
        }
    assert_true(relay_is_ended(SID));
    assert_non_null(rsession_find("ses_busy"));
    assert_false(relay_is_ended("ses_busy"));
    assert_int_equal(busy->close_code, 0);

    conn_free(busy);
}

static void test_tick_closes_connections_whose_token_expired_with_4003(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    a->claims.exp = (int64_t)T0 + 100;
    join(v);
    join(a);
    fake_now = T0 + 100 + TOKEN_LEEWAY_SECONDS - 1; /* expiry is judged on the wall clock */
    rsession_tick(fake_now);
    assert_int_equal(a->close_code, 0);
    fake_now = T0 + 100 + TOKEN_LEEWAY_SECONDS;
    rsession_tick(fake_now);
    assert_int_equal(a->close_code, 4003);
    assert_int_equal(v->close_code, 0);
    expect_empty(a);
    conn_free(a);
    conn_free(v);
}

static void
test_frame_budget_5_per_second_accepts_5_frames_at_one_instant_and_slows_the_6th(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    v->claims.lim.frames_per_second = 5;
    struct rsession *s = join(v);
    rconn_clear_queue(v);

    snap(v, 1);
    events(v, 2, 5); /* five frames at T0 = 1000 s of monotonic clock */
    assert_int_equal(s->have, 5);
    expect_empty(v);
    event(v, 6);
    assert_int_equal(s->have, 5);
    json_t *sd = next_json(v, "slow_down");
    assert_string_equal(str(sd, "reason"), "frame_rate");
    assert_int_equal(num(sd, "from"), 6);
    json_decref(sd);
    fake_now = T0 + 1.0;
    event(v, 6);
    assert_int_equal(s->have, 6);
    conn_free(v);
}

static void test_rsession_end_sends_session_ended_before_the_4001_close(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    struct rsession *s = join(v);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    rsession_end(s, "ended_by_api");
    struct rconn *all[] = {v, a};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(all[i]->close_code, 4001);
        json_t *m = next_json(all[i], "session_ended");
        assert_string_equal(str(m, "reason"), "ended_by_api");
        json_decref(m);
        expect_empty(all[i]);
    }
    conn_free(a);
    conn_free(v);
}

static void test_revocation_is_applied_after_many_decisions_about_absent_agents(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", NULL, 1);
    struct rsession *s = join(v);
    join(a);
    text(v, "{\"type\":\"consent\",\"remote_control\":\"granted\"}"); /* everyone */
    for (int i = 0; i < 40; i++) { /* decisions about agent ids that are not connected */
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "{\"type\":\"consent\",\"agent_id\":\"gone-%d\",\"remote_control\":\"denied\"}",
                 i);
        text(v, msg);
    }
    assert_int_equal(count_events(REV_CONTROL_DENIED, NULL), 0); /* ignored: nobody to tell */
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    text(v, "{\"type\":\"consent\",\"agent_id\":\"agent-7\",\"remote_control\":\"revoked\"}");
    json_t *c = next_json(a, "consent");
    assert_string_equal(str(c, "remote_control"), "revoked"); /* the agent is told revoked */
    json_decref(c);
    assert_int_equal(count_events(REV_CONTROL_REVOKED, "agent-7"), 1);
    assert_string_equal(rsession_consent(s, "agent-7"), "revoked");
    text(a, "{\"type\":\"click\",\"x\":1,\"y\":2}");
    expect_refused(a, "click", "no_consent", NULL);
    expect_empty(v); /* the click must not reach the visitor */

    conn_free(a);
    conn_free(v);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_frame_budget_5_per_second_accepts_5_frames_at_one_instant_and_slows_the_6th),
        T(test_rsession_end_sends_session_ended_before_the_4001_close),
        T(test_revocation_is_applied_after_many_decisions_about_absent_agents),
        T(test_in_order_frames_are_stored_and_fanned_out_to_every_agent_once_in_order),
        T(test_duplicates_are_dropped_and_counted_and_agents_see_each_seq_once),
        T(test_event_after_gap_is_dropped_visitor_gets_one_resend_and_missing_frame_resumes),
        T(test_snapshot_after_gap_is_accepted_and_agents_get_reset_gap_before_it),
        T(test_late_joiner_gets_hello_reset_then_reset_join_then_snapshot_and_every_frame_after),
        T(test_agent_resume_inside_history_continues_and_older_than_snapshot_is_reset),
        T(test_history_overflow_requests_one_snapshot_and_new_snapshot_clears_history),
        T(test_history_past_twice_the_limit_is_incomplete_and_joiners_wait_for_the_snapshot),
        T(test_events_before_any_snapshot_request_a_snapshot_and_joiners_wait_for_it),
        T(test_slow_agent_is_reset_and_closed_4008_if_slow_again_within_10_seconds),
        T(test_second_visitor_fences_the_first_with_4002_and_its_input_is_ignored),
        T(test_frame_budget_slow_down_from_5th_frame_at_4_per_second_and_resend_accepted),
        T(test_byte_budget_slow_down_and_big_frame_passes_on_empty_bucket),
        T(test_node_memory_ceiling_makes_the_visitor_slow_down_memory),
        T(test_memory_pressure_makes_idle_sessions_drop_their_history),
        T(test_pointer_is_forwarded_to_the_visitor_as_control_with_agent_and_action),
        T(test_click_without_consent_is_refused_no_consent_with_ref_echoed),
        T(test_request_control_refused_remote_control_off_by_token_or_session),
        T(test_consent_granted_forwards_click_and_revoked_refuses_again),
        T(test_malformed_actions_are_refused_invalid),
        T(test_agent_json_that_is_not_an_object_is_refused_invalid),
        T(test_actions_needing_the_visitor_are_refused_visitor_absent),
        T(test_rsession_end_closes_everyone_with_4001_and_frees_the_session),
        T(test_idle_session_with_nobody_attached_ends_after_idle_seconds),
        T(test_tick_closes_connections_whose_token_expired_with_4003),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
