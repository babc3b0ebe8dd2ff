/* core/cluster/cluster*.c: the Lua scripts' semantics (admission, the visitor's claim,
 * appends, the history, presence, consent, end, Pub/Sub) against a real redis-server through
 * the client on a libev loop (cluster_fixture.h). The connection's failure paths are in
 * cluster_failure_test.c. */
#include "tests/unit/core/cluster/cluster_fixture.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
