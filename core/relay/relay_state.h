/* Internal to the relay (core/relay*.c): sessions, connections, frames and the logic that
 * moves frames between them. Everything here belongs to the relay's service thread; nothing is
 * locked. The I/O layer (core/relay/relay.c) provides relay_io_wake and relay_io_now.
 */
#ifndef COBROWSE_CORE_RELAY_STATE_H
#define COBROWSE_CORE_RELAY_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "core/relay/relay.h"
#include "core/base/token.h"

#define RELAY_PRE      32 /* headroom before each message for the WebSocket header (>= LWS_PRE) */
#define RELAY_TEXT_MAX 4096

/* A message with room for the WebSocket header before it; shared by reference between the
 * history and every connection's queue, so fan-out never copies the payload. */
struct rframe {
    int refs;
    int binary;
    uint8_t kind;
    uint64_t seq;
    size_t len, cap;
    unsigned char buf[]; /* RELAY_PRE bytes of headroom, then len bytes of message */
};

enum rrole { RROLE_VISITOR = 1, RROLE_AGENT = 2 };
enum rconsent { RCONSENT_NONE = 0, RCONSENT_GRANTED, RCONSENT_DENIED, RCONSENT_REVOKED };

struct rsession;

struct rconn {
    void *wsi; /* struct lws *, opaque here */
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
    double ctl_tat;            /* agent: GCRA state of its control messages */
    struct rconn *next, *prev; /* session's agent list */
};

struct rsession {
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
};

/* FNV-1a of a NUL-terminated string: the relay's hash tables key on session and tenant ids. */
static inline uint64_t relay_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Node-wide counters. The relay thread is their only writer, and any thread reads them with
 * relaxed atomic loads; a single writer needs no locked read-modify-write (a `lock add` per
 * counter was 4 % of the relay's time at 2 million frames/s), so STAT_ADD is a relaxed load and
 * store. */
struct relay_stats {
    uint64_t conns_visitor, conns_agent, sessions_live;
    uint64_t frames_in, bytes_in, frames_out, bytes_out;
    uint64_t drop_duplicate, drop_gap, drop_rate, drop_memory;
    uint64_t rej_invalid_token, rej_ended, rej_agent_limit, rej_rate, rej_session_limit,
        rej_saturated, rej_draining, rej_bad_request;
    uint64_t resumes_visitor, resumes_agent;
    uint64_t history_bytes, memory_bytes, queue_high_water;
    uint64_t slow_resets, slow_closes, control_forwarded, control_refused;
};
extern struct relay_stats relay_stats;
#define STAT_ADD(field, v)                                                                         \
    __atomic_store_n(&relay_stats.field,                                                           \
                     __atomic_load_n(&relay_stats.field, __ATOMIC_RELAXED) + (v),                  \
                     __ATOMIC_RELAXED)
#define STAT_SUB(field, v)                                                                         \
    __atomic_store_n(&relay_stats.field,                                                           \
                     __atomic_load_n(&relay_stats.field, __ATOMIC_RELAXED) - (v),                  \
                     __ATOMIC_RELAXED)
extern const struct relay_config *relay_cfg;

/* --- provided by core/relay/relay.c (the I/O layer) --- */
void relay_io_wake(struct rconn *c);             /* ask for a writeable callback */
void relay_io_pause(struct rconn *c, int pause); /* stop or restart reading from c */
void relay_io_wake_in(struct rconn *c,
                      unsigned ms); /* a writeable callback in ms (one timer per c) */
double relay_io_now(void);          /* monotonic seconds: rates, idle times */
double relay_io_wall(void);         /* seconds since the epoch: token expiry */

/* --- core/relay/relay_queue.c --- */
struct rframe *rframe_new(size_t cap, int binary);
struct rframe *rframe_text(const char *text); /* a text message */
void rframe_ref(struct rframe *f);
void rframe_unref(struct rframe *f);
/* Grows f (realloc) to hold at least need bytes; returns the new pointer or NULL. */
struct rframe *rframe_reserve(struct rframe *f, size_t need);

/* --- core/relay/relay_session.c --- */
struct rsession *rsession_find(const char *id);
/* Finds or creates the session of claims; *created tells which. NULL on out of memory. */
struct rsession *rsession_get(const struct token_claims *claims, int *created);
int rsession_count_tenant(const char *tenant);
void rsession_free_all(void);
/* Calls fn for every live session (fn may end the session). */
void rsession_foreach(void (*fn)(struct rsession *s, void *arg), void *arg);

/* --- core/relay/relay_queue.c --- */
void rconn_push(struct rconn *c, struct rframe *f);            /* queues a new reference, no wake */
void rconn_push_front(struct rconn *c, struct rframe *f);      /* first in line (acks), no wake */
static inline struct rframe *rconn_peek(const struct rconn *c) /* the next to send, or NULL */
{
    return c->qlen ? c->q[c->qhead] : NULL;
}
void rconn_enqueue(struct rconn *c, struct rframe *f); /* takes a new reference, wakes c */
void rconn_send_text(struct rconn *c, const char *json);
void rconn_close(struct rconn *c, int code, const char *reason); /* drops the queue */
/* Drops the queue, sends final_json, then closes with code. */
void rconn_finish(struct rconn *c, int code, const char *reason, const char *final_json);
void rconn_clear_queue(struct rconn *c);
struct rframe *rconn_dequeue(struct rconn *c); /* caller owns the returned reference */

/* A connection joins its session after the upgrade: sends hello, history or reset. */
void rsession_attach(struct rsession *s, struct rconn *c);
/* A connection left; the session may become idle (and is freed when ended). */
void rsession_detach(struct rconn *c);
/* A complete binary message from the visitor c (takes ownership of f). */
void rsession_visitor_frame(struct rconn *c, struct rframe *f);
/* This agent's consent state: "none", "granted", "denied" or "revoked"
 * (core/relay/relay_control.c). */
const char *rsession_consent(const struct rsession *s, const char *agent_id);
/* The ack the visitor c is due, as a text frame (a reference for the caller), or NULL when none
 * is due; called by the I/O layer at each writeable. */
struct rframe *rsession_take_ack(struct rconn *c);
/* A complete text message from c. */
void rsession_text(struct rconn *c, const char *text, size_t len);
/* Ends a session: every connection gets session_ended and close 4001; the state is freed. */
void rsession_end(struct rsession *s, const char *reason);
/* An agent's queue shrank: resume the visitor's reads if every agent has room again. */
void rsession_agent_drained(struct rconn *a);
/* Periodic work (once a second): acks, idle expiry, token expiry. */
void rsession_tick(double now);

/* Lifecycle events for the worker (core/relay/relay_worker.c); thread-safe. */
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
void relay_worker_post(enum relay_event_type type, const char *session_id, const char *tenant_id,
                       const char *agent_id, const char *agent_name);
int relay_worker_start(const char *database_url);
void relay_worker_stop(void);
/* Called by the worker (any thread): a session ended elsewhere; relay.c closes its sockets. */
void relay_notify_ended(const char *session_id, const char *reason);
/* --- core/relay/relay_admit.c (struct lws is opaque here) --- */
struct lws;
int relay_admit_init(void);
void relay_admit_free(void);
/* Decides an upgrade: 0 admits it (the connection is in the wsi's opaque user data), else what
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE must return. */
int relay_admit(struct lws *wsi);
/* Answers with status, a JSON {"code","detail"} body and Retry-After when retry_after > 0. */
int relay_refuse(struct lws *wsi, unsigned status, const char *code, const char *detail,
                 int retry_after);
int relay_is_draining(void);

/* --- core/relay/relay_ended.c --- */
/* Relay thread: 1 if the session is known to have ended. */
int relay_is_ended(const char *session_id);
void relay_mark_ended(const char *session_id);
void relay_ended_expire(double now, int all); /* forgets entries older than tokens live */
void relay_drain_inbox(void);                 /* relay thread: act on what other threads said */
void relay_io_cancel(void);                   /* any thread: wake the relay thread */

#endif
