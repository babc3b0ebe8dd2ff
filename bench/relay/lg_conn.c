/* The load generator's connections and their life: see lg_conn.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lg_conn.h"
#include "lg_ws.h"

#define LG_MAX_BACKOFF 30000 /* ms, docs/protocol.md: doubling up to 30 s */

struct lg_conn *lg_conn_new(struct lg_session *s, enum lg_role role, const char *token)
{
    struct lg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        lg_die("out of memory");
    c->fd = -1;
    c->role = role;
    c->s = s;
    c->token = token;
    lg.conns = lg_xrealloc(lg.conns, sizeof(*lg.conns) * (size_t)(lg.nconns + 1));
    lg.conns[lg.nconns++] = c;
    return c;
}

void lg_conn_enqueue(struct lg_conn *c)
{
    c->state = LG_ST_QUEUED;
    c->qnext = NULL;
    if (lg.qtail)
        lg.qtail->qnext = c;
    else
        lg.qhead = c;
    lg.qtail = c;
}

static void lg_schedule_retry(struct lg_conn *c, int64_t delay_ms)
{
    c->state = LG_ST_WAIT;
    c->retry_at = lg_now() + delay_ms * 1000000;
    lg.nwait++;
}

static void lg_close_fd(struct lg_conn *c)
{
    if (c->state == LG_ST_CONNECTING || c->state == LG_ST_HANDSHAKE)
        lg.pending--;
    lg_ws_close(c);
}

static void lg_mark_closed(struct lg_conn *c)
{
    if (c->state != LG_ST_OPEN)
        return;
    lg.conns_open--;
    if (c->role == LG_AGENT)
        lg.agents_open--;
    else if (c->s->hello) {
        c->s->hello = 0;
        lg.visitors_hello--;
    }
}

/* docs/protocol.md, close codes: 1000, 4001 and 4002 mean stop; anything else (1012, 4008, a
 * dropped TCP connection) means reconnect with resume. */
void lg_conn_lost(struct lg_conn *c, int code, const char *why)
{
    lg_mark_closed(c);
    lg_close_fd(c);
    if (lg.phase == LG_PH_DONE)
        return;
    if (code == 1000 || code == 4001 || code == 4002) {
        if (lg_opt.verbose)
            fprintf(stderr, "loadgen: %s of %s closed for good: %d %s\n",
                    c->role == LG_AGENT ? "agent" : "visitor", c->s->id, code, why);
        c->state = LG_ST_DEAD;
        lg.closes_final++;
        lg.dead++;
        return;
    }
    if (lg_opt.verbose)
        fprintf(stderr, "loadgen: %s of %s lost (%d %s): reconnecting\n",
                c->role == LG_AGENT ? "agent" : "visitor", c->s->id, code, why);
    lg.reconnects++;
    /* several urls: come back on the next one, as a load balancer's redispatch does after a
     * node died (a connection refused or dropped) */
    if (lg.ntargets > 1)
        c->target = (c->target + 1) % lg.ntargets;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 100;
    if (c->backoff_ms > LG_MAX_BACKOFF)
        c->backoff_ms = LG_MAX_BACKOFF;
    lg_schedule_retry(c, c->backoff_ms);
}

/* docs/protocol.md: retry 429 and 503 after Retry-After plus 0-100 % jitter, doubling on each
 * further rejection up to 30 s; anything else is final. */
void lg_conn_rejected(struct lg_conn *c, int status, int retry_s)
{
    lg_close_fd(c);
    if (status == 429 || status == 503) {
        if (retry_s < 0)
            lg_violation("%d without Retry-After", status);
        int64_t base = retry_s > 0 ? retry_s * 1000LL : 100;
        if (c->backoff_ms > base)
            base = c->backoff_ms;
        c->backoff_ms = (int)(base * 2 > LG_MAX_BACKOFF ? LG_MAX_BACKOFF : base * 2);
        lg_schedule_retry(c, base + (int64_t)(lg_rand() % (uint64_t)(base + 1)));
    } else {
        c->state = LG_ST_DEAD;
        lg.dead++;
    }
}

static void lg_connect(struct lg_conn *c)
{
    c->state = LG_ST_CONNECTING;
    lg.pending++;
    lg_ws_connect(c);
}

void lg_conn_opened(struct lg_conn *c)
{
    lg.pending--;
    c->state = LG_ST_OPEN;
    c->backoff_ms = 0;
    c->upgraded++;
    lg.conns_open++;
    if (c->role == LG_AGENT) {
        lg.agents_open++;
        c->started = c->upgraded > 1 ? 1 : 0;
        c->await_reset = 0;
        c->hello = 0;
        c->hello_from = 0;
    }
}

void lg_conn_start_connects(void)
{
    while (lg.qhead && lg.pending < lg_opt.max_pending) {
        struct lg_conn *c = lg.qhead;
        lg.qhead = c->qnext;
        if (lg.qhead == NULL)
            lg.qtail = NULL;
        lg_connect(c);
    }
}

void lg_conn_retries(int64_t now)
{
    if (lg.nwait == 0)
        return;
    for (int i = 0; i < lg.nconns; i++) {
        struct lg_conn *c = lg.conns[i];
        if (c->state == LG_ST_WAIT && now >= c->retry_at) {
            lg.nwait--;
            lg_conn_enqueue(c);
        }
    }
}

void lg_conn_close_all(void)
{
    for (int i = 0; i < lg.nconns; i++) {
        struct lg_conn *c = lg.conns[i];
        if (c->state == LG_ST_DEAD)
            continue;
        if (c->state == LG_ST_WAIT)
            lg.nwait--;
        lg_mark_closed(c);
        lg_close_fd(c);
        c->backoff_ms = 0;
        c->state = LG_ST_NONE;
    }
    lg.qhead = lg.qtail = NULL;
    for (int i = 0; i < lg.nconns; i++)
        if (lg.conns[i]->state == LG_ST_NONE)
            lg_conn_enqueue(lg.conns[i]);
}
