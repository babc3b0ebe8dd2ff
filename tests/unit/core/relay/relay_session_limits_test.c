/* core/relay/relay_session.c, its limits and lifecycle: frame and byte budgets, the node's memory
 * ceiling, backpressure on slow agents, idle sessions, expired tokens and rsession_end. The flow
 * of frames is in relay_session_flow_test.c; control actions and consent
 * (core/relay/relay_control.c) in relay_control_test.c. */
#include "relay_fixture.h"

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
    assert_int_equal(stats->drop_rate, 1);
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

static void test_byte_budget_slow_down_and_big_frame_passes_on_empty_bucket(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    v->claims.lim.bytes_per_second = 1024;
    test_cfg.history_bytes = (size_t)1 << 20; /* only the budget is under test */
    struct rsession *s = join(v);
    rconn_clear_queue(v);

    /* 256-byte frames cost 1/4 s each */
    rstream_visitor_frame(v, make_frame(FRAME_KIND_SNAPSHOT, 1, 256 - FRAME_HEADER_LEN));
    for (uint64_t seq = 2; seq <= 4; seq++)
        rstream_visitor_frame(v, make_frame(FRAME_KIND_EVENT, seq, 256 - FRAME_HEADER_LEN));
    expect_empty(v);
    rstream_visitor_frame(v, make_frame(FRAME_KIND_EVENT, 5, 256 - FRAME_HEADER_LEN));
    assert_int_equal(s->have, 4);
    json_t *sd = next_json(v, "slow_down");
    assert_string_equal(str(sd, "reason"), "byte_rate");
    assert_int_equal(num(sd, "from"), 5);
    json_decref(sd);
    expect_empty(v);

    fake_now = T0 + 2.0; /* bucket empty: a frame bigger than a second's budget still passes */
    rstream_visitor_frame(v, make_frame(FRAME_KIND_EVENT, 5, 2048));
    assert_int_equal(s->have, 5);
    expect_empty(v);

    conn_free(v);
}

/* ---- memory ---- */

static void test_node_memory_ceiling_slows_events_down_and_asks_for_a_snapshot(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1);
    struct rsession *s = join(v);
    snap(v, 1);
    rconn_clear_queue(v);

    test_cfg.max_memory = 64; /* the incoming frame alone is past it */
    event(v, 2);
    assert_int_equal(s->have, 1);
    assert_int_equal(stats->drop_memory, 1);
    json_t *sd = next_json(v, "slow_down");
    assert_string_equal(str(sd, "reason"), "memory");
    assert_int_equal(num(sd, "from"), 2);
    assert_int_equal(num(sd, "retry_after_ms"), 500);
    json_decref(sd);
    json_t *sr = next_json(v, "snapshot_request"); /* the way out of the ceiling */
    assert_string_equal(str(sr, "reason"), "memory");
    json_decref(sr);

    test_cfg.max_memory = (size_t)1 << 30;
    event(v, 2);
    assert_int_equal(s->have, 2);
    expect_empty(v);

    conn_free(v);
}

/* A snapshot replaces its session's history: refusing it at the ceiling would keep the node
 * there for good, every session stalled. */
static void test_snapshot_passes_the_memory_ceiling_and_frees_the_history(void **st)
{
    (void)st;
    struct rconn *v, *a;
    struct rsession *s = live_pair(&v, &a);
    events(v, 2, 6);
    rconn_clear_queue(v);
    rconn_clear_queue(a);
    assert_int_equal(s->hist_n, 6);

    test_cfg.max_memory = 64;
    event(v, 7);
    expect_msg(v, "slow_down");
    expect_msg(v, "snapshot_request");
    snap(v, 8); /* after the refused 7: a gap, which a snapshot may jump */
    assert_int_equal(s->have, 8);
    assert_int_equal(s->snapshot_seq, 8);
    assert_int_equal(s->hist_n, 1);
    assert_int_equal(stats->history_bytes, FRAME_BYTES);
    assert_int_equal(stats->drop_memory, 1);
    expect_msg(a, "reset");
    expect_frame(a, 8);
    test_cfg.max_memory = (size_t)1 << 30;
    conn_free(a);
    conn_free(v);
}

/* Before the ceiling, the sessions holding the most history are asked for a snapshot (largest
 * first), so the node rarely reaches it. */
static void test_near_the_ceiling_the_heaviest_sessions_are_asked_for_a_snapshot(void **st)
{
    (void)st;
    struct rconn *heavy = visitor_new(1);
    struct rconn *light =
        conn_new(RROLE_VISITOR, "ses_01M881EV6E9182A88VPH0A13T9", "visitor", NULL, 1);
    join(heavy);
    join(light);
    snap(heavy, 1);
    events(heavy, 2, 8);
    snap(light, 1);
    rconn_clear_queue(heavy);
    rconn_clear_queue(light);

    test_cfg.max_memory = (size_t)1 << 30; /* far from it: nobody is asked */
    rsession_tick(core);
    expect_empty(heavy);
    expect_empty(light);

    test_cfg.max_memory = stats->memory_bytes * 100 / 85; /* at 85 % */
    rsession_tick(core);
    json_t *sr = next_json(heavy, "snapshot_request");
    assert_string_equal(str(sr, "reason"), "memory");
    json_decref(sr);
    expect_empty(light); /* the heavy one's snapshot is enough to get back under 60 % */
    assert_int_equal(stats->snapshots_requested_memory, 1);
    assert_int_equal(stats->drop_memory, 0); /* nobody was refused anything */
    test_cfg.max_memory = (size_t)1 << 30;
    conn_free(heavy);
    conn_free(light);
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
    rsession_tick(core);
    assert_true(idle->hist_n > 0);

    test_cfg.max_memory = stats->memory_bytes; /* at the ceiling */
    rsession_tick(core);
    assert_int_equal(idle->hist_n, 0);
    assert_int_equal(idle->hist_incomplete, 1);
    assert_true(busy->hist_n > 0); /* a session with a visitor keeps its page */
    test_cfg.max_memory = (size_t)1 << 30;

    conn_free(v2);
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
    assert_int_equal(stats->slow_resets, 0);
    expect_frames(fast, 1, 6);
    /* ... until a snapshot drops the history: 7 frames queued > queue_bytes + 1 frame of history */
    snap(v, 7);
    assert_int_equal(stats->slow_resets, 1);
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
    assert_int_equal(stats->slow_resets, 2);
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
    assert_int_equal(stats->slow_closes, 1);
    assert_int_equal(stats->slow_resets, 2);
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
    assert_int_equal(stats->sessions_live, 1);

    rsession_end(s, "ended_by_api");
    assert_null(rsession_find(core, SID));
    assert_true((fake_ended_contains(NULL, SID) == 1));
    struct rconn *all[] = {v, a1, a2};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(all[i]->close_code, 4001);
        assert_null(all[i]->s);
        assert_true(woken(all[i]) > 0);
    }
    assert_int_equal(stats->sessions_live, 0);
    assert_int_equal(stats->conns_visitor, 0);
    assert_int_equal(stats->conns_agent, 0);
    assert_int_equal(stats->history_bytes, 0);
    assert_int_equal(rsession_count_tenant(core, TENANT), 0);

    rstream_visitor_frame(v, make_frame(FRAME_KIND_EVENT, 2, PAYLOAD)); /* too late: ignored */
    text(a1, "{\"type\":\"pointer\",\"x\":1,\"y\":2}");
    for (int i = 0; i < 3; i++)
        conn_free(all[i]);
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

    fake_now = T0 + 10 + IDLE - 1;
    rsession_tick(core);
    assert_non_null(rsession_find(core, SID));
    assert_int_equal(count_events(REV_SESSION_IDLE, NULL), 0);

    fake_now = T0 + 10 + IDLE;
    rsession_tick(core);
    assert_null(rsession_find(core, SID));
    assert_int_equal(count_events(REV_SESSION_IDLE, NULL), 1);
    for (int i = 0; i < n_posted; i++)
        if (posted[i].type == REV_SESSION_IDLE) {
            assert_string_equal(posted[i].sid, SID);
            assert_string_equal(posted[i].tenant, TENANT);
        }
    assert_true((fake_ended_contains(NULL, SID) == 1));
    assert_non_null(rsession_find(core, "ses_busy"));
    assert_false((fake_ended_contains(NULL, "ses_busy") == 1));
    assert_int_equal(busy->close_code, 0);

    conn_free(busy);
}

static void test_tick_closes_connections_whose_token_expired_with_4003(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    a->claims.exp = (int64_t)WALL0 + 100;
    join(v);
    join(a);
    advance(100 + TOKEN_LEEWAY_SECONDS - 1);
    rsession_tick(core);
    assert_int_equal(a->close_code, 0);
    advance(1);
    rsession_tick(core);
    assert_int_equal(a->close_code, 4003);
    assert_int_equal(v->close_code, 0);
    expect_empty(a);
    conn_free(a);
    conn_free(v);
}

/* exp is a wall-clock time: a relay judging it on the monotonic clock (seconds since boot here,
 * far from any epoch time) would close everyone at once or never. */
static void test_token_expiry_is_judged_on_the_wall_clock_not_the_monotonic_one(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    a->claims.exp = (int64_t)WALL0 + 100;
    join(v);
    join(a);
    fake_now += 1e6; /* the machine has been up long: the monotonic clock jumps, the wall not */
    rsession_tick(core);
    assert_int_equal(a->close_code, 0);
    fake_wall += 100 + TOKEN_LEEWAY_SECONDS; /* the wall clock passes exp */
    rsession_tick(core);
    assert_int_equal(a->close_code, 4003);
    conn_free(a);
    conn_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_frame_budget_slow_down_from_5th_frame_at_4_per_second_and_resend_accepted),
        T(test_frame_budget_5_per_second_accepts_5_frames_at_one_instant_and_slows_the_6th),
        T(test_byte_budget_slow_down_and_big_frame_passes_on_empty_bucket),
        T(test_node_memory_ceiling_slows_events_down_and_asks_for_a_snapshot),
        T(test_snapshot_passes_the_memory_ceiling_and_frees_the_history),
        T(test_near_the_ceiling_the_heaviest_sessions_are_asked_for_a_snapshot),
        T(test_memory_pressure_makes_idle_sessions_drop_their_history),
        T(test_slow_agent_is_reset_and_closed_4008_if_slow_again_within_10_seconds),
        T(test_rsession_end_closes_everyone_with_4001_and_frees_the_session),
        T(test_rsession_end_sends_session_ended_before_the_4001_close),
        T(test_idle_session_with_nobody_attached_ends_after_idle_seconds),
        T(test_tick_closes_connections_whose_token_expired_with_4003),
        T(test_token_expiry_is_judged_on_the_wall_clock_not_the_monotonic_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
