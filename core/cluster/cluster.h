/* The relay's link to the cluster's Redis (docs/cluster.md): an asynchronous client (hiredis
 * 0.14) on the relay's own libev loop, the atomic steps of the cluster as Lua scripts (one
 * EVALSHA each; reloaded after NOSCRIPT or a restart), and one Pub/Sub channel per session.
 *
 * Two connections: one for commands (scripts, PUBLISH), one for SUBSCRIBE. Both reconnect on
 * their own (backoff 100 ms doubling to 2 s); the node is "up" when both are connected and the
 * scripts are loaded. After a reconnect every channel is subscribed again before state(up=1).
 *
 * Every request takes a callback and an `arg` that is passed back unchanged. The callback is
 * called exactly once, on the loop's thread: with status CLUSTER_OK and the reply, or with
 * CLUSTER_DOWN (not connected, connection lost before the reply, or cluster_free) or
 * CLUSTER_ERROR (Redis answered an error; logged here). So `arg` may be a record the callback
 * frees. Pointers in a reply are valid only during the callback. A request made while down is
 * answered CLUSTER_DOWN at once, inside the call; one with a bad id (session and tenant ids:
 * 1-64 bytes, no braces or spaces) CLUSTER_ERROR at once. cluster_free must not be called from
 * inside one of these callbacks or hooks.
 *
 * Keys (`S` a session id, `T` a tenant id; docs/cluster.md lists what each holds):
 *   cb:{S}:meta  cb:{S}:h  cb:{S}:agents  cb:{S}:m (the channel)  cb:t:{T}:live  cb:t:{T}:new
 *
 * Threading: everything, from cluster_new to cluster_free, on the thread that runs `loop` (the
 * relay's service thread; cluster_new may run before that thread starts, on the thread that
 * then starts it). Owns its connections, its subscriptions and the requests in flight.
 */
#ifndef COBROWSE_CORE_CLUSTER_CLUSTER_H
#define COBROWSE_CORE_CLUSTER_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct cluster;

enum cluster_status { CLUSTER_OK = 0, CLUSTER_DOWN = -1, CLUSTER_ERROR = -2 };

struct cluster_config {
    const char *url;     /* redis:// or unix:// (core/cluster/redis_url.h) */
    const char *node_id; /* this node's name in the cluster: [A-Za-z0-9._:-]{1,64} */
    int key_ttl_seconds; /* a session's keys live this long after their last touch (> 0) */
};

struct cluster_hooks {
    void *ctx;
    /* Both connections are up and the scripts loaded (1), or one of them was lost (0). Called
     * on every change, never twice in a row with the same value. */
    void (*state)(void *ctx, int up);
    /* A message published on the channel of session `sid` (see "Messages" below). */
    void (*message)(void *ctx, const char *sid, const unsigned char *data, size_t len);
};

/* Starts connecting (it does not wait). NULL on a bad URL or node id (logged) or out of memory.
 */
struct cluster *cluster_new(struct ev_loop *loop, const struct cluster_config *cfg,
                            struct cluster_hooks hooks);
/* Answers every request in flight with CLUSTER_DOWN, then closes and frees. NULL is fine. */
void cluster_free(struct cluster *cl);
int cluster_is_up(const struct cluster *cl);
/* Round trip of the last PING (the client sends one a second): milliseconds, -1 if none. */
double cluster_rtt_ms(const struct cluster *cl);

/* ---- admission: cb:t:{T}:live, cb:t:{T}:new, cb:{S}:agents ----
 * The time is Redis's (TIME), so the nodes' clocks never disagree. Steps, atomically:
 *  1. Drop expired members of live.
 *  2. If S is not in live and !resume: refuse "session_limit" (retry_ms 30000) when
 *     concurrent_sessions > 0 and ZCARD live >= it; then GCRA on `new` at sessions_per_minute
 *     (interval 60000/spm ms, burst max(1, floor(spm/60))): refuse "rate_limited" with
 *     retry_ms = how long until it would pass. A resume, or a session already in live, skips
 *     both (the priority lane).
 *  3. For an agent: drop expired members of agents; refuse "agent_limit" (retry_ms 0) when
 *     agents_per_session > 0, `member` is not in it and ZCARD >= agents_per_session; else
 *     ZADD agents (now + presence_ttl) member.
 *  4. ZADD live (now + presence_ttl) S. PEXPIRE on what it wrote (key_ttl).
 * Limits <= 0 mean none. Nothing is written unless the connection is admitted (a refused agent
 * spends no new-session budget). */
struct cluster_admit {
    const char *tenant, *session;
    int agent;          /* 1 agent, 0 visitor */
    int resume;         /* the client asked to resume: tenant budgets skipped */
    const char *member; /* agent: "<node>/<conn id> <agent json>" (unique per connection) */
    int concurrent_sessions, sessions_per_minute, agents_per_session;
    int presence_ttl_ms; /* how long a member counts without a touch (the nodes touch every 10 s) */
};
struct cluster_admit_reply {
    const char *refused; /* NULL: admitted; else "session_limit", "rate_limited", "agent_limit" */
    int retry_ms;
};
typedef void (*cluster_admit_fn)(void *arg, int status, const struct cluster_admit_reply *r);
void cluster_admit(struct cluster *cl, const struct cluster_admit *req, cluster_admit_fn fn,
                   void *arg);

/* ---- the visitor: cb:{S}:meta ----
 * Claims the session's visitor for this node: if meta does not exist it is created with
 * epoch = `epoch` (the caller's random 32 hex digits), last = `have`, snap = 0; if it does,
 * last = max(last, have) (frames this node applied while Redis was down: the followers see the
 * hole and wait for the next page). Then gen is incremented, vnode = this node, vexp = now +
 * presence_ttl, and the channel gets the message C<node>
 * {"t":"visitor","state":"connected","gen":<gen>} The reply carries the new gen, meta's last, snap
 * and epoch, and the members of cb:{S}:agents that have not expired (each "<node>/<conn> <agent
 * json>"). */
struct cluster_claim_reply {
    uint64_t gen, last, snap;
    char epoch[33];
    size_t n_agents;
    const char *const *agents; /* n_agents NUL-terminated members */
};
typedef void (*cluster_claim_fn)(void *arg, int status, const struct cluster_claim_reply *r);
void cluster_claim(struct cluster *cl, const char *session, uint64_t have, const char *epoch,
                   int presence_ttl_ms, cluster_claim_fn fn, void *arg);

/* ---- a frame of the visitor: cb:{S}:meta, cb:{S}:h, the channel ----
 * Atomically: CLUSTER_APPEND_LOST when meta does not exist; FENCED when meta.gen != gen;
 * DUPLICATE when seq <= last; GAP when seq > last + 1 and it is not a snapshot. Otherwise XADD
 * cb:{S}:h with id 0-<seq> and field f = the frame; for a snapshot XTRIM MINID 0-<seq> and
 * snap = seq; last = seq; PUBLISH "F" followed by the frame's bytes. *last in the reply is meta's
 * last after the step (0 when lost). Seqs must stay below 2^53 (Lua numbers). */
enum cluster_append_result {
    CLUSTER_APPEND_OK = 0,
    CLUSTER_APPEND_DUPLICATE,
    CLUSTER_APPEND_GAP,
    CLUSTER_APPEND_FENCED,
    CLUSTER_APPEND_LOST,
};
typedef void (*cluster_append_fn)(void *arg, int status, enum cluster_append_result result,
                                  uint64_t last);
void cluster_append(struct cluster *cl, const char *session, uint64_t gen, uint64_t seq,
                    int snapshot, const unsigned char *frame, size_t len, cluster_append_fn fn,
                    void *arg);

/* ---- the history, for a node that starts or resumes following a session ----
 * Reads meta and the frames of cb:{S}:h from seq `after` + 1 on, or from snap when after + 1 is
 * below snap (the history starts at the latest snapshot); after = 0 reads all of it. exists = 0
 * when meta does not exist (nothing else is set then). visitor = 1 when vexp is in the future. */
struct cluster_sync_reply {
    int exists;
    char epoch[33];
    uint64_t gen, last, snap;
    int visitor;
    char consent[16]; /* meta.consent (the visitor's decision for every agent), "" if none */
    size_t n_frames;
    const unsigned char *const *frames; /* each a whole frame, 16-byte header first */
    const size_t *frame_lens;
};
typedef void (*cluster_sync_fn)(void *arg, int status, const struct cluster_sync_reply *r);
void cluster_sync(struct cluster *cl, const char *session, uint64_t after, cluster_sync_fn fn,
                  void *arg);

/* ---- presence ----
 * cluster_touch: once every 10 s for each session this node serves (the caller batches nothing;
 * the client pipelines): ZADD live (now + presence_ttl) S; ZADD agents (now + presence_ttl) for
 * each member given; when visitor_gen > 0 and meta.gen == visitor_gen, vexp = now + presence_ttl;
 * PEXPIRE every key of S and live to key_ttl. No reply (fn may be NULL).
 * cluster_left: a connection left: for an agent ZREM agents member; for the visitor (member
 * NULL), vexp = 0 if meta.gen == visitor_gen; in both cases meta.left = now.
 * cluster_idle: 1 when nobody is present (no unexpired agent, vexp past) and meta.left is at
 * least idle_ms ago (or meta does not exist); else 0 and *wait_ms how long before asking again
 * makes sense (at least 1000). */
typedef void (*cluster_done_fn)(void *arg, int status);
void cluster_touch(struct cluster *cl, const char *tenant, const char *session,
                   uint64_t visitor_gen, const char *const *members, size_t n_members,
                   int presence_ttl_ms, cluster_done_fn fn, void *arg);
void cluster_left(struct cluster *cl, const char *session, const char *member, uint64_t visitor_gen,
                  cluster_done_fn fn, void *arg);
typedef void (*cluster_idle_fn)(void *arg, int status, int idle, int wait_ms);
void cluster_idle(struct cluster *cl, const char *session, int idle_ms, cluster_idle_fn fn,
                  void *arg);

/* The visitor's decision for every agent (granted, denied, revoked, none): meta.consent. */
void cluster_consent(struct cluster *cl, const char *session, const char *state, cluster_done_fn fn,
                     void *arg);

/* A session ended: DEL its keys, ZREM live S. Idempotent (every node calls it). */
void cluster_end(struct cluster *cl, const char *tenant, const char *session, cluster_done_fn fn,
                 void *arg);

/* ---- the session's channel, cb:{S}:m ----
 * Messages (the first byte says what; the client passes them through unparsed):
 *   F<frame>               a frame appended by cluster_append (published by the script)
 *   C<node> <json>         session state: the visitor (connected with its gen, disconnected),
 *                          agents joining and leaving
 *   U<node> <json>         for the visitor (an agent's control message, rebuilt by its node)
 *   D<node> <json>         for the agents (the visitor's consent and asset answers)
 * cluster_publish sends one; fn may be NULL. */
void cluster_publish(struct cluster *cl, const char *session, const unsigned char *data, size_t len,
                     cluster_done_fn fn, void *arg);
/* Subscribes to the session's channel; fn is called once Redis confirmed (status OK) or with
 * CLUSTER_DOWN. Messages may arrive only after that. Subscribing twice is a no-op answered OK.
 * The subscription is kept across reconnects until cluster_unsubscribe; one answered
 * CLUSTER_DOWN is not kept. cluster_unsubscribe answers a pending subscribe CLUSTER_DOWN. */
void cluster_subscribe(struct cluster *cl, const char *session, cluster_done_fn fn, void *arg);
void cluster_unsubscribe(struct cluster *cl, const char *session);

/* Bytes of commands not yet written to Redis (hiredis keeps them in one buffer, which it shifts
 * after every partial write: the relay keeps this small by pausing visitors, relay_cluster.c). */
size_t cluster_backlog(const struct cluster *cl);

/* ---- counters for /metrics (relay thread writes, any thread reads: relaxed atomics) ---- */
struct cluster_stats {
    uint64_t requests, errors, down_answers, reconnects, messages_in, subscriptions;
};
void cluster_stats(const struct cluster *cl, struct cluster_stats *out);

#endif
