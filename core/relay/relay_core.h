/* The relay's session layer as an instance (struct rcore): the types the session logic works on
 * (frames, connections, sessions), the node's counters, and the seams through which the session
 * logic reaches the world. Internal to core/relay/.
 *
 * Seams (each a table of function pointers and a context, set by whoever builds the core):
 *   io      the WebSocket side: wake a connection, wake it after a delay, pause its reads
 *           (core/relay/relay_ws.c over libwebsockets; a recorder in the unit tests)
 *   clock   monotonic seconds (rates, idle times) and wall seconds (token expiry), separate
 *   events  lifecycle events for the database side (core/relay/relay_worker.c)
 *   ended   the set of sessions known to have ended (core/relay/relay_ended.c)
 *   span    sessions that span nodes (core/relay/relay_cluster.c; only with --redis-url)
 *   shared  cross-session and tenant state admission reads before the upgrade
 *           (core/relay/relay_local.c; in a cluster the tenant's budgets are counted in Redis
 *           after the upgrade instead, core/relay/relay_cluster.c)
 *
 * Threading: everything here belongs to the relay's service thread, except the counters, which
 * any thread may read (relaxed atomic loads; see struct relay_stats).
 *
 * Include and call graph (no cycles; each arrow: includes and calls):
 *   relay.c -> relay_ws, relay_session, relay_local, relay_ended, relay_worker, relay_metrics,
 *              relay_mask
 *   relay_ws -> relay_admit, relay_mask, relay_session, relay_stream, relay_control
 *   relay_local -> relay_session -> relay_stream -> relay_history -> relay_conn -> relay_frame
 *   relay_session -> relay_control -> relay_conn
 *   relay_admit, relay_ended, relay_worker, relay_metrics -> relay_core.h only
 *   with --redis-url (docs/cluster.md): relay.c and relay_ws -> relay_cluster -> relay_peers ->
 *              relay_follow -> relay_session, core/cluster; the session layer reaches them
 *              only through the span seam
 * The session layer reaches relay.c, relay_ws.c, the worker and the ended set only through the
 * seams; relay_ws.c reaches relay.c only through struct rws's cancelled hook.
 */
#ifndef COBROWSE_CORE_RELAY_CORE_H
#define COBROWSE_CORE_RELAY_CORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/token.h"
#include "core/relay/relay.h"

#define RELAY_PRE      32 /* headroom before each message for the WebSocket header (>= LWS_PRE) */
#define RELAY_TEXT_MAX 4096

/* Node-wide counters, owned by the core. The relay thread is their only writer and any thread
 * reads them with relaxed loads; a single writer needs no locked read-modify-write (a `lock add`
 * per counter was 4 % of the relay's time at 2 million frames/s), so RSTAT_ADD is a relaxed load
 * and a relaxed store. */
struct relay_stats {
    _Atomic uint64_t conns_visitor, conns_agent, sessions_live;
    _Atomic uint64_t frames_in, bytes_in, frames_out, bytes_out;
    _Atomic uint64_t drop_duplicate, drop_gap, drop_rate, drop_memory;
    _Atomic uint64_t rej_invalid_token, rej_ended, rej_agent_limit, rej_rate, rej_session_limit,
        rej_saturated, rej_draining, rej_bad_request, rej_unavailable;
    _Atomic uint64_t resumes_visitor, resumes_agent;
    _Atomic uint64_t history_bytes, memory_bytes, queue_high_water;
    _Atomic uint64_t slow_resets, slow_closes, control_forwarded, control_refused;
    _Atomic uint64_t snapshots_requested_memory, ended_set_failures, seq_exhausted;
};
#define RSTAT_GET(st, field) atomic_load_explicit(&(st)->field, memory_order_relaxed)
#define RSTAT_SET(st, field, v)                                                                    \
    atomic_store_explicit(&(st)->field, (uint64_t)(v), memory_order_relaxed)
#define RSTAT_ADD(st, field, v) RSTAT_SET(st, field, RSTAT_GET(st, field) + (uint64_t)(v))
#define RSTAT_SUB(st, field, v) RSTAT_SET(st, field, RSTAT_GET(st, field) - (uint64_t)(v))

enum rrole { RROLE_VISITOR = 1, RROLE_AGENT = 2 };
enum rconsent { RCONSENT_NONE = 0, RCONSENT_GRANTED, RCONSENT_DENIED, RCONSENT_REVOKED };

struct rcore;
struct rsession;
struct rcluster;
struct rcsession;

/* A message with room for the WebSocket header before it; shared by reference between the
 * history and every connection's queue, so fan-out never copies the payload. */
struct rframe {
    struct relay_stats *stats; /* memory_bytes is counted on it */
    int refs;
    int binary;
    uint8_t kind;
    uint64_t seq;
    size_t len, cap;
    unsigned char buf[]; /* RELAY_PRE bytes of headroom, then len bytes of message */
};

struct rconn {
    struct rcore *core;
    void *wsi; /* the I/O layer's handle (struct lws *), opaque here */
    int fd;    /* its socket, -1 before the upgrade */
    struct rsession *s;
    enum rrole role;
    struct token_claims claims;
    int has_resume;
    uint64_t resume;
    int established;
    int fenced;            /* replaced by a newer visitor: its input is ignored */
    int close_code;        /* nonzero: close with it at the next writeable */
    int close_after_flush; /* send what is queued first (a final message), then close */
    int close_sent;        /* lws is doing the closing handshake: hands off */
    int waiting_snapshot;  /* agent joined without a usable page: events wait for a snapshot */
    int has_consent;       /* agent: the visitor decided for this connection's agent id */
    /* Clustering (core/relay/relay_cluster.h): an id unique on this node, the requests in
     * flight that hold this connection (it is freed when the last one is answered), and the
     * state of its admission after the upgrade. */
    uint64_t id;
    int async_refs;
    int gone;            /* the I/O layer let go of it: only the requests in flight still hold it */
    int admitting;       /* upgraded, reads paused, waiting for the cluster's answers */
    unsigned paused;     /* enum rpause bits: why its reads are off (rcore_pause) */
    struct rconn *wnext; /* the session's connections waiting for it to follow the cluster */
    void *peers;         /* visitor: the agents the cluster listed (json_t *), for its hello */
    char *member;        /* agent: its entry in the cluster's agents of the session */
    enum rconsent consent;
    char close_reason[124];
    struct rframe **q; /* send queue: a ring of qcap references, qlen of them from qhead */
    unsigned qhead, qlen, qcap;
    size_t qbytes;
    struct rframe *rx; /* message being received */
    int rx_binary;
    int rx_too_big;
    uint64_t last_acked;     /* visitor: the have we last acked */
    int ack_pending;         /* visitor: an ack of `have` should go out at the next writeable */
    int ack_timer;           /* visitor: a delayed wake for that ack is armed */
    unsigned unacked_frames; /* visitor: frames received since the last ack */
    size_t unacked_bytes;
    double slow_reset_at;      /* agent: last time it was moved ahead */
    double ctl_tat;            /* GCRA state: an agent's control, the visitor's asset answers */
    struct rconn *next, *prev; /* session's agent list */
};

struct rsession {
    struct rcore *core;
    char id[48];
    char tenant[48];
    struct token_limits lim;
    int remote_control;    /* session permission: 0 off, 1 ask */
    uint64_t have;         /* every frame up to have is accepted */
    uint64_t want_from;    /* visitor was told to resend from here (0: not waiting) */
    uint64_t snapshot_seq; /* first frame of the history (0: no snapshot yet) */
    struct rframe **hist;
    size_t hist_n, hist_cap, hist_bytes;
    int hist_incomplete, snapshot_requested;
    double frame_tat, byte_tat; /* GCRA state of the visitor's frame and byte budgets */
    struct rconn *visitor;
    struct rconn *agents;
    int n_agents;
    double idle_since;         /* when the last connection left (0: someone is connected) */
    double paused_at;          /* the visitor's reads are paused since (0: not paused) */
    enum rconsent consent_all; /* the visitor's decision for every agent (agent_id omitted) */
    struct rsession *hnext;    /* hash chain */
    /* Frames: `have` is every frame applied; `sent` the last one accepted from the visitor (the
     * same on one node; ahead of have while appends to Redis are in flight). */
    uint64_t sent;
    struct rcsession *cl; /* clustering state (core/relay/relay_cluster.c), NULL on one node */
};

/* Lifecycle events for the database side. */
enum relay_event_type {
    REV_VISITOR_CONNECTED,
    REV_VISITOR_DISCONNECTED,
    REV_AGENT_JOINED,
    REV_AGENT_LEFT,
    REV_CONTROL_REQUESTED,
    REV_CONTROL_GRANTED,
    REV_CONTROL_DENIED,
    REV_CONTROL_REVOKED,
    REV_SESSION_IDLE,
};

/* ---- the seams ---- */

struct relay_io {
    void *ctx;
    void (*wake)(void *ctx, struct rconn *c);                 /* a writeable callback soon */
    void (*wake_in)(void *ctx, struct rconn *c, unsigned ms); /* one in ms (one timer per c) */
    void (*pause)(void *ctx, struct rconn *c, int pause);     /* stop or restart reading c */
};

struct relay_clock {
    void *ctx;
    double (*monotonic)(void *ctx); /* seconds: rates, idle times, pauses */
    double (*wall)(void *ctx);      /* seconds since the epoch: token iat/nbf/exp */
};

struct relay_events {
    void *ctx;
    /* Takes copies of the strings; never blocks the caller. */
    void (*post)(void *ctx, enum relay_event_type type, const char *session_id,
                 const char *tenant_id, const char *agent_id, const char *agent_name);
};

struct relay_ended_set {
    void *ctx;
    /* Records an ended session: 0, or -1 when it could not (the set then answers -1 below for
     * what it does not hold, so admission fails closed). */
    int (*add)(void *ctx, const char *session_id);
    /* 1 ended, 0 not ended, -1 unknown (the set lost an entry: treat as ended). */
    int (*contains)(void *ctx, const char *session_id);
};

struct relay_shared {
    void *ctx;
    int (*tenant_sessions)(void *ctx, const char *tenant_id); /* live sessions of the tenant */
    int (*session_agents)(void *ctx, const char *session_id); /* its agents, -1: no session */
    /* Takes one token of key's budget (GCRA); 1 if allowed, else 0 with *retry_after seconds. */
    int (*take)(void *ctx, const char *key, double rate, int burst, double now,
                double *retry_after);
};

/* Sessions that span nodes (core/relay/relay_cluster.c, with --redis-url; docs/cluster.md). The
 * session layer calls it only for a session whose `cl` is set, which happens only in a cluster;
 * each function finds what it needs through the session or connection it is given. */
#define RSPAN_SEQ_LIMIT (1ULL << 53) /* seqs travel through Redis's Lua numbers */
struct relay_span {
    void (*append)(struct rconn *c, struct rframe *f); /* an accepted frame (takes a reference) */
    void (*attached)(struct rconn *c);                 /* after its hello */
    void (*detached)(struct rsession *s, struct rconn *c);
    int (*visitor_elsewhere)(const struct rsession *s);       /* connected on another node */
    void (*to_visitor)(struct rsession *s, const char *text); /* on its node */
    void (*to_agents)(struct rsession *s, const char *text);  /* on the other nodes */
    void (*consent_all)(struct rsession *s, const char *state);
    void (*idle)(struct rsession *s); /* nobody here for idle_seconds: anybody anywhere? */
    void (*session_end)(struct rsession *s);
    void (*session_free)(struct rsession *s);
};

struct rcore {
    const struct relay_config *cfg;
    struct relay_stats stats;
    struct relay_io io;
    struct relay_clock clock;
    struct relay_events events;
    struct relay_ended_set ended;
    struct relay_shared shared;
    struct relay_span span;     /* set with cluster (relay.c) */
    struct rcluster *cluster;   /* NULL: one node (core/relay/relay_cluster.h) */
    struct rsession **sessions; /* RSESSION_BUCKETS chains */
    struct rtenant **tenants;   /* RTENANT_BUCKETS chains: live sessions per tenant */
    double last_memory_check;   /* monotonic: the last pass that asked for snapshots */
};

/* Inline wrappers so the session logic reads as before and every call goes through a seam. */
static inline void rcore_wake(struct rconn *c)
{
    c->core->io.wake(c->core->io.ctx, c);
}
static inline void rcore_wake_in(struct rconn *c, unsigned ms)
{
    c->core->io.wake_in(c->core->io.ctx, c, ms);
}
/* Why a connection's reads are off: each reason is set and cleared on its own, and the reads are
 * off while any is set. */
enum rpause {
    RPAUSE_AGENTS = 1,  /* every agent of the session is behind (core/relay/relay_stream.c) */
    RPAUSE_ADMIT = 2,   /* waiting for the cluster's admission (core/relay/relay_cluster.c) */
    RPAUSE_CLUSTER = 4, /* the appends waiting to go to Redis are too many (relay_cluster.c) */
    RPAUSE_ALL = 7,
};
static inline void rcore_pause(struct rconn *c, unsigned reason, int pause)
{
    unsigned was = c->paused;
    c->paused = pause ? was | reason : was & ~reason;
    if ((was != 0) != (c->paused != 0))
        c->core->io.pause(c->core->io.ctx, c, c->paused != 0);
}
static inline double rcore_now(const struct rcore *core)
{
    return core->clock.monotonic(core->clock.ctx);
}
static inline double rcore_wall(const struct rcore *core)
{
    return core->clock.wall(core->clock.ctx);
}
static inline void rcore_post(struct rcore *core, enum relay_event_type type, const char *sid,
                              const char *tid, const char *agent_id, const char *agent_name)
{
    core->events.post(core->events.ctx, type, sid, tid, agent_id, agent_name);
}

#endif
