/* core/relay/relay_control.c: agents' control actions (rcontrol_text), the visitor's consent and
 * the policy deciding which actions reach the visitor, on sessions of core/relay/relay_session.c.
 */
#include "relay_fixture.h"

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
    assert_int_equal(stats->control_forwarded, 2);
    assert_int_equal(stats->control_refused, 0);

    conn_free(a);
    conn_free(v);
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
    assert_int_equal(stats->control_refused, 3);

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
    rsession_tables_free(core); /* a fresh start for the second half */
    assert_int_equal(rsession_tables_init(core), 0);

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
    assert_int_equal(stats->control_forwarded, 0);

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

/* ---- consent ---- */

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
    assert_string_equal(rcontrol_consent(s, "agent-7"), "granted");
    assert_string_equal(rcontrol_consent(s, "agent-8"), "none");

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
    assert_string_equal(rcontrol_consent(s, "agent-8"), "none");
    text(other, "{\"type\":\"scroll\",\"x\":0,\"y\":10}");
    expect_refused(other, "scroll", "no_consent", NULL);
    expect_empty(v);
    expect_empty(a);
    expect_empty(other);

    conn_free(a);
    conn_free(other);
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
    assert_string_equal(rcontrol_consent(s, "agent-7"), "revoked");
    text(a, "{\"type\":\"click\",\"x\":1,\"y\":2}");
    expect_refused(a, "click", "no_consent", NULL);
    expect_empty(v); /* the click must not reach the visitor */

    conn_free(a);
    conn_free(v);
}

/* ---- the stylesheet fallback: asset_request, asset_ready, asset_unavailable ---- */

static void test_asset_request_reaches_the_visitor_rebuilt_and_bad_urls_are_refused(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(0), *a = agent_new("agent-7", "Bob", 0);
    join(v);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);

    /* needs no remote control: only the visitor connected */
    text(a, "{\"type\":\"asset_request\",\"url\":\"https://cdn.example/a.css?v=1\","
            "\"extra\":1,\"ref\":\"a1\"}");
    json_t *got = next_json(v, "control");
    json_t *want = json_pack("{s:s, s:s, s:s}", "type", "asset_request", "url",
                             "https://cdn.example/a.css?v=1", "ref", "a1");
    assert_true(json_equal(json_object_get(got, "action"), want));
    json_decref(want);
    json_decref(got);

    char long_url[2100];
    memcpy(long_url, "https://h/", 10);
    memset(long_url + 10, 'a', sizeof(long_url) - 11);
    long_url[2049] = '\0'; /* 2049 bytes: one over */
    char msg[2200];
    const char *const bad[] = {
        "{\"type\":\"asset_request\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":7,\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"data:text/css,a\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"javascript:alert(1)\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"/relative.css\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"https://\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"https:///x.css\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"https://a b/x.css\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"https://a/\\u00e9.css\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"https://a/\\n.css\",\"ref\":\"b\"}",
        "{\"type\":\"asset_request\",\"url\":\"HTTPS://a/x.css\",\"ref\":\"b\"}",
        msg,
    };
    snprintf(msg, sizeof(msg), "{\"type\":\"asset_request\",\"url\":\"%s\",\"ref\":\"b\"}",
             long_url);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        text(a, bad[i]);
        expect_refused(a, "asset_request", "invalid", "b");
        expect_empty(a);
    }
    expect_empty(v);
    long_url[2048] = '\0'; /* exactly 2048 bytes: accepted */
    snprintf(msg, sizeof(msg), "{\"type\":\"asset_request\",\"url\":\"%s\"}", long_url);
    text(a, msg);
    got = next_json(v, "control");
    assert_int_equal(strlen(str(json_object_get(got, "action"), "url")), 2048);
    json_decref(got);

    conn_free(v);
    expect_msg(a, "visitor"); /* disconnected */
    text(a, "{\"type\":\"asset_request\",\"url\":\"https://cdn.example/a.css\"}");
    expect_refused(a, "asset_request", "visitor_absent", NULL);
    conn_free(a);
}

static void test_asset_answers_reach_every_agent_and_invalid_ones_are_refused(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", NULL, 1),
                 *b = agent_new("agent-8", NULL, 1);
    join(v);
    join(a);
    join(b);
    rconn_clear_queue(v);
    rconn_clear_queue(a);
    rconn_clear_queue(b);

    text(v, "{\"type\":\"asset_ready\",\"url\":\"http://shop.example/s.css\",\"x\":1}");
    json_t *want =
        json_pack("{s:s, s:s}", "type", "asset_ready", "url", "http://shop.example/s.css");
    for (int i = 0; i < 2; i++) {
        json_t *got = next_json(i ? b : a, "asset_ready");
        assert_true(json_equal(got, want)); /* rebuilt: the stray field is gone */
        json_decref(got);
    }
    json_decref(want);
    text(v, "{\"type\":\"asset_unavailable\",\"url\":\"https://x.example/s.css\","
            "\"reason\":\"unreadable\"}");
    want = json_pack("{s:s, s:s, s:s}", "type", "asset_unavailable", "url",
                     "https://x.example/s.css", "reason", "unreadable");
    for (int i = 0; i < 2; i++) {
        json_t *got = next_json(i ? b : a, "asset_unavailable");
        assert_true(json_equal(got, want));
        json_decref(got);
    }
    json_decref(want);
    expect_empty(v);

    static const char *const bad[] = {
        "{\"type\":\"asset_ready\"}",
        "{\"type\":\"asset_ready\",\"url\":\"ftp://x.example/s.css\"}",
        "{\"type\":\"asset_ready\",\"url\":[\"https://x.example/s.css\"]}",
        "{\"type\":\"asset_unavailable\",\"url\":\"https://x.example/s.css\"}",
        "{\"type\":\"asset_unavailable\",\"url\":\"https://x.example/s.css\",\"reason\":\"\"}",
        "{\"type\":\"asset_unavailable\",\"url\":\"https://x.example/s.css\","
        "\"reason\":\"<b>html</b>\"}",
        "{\"type\":\"asset_unavailable\",\"url\":\"https://x.example/s.css\","
        "\"reason\":\"a_reason_that_is_much_longer_than_32\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *type = strstr(bad[i], "unavailable") ? "asset_unavailable" : "asset_ready";
        text(v, bad[i]);
        expect_refused(v, type, "invalid", NULL);
        expect_empty(v);
    }
    expect_empty(a); /* nothing malformed reaches an agent */
    expect_empty(b);
    conn_free(a);
    conn_free(b);
    conn_free(v);
}

static void test_visitor_asset_answers_are_rate_limited(void **st)
{
    (void)st;
    struct rconn *v = visitor_new(1), *a = agent_new("agent-7", NULL, 1);
    join(v);
    join(a);
    rconn_clear_queue(v);
    rconn_clear_queue(a);
    const char *ready = "{\"type\":\"asset_ready\",\"url\":\"https://x.example/s.css\"}";
    for (int i = 0; i < 150; i++) /* at one instant: the burst passes, the rest is refused */
        text(v, ready);
    assert_int_equal(a->qlen, 100);
    assert_int_equal(v->qlen, 50);
    expect_refused(v, "asset_ready", "rate_limited", NULL);
    rconn_clear_queue(v);
    rconn_clear_queue(a);
    advance(1.0); /* a second later, 20 more */
    for (int i = 0; i < 40; i++)
        text(v, ready);
    assert_in_range(a->qlen, 19, 21);
    /* the visitor's rate is its own: an agent's actions are not slowed by it */
    text(a, "{\"type\":\"pointer\",\"x\":1,\"y\":2}");
    rconn_clear_queue(v);
    text(a, "{\"type\":\"pointer\",\"x\":1,\"y\":2}");
    expect_msg(v, "control");
    conn_free(a);
    conn_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_pointer_is_forwarded_to_the_visitor_as_control_with_agent_and_action),
        T(test_click_without_consent_is_refused_no_consent_with_ref_echoed),
        T(test_request_control_refused_remote_control_off_by_token_or_session),
        T(test_malformed_actions_are_refused_invalid),
        T(test_agent_json_that_is_not_an_object_is_refused_invalid),
        T(test_actions_needing_the_visitor_are_refused_visitor_absent),
        T(test_consent_granted_forwards_click_and_revoked_refuses_again),
        T(test_revocation_is_applied_after_many_decisions_about_absent_agents),
        T(test_asset_request_reaches_the_visitor_rebuilt_and_bad_urls_are_refused),
        T(test_asset_answers_reach_every_agent_and_invalid_ones_are_refused),
        T(test_visitor_asset_answers_are_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
