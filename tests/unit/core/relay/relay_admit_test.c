/* core/relay/relay_admit.c: handshake admission through the core's seams (clock, ended set,
 * cross-session state and budgets), without libwebsockets. Tokens are real HS256 JWTs minted with
 * the test's secret. */
#include "relay_fixture.h"

static const unsigned char secret[32] = "0123456789abcdef0123456789abcdef";

/* A token for SID's visitor (or an agent), valid from WALL0 for an hour, with these limits. */
static char *mint(enum token_role role, const char *sub, struct token_limits lim, int64_t exp)
{
    struct token_claims c;
    memset(&c, 0, sizeof(c));
    snprintf(c.sid, sizeof(c.sid), "%s", SID);
    snprintf(c.tid, sizeof(c.tid), "%s", TENANT);
    snprintf(c.jti, sizeof(c.jti), "jti_%s", sub);
    snprintf(c.sub, sizeof(c.sub), "%s", sub);
    c.role = role;
    c.remote_control = 1;
    c.lim = lim;
    int *each[] = {&c.lim.concurrent_sessions, &c.lim.sessions_per_minute, &c.lim.frames_per_second,
                   &c.lim.bytes_per_second, &c.lim.agents_per_session};
    for (int i = 0; i < 5; i++) /* a token carries every limit (>= 1): the unset ones are high */
        if (*each[i] == 0)
            *each[i] = 1000000;
    c.iat = c.nbf = (int64_t)WALL0;
    c.exp = exp ? exp : (int64_t)WALL0 + 3600;
    char *out = NULL;
    assert_int_equal(token_mint(secret, sizeof(secret), &c, &out), 0);
    return out;
}

static struct rconn *decide(const char *token, const char *resume, struct radmit_refusal *no)
{
    struct radmit_request req = {.path = "/v1/relay", .token = token, .resume = resume};
    return radmit_decide(core, &req, no);
}

static void use_secret(void)
{
    test_cfg.jwt_secret = secret;
    test_cfg.jwt_secret_len = sizeof(secret);
}

static void test_valid_visitor_token_is_admitted_with_its_claims_and_resume(void **st)
{
    (void)st;
    use_secret();
    char *t = mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){0}, 0);
    struct radmit_refusal no;
    struct rconn *c = decide(t, "41", &no);
    assert_non_null(c);
    assert_ptr_equal(c->core, core);
    assert_int_equal(c->role, RROLE_VISITOR);
    assert_string_equal(c->claims.sid, SID);
    assert_int_equal(c->has_resume, 1);
    assert_int_equal(c->resume, 41);
    free(c);
    free(t);
}

/* exp and nbf are wall-clock times: judging them on the monotonic clock (T0 here, decades before
 * the token was minted) would refuse every token as not yet valid. */
static void test_token_is_judged_on_the_wall_clock_not_the_monotonic_one(void **st)
{
    (void)st;
    use_secret();
    char *t = mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){0}, (int64_t)WALL0 + 600);
    struct radmit_refusal no;
    fake_wall = WALL0 + 10;
    struct rconn *c = decide(t, NULL, &no);
    assert_non_null(c);
    free(c);
    fake_now += 1e9; /* the monotonic clock means nothing to a token */
    c = decide(t, NULL, &no);
    assert_non_null(c);
    free(c);
    fake_wall = WALL0 + 600 + TOKEN_LEEWAY_SECONDS + 1; /* the wall clock passed exp */
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 401);
    assert_string_equal(no.code, "invalid_token");
    assert_int_equal(stats->rej_invalid_token, 1);
    free(t);
}

static void test_bad_signature_missing_token_bad_path_and_bad_resume_are_refused(void **st)
{
    (void)st;
    use_secret();
    char *t = mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){0}, 0);
    struct radmit_refusal no;
    t[strlen(t) - 2] ^= 1;
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 401);
    assert_null(decide(NULL, NULL, &no));
    assert_int_equal(no.status, 401);
    t[strlen(t) - 2] ^= 1;
    assert_null(decide(t, "12x", &no));
    assert_int_equal(no.status, 400);
    assert_string_equal(no.code, "bad_request");
    struct radmit_request req = {.path = "/other", .token = t};
    assert_null(radmit_decide(core, &req, &no));
    assert_int_equal(no.status, 400);
    req = (struct radmit_request){.path = "/v1/relay", .token = t, .draining = 1};
    assert_null(radmit_decide(core, &req, &no));
    assert_int_equal(no.status, 503);
    assert_string_equal(no.code, "draining");
    assert_int_equal(no.retry_after, 1);
    free(t);
}

static void test_ended_session_is_refused_404_and_an_unknown_answer_fails_closed_503(void **st)
{
    (void)st;
    use_secret();
    char *t = mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){0}, 0);
    struct radmit_refusal no;
    ended_lossy = 1; /* the set lost an entry (out of memory): it cannot tell */
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 503);
    assert_int_equal(stats->rej_unavailable, 1);
    ended_lossy = 0;
    fake_ended_add(NULL, SID);
    assert_null(decide(t, "3", &no)); /* a resume takes no priority over an ended session */
    assert_int_equal(no.status, 404);
    assert_string_equal(no.code, "session_ended");
    free(t);
}

/* rsession_end fails closed too: if the set cannot record the id, the sockets close anyway and
 * the set answers "unknown" from then on. */
static void test_ending_a_session_when_the_ended_set_is_out_of_memory_still_closes_it(void **st)
{
    (void)st;
    use_secret();
    struct rconn *v = visitor_new(1);
    struct rsession *s = join(v);
    ended_fail_adds = 1;
    rsession_end(s, "ended_by_api");
    assert_int_equal(v->close_code, 4001);
    assert_int_equal(stats->ended_set_failures, 1);
    char *t = mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){0}, 0);
    struct radmit_refusal no;
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 503);
    free(t);
    conn_free(v);
}

static void test_agent_limit_counts_the_agents_of_the_session(void **st)
{
    (void)st;
    use_secret();
    struct rconn *v = visitor_new(1), *a = agent_new("agent-1", NULL, 1);
    join(v);
    join(a);
    char *t = mint(TOKEN_ROLE_AGENT, "agent-2", (struct token_limits){.agents_per_session = 1}, 0);
    struct radmit_refusal no;
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 403);
    assert_string_equal(no.code, "agent_limit");
    conn_free(a);
    struct rconn *c = decide(t, NULL, &no);
    assert_non_null(c);
    assert_int_equal(c->role, RROLE_AGENT);
    free(c);
    free(t);
    conn_free(v);
}

/* The priority lane: with the node's handshake budget spent, a resume is still admitted (it took
 * from the budget), a new session is refused 429 with Retry-After. */
static void test_resume_takes_the_priority_lane_when_the_node_budget_is_spent(void **st)
{
    (void)st;
    use_secret();
    char *t = mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){0}, 0);
    struct radmit_refusal no;
    budget_refuse_node = 1;
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 429);
    assert_string_equal(no.code, "rate_limited");
    assert_int_equal(no.retry_after, 3); /* 2.5 s rounded up */
    assert_int_equal(stats->rej_saturated, 1);
    n_takes = 0;
    struct rconn *c = decide(t, "7", &no);
    assert_non_null(c);
    assert_int_equal(n_takes, 1); /* drawn from the node's budget all the same */
    assert_int_equal(last_take_key[0], '\x01');
    free(c);
    free(t);
}

static void test_tenant_session_limit_and_rate_apply_to_new_sessions_only(void **st)
{
    (void)st;
    use_secret();
    struct rconn *other = conn_new(RROLE_VISITOR, "ses_other", "visitor", NULL, 1);
    join(other); /* the tenant already has one live session */
    char *t =
        mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){.concurrent_sessions = 1}, 0);
    struct radmit_refusal no;
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 429);
    assert_string_equal(no.code, "session_limit");
    assert_int_equal(no.retry_after, 30);
    free(t);

    t = mint(TOKEN_ROLE_VISITOR, "visitor", (struct token_limits){.sessions_per_minute = 60}, 0);
    budget_refuse_tenant = 1;
    assert_null(decide(t, NULL, &no));
    assert_int_equal(no.status, 429);
    assert_string_equal(last_take_key, TENANT);
    assert_int_equal(stats->rej_rate, 1);
    struct rconn *c = decide(t, "1", &no); /* an ongoing session is not a new one */
    assert_non_null(c);
    free(c);
    free(t);
    conn_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_valid_visitor_token_is_admitted_with_its_claims_and_resume),
        T(test_token_is_judged_on_the_wall_clock_not_the_monotonic_one),
        T(test_bad_signature_missing_token_bad_path_and_bad_resume_are_refused),
        T(test_ended_session_is_refused_404_and_an_unknown_answer_fails_closed_503),
        T(test_ending_a_session_when_the_ended_set_is_out_of_memory_still_closes_it),
        T(test_agent_limit_counts_the_agents_of_the_session),
        T(test_resume_takes_the_priority_lane_when_the_node_budget_is_spent),
        T(test_tenant_session_limit_and_rate_apply_to_new_sessions_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
