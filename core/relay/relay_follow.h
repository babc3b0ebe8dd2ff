/* Following a session across nodes (docs/cluster.md, "Agents on another node"): this node's copy
 * of a session (struct rcsession) subscribes to the session's channel and reads its history
 * from Redis, so that its frames, `have` and history are the visitor's node's; frames are applied
 * in seq order, and a hole is filled from the history (or, where the history no longer has it,
 * the agents here wait for the next page). Also the connections waiting for that copy, the
 * visitor's generation, and the other nodes' messages (visitor and agents elsewhere, control
 * messages for the visitor, the visitor's answers for the agents).
 *
 * Internal to core/relay/: the other half of core/relay/relay_cluster.c (admission, presence,
 * appends, idle), which shares struct rcluster with it. Relay thread only (the counters in st
 * are read by any thread, relaxed). */
#ifndef COBROWSE_CORE_RELAY_FOLLOW_H
#define COBROWSE_CORE_RELAY_FOLLOW_H

#include <stdatomic.h>

#include "core/relay/relay_session.h"

struct cluster;

#define RCLUSTER_PRESENCE_TTL_MS 30000 /* a member counts this long without a touch (10 s) */

struct rcluster {
    struct rcore *core;
    struct cluster *cl;
    char node[72];
    atomic_int up;
    int closing; /* rcluster_free: answers only release what they hold */
    uint64_t next_conn, next_inc;
    double last_touch;
    struct rconn **held_back; /* visitors paused for the Redis backlog (RPAUSE_CLUSTER), held */
    size_t n_held_back, cap_held_back;
    _Atomic size_t backlog_seen; /* cluster_backlog at the last append (for /metrics) */
    struct {
        _Atomic uint64_t appends, append_gap, append_fenced, append_lost, append_down, follows,
            catchups, resets, backlog_pauses;
    } st;
};

/* Names a session across an asynchronous request: its id and this copy's incarnation, so that
 * an answer for a copy that was freed (and perhaps created again) finds nothing. */
struct rfollow_ref {
    struct rcluster *rc;
    char sid[48];
    uint64_t inc;
};
void rfollow_ref(struct rsession *s, struct rfollow_ref *ref);
struct rsession *rfollow_find(const struct rfollow_ref *ref); /* NULL: gone */

/* A request in flight (or a waiting list) holds c; drop returns 1 when c is gone (freed when the
 * last hold went, see rcluster_conn_release): the caller must not touch it. */
void rfollow_conn_hold(struct rconn *c);
int rfollow_conn_drop(struct rconn *c);
/* Publishes "<type><node> <json>" on s's channel (relay_peers.h lists the types); the second
 * takes the reference to msg. */
void rfollow_publish(struct rsession *s, char type, const char *json);
void rfollow_publish_json(struct rsession *s, char type, json_t *msg);
/* The visitor of generation gen left (or went away before it joined): Redis and the other nodes
 * learn it. */
void rfollow_visitor_gone(struct rsession *s, uint64_t gen);

/* s's copy state (s->cl); 0 or -1 (out of memory). Freed by rfollow_session_free. */
int rfollow_session_new(struct rcluster *rc, struct rsession *s);
void rfollow_session_free(struct rsession *s);
/* An admitted connection joins s: once this node follows the session (at once if it already
 * does), a visitor claims the session (its generation, the agents everywhere) and then each one
 * attaches (hello) and its reads resume. */
void rfollow_join(struct rsession *s, struct rconn *c);
/* Redis is back: every copy catches up, and a visitor whose frames were not appended meanwhile
 * claims its session again and is asked for a page. */
void rfollow_resume_all(struct rcluster *rc);
/* A visitor said to be on another node may be gone with its node (killed: nobody said it left):
 * the copy reads meta again, whose vexp tells, at most every touch (10 s). */
void rfollow_recheck(struct rsession *s);
/* A frame read from Redis or the channel (a copy with seq and kind set), or NULL. */
struct rframe *rfollow_frame_from(struct rsession *s, const unsigned char *data, size_t len);
/* Reads what the copy may have missed (meta and the frames after have), unless a read is on its
 * way already. */
void rfollow_catch_up(struct rsession *s);
/* Another node says its visitor connected (with its generation: a visitor here with an older one
 * is closed, 4002) or left ("disconnected"). */
void rfollow_visitor_news(struct rsession *s, const char *state, uint64_t gen);

/* A frame Redis has appended (from this node's append or the channel): applied in seq order. */
void rfollow_frame(struct rsession *s, struct rframe *f);
/* A frame of the visitor here that Redis could not take (down): applied here only. */
void rfollow_degraded(struct rsession *s, struct rframe *f);
/* Redis lost the session, or frames were applied here while it was down (dirty): the visitor
 * here claims the session again (Redis's last becomes at least this node's have), resends what
 * was not acked and is asked for a page. */
void rfollow_reclaim(struct rsession *s);

/* A node's copy of a session (rsession.cl). */
enum fstate { F_NEW = 0, F_SUBSCRIBING, F_SYNCING, F_LIVE, F_CATCHUP };

struct rcsession {
    struct rcluster *rc;
    uint64_t inc;
    enum fstate state;
    char epoch[33];      /* the history's epoch in Redis ("" before it has one) */
    uint64_t gen;        /* the visitor here: its generation (0: none, or not claimed) */
    uint64_t remote_gen; /* the newest visitor generation announced by another node */
    int remote_visitor;  /* a visitor is connected on another node */
    int dirty;           /* frames of the visitor here were applied without Redis */
    int reclaiming, asking_idle;
    struct rframe **held; /* live frames that arrived during a sync, in arrival order */
    size_t n_held, cap_held;
    struct rconn *waiting, *waiting_tail; /* admitted, waiting for the copy (wnext) */
};

static inline int rfollow_dirty(const struct rsession *s)
{
    return s->cl->dirty;
}
/* 0: no visitor here with a generation. */
static inline uint64_t rfollow_visitor_gen(const struct rsession *s)
{
    return s->cl ? s->cl->gen : 0;
}
static inline void rfollow_visitor_left(struct rsession *s)
{
    s->cl->gen = 0;
}
static inline int rfollow_visitor_elsewhere(const struct rsession *s)
{
    return s->cl != NULL && s->visitor == NULL && s->cl->remote_visitor;
}
/* Idle questions in flight: asking returns 1 if one already is (else marks one). */
static inline int rfollow_idle_asking(struct rsession *s)
{
    int was = s->cl->asking_idle;
    s->cl->asking_idle = 1;
    return was;
}
static inline void rfollow_idle_answered(struct rsession *s)
{
    s->cl->asking_idle = 0;
}
/* 1 while connections wait for the copy (it must not be forgotten). */
static inline int rfollow_busy(const struct rsession *s)
{
    return s->cl->waiting != NULL || s->cl->state == F_SUBSCRIBING || s->cl->state == F_SYNCING;
}

#endif
