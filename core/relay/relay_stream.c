/* The visitor's frames through its session (core/relay/relay_stream.h). Costs: a frame is stored
 * once and referenced by the history and every agent queue, so fan-out is O(agents) pointer
 * pushes and no copies. */
#include "core/relay/relay_stream.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/frame.h"

#define SLOW_AGAIN_SECONDS 10.0
#define PAUSE_MAX_SECONDS  2.0
/* Acks are coalesced (docs/protocol.md): each one costs the visitor's page a message task, and
 * a busy page sends up to 20 frames a second. An ack goes out at once for a snapshot (a large
 * frame the visitor wants to free) or once ACK_FRAMES frames or ACK_BYTES are unacknowledged,
 * else ACK_DELAY_MS after the first unacknowledged frame. */
#define ACK_FRAMES   16
#define ACK_BYTES    (256 * 1024)
#define ACK_DELAY_MS 200

/* An agent fell behind by more than its queue allows: skip it ahead to the latest snapshot, or
 * close it if it keeps falling behind. */
static void agent_overflow(struct rconn *a)
{
    struct rsession *s = a->s;
    double now = rcore_now(s->core);
    rconn_clear_queue(a);
    if ((a->slow_reset_at > 0 && now - a->slow_reset_at < SLOW_AGAIN_SECONDS) ||
        !rhistory_usable(s)) {
        RSTAT_ADD(&s->core->stats, slow_closes, 1);
        rconn_close(a, 4008, "slow consumer");
        return;
    }
    a->slow_reset_at = now;
    RSTAT_ADD(&s->core->stats, slow_resets, 1);
    rhistory_replay(a, "slow_consumer");
}

/* The smallest send queue among the session's agents. */
static size_t min_agent_queue(const struct rsession *s)
{
    size_t min = SIZE_MAX;
    for (const struct rconn *a = s->agents; a; a = a->next)
        if (a->close_code == 0 && a->qbytes < min)
            min = a->qbytes;
    return min;
}

/* Flow control: when every agent is behind, the visitor sends faster than anyone can receive,
 * so the relay stops reading from it and TCP slows it down, instead of treating all agents as
 * slow consumers. One stuck agent does not hold the others back: the pause ends after
 * PAUSE_MAX_SECONDS (rstream_tick) and that agent is then reset or closed as usual. */
static void update_pause(struct rsession *s)
{
    if (s->visitor == NULL)
        return;
    size_t min = min_agent_queue(s);
    if (s->paused_at == 0 && min != SIZE_MAX && min > s->core->cfg->queue_bytes / 2) {
        s->paused_at = rcore_now(s->core);
        rcore_pause(s->visitor, RPAUSE_AGENTS, 1);
    } else if (s->paused_at > 0 && (min == SIZE_MAX || min <= s->core->cfg->queue_bytes / 4)) {
        s->paused_at = 0;
        rcore_pause(s->visitor, RPAUSE_AGENTS, 0);
    }
}

void rstream_agent_drained(struct rconn *a)
{
    if (a->s != NULL && a->s->paused_at > 0)
        update_pause(a->s);
}

void rstream_tick(struct rsession *s, double now)
{
    if (s->paused_at > 0 && now - s->paused_at >= PAUSE_MAX_SECONDS && s->visitor) {
        s->paused_at = 0; /* a stuck agent must not stall the page: it gets reset or closed */
        rcore_pause(s->visitor, RPAUSE_AGENTS, 0);
    }
}

static void fan_out(struct rsession *s, struct rframe *f)
{
    size_t limit = s->core->cfg->queue_bytes + s->hist_bytes;
    for (struct rconn *a = s->agents; a; a = a->next) {
        if (a->close_code != 0)
            continue;
        if (a->waiting_snapshot) { /* never a gap: nothing until the page it can apply it to */
            if (f->kind != FRAME_KIND_SNAPSHOT)
                continue;
            a->waiting_snapshot = 0;
        }
        rconn_push(a, f);
        if (a->qbytes > limit)
            agent_overflow(a);
        else
            rcore_wake(a);
    }
    if (s->paused_at == 0 || rcore_now(s->core) - s->paused_at < PAUSE_MAX_SECONDS)
        update_pause(s);
}
/* GCRA on the visitor's frames and bytes per second, then the node's memory ceiling. Returns
 * NULL if the frame fits, else the reason, with *retry_ms set. A frame larger than one second's
 * byte budget passes when the bucket is empty, so a big snapshot can always get through
 * eventually. A snapshot is never refused for memory: it frees its session's history, and
 * refusing it would keep the node at the ceiling for good. */
static const char *over_budget(struct rsession *s, size_t len, int snapshot, double now,
                               int *retry_ms)
{
    double f_int = 1.0 / s->lim.frames_per_second;
    double f_tol = f_int * (s->lim.frames_per_second - 1);
    double f_tat = s->frame_tat > now ? s->frame_tat : now;
    if (f_tat - now > f_tol + 1e-9) { /* epsilon: sums of 1/rate are not exact in binary */
        *retry_ms = (int)((f_tat - now - f_tol) * 1000) + 1;
        return "frame_rate";
    }
    double b_cost = (double)len / s->lim.bytes_per_second;
    double b_tat = s->byte_tat > now ? s->byte_tat : now;
    if (b_tat - now > 1e-9 && b_tat + b_cost - now > 1.0 + 1e-9) {
        *retry_ms = (int)((b_tat + b_cost - now - 1.0) * 1000) + 1;
        return "byte_rate";
    }
    if (!snapshot && RSTAT_GET(&s->core->stats, memory_bytes) > s->core->cfg->max_memory) {
        *retry_ms = 500;
        return "memory";
    }
    s->frame_tat = f_tat + f_int;
    s->byte_tat = b_tat + b_cost;
    return NULL;
}

void rstream_ack_later(struct rconn *c, size_t bytes, int snapshot)
{
    c->ack_pending = 1;
    c->unacked_frames++;
    c->unacked_bytes += bytes;
    if (snapshot || c->unacked_frames >= ACK_FRAMES || c->unacked_bytes >= ACK_BYTES) {
        rcore_wake(c);
    } else if (!c->ack_timer) {
        c->ack_timer = 1;
        rcore_wake_in(c, ACK_DELAY_MS);
    }
}

struct rframe *rstream_take_ack(struct rconn *c)
{
    if (!c->ack_pending || c->s == NULL || c->s->visitor != c)
        return NULL;
    char ack[64];
    snprintf(ack, sizeof(ack), "{\"type\":\"ack\",\"seq\":%llu}", (unsigned long long)c->s->have);
    struct rframe *f = rframe_text(&c->core->stats, ack);
    if (f == NULL)
        return NULL; /* out of memory: still pending, the next writeable tries again */
    c->ack_pending = 0;
    c->unacked_frames = 0;
    c->unacked_bytes = 0;
    c->last_acked = c->s->have;
    return f;
}

/* A frame the relay cannot take now: the visitor resends from seq after retry_ms. Always
 * answered: this is the frame the relay expects (later ones are dropped as a gap), so a resend
 * that is still over budget gets a new slow_down, never silence. */
static void slow_down(struct rconn *c, uint64_t seq, int retry_ms, const char *why)
{
    struct rsession *s = c->s;
    if (strcmp(why, "memory") == 0)
        RSTAT_ADD(&s->core->stats, drop_memory, 1);
    else
        RSTAT_ADD(&s->core->stats, drop_rate, 1);
    s->want_from = seq;
    rconn_send_json(c, json_pack("{s:s, s:I, s:i, s:s}", "type", "slow_down", "from",
                                 (json_int_t)seq, "retry_after_ms", retry_ms, "reason", why));
    if (strcmp(why, "memory") == 0)
        rhistory_request_snapshot(s, "memory"); /* the way out: a snapshot replaces the history */
}

void rstream_visitor_frame(struct rconn *c, struct rframe *f)
{
    struct rsession *s = c->s;
    struct frame_header h;
    if (c->fenced || s == NULL) {
        rframe_unref(f);
        return;
    }
    if (frame_parse(f->buf + RELAY_PRE, f->len, &h) != 0) {
        rframe_unref(f);
        rconn_close(c, 1008, "bad frame header");
        return;
    }
    /* UINT64_MAX: no next seq would exist, the session could never move again. In a cluster,
     * seqs travel through Lua numbers (exact below 2^53). */
    if (h.seq == UINT64_MAX || (s->cl != NULL && h.seq >= RSPAN_SEQ_LIMIT)) {
        rframe_unref(f);
        RSTAT_ADD(&s->core->stats, seq_exhausted, 1);
        rconn_close(c, 1008, "seq out of range");
        return;
    }
    f->seq = h.seq;
    f->kind = h.kind;
    RSTAT_ADD(&s->core->stats, frames_in, 1);
    RSTAT_ADD(&s->core->stats, bytes_in, f->len);
    int snapshot = h.kind == FRAME_KIND_SNAPSHOT;
    /* In a cluster a frame is acked once Redis holds it (core/relay/relay_cluster.c). */
    if (s->cl == NULL || h.seq <= s->sent)
        rstream_ack_later(c, f->len, snapshot);
    if (h.seq <= s->sent) { /* a duplicate (a resend of something we hold) */
        RSTAT_ADD(&s->core->stats, drop_duplicate, 1);
        rframe_unref(f);
        return;
    }
    if (h.seq != s->sent + 1 && !snapshot) {
        RSTAT_ADD(&s->core->stats, drop_gap, 1);
        if (s->want_from == 0) {
            s->want_from = s->sent + 1;
            rconn_send_json(
                c, json_pack("{s:s, s:I}", "type", "resend", "from", (json_int_t)s->want_from));
        }
        rframe_unref(f);
        return;
    }
    int retry_ms = 0;
    const char *why = over_budget(s, f->len, snapshot, rcore_now(s->core), &retry_ms);
    if (why != NULL) {
        slow_down(c, h.seq, retry_ms, why);
        rframe_unref(f);
        return;
    }
    s->want_from = 0;
    s->sent = h.seq;
    if (s->cl != NULL)
        s->core->span.append(c, f); /* applied when Redis has appended it */
    else
        rstream_apply(s, f);
    rframe_unref(f);
}

void rstream_apply(struct rsession *s, struct rframe *f)
{
    int gap = f->seq != s->have + 1;
    s->have = f->seq;
    if (s->sent < s->have)
        s->sent = s->have;
    rhistory_store(s, f, gap);
    fan_out(s, f);
}
