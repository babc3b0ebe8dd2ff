/* Shared by core/cluster/cluster*.c only (not a public header): the client's state, its two
 * connections and the subscription table. Everything here runs on the loop's thread. */
#ifndef COBROWSE_CORE_CLUSTER_CLUSTER_INTERNAL_H
#define COBROWSE_CORE_CLUSTER_CLUSTER_INTERNAL_H

#include "core/cluster/cluster.h"
#include "core/cluster/redis_url.h"

#include <ev.h>
#include <hiredis/async.h>
#include <stdatomic.h>

#define CLUSTER_ID_MAX 64 /* session and tenant ids, node ids: bytes */

enum cluster_script {
    CS_ADMIT,
    CS_APPEND,
    CS_CLAIM,
    CS_CONSENT,
    CS_END,
    CS_IDLE,
    CS_LEFT,
    CS_SYNC,
    CS_TOUCH,
    CS_COUNT
};

/* One of the two connections. `ac` is NULL while disconnected (the retry timer runs then). */
struct cconn {
    struct cluster *cl;
    const char *name; /* "command" or "subscribe", for logs */
    int is_sub;
    redisAsyncContext *ac;
    int ready;          /* handshake done (AUTH, SELECT, scripts or subscriptions) */
    int handshake_left; /* handshake replies still awaited */
    int next_script;    /* command connection: the SCRIPT LOAD reply expected next */
    double started;     /* ev_now when the connection was opened */
    double ping_sent;   /* command: ev_time of the PUBLISH in flight, 0 if none */
    double last_seen;   /* subscribe: ev_now of the last message received (any channel) */
    double last_reply;  /* command: ev_time of the last reply of any request */
    int backoff_ms;
    ev_timer retry;
};

struct cluster_waiter {
    cluster_done_fn fn;
    void *arg;
    struct cluster_waiter *next;
};

/* SUBSCRIBE and UNSUBSCRIBE are never both in flight for one channel, so the replies need no
 * counting here (hiredis 0.14.0 even dropped a channel's callback at an UNSUBSCRIBE reply when a
 * SUBSCRIBE followed it; 0.14.1 counts them). */
enum sub_state { SUB_IDLE, SUB_SUBSCRIBING, SUB_SUBSCRIBED, SUB_UNSUBSCRIBING };

struct cluster_sub {
    struct cluster_sub *next;
    enum sub_state state;
    int want;      /* the caller subscribed and did not unsubscribe since */
    int restoring; /* its SUBSCRIBE is part of the subscribe connection's handshake */
    struct cluster_waiter *waiters;
    char sid[CLUSTER_ID_MAX + 1];
};

struct cluster {
    struct ev_loop *loop;
    struct cluster_hooks hooks;
    struct redis_url url;
    char redacted[512];
    char address[64]; /* the host's address, looked up once by cluster_new (TCP only) */
    char node[CLUSTER_ID_MAX + 1];
    char ping_channel[CLUSTER_ID_MAX + 48];
    long long key_ttl_ms;
    struct cconn cmd, sub;
    ev_timer tick;
    double last_tick; /* ev_time of the previous tick: a late one means the loop stalled */
    char *script_text[CS_COUNT]; /* common.lua + the script */
    char sha[CS_COUNT][41];
    int reported_up; /* the last value given to hooks.state */
    int freeing;
    struct cluster_sub **buckets;
    size_t n_buckets, n_subs;
    atomic_int up;
    atomic_llong rtt_us;
    atomic_ullong requests, errors, down_answers, reconnects, messages_in, subscriptions;
};

enum creq_kind { RQ_ADMIT, RQ_CLAIM, RQ_APPEND, RQ_SYNC, RQ_IDLE, RQ_DONE };
union cluster_fn {
    cluster_admit_fn admit;
    cluster_claim_fn claim;
    cluster_append_fn append;
    cluster_sync_fn sync;
    cluster_idle_fn idle;
    cluster_done_fn done;
};

void cluster_count(atomic_ullong *c);
/* Sends one request on the command connection: EVALSHA of `script` with argv's first numkeys
 * as keys, or the plain command argv when script < 0. Copies argv. The callback runs exactly
 * once: inside this call when down, else from the reply (cluster_answer). */
void cluster_call(struct cluster *cl, int script, enum creq_kind kind, union cluster_fn fn,
                  void *arg, int numkeys, int argc, const char *const *argv, const size_t *lens);
/* cluster_ops.c: calls fn with the status, parsing r when status is CLUSTER_OK (r NULL
 * otherwise); a reply of the wrong shape becomes CLUSTER_ERROR. Returns the status given. */
int cluster_answer(enum creq_kind kind, union cluster_fn fn, void *arg, int status,
                   const redisReply *r);
/* The subscribe connection: sends SUBSCRIBE or UNSUBSCRIBE for one session's channel. 0 or -1. */
int cluster_sub_send(struct cluster *cl, const char *verb, const char *sid);

/* cluster_subs.c: the table of channels. */
void subs_subscribe(struct cluster *cl, const char *sid, cluster_done_fn fn, void *arg);
void subs_unsubscribe(struct cluster *cl, const char *sid);
/* Redis confirmed a SUBSCRIBE; 1 when it was one of the handshake's. */
int subs_on_subscribe(struct cluster *cl, const char *sid);
void subs_on_unsubscribe(struct cluster *cl, const char *sid);
void subs_on_message(struct cluster *cl, const char *sid, const unsigned char *data, size_t len);
/* The subscribe connection is gone: waiters answered CLUSTER_DOWN and their channels forgotten;
 * confirmed channels kept for subs_restore. */
void subs_lost(struct cluster *cl);
/* Sends SUBSCRIBE for every kept channel; the number sent, or -1. */
int subs_restore(struct cluster *cl);
/* cluster_free: every waiter answered CLUSTER_DOWN, the table freed. */
void subs_free(struct cluster *cl);

#endif
