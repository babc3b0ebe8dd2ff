/* The load generator's shared state (bench/relay/loadgen.c and lg_*.c): its limits, what a
 * session and a connection are, the options, the run's state and counters, and the small helpers
 * every file uses. One thread (the epoll loop in loadgen.c) owns all of it; nothing is locked.
 * Which module owns which fields of a connection or a session: lg_ws.h, lg_conn.h, lg_session.h.
 * The options and the phases are loadgen.c's; the other modules only read them.
 */
#ifndef BENCH_RELAY_LG_H
#define BENCH_RELAY_LG_H

#include "core/base/frame.h"
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#define LG_MAX_AGENTS  16
#define LG_MAX_TARGETS 8           /* --url given several times: the nodes of a cluster */
#define LG_MAX_MSG     (16u << 20) /* larger server messages are a protocol error here */
#define LG_MIN_FRAME   (FRAME_HEADER_LEN + 8) /* header (core/base/frame.h) + send time */

enum lg_mode { LG_THROUGHPUT, LG_LATENCY, LG_IDLE, LG_RESUME };
/* docs/protocol.md: browsers send the token as ?access_token=, other clients may use a Bearer
 * header; the subprotocol form ("cobrowse.token.<JWT>") was dropped from the contract because
 * libwebsockets 4.1 refuses Sec-WebSocket-Protocol headers over 127 bytes, and is kept here only
 * to check servers against it. */
enum lg_token_via { LG_TOKEN_QUERY, LG_TOKEN_HEADER, LG_TOKEN_SUBPROTOCOL };
enum lg_role { LG_VISITOR, LG_AGENT };
/* Which --url each connection starts on when there are several (scripts/bench-cluster.sh):
 * split puts every visitor on the first and the agents on the others, round robin; spread puts
 * session i's visitor on url i mod n and its agents on the following ones. */
enum lg_layout { LG_LAYOUT_SPLIT, LG_LAYOUT_SPREAD };
enum lg_state {
    LG_ST_NONE,       /* not connected, not queued */
    LG_ST_QUEUED,     /* waiting for a free handshake slot */
    LG_ST_WAIT,       /* waiting for its retry time */
    LG_ST_CONNECTING, /* TCP connect in progress */
    LG_ST_HANDSHAKE,  /* upgrade request sent, answer not complete */
    LG_ST_OPEN,
    LG_ST_DEAD, /* given up: rejected for good or closed with a "stop" code */
};
enum lg_phase {
    LG_PH_AGENTS,   /* agents connect first so that they see every frame from seq 1 */
    LG_PH_VISITORS, /* visitors connect and wait for hello */
    LG_PH_WARMUP,
    LG_PH_MEASURE,
    LG_PH_HOLD,     /* idle: everything open, holding */
    LG_PH_RESUMING, /* resume: everything was closed at once, reconnecting */
    LG_PH_DONE,
};

struct lg_session;

/* One --url: where to connect and what to send as Host. */
struct lg_target {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char host[256], port[16];
};

struct lg_conn {
    int fd;
    enum lg_role role;
    enum lg_state state;
    struct lg_session *s;
    const char *token;
    char key[32];
    uint8_t *rbuf, *wbuf, *msg;
    size_t rlen, rcap, woff, wlen, wcap, mlen, mcap;
    int mop;      /* opcode of the fragmented message being reassembled, 0 if none */
    int epout;    /* EPOLLOUT registered */
    int upgraded; /* times it was open: reconnects carry resume= */
    int target;   /* index in lg.target: the node it connects to next */
    int64_t retry_at;
    int backoff_ms;
    struct lg_conn *qnext;
    /* agent */
    uint64_t last;     /* last seq received in order */
    uint64_t max_seen; /* highest seq ever received: counts each frame once */
    uint64_t reset_seq;
    uint64_t hello_from;
    int started, await_reset, hello, reached;
};

struct lg_session {
    char id[64];
    char *vtoken;
    char *atoken[LG_MAX_AGENTS];
    int natokens;
    struct lg_conn *visitor;
    struct lg_conn *agent[LG_MAX_AGENTS];
    int nagents;
    /* outbox: frames acked+1..produced; their send times and kinds, a ring indexed by seq */
    uint64_t acked, produced, send_next, target;
    int64_t *ts;
    uint8_t *kind;
    int need_snapshot, hello, resumed;
    int64_t paused_until, next_due;
};

struct lg_options {
    enum lg_mode mode;
    enum lg_token_via token_via;
    enum lg_layout layout;
    char path[512]; /* the same on every --url */
    const char *tokens_file;
    int sessions, agents_per_session, connections, max_pending;
    size_t size;
    double seconds, warmup, rate, timeout;
    size_t window_bytes;
    int verbose;
    int server_pid[LG_MAX_TARGETS + 1]; /* to report their CPU use over the measured seconds */
    int nserver_pids;
    /* resume mode: instead of closing every socket, kill -9 kill_pid (the node of --url number
     * kill_target) and measure until its clients are back on the other urls */
    int kill_pid, kill_target;
};
extern struct lg_options lg_opt;

struct lg_run {
    int ep;
    struct lg_target target[LG_MAX_TARGETS];
    int ntargets;
    struct lg_session *sess;
    int nsess;
    struct lg_conn **conns;
    int nconns;
    struct lg_conn *qhead, *qtail;
    int pending; /* connecting or handshaking */
    int nwait;   /* in LG_ST_WAIT */
    enum lg_phase phase;
    int64_t phase_at, t0, resume_at;
    uint64_t window; /* frames */
    size_t ring;     /* power of two > window */
    uint8_t *filler;
    uint64_t rng;
    /* readiness */
    int agents_open, visitors_hello, conns_open, dead;
    int resumed_visitors, reached_agents, need_visitors, need_agents;
    /* counters, reset when measuring starts */
    uint64_t frames, bytes, produced, resends, slow_downs, snapshot_requests, resets, dups, lost;
    uint64_t rejects, setup_rejects, reconnects, closes_final, violations;
    int warned;
    int traced[2]; /* by role; again from 0 after a mass disconnect */
};
extern struct lg_run lg;

/* --- loadgen.c --- */
void lg_die(const char *fmt, ...); /* exits with status 2 */
/* Anything that contradicts docs/protocol.md: counted, the first few printed as WARN lines. */
void lg_violation(const char *fmt, ...);
void *lg_xrealloc(void *p, size_t n); /* dies when out of memory */

static inline int64_t lg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline uint64_t lg_rand(void)
{
    /* xorshift64*: masking keys and jitter need to be cheap, not secret (a benchmark client) */
    lg.rng ^= lg.rng >> 12;
    lg.rng ^= lg.rng << 25;
    lg.rng ^= lg.rng >> 27;
    return lg.rng * 0x2545F4914F6CDD1DULL;
}

static inline void lg_put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t lg_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Visitors make frames in these phases (the rate modes' schedule runs). */
static inline int lg_streaming(void)
{
    return lg.phase == LG_PH_WARMUP || lg.phase == LG_PH_MEASURE || lg.phase == LG_PH_RESUMING;
}

#endif
