/* core/relay/relay_session.c, the flow of frames: sequence numbers, fan-out, gaps and resends,
 * joining and resuming, history and snapshots, fencing of a second visitor. Budgets,
 * backpressure, memory, idle/expiry and ending are in relay_session_limits_test.c; control
 * actions and consent (core/relay/relay_control.c) in relay_control_test.c. */
#include "relay_fixture.h"

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
    assert_int_equal(stats->history_bytes, 5 * FRAME_BYTES);
    for (size_t i = 0; i < s->hist_n; i++)
        assert_int_equal(s->hist[i]->seq, i + 1);
    assert_int_equal(s->hist[0]->refs, 3); /* shared by the history and both queues, not copied */
    assert_int_equal(stats->frames_in, 5);
    assert_int_equal(stats->bytes_in, 5 * FRAME_BYTES);
    assert_int_equal(stats->drop_duplicate + stats->drop_gap + stats->drop_rate, 0);
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
    struct rconn *v, *a;
    struct rsession *s = live_pair(&v, &a);

    events(v, 2, 3);
    event(v, 2);
    event(v, 3);
    snap(v, 1);
    events(v, 2, 3);
    event(v, 4);

    assert_int_equal(stats->drop_duplicate, 5);
    assert_int_equal(stats->drop_gap, 0);
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
    assert_int_equal(stats->drop_gap, 3);
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
    assert_int_equal(stats->resumes_agent, 1);

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
    struct rconn *v, *a;
    struct rsession *s = live_pair(&v, &a);

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
    assert_int_equal(stats->history_bytes, 2 * FRAME_BYTES);
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
    assert_int_equal(stats->history_bytes, 0);
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
    assert_int_equal(stats->conns_visitor, 1); /* the fenced one is counted out */
    expect_empty(v1);                          /* its queue was dropped: only the close goes out */
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

    uint64_t frames_in = stats->frames_in;
    event(v1, 3); /* the fenced connection still sends: ignored */
    snap(v1, 4);
    text(v1, "{\"type\":\"consent\",\"remote_control\":\"granted\"}");
    assert_int_equal(stats->frames_in, frames_in);
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
    assert_int_equal(stats->conns_visitor, 1);
    assert_int_equal(count_events(REV_VISITOR_DISCONNECTED, NULL), 0);
    expect_empty(a);
    conn_free(a);
    conn_free(v2);
    assert_int_equal(stats->conns_visitor, 0);
    assert_int_equal(stats->conns_agent, 0);
}

/* Acks are coalesced: a snapshot is acked at once, events after ACK_DELAY_MS (one timer) or at
 * once when 16 of them are unacknowledged; an ack carries `have` and clears what it covers. */
static void test_acks_are_coalesced_snapshot_at_once_events_by_count_or_after_a_delay(void **st)
{
    (void)st;
    test_cfg.queue_bytes = test_cfg.history_bytes = 1 << 20; /* no backpressure here */
    struct rconn *v, *a;
    live_pair(&v, &a);
    assert_true(woken(v) > 0); /* the snapshot: at once */
    struct rframe *ack = rstream_take_ack(v);
    assert_non_null(ack);
    assert_memory_equal(ack->buf + RELAY_PRE, "{\"type\":\"ack\",\"seq\":1}", ack->len);
    rframe_unref(ack);
    assert_null(rstream_take_ack(v)); /* nothing new since */

    n_wakes = n_timed_wakes = 0;
    events(v, 2, 16); /* 15 events */
    assert_int_equal(woken(v), 0);
    assert_int_equal(n_timed_wakes, 1); /* one timer for all of them */
    assert_ptr_equal(timed_wakes[0], v);
    assert_int_equal(timed_wake_ms[0], 200);
    event(v, 17); /* the 16th */
    assert_int_equal(woken(v), 1);
    ack = rstream_take_ack(v);
    assert_non_null(ack);
    assert_memory_equal(ack->buf + RELAY_PRE, "{\"type\":\"ack\",\"seq\":17}", ack->len);
    rframe_unref(ack);

    n_wakes = 0;
    events(v, 18, 32); /* 15 again: the count starts over after an ack */
    assert_int_equal(woken(v), 0);
    expect_frames(a, 2, 32);
    expect_empty(a);

    conn_free(a);
    conn_free(v);
}

/* seq 2^64-1 would leave no next seq (have + 1 wraps to 0): the session would refuse every frame
 * after it for good. The relay refuses it instead and closes the visitor with 1008. */
static void test_frame_with_the_last_seq_is_refused_with_1008_and_stores_nothing(void **st)
{
    (void)st;
    struct rconn *v, *a;
    struct rsession *s = live_pair(&v, &a);
    rstream_visitor_frame(v, make_frame(FRAME_KIND_SNAPSHOT, UINT64_MAX, PAYLOAD));
    assert_int_equal(s->have, 1);
    assert_int_equal(s->snapshot_seq, 1);
    assert_int_equal(v->close_code, 1008);
    assert_string_equal(v->close_reason, "seq out of range");
    assert_int_equal(stats->seq_exhausted, 1);
    expect_empty(a);
    conn_free(a);
    conn_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_in_order_frames_are_stored_and_fanned_out_to_every_agent_once_in_order),
        T(test_frame_with_the_last_seq_is_refused_with_1008_and_stores_nothing),
        T(test_acks_are_coalesced_snapshot_at_once_events_by_count_or_after_a_delay),
        T(test_duplicates_are_dropped_and_counted_and_agents_see_each_seq_once),
        T(test_event_after_gap_is_dropped_visitor_gets_one_resend_and_missing_frame_resumes),
        T(test_snapshot_after_gap_is_accepted_and_agents_get_reset_gap_before_it),
        T(test_late_joiner_gets_hello_reset_then_reset_join_then_snapshot_and_every_frame_after),
        T(test_agent_resume_inside_history_continues_and_older_than_snapshot_is_reset),
        T(test_history_overflow_requests_one_snapshot_and_new_snapshot_clears_history),
        T(test_history_past_twice_the_limit_is_incomplete_and_joiners_wait_for_the_snapshot),
        T(test_events_before_any_snapshot_request_a_snapshot_and_joiners_wait_for_it),
        T(test_second_visitor_fences_the_first_with_4002_and_its_input_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
