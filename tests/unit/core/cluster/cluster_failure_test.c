/* core/cluster/cluster*.c: the connection's failure paths (Redis down, restarted, hung;
 * NOSCRIPT; AUTH and SELECT from the URL; cluster_free with requests in flight) and its round
 * trip time, against a real redis-server (cluster_fixture.h). The scripts' semantics are in
 * cluster_test.c. */
#include "tests/unit/core/cluster/cluster_fixture.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
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
