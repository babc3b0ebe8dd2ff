/* Handshake admission (core/relay/relay_admit.h). */
#include "core/relay/relay_admit.h"

#include <stdlib.h>
#include <string.h>

#define RADMIT_NODE_KEY "\x01node" /* no tenant id starts with a control character */

static struct rconn *refuse(struct radmit_refusal *no, unsigned status, const char *code,
                            const char *title, const char *detail, int retry_after)
{
    *no = (struct radmit_refusal){status, code, title, detail, retry_after};
    return NULL;
}

static int parse_resume(const char *v, int *has, uint64_t *value)
{
    *has = 0;
    *value = 0;
    if (v == NULL)
        return 0;
    if (*v == '\0' || strlen(v) > 19)
        return -1;
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        *value = *value * 10 + (uint64_t)(*p - '0');
    }
    *has = 1;
    return 0;
}

static int retry_seconds(double s)
{
    int r = (int)(s + 0.999);
    return r < 1 ? 1 : r;
}

/* The tenant's and the node's budgets for a handshake without resume: 0 if admitted. The
 * priority lane: a resume draws from the node's budget (taken by the caller) but is never refused
 * by it, so during a reconnect storm ongoing sessions get in while new ones wait. */
static int budgets(struct rcore *core, const struct token_claims *claims, int node_ok,
                   double node_retry, int session_exists, double now, struct radmit_refusal *no)
{
    struct relay_stats *st = &core->stats;
    const struct relay_shared *sh = &core->shared;
    if (!session_exists && claims->lim.concurrent_sessions > 0 &&
        sh->tenant_sessions(sh->ctx, claims->tid) >= claims->lim.concurrent_sessions) {
        RSTAT_ADD(st, rej_session_limit, 1);
        refuse(no, 429, "session_limit", "Too many live sessions",
               "the tenant has all the live sessions it may have on this node", 30);
        return -1;
    }
    if (!node_ok) {
        RSTAT_ADD(st, rej_saturated, 1);
        refuse(no, 429, "rate_limited", "Too many handshakes", "this node is busy; retry shortly",
               retry_seconds(node_retry));
        return -1;
    }
    if (!session_exists && claims->lim.sessions_per_minute > 0) {
        double rate = claims->lim.sessions_per_minute / 60.0, retry = 0;
        int burst = rate < 1 ? 1 : (int)rate;
        if (!sh->take(sh->ctx, claims->tid, rate, burst, now, &retry)) {
            RSTAT_ADD(st, rej_rate, 1);
            refuse(no, 429, "rate_limited", "Too many new sessions",
                   "the tenant starts sessions too fast", retry_seconds(retry));
            return -1;
        }
    }
    return 0;
}

/* The token and the session's state: 0 with *claims filled, else a refusal in *no. */
static int check_token(struct rcore *core, const char *token, struct token_claims *claims,
                       struct radmit_refusal *no)
{
    struct relay_stats *st = &core->stats;
    int rc = TOKEN_EMALFORMED;
    if (token != NULL) /* exp and nbf are wall-clock times: never the monotonic clock */
        rc = token_verify(core->cfg->jwt_secret, core->cfg->jwt_secret_len, token,
                          (int64_t)rcore_wall(core), NULL, claims);
    if (rc != TOKEN_OK) {
        RSTAT_ADD(st, rej_invalid_token, 1);
        refuse(no, 401, "invalid_token", "Invalid token", token_error_str(rc), 0);
        return -1;
    }
    int ended = core->ended.contains(core->ended.ctx, claims->sid);
    if (ended == 1) {
        RSTAT_ADD(st, rej_ended, 1);
        refuse(no, 404, "session_ended", "Session ended", "this session has ended", 0);
        return -1;
    }
    if (ended < 0) { /* fail closed: the set lost an entry; a reload puts it back */
        RSTAT_ADD(st, rej_unavailable, 1);
        refuse(no, 503, "unavailable", "Temporarily unavailable",
               "this node cannot tell whether the session has ended; retry shortly", 1);
        return -1;
    }
    return 0;
}

struct rconn *radmit_decide(struct rcore *core, const struct radmit_request *req,
                            struct radmit_refusal *no)
{
    struct relay_stats *st = &core->stats;
    memset(no, 0, sizeof(*no));
    if (req->draining) {
        RSTAT_ADD(st, rej_draining, 1);
        return refuse(no, 503, "draining", "Node draining", "this node is shutting down; reconnect",
                      1);
    }
    if (req->path == NULL || strcmp(req->path, "/v1/relay") != 0) {
        RSTAT_ADD(st, rej_bad_request, 1);
        return refuse(no, 400, "bad_request", "Bad request", "the relay path is /v1/relay", 0);
    }
    int has_resume;
    uint64_t resume;
    if (parse_resume(req->resume, &has_resume, &resume) != 0) {
        RSTAT_ADD(st, rej_bad_request, 1);
        return refuse(no, 400, "bad_request", "Bad request", "resume must be an unsigned integer",
                      0);
    }
    struct token_claims claims;
    if (check_token(core, req->token, &claims, no) != 0)
        return NULL;
    const struct relay_shared *sh = &core->shared;
    /* In a cluster the tenant's budgets and the agents per session are counted in Redis after
     * the upgrade (core/relay/relay_cluster.c); the node's own budget stays here. */
    int clustered = core->cluster != NULL;
    int agents = clustered ? -1 : sh->session_agents(sh->ctx, claims.sid);
    int agents_max = claims.lim.agents_per_session > 0 ? claims.lim.agents_per_session : 1000000;
    if (claims.role == TOKEN_ROLE_AGENT && agents >= agents_max) {
        RSTAT_ADD(st, rej_agent_limit, 1);
        return refuse(no, 403, "agent_limit", "Agent limit reached",
                      "this session has all the agents it may have", 0);
    }
    double now = rcore_now(core), node_retry = 0;
    int hps = core->cfg->handshakes_per_second;
    int node_ok = sh->take(sh->ctx, RADMIT_NODE_KEY, hps, hps, now, &node_retry);
    if (clustered && !has_resume && !node_ok) {
        RSTAT_ADD(st, rej_saturated, 1);
        return refuse(no, 429, "rate_limited", "Too many handshakes",
                      "this node is busy; retry shortly", retry_seconds(node_retry));
    }
    if (!clustered && !has_resume &&
        budgets(core, &claims, node_ok, node_retry, agents >= 0, now, no) != 0)
        return NULL;
    struct rconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return refuse(no, 503, "unavailable", "Temporarily unavailable",
                      "the relay is out of memory; retry shortly", 1);
    c->core = core;
    c->fd = -1;
    c->claims = claims;
    c->role = claims.role == TOKEN_ROLE_AGENT ? RROLE_AGENT : RROLE_VISITOR;
    c->has_resume = has_resume;
    c->resume = resume;
    return c;
}
