/* Handshake admission on the relay thread: the token (verified here, no database), ended
 * sessions, the tenant's limits and the node's handshake budget, with the priority lane for
 * resumes (docs/protocol.md, "Connecting"). A refusal is a plain HTTP answer before any upgrade. */
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/ratelimit.h"
#include "core/relay/relay_state.h"
#include "core/base/timeutil.h"

static struct rl_table *limits; /* the node's handshakes and the tenants' new sessions */

int relay_admit_init(void)
{
    limits = rl_new(65536);
    return limits ? 0 : -1;
}

void relay_admit_free(void)
{
    rl_free(limits);
    limits = NULL;
}

/* Answers a refused upgrade with status, an optional Retry-After and a JSON body. Returns 1
 * (what LWS_CALLBACK_HTTP_CONFIRM_UPGRADE expects once it has answered itself). */
int relay_refuse(struct lws *wsi, unsigned status, const char *code, const char *detail,
                 int retry_after)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    char body[LWS_PRE + 384];
    int n = snprintf(body + LWS_PRE, sizeof(body) - LWS_PRE, "{\"code\":\"%s\",\"detail\":\"%s\"}",
                     code, detail);
    if (lws_add_http_common_headers(wsi, status, "application/json", (lws_filepos_t)n, &p, end))
        return -1;
    if (retry_after > 0) {
        char ra[16];
        int rl = snprintf(ra, sizeof(ra), "%d", retry_after);
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)"retry-after:", (const unsigned char *)ra, rl, &p, end))
            return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (lws_write(wsi, (unsigned char *)body + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL) != n)
        return -1;
    return 1;
}

/* Finds the token: the access_token query parameter (browsers), else a Bearer header. The URI
 * is never logged, since it carries the token. */
static int find_token(struct lws *wsi, char *out, size_t size)
{
    char hdr[TOKEN_MAX_LEN + 32];
    const char *q = lws_get_urlarg_by_name(wsi, "access_token=", hdr, (int)sizeof(hdr));
    if (q != NULL && strlen(q) < size) {
        snprintf(out, size, "%s", q);
        return 0;
    }
    if (lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
        strncasecmp(hdr, "Bearer ", 7) == 0 && strlen(hdr + 7) < size) {
        snprintf(out, size, "%s", hdr + 7);
        return 0;
    }
    return -1;
}

static int parse_resume(struct lws *wsi, int *has, uint64_t *value)
{
    /* As big as the token: lws stops looking at the first argument that does not fit. */
    char buf[TOKEN_MAX_LEN + 32];
    const char *v = lws_get_urlarg_by_name(wsi, "resume=", buf, (int)sizeof(buf));
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

/* Decides a handshake. Returns 0 to upgrade (with the connection in the wsi's opaque data),
 * else the value LWS_CALLBACK_HTTP_CONFIRM_UPGRADE must return. */
int relay_admit(struct lws *wsi)
{
    char uri[128], token[TOKEN_MAX_LEN + 1];
    struct rl_result rr;
    if (relay_is_draining()) {
        STAT_ADD(rej_draining, 1);
        return relay_refuse(wsi, 503, "draining", "this node is shutting down; reconnect", 1);
    }
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, "/v1/relay") != 0) {
        STAT_ADD(rej_bad_request, 1);
        return relay_refuse(wsi, 400, "bad_request", "the relay path is /v1/relay", 0);
    }
    int has_resume;
    uint64_t resume;
    if (parse_resume(wsi, &has_resume, &resume) != 0) {
        STAT_ADD(rej_bad_request, 1);
        return relay_refuse(wsi, 400, "bad_request", "resume must be an unsigned integer", 0);
    }
    struct token_claims claims;
    int rc = find_token(wsi, token, sizeof(token));
    if (rc == 0)
        rc = token_verify(relay_cfg->jwt_secret, relay_cfg->jwt_secret_len, token,
                          (int64_t)time_now(), NULL, &claims);
    else
        rc = TOKEN_EMALFORMED;
    if (rc != TOKEN_OK) {
        STAT_ADD(rej_invalid_token, 1);
        return relay_refuse(wsi, 401, "invalid_token", token_error_str(rc), 0);
    }
    if (relay_is_ended(claims.sid)) {
        STAT_ADD(rej_ended, 1);
        return relay_refuse(wsi, 404, "session_ended", "this session has ended", 0);
    }
    struct rsession *s = rsession_find(claims.sid);
    int agents_max = claims.lim.agents_per_session > 0 ? claims.lim.agents_per_session : 1000000;
    if (claims.role == TOKEN_ROLE_AGENT && s != NULL && s->n_agents >= agents_max) {
        STAT_ADD(rej_agent_limit, 1);
        return relay_refuse(wsi, 403, "agent_limit", "this session has all the agents it may have",
                            0);
    }
    double now = time_monotonic();
    int hps = relay_cfg->handshakes_per_second;
    /* The priority lane: a resume draws from the node's handshake budget but is never refused
     * by it, so during a reconnect storm ongoing sessions get in while new ones wait. */
    rl_take(limits, "\x01node", hps, hps, now, &rr);
    if (!has_resume) {
        if (s == NULL && claims.lim.concurrent_sessions > 0 &&
            rsession_count_tenant(claims.tid) >= claims.lim.concurrent_sessions) {
            STAT_ADD(rej_session_limit, 1);
            return relay_refuse(wsi, 429, "session_limit",
                                "the tenant has all the live sessions it may have on this node",
                                30);
        }
        if (!rr.allowed) {
            STAT_ADD(rej_saturated, 1);
            return relay_refuse(wsi, 429, "rate_limited", "this node is busy; retry shortly",
                                retry_seconds(rr.retry_after));
        }
        if (s == NULL && claims.lim.sessions_per_minute > 0) {
            double rate = claims.lim.sessions_per_minute / 60.0;
            int burst = rate < 1 ? 1 : (int)rate;
            rl_take(limits, claims.tid, rate, burst, now, &rr);
            if (!rr.allowed) {
                STAT_ADD(rej_rate, 1);
                return relay_refuse(wsi, 429, "rate_limited", "the tenant starts sessions too fast",
                                    retry_seconds(rr.retry_after));
            }
        }
    }
    struct rconn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -1;
    c->claims = claims;
    c->role = claims.role == TOKEN_ROLE_AGENT ? RROLE_AGENT : RROLE_VISITOR;
    c->has_resume = has_resume;
    c->resume = resume;
    lws_set_opaque_user_data(wsi, c);
    return 0;
}
