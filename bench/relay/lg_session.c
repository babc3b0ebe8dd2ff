/* The relay protocol as the load generator's visitors and agents speak it: see lg_session.h. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/frame.h"
#include "lg_session.h"
#include "lg_stats.h"
#include "lg_ws.h"

#define LG_WHIGH (256u << 10) /* a visitor stops producing above this many unsent bytes */

/* ---- visitors: the outbox ------------------------------------------------------------------ */

static void lg_emit(struct lg_session *s, uint64_t seq)
{
    struct lg_conn *c = s->visitor;
    size_t i = seq & (lg.ring - 1), n = lg_opt.size;
    uint32_t key;
    uint8_t *p = lg_ws_frame(c, 2, n, &key);
    frame_write(p, s->kind[i], 0, seq); /* the relay's own header code (core/base/frame.h) */
    lg_put64(p + FRAME_HEADER_LEN, (uint64_t)s->ts[i]);
    memcpy(p + LG_MIN_FRAME, lg.filler, n - LG_MIN_FRAME);
    lg_ws_mask(p, n, key);
}

/* Produces frames into the outbox (while the window allows, and in the rate modes when they are
 * due) and writes the unsent ones. In the rate modes a frame keeps its scheduled time as send
 * time even when it goes out late, so waiting for the window shows in the latency (no
 * coordinated omission). */
void lg_session_pump(struct lg_session *s, int64_t now)
{
    struct lg_conn *c = s->visitor;
    int rated = lg_opt.mode == LG_LATENCY || lg_opt.mode == LG_RESUME;
    int can_send = c->state == LG_ST_OPEN && s->hello && now >= s->paused_until;
    for (;;) {
        if (can_send && c->wlen - c->woff >= LG_WHIGH)
            break;
        if (can_send && s->send_next <= s->produced) {
            if (s->send_next <= s->acked) /* acked meanwhile: nothing to resend */
                s->send_next = s->acked + 1;
            else
                lg_emit(s, s->send_next++);
            continue;
        }
        if (!lg_streaming() || s->produced - s->acked >= lg.window)
            break;
        int64_t ts;
        if (rated) {
            if (now < s->next_due)
                break;
            ts = s->next_due;
            s->next_due += (int64_t)(1e9 * lg.nsess / lg_opt.rate);
        } else {
            if (!can_send)
                break;
            ts = now;
        }
        uint64_t seq = ++s->produced;
        size_t i = seq & (lg.ring - 1);
        s->ts[i] = ts;
        s->kind[i] = s->need_snapshot ? 1 : 2;
        s->need_snapshot = 0;
        lg.produced++;
    }
    if (c->state == LG_ST_OPEN && c->woff < c->wlen)
        lg_ws_flush(c);
}

/* ---- control messages: a tiny lookup, enough for the flat keys docs/protocol.md uses ------- */

static const char *lg_jfind(const char *js, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *p = strstr(js, pat);
    if (p == NULL)
        return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

static int lg_jint(const char *js, const char *key, uint64_t *out)
{
    const char *p = lg_jfind(js, key);
    if (p == NULL || *p < '0' || *p > '9')
        return -1;
    *out = strtoull(p, NULL, 10);
    return 0;
}

static int lg_jstr(const char *js, const char *key, char *out, size_t outsz)
{
    const char *p = lg_jfind(js, key);
    if (p == NULL || *p != '"')
        return -1;
    p++;
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < outsz)
        n++;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

/* --verbose: the first few control messages of each kind of connection, to see what a server
 * answers without a packet capture */
static void lg_trace(const struct lg_conn *c, const char *js)
{
    if (lg_opt.verbose && lg.traced[c->role] < 5) {
        lg.traced[c->role]++;
        fprintf(stderr, "loadgen: %s of %s got %.300s\n", c->role == LG_AGENT ? "agent" : "visitor",
                c->s->id, js);
    }
}

static void lg_visitor_text(struct lg_conn *c, const char *js, int64_t now)
{
    struct lg_session *s = c->s;
    char type[32] = "";
    uint64_t v = 0, w = 0;
    lg_jstr(js, "type", type, sizeof(type));
    if (strcmp(type, "hello") == 0) {
        uint64_t have = 0, next = 0;
        if (lg_jint(js, "have", &have) || lg_jint(js, "next_seq", &next)) {
            lg_violation("visitor hello without have/next_seq: %.200s", js);
            return;
        }
        /* next_seq is past the resume point too (relay_session.c: max(have, resume) + 1), so
         * it exceeds have + 1 after a node died with frames in flight: only below is wrong */
        if (next < have + 1)
            lg_violation("visitor hello next_seq %" PRIu64 " is below have + 1 (have %" PRIu64 ")",
                         next, have);
        if (have < s->acked)
            lg_violation("visitor hello have %" PRIu64 " below the acked %" PRIu64, have, s->acked);
        if (have > s->produced) {
            /* the relay holds frames this process never made (an earlier run): new page */
            s->acked = s->produced = next - 1;
            s->need_snapshot = 1;
            if (lg_opt.mode == LG_RESUME || lg_opt.mode == LG_LATENCY)
                s->next_due = now;
        } else if (have > s->acked) {
            s->acked = have;
        }
        s->send_next = have + 1; /* the outbox reaches back to acked + 1 <= have + 1 */
        if (!s->hello) {
            s->hello = 1;
            lg.visitors_hello++;
        }
        if (lg.phase == LG_PH_RESUMING && !s->resumed) {
            s->resumed = 1;
            lg.resumed_visitors++;
        }
    } else if (strcmp(type, "ack") == 0) {
        if (lg_jint(js, "seq", &v) == 0) {
            if (v > s->produced)
                lg_violation("ack %" PRIu64 " beyond the last frame made (%" PRIu64 ")", v,
                             s->produced);
            else if (v > s->acked)
                s->acked = v;
        }
    } else if (strcmp(type, "resend") == 0) {
        if (lg_jint(js, "from", &v) == 0) {
            lg.resends++;
            if (v <= s->acked) {
                lg_violation("resend from %" PRIu64 " already acked (%" PRIu64 "): snapshot", v,
                             s->acked);
                s->need_snapshot = 1;
            } else if (v < s->send_next) {
                s->send_next = v;
            }
        }
    } else if (strcmp(type, "slow_down") == 0) {
        lg.slow_downs++;
        if (lg_jint(js, "from", &v) == 0 && v > s->acked && v < s->send_next)
            s->send_next = v;
        if (lg_jint(js, "retry_after_ms", &w) == 0)
            s->paused_until = now + (int64_t)w * 1000000;
        if (lg.slow_downs <= 3)
            fprintf(stderr, "loadgen: slow_down for %s: %.200s\n", s->id, js);
    } else if (strcmp(type, "snapshot_request") == 0) {
        lg.snapshot_requests++;
        s->need_snapshot = 1;
    } else if (strcmp(type, "agent_joined") != 0 && strcmp(type, "agent_left") != 0 &&
               strcmp(type, "control") != 0) {
        lg_violation("unknown message to a visitor: %.200s", js);
    }
    lg_session_pump(s, now);
}

static void lg_agent_text(struct lg_conn *c, const char *js)
{
    char type[32] = "", val[32] = "";
    uint64_t v = 0;
    lg_jstr(js, "type", type, sizeof(type));
    if (strcmp(type, "hello") == 0) {
        c->hello = 1;
        c->hello_from = 0;
        if (lg_jstr(js, "resume", val, sizeof(val)) == 0 && strcmp(val, "continue") == 0 &&
            lg_jint(js, "from", &v) == 0) {
            c->hello_from = v;
            if (c->started && v != c->last + 1)
                lg_violation("agent hello resume=continue from %" PRIu64
                             " after receiving %" PRIu64,
                             v, c->last);
        }
    } else if (strcmp(type, "reset") == 0) {
        if (lg_jint(js, "seq", &v) == 0) {
            c->await_reset = 1;
            c->reset_seq = v;
            lg.resets++;
            if (lg_opt.verbose || lg.resets <= 3)
                fprintf(stderr, "loadgen: reset for an agent of %s: %.200s\n", c->s->id, js);
        } else {
            lg_violation("reset without seq: %.200s", js);
        }
    } else if (strcmp(type, "session_ended") == 0) {
        lg_violation("session ended during the benchmark: %.200s", js);
    } else if (strcmp(type, "waiting_snapshot") != 0 && strcmp(type, "visitor") != 0 &&
               strcmp(type, "consent") != 0 && strcmp(type, "refused") != 0) {
        lg_violation("unknown message to an agent: %.200s", js);
    }
}

void lg_session_agent_reached(struct lg_conn *c)
{
    if (lg.phase == LG_PH_RESUMING && !c->reached && c->last >= c->s->target) {
        c->reached = 1;
        lg.reached_agents++;
    }
}

/* An agent's data frame: in seq order, each once, or after a reset (docs/protocol.md). */
static void lg_agent_binary(struct lg_conn *c, const uint8_t *m, size_t n, int64_t now)
{
    struct frame_header h;
    if (frame_parse(m, n, &h) != 0) {
        lg_violation("agent got a binary message that is not a v1 data frame (%zu bytes)", n);
        return;
    }
    uint64_t seq = h.seq;
    if (c->await_reset) {
        if (seq != c->reset_seq || h.kind != FRAME_KIND_SNAPSHOT)
            lg_violation("after reset %" PRIu64 " the next frame is seq %" PRIu64 " kind %d",
                         c->reset_seq, seq, h.kind);
        c->await_reset = 0;
        c->last = seq;
        c->started = 1;
    } else if (!c->started) {
        uint64_t from = c->hello_from ? c->hello_from : (c->upgraded > 1 ? c->last + 1 : seq);
        if (seq > from) {
            lg_violation("agent's first frame is seq %" PRIu64 ", expected %" PRIu64, seq, from);
            lg.lost += seq - from;
        }
        c->started = 1;
        c->last = seq;
    } else if (seq == c->last + 1) {
        c->last = seq;
    } else if (seq <= c->last) {
        lg.dups++;
        if (lg.dups <= 3)
            lg_violation("agent got seq %" PRIu64 " again (last %" PRIu64 ")", seq, c->last);
        return;
    } else {
        lg.lost += seq - c->last - 1;
        lg_violation("agent handed a gap: seq %" PRIu64 " after %" PRIu64 " without reset", seq,
                     c->last);
        c->last = seq;
    }
    if (seq > c->max_seen) {
        c->max_seen = seq;
        if (lg.phase == LG_PH_MEASURE || lg.phase == LG_PH_RESUMING) {
            lg.frames++;
            lg.bytes += n;
            if (n >= LG_MIN_FRAME) {
                int64_t sent = (int64_t)lg_get64(m + FRAME_HEADER_LEN);
                lg_stats_latency(now > sent ? (uint64_t)(now - sent) : 0);
            }
        }
    }
    lg_session_agent_reached(c);
}

void lg_session_on_message(struct lg_conn *c, int op, const uint8_t *m, size_t n, int64_t now)
{
    if (op == 1) {
        char buf[4097];
        if (n > 4096) {
            lg_violation("text message of %zu bytes (over 4 KiB)", n);
            n = 4096;
        }
        memcpy(buf, m, n);
        buf[n] = '\0';
        lg_trace(c, buf);
        if (c->role == LG_VISITOR)
            lg_visitor_text(c, buf, now);
        else
            lg_agent_text(c, buf);
    } else if (c->role == LG_AGENT) {
        lg_agent_binary(c, m, n, now);
    } else {
        lg_violation("visitor got a binary message (%zu bytes)", n);
    }
}
