/* Relay load generator (benchmark tool, not part of cobrowsed).
 *
 * One thread, non-blocking sockets and epoll, and its own minimal WebSocket client (RFC 6455:
 * client handshake, masked client frames, server frames with 7/16/64-bit lengths, fragmentation,
 * ping/close) so that the load generator costs as little CPU as possible: on a 2-core machine it
 * shares the cores with the server under test and PostgreSQL, and every cycle it spends is one the
 * server does not get. Drives docs/protocol.md: visitors send 16-byte-header binary frames (seq
 * from hello.next_seq, a snapshot first) and honour ack/resend/slow_down/snapshot_request from an
 * outbox; agents check that frames arrive in seq order, each once, and measure visitor-to-agent
 * latency from the CLOCK_MONOTONIC send time carried in the first 8 payload bytes.
 *
 * Prints one line on stdout: "RESULT mode=... key=value ...". Diagnostics (and WARN lines for
 * anything that contradicts docs/protocol.md) go to stderr. Usage: loadgen --help.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_AGENTS   16
#define LG_MAX_MSG      (16u << 20)  /* larger server messages are a protocol error here */
#define LG_MAX_HEADER   16384        /* handshake answer headers */
#define LG_WHIGH        (256u << 10) /* a visitor stops producing above this many unsent bytes */
#define LG_HDR          16           /* data frame header, docs/protocol.md */
#define LG_MIN_FRAME    (LG_HDR + 8) /* header + send time */
#define LG_HIST_BUCKETS (128 + 48 * 64)
#define LG_MAX_WARNINGS 20
#define LG_MAX_BACKOFF  30000 /* ms, docs/protocol.md: doubling up to 30 s */
#define LG_WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

enum lg_mode { LG_THROUGHPUT, LG_LATENCY, LG_IDLE, LG_RESUME };
/* docs/protocol.md: browsers send the token as ?access_token=, other clients may use a Bearer
 * header; the subprotocol form ("cobrowse.token.<JWT>") was dropped from the contract because
 * libwebsockets 4.1 refuses Sec-WebSocket-Protocol headers over 127 bytes, and is kept here only
 * to check servers against it. */
enum lg_token_via { LG_TOKEN_QUERY, LG_TOKEN_HEADER, LG_TOKEN_SUBPROTOCOL };
enum lg_role { LG_VISITOR, LG_AGENT };
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

struct lg_hist {
    uint64_t count[LG_HIST_BUCKETS];
    uint64_t n, max;
};

static struct {
    enum lg_mode mode;
    enum lg_token_via token_via;
    char host[256], port[16], path[512];
    const char *tokens_file;
    int sessions, agents_per_session, connections, max_pending;
    size_t size;
    double seconds, warmup, rate, timeout;
    size_t window_bytes;
    int verbose;
    int server_pid; /* to report its CPU use over the measured seconds */
} opt = {
    .mode = LG_THROUGHPUT,
    .sessions = 0,
    .agents_per_session = 1,
    .connections = 0,
    .max_pending = 512,
    .size = 1024,
    .seconds = 5,
    .warmup = 1,
    .rate = 4000,
    .timeout = 60,
    .window_bytes = 1u << 20,
};

static struct {
    int ep;
    struct sockaddr_storage addr;
    socklen_t addrlen;
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
    struct lg_hist hist;
    int warned;
    int traced[2]; /* by role; again from 0 after a mass disconnect */
    double cpu_self, cpu_server, cpu_self_pct, cpu_server_pct; /* seconds at measure start */
} g;

static int64_t lg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void lg_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* Anything that contradicts docs/protocol.md: counted, and the first few printed, so that a run
 * against a misbehaving relay says what it saw instead of only producing odd figures. */
static void lg_violation(const char *fmt, ...)
{
    g.violations++;
    if (g.warned >= LG_MAX_WARNINGS)
        return;
    g.warned++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "WARN protocol: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s\n", g.warned == LG_MAX_WARNINGS ? " (further warnings not shown)" : "");
    va_end(ap);
}

static void *lg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL)
        lg_die("out of memory (%zu bytes)", n);
    return q;
}

static uint64_t lg_rand(void)
{
    /* xorshift64*: masking keys and jitter need to be cheap, not secret (a benchmark client) */
    g.rng ^= g.rng >> 12;
    g.rng ^= g.rng << 25;
    g.rng ^= g.rng >> 27;
    return g.rng * 0x2545F4914F6CDD1DULL;
}

static void lg_put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t lg_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- latency histogram: 64 sub-buckets per power of two (under 1.6 % error) -------------- */

static int lg_hist_index(uint64_t v)
{
    if (v < 128)
        return (int)v;
    int e = 63 - __builtin_clzll(v);
    if (e > 47)
        return LG_HIST_BUCKETS - 1;
    int shift = e - 6;
    return 128 + (e - 7) * 64 + (int)((v >> shift) - 64);
}

static uint64_t lg_hist_value(int i)
{
    if (i < 128)
        return (uint64_t)i;
    int e = (i - 128) / 64 + 7, m = (i - 128) % 64 + 64, shift = e - 6;
    return ((uint64_t)m << shift) + ((1ULL << shift) >> 1); /* bucket middle */
}

static void lg_hist_add(struct lg_hist *h, uint64_t v)
{
    h->count[lg_hist_index(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static uint64_t lg_hist_pct(const struct lg_hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->n), seen = 0;
    if (want == 0)
        want = 1;
    for (int i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want)
            return lg_hist_value(i) < h->max ? lg_hist_value(i) : h->max;
    }
    return h->max;
}

/* ---- buffers and sockets --------------------------------------------------------------- */

static void lg_epoll_set(struct lg_conn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        lg_die("epoll_ctl: %s", strerror(errno));
    c->epout = out;
}

static uint8_t *lg_wreserve(struct lg_conn *c, size_t n)
{
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + n > c->wcap) {
            size_t cap = c->wcap ? c->wcap : 4096;
            while (cap < c->wlen + n)
                cap *= 2;
            c->wbuf = lg_xrealloc(c->wbuf, cap);
            c->wcap = cap;
        }
    }
    uint8_t *p = c->wbuf + c->wlen;
    c->wlen += n;
    return p;
}

static void lg_conn_lost(struct lg_conn *c, int code, const char *why);

/* Writes what the socket takes; EPOLLOUT stays registered only while something is left. */
static int lg_flush(struct lg_conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->epout)
                lg_epoll_set(c, 1);
            return 0;
        }
        lg_conn_lost(c, 1006, strerror(errno));
        return -1;
    }
    c->woff = c->wlen = 0;
    if (c->epout)
        lg_epoll_set(c, 0);
    if (c->wcap > (4u << 20)) { /* after a burst of resends: give the memory back */
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
    return 0;
}

static void lg_mask(uint8_t *p, size_t n, uint32_t key)
{
    uint64_t k = (uint64_t)key << 32 | key, w;
    uint8_t kb[4];
    memcpy(kb, &key, 4);
    size_t i = 0;
    /* 8 bytes at a time: a 64 KiB frame costs microseconds, not the server's share of CPU */
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < n; i++)
        p[i] ^= kb[i % 4];
}

/* Reserves a masked client frame of payload length n; returns where the payload goes (the caller
 * fills it, then calls lg_mask on it with *key). */
static uint8_t *lg_frame(struct lg_conn *c, int opcode, size_t n, uint32_t *key)
{
    size_t hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
    uint8_t *p = lg_wreserve(c, hl + 4 + n);
    p[0] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        p[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        p[1] = 0x80 | 126;
        p[2] = (uint8_t)(n >> 8);
        p[3] = (uint8_t)n;
    } else {
        p[1] = 0x80 | 127;
        lg_put64(p + 2, n);
    }
    *key = (uint32_t)lg_rand();
    memcpy(p + hl, key, 4);
    return p + hl + 4;
}

static void lg_send_control(struct lg_conn *c, int opcode, const uint8_t *data, size_t n)
{
    uint32_t key;
    uint8_t *p = lg_frame(c, opcode, n, &key);
    memcpy(p, data, n);
    lg_mask(p, n, key);
}

/* ---- connections ----------------------------------------------------------------------- */

static void lg_enqueue(struct lg_conn *c)
{
    c->state = LG_ST_QUEUED;
    c->qnext = NULL;
    if (g.qtail)
        g.qtail->qnext = c;
    else
        g.qhead = c;
    g.qtail = c;
}

static void lg_schedule_retry(struct lg_conn *c, int64_t delay_ms)
{
    c->state = LG_ST_WAIT;
    c->retry_at = lg_now() + delay_ms * 1000000;
    g.nwait++;
}

static void lg_close_fd(struct lg_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
    if (c->state == LG_ST_CONNECTING || c->state == LG_ST_HANDSHAKE)
        g.pending--;
    free(c->rbuf);
    free(c->wbuf);
    free(c->msg);
    c->rbuf = c->wbuf = c->msg = NULL;
    c->rlen = c->rcap = c->woff = c->wlen = c->wcap = c->mlen = c->mcap = 0;
    c->mop = 0;
    c->epout = 0;
}

static void lg_mark_closed(struct lg_conn *c)
{
    if (c->state != LG_ST_OPEN)
        return;
    g.conns_open--;
    if (c->role == LG_AGENT)
        g.agents_open--;
    else if (c->s->hello) {
        c->s->hello = 0;
        g.visitors_hello--;
    }
}

/* A connection ended without us asking. docs/protocol.md, close codes: 1000, 4001 and 4002 mean
 * stop; anything else (1012, 4008, a dropped TCP connection) means reconnect with resume. */
static void lg_conn_lost(struct lg_conn *c, int code, const char *why)
{
    lg_mark_closed(c);
    lg_close_fd(c);
    if (g.phase == LG_PH_DONE)
        return;
    if (code == 1000 || code == 4001 || code == 4002) {
        if (opt.verbose)
            fprintf(stderr, "loadgen: %s of %s closed for good: %d %s\n",
                    c->role == LG_AGENT ? "agent" : "visitor", c->s->id, code, why);
        c->state = LG_ST_DEAD;
        g.closes_final++;
        g.dead++;
        return;
    }
    if (opt.verbose)
        fprintf(stderr, "loadgen: %s of %s lost (%d %s): reconnecting\n",
                c->role == LG_AGENT ? "agent" : "visitor", c->s->id, code, why);
    g.reconnects++;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 100;
    if (c->backoff_ms > LG_MAX_BACKOFF)
        c->backoff_ms = LG_MAX_BACKOFF;
    lg_schedule_retry(c, c->backoff_ms);
}

static void lg_base64(const uint8_t *in, int n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, n);
}

static void lg_connect(struct lg_conn *c)
{
    int fd = socket(g.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        lg_die("socket: %s (raise ulimit -n)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->state = LG_ST_CONNECTING;
    g.pending++;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        lg_die("epoll_ctl: %s", strerror(errno));
    c->epout = 1;
    if (connect(fd, (struct sockaddr *)&g.addr, g.addrlen) < 0 && errno != EINPROGRESS)
        lg_conn_lost(c, 1006, strerror(errno));
}

static void lg_send_upgrade(struct lg_conn *c)
{
    uint8_t raw[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = lg_rand();
        memcpy(raw + i, &r, 8);
    }
    lg_base64(raw, 16, c->key);
    char resume[48] = "";
    if (c->upgraded) /* docs/protocol.md: a visitor's last seq sent, an agent's last received */
        snprintf(resume, sizeof(resume), "resume=%" PRIu64,
                 c->role == LG_AGENT ? c->last : c->s->send_next - 1);
    const char *tok = c->token, *q = opt.token_via == LG_TOKEN_QUERY ? tok : "";
    const char *h = opt.token_via == LG_TOKEN_HEADER ? tok : "";
    const char *sp = opt.token_via == LG_TOKEN_SUBPROTOCOL ? tok : "";
    size_t cap = strlen(tok) + strlen(opt.path) + strlen(opt.host) + 512;
    char *req = malloc(cap);
    if (req == NULL)
        lg_die("out of memory");
    int n = snprintf(
        req, cap,
        "GET %s%s%s%s%s%s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
        "Sec-WebSocket-Version: 13\r\n%s%s%s"
        "Sec-WebSocket-Protocol: %scobrowse.v1%s%s\r\n\r\n",
        opt.path, *q || *resume ? "?" : "", *q ? "access_token=" : "", q, *q && *resume ? "&" : "",
        resume, opt.host, opt.port, c->key, *h ? "Authorization: Bearer " : "", h, *h ? "\r\n" : "",
        /* visitors ask for the relay's large receive buffer (docs/protocol.md) */
        c->role == LG_AGENT ? "" : "cobrowse.visitor.v1, ", *sp ? ", cobrowse.token." : "", sp);
    memcpy(lg_wreserve(c, (size_t)n), req, (size_t)n);
    free(req);
    c->state = LG_ST_HANDSHAKE;
    lg_flush(c);
}

/* Case-insensitive header lookup in a NUL-terminated header block; copies the trimmed value. */
static int lg_header(const char *hdr, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(hdr, "\r\n"); p != NULL; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= outsz)
                len = outsz - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return 0;
        }
    }
    return -1;
}

static void lg_on_open(struct lg_conn *c);

/* Returns bytes consumed from rbuf (the header block), 0 if incomplete, -1 if the connection was
 * dropped. */
static long lg_handle_upgrade(struct lg_conn *c)
{
    uint8_t *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->rlen > LG_MAX_HEADER) {
            lg_violation("handshake answer headers over %d bytes", LG_MAX_HEADER);
            lg_conn_lost(c, 1002, "oversized handshake answer");
            return -1;
        }
        return 0;
    }
    size_t hl = (size_t)(end - c->rbuf) + 4;
    char *hdr = malloc(hl + 1);
    if (hdr == NULL)
        lg_die("out of memory");
    memcpy(hdr, c->rbuf, hl);
    hdr[hl] = '\0';
    int status = 0;
    sscanf(hdr, "HTTP/1.%*d %d", &status);
    char val[256];
    if (status == 101) {
        char want[64], cat[96];
        unsigned char sha[EVP_MAX_MD_SIZE];
        unsigned int shalen = 0;
        snprintf(cat, sizeof(cat), "%s%s", c->key, LG_WS_GUID);
        EVP_Digest(cat, strlen(cat), sha, &shalen, EVP_sha1(), NULL);
        lg_base64(sha, (int)shalen, want);
        if (lg_header(hdr, "Sec-WebSocket-Accept", val, sizeof(val)) || strcmp(val, want) != 0) {
            lg_violation("101 with a wrong Sec-WebSocket-Accept");
            free(hdr);
            lg_conn_lost(c, 1002, "bad accept");
            return -1;
        }
        if (lg_header(hdr, "Sec-WebSocket-Protocol", val, sizeof(val)) ||
            (strcmp(val, "cobrowse.v1") != 0 && strcmp(val, "cobrowse.visitor.v1") != 0))
            lg_violation("101 without subprotocol cobrowse.v1 (got \"%s\")",
                         lg_header(hdr, "Sec-WebSocket-Protocol", val, sizeof(val)) ? "" : val);
        free(hdr);
        g.pending--;
        c->state = LG_ST_OPEN;
        c->backoff_ms = 0;
        lg_on_open(c);
        return (long)hl;
    }
    /* A rejection (docs/protocol.md): retry 429 and 503 after Retry-After plus 0-100 % jitter,
     * doubling on each further rejection up to 30 s; anything else is final. */
    g.rejects++;
    int retry_s = -1;
    if (lg_header(hdr, "Retry-After", val, sizeof(val)) == 0)
        retry_s = atoi(val);
    if (opt.verbose || g.rejects <= 5)
        fprintf(stderr, "loadgen: %s of %s rejected with %d (Retry-After %d): %.*s\n",
                c->role == LG_AGENT ? "agent" : "visitor", c->s->id, status, retry_s,
                (int)(c->rlen - hl > 200 ? 200 : c->rlen - hl), (const char *)c->rbuf + hl);
    free(hdr);
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
        g.dead++;
    }
    return -1;
}

/* ---- visitors: the outbox ------------------------------------------------------------------ */

static void lg_emit(struct lg_session *s, uint64_t seq)
{
    struct lg_conn *c = s->visitor;
    size_t i = seq & (g.ring - 1), n = opt.size;
    uint32_t key;
    uint8_t *p = lg_frame(c, 2, n, &key);
    p[0] = 1;
    p[1] = s->kind[i];
    memset(p + 2, 0, 6);
    lg_put64(p + 8, seq);
    lg_put64(p + 16, (uint64_t)s->ts[i]);
    memcpy(p + 24, g.filler, n - 24);
    lg_mask(p, n, key);
}

static int lg_streaming(void)
{
    return g.phase == LG_PH_WARMUP || g.phase == LG_PH_MEASURE || g.phase == LG_PH_RESUMING;
}

/* Produces frames into the outbox (while the window allows, and in the rate modes when they are
 * due) and writes the unsent ones. In the rate modes a frame keeps its scheduled time as send
 * time even when it goes out late, so waiting for the window shows in the latency (no
 * coordinated omission). */
static void lg_pump(struct lg_session *s, int64_t now)
{
    struct lg_conn *c = s->visitor;
    int rated = opt.mode == LG_LATENCY || opt.mode == LG_RESUME;
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
        if (!lg_streaming() || s->produced - s->acked >= g.window)
            break;
        int64_t ts;
        if (rated) {
            if (now < s->next_due)
                break;
            ts = s->next_due;
            s->next_due += (int64_t)(1e9 * g.nsess / opt.rate);
        } else {
            if (!can_send)
                break;
            ts = now;
        }
        uint64_t seq = ++s->produced;
        size_t i = seq & (g.ring - 1);
        s->ts[i] = ts;
        s->kind[i] = s->need_snapshot ? 1 : 2;
        s->need_snapshot = 0;
        g.produced++;
    }
    if (c->state == LG_ST_OPEN && c->woff < c->wlen)
        lg_flush(c);
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
    if (opt.verbose && g.traced[c->role] < 5) {
        g.traced[c->role]++;
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
        if (next != have + 1)
            lg_violation("visitor hello next_seq %" PRIu64 " is not have + 1 (have %" PRIu64 ")",
                         next, have);
        if (have < s->acked)
            lg_violation("visitor hello have %" PRIu64 " below the acked %" PRIu64, have, s->acked);
        if (have > s->produced) {
            /* the relay holds frames this process never made (an earlier run): new page */
            s->acked = s->produced = next - 1;
            s->need_snapshot = 1;
            if (opt.mode == LG_RESUME || opt.mode == LG_LATENCY)
                s->next_due = now;
        } else if (have > s->acked) {
            s->acked = have;
        }
        s->send_next = have + 1; /* the outbox reaches back to acked + 1 <= have + 1 */
        if (!s->hello) {
            s->hello = 1;
            g.visitors_hello++;
        }
        if (g.phase == LG_PH_RESUMING && !s->resumed) {
            s->resumed = 1;
            g.resumed_visitors++;
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
            g.resends++;
            if (v <= s->acked) {
                lg_violation("resend from %" PRIu64 " already acked (%" PRIu64 "): snapshot", v,
                             s->acked);
                s->need_snapshot = 1;
            } else if (v < s->send_next) {
                s->send_next = v;
            }
        }
    } else if (strcmp(type, "slow_down") == 0) {
        g.slow_downs++;
        if (lg_jint(js, "from", &v) == 0 && v > s->acked && v < s->send_next)
            s->send_next = v;
        if (lg_jint(js, "retry_after_ms", &w) == 0)
            s->paused_until = now + (int64_t)w * 1000000;
        if (g.slow_downs <= 3)
            fprintf(stderr, "loadgen: slow_down for %s: %.200s\n", s->id, js);
    } else if (strcmp(type, "snapshot_request") == 0) {
        g.snapshot_requests++;
        s->need_snapshot = 1;
    } else if (strcmp(type, "agent_joined") != 0 && strcmp(type, "agent_left") != 0 &&
               strcmp(type, "control") != 0) {
        lg_violation("unknown message to a visitor: %.200s", js);
    }
    lg_pump(s, now);
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
            g.resets++;
            if (opt.verbose || g.resets <= 3)
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

static void lg_agent_reached(struct lg_conn *c)
{
    if (g.phase == LG_PH_RESUMING && !c->reached && c->last >= c->s->target) {
        c->reached = 1;
        g.reached_agents++;
    }
}

/* An agent's data frame: in seq order, each once, or after a reset (docs/protocol.md). */
static void lg_agent_binary(struct lg_conn *c, const uint8_t *m, size_t n, int64_t now)
{
    if (n < LG_HDR || m[0] != 1 || (m[1] != 1 && m[1] != 2)) {
        lg_violation("agent got a binary message that is not a v1 data frame (%zu bytes)", n);
        return;
    }
    uint64_t seq = lg_get64(m + 8);
    if (c->await_reset) {
        if (seq != c->reset_seq || m[1] != 1)
            lg_violation("after reset %" PRIu64 " the next frame is seq %" PRIu64 " kind %d",
                         c->reset_seq, seq, m[1]);
        c->await_reset = 0;
        c->last = seq;
        c->started = 1;
    } else if (!c->started) {
        uint64_t from = c->hello_from ? c->hello_from : (c->upgraded > 1 ? c->last + 1 : seq);
        if (seq > from) {
            lg_violation("agent's first frame is seq %" PRIu64 ", expected %" PRIu64, seq, from);
            g.lost += seq - from;
        }
        c->started = 1;
        c->last = seq;
    } else if (seq == c->last + 1) {
        c->last = seq;
    } else if (seq <= c->last) {
        g.dups++;
        if (g.dups <= 3)
            lg_violation("agent got seq %" PRIu64 " again (last %" PRIu64 ")", seq, c->last);
        return;
    } else {
        g.lost += seq - c->last - 1;
        lg_violation("agent handed a gap: seq %" PRIu64 " after %" PRIu64 " without reset", seq,
                     c->last);
        c->last = seq;
    }
    if (seq > c->max_seen) {
        c->max_seen = seq;
        if (g.phase == LG_PH_MEASURE || g.phase == LG_PH_RESUMING) {
            g.frames++;
            g.bytes += n;
            if (n >= LG_MIN_FRAME) {
                int64_t sent = (int64_t)lg_get64(m + 16);
                lg_hist_add(&g.hist, now > sent ? (uint64_t)(now - sent) : 0);
            }
        }
    }
    lg_agent_reached(c);
}

static void lg_on_message(struct lg_conn *c, int op, const uint8_t *m, size_t n, int64_t now)
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

/* Parses every complete server frame in rbuf[from..]; returns bytes consumed or -1 when the
 * connection was closed. */
static long lg_parse_frames(struct lg_conn *c, size_t from, int64_t now)
{
    size_t off = from;
    while (c->rlen - off >= 2) {
        uint8_t *p = c->rbuf + off;
        int fin = p[0] & 0x80, op = p[0] & 0x0f;
        size_t avail = c->rlen - off, hl = 2;
        uint64_t len = p[1] & 0x7f;
        if (p[1] & 0x80) {
            lg_violation("server sent a masked frame");
            lg_conn_lost(c, 1002, "masked server frame");
            return -1;
        }
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = lg_get64(p + 2);
            hl = 10;
        }
        if (len > LG_MAX_MSG) {
            lg_violation("server frame of %" PRIu64 " bytes", len);
            lg_conn_lost(c, 1009, "oversized frame");
            return -1;
        }
        if (avail < hl + len) {
            if (c->rcap < hl + len) { /* make room for this frame in the next read */
                c->rbuf = lg_xrealloc(c->rbuf, hl + len + 65536);
                c->rcap = hl + len + 65536;
            }
            break;
        }
        const uint8_t *data = p + hl;
        off += hl + len;
        if (op >= 8) {
            if (op == 9) {
                lg_send_control(c, 10, data, len);
                lg_flush(c);
                if (c->fd < 0)
                    return -1;
            } else if (op == 8) {
                int code = len >= 2 ? data[0] << 8 | data[1] : 1005;
                char reason[128] = "";
                if (len > 2)
                    snprintf(reason, sizeof(reason), "%.*s", (int)(len - 2), data + 2);
                uint8_t echo[2] = {(uint8_t)(code >> 8), (uint8_t)code};
                lg_send_control(c, 8, echo, len >= 2 ? 2 : 0);
                (void)send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
                lg_conn_lost(c, code, reason);
                return -1;
            }
            continue;
        }
        if (op == 0) { /* continuation */
            if (!c->mop) {
                lg_violation("continuation frame without a message");
                continue;
            }
            if (c->mlen + len > LG_MAX_MSG) {
                lg_conn_lost(c, 1009, "oversized message");
                return -1;
            }
            if (c->mlen + len > c->mcap) {
                c->mcap = (c->mlen + len) * 2;
                c->msg = lg_xrealloc(c->msg, c->mcap);
            }
            memcpy(c->msg + c->mlen, data, len);
            c->mlen += len;
            if (fin) {
                lg_on_message(c, c->mop, c->msg, c->mlen, now);
                c->mop = 0;
                c->mlen = 0;
            }
        } else if (op == 1 || op == 2) {
            if (c->mop)
                lg_violation("new message inside a fragmented one");
            if (fin) {
                lg_on_message(c, op, data, len, now);
            } else {
                if (len > c->mcap) {
                    c->mcap = len * 2 > 65536 ? len * 2 : 65536;
                    c->msg = lg_xrealloc(c->msg, c->mcap);
                }
                memcpy(c->msg, data, len);
                c->mlen = len;
                c->mop = op;
            }
        } else {
            lg_violation("unknown opcode %d", op);
        }
        if (c->fd < 0)
            return -1;
    }
    return (long)off;
}

static void lg_on_readable(struct lg_conn *c, int64_t now)
{
    if (c->rcap - c->rlen < 4096) {
        /* grows only for busy connections: 10,000 idle ones keep 4 KiB each */
        size_t cap = c->rcap ? c->rcap * 2 : 4096;
        c->rbuf = lg_xrealloc(c->rbuf, cap);
        c->rcap = cap;
    }
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (n == 0) {
        lg_conn_lost(c, 1006, "connection closed by the server");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            lg_conn_lost(c, 1006, strerror(errno));
        return;
    }
    c->rlen += (size_t)n;
    int filled = c->rlen == c->rcap;
    size_t off = 0;
    if (c->state == LG_ST_HANDSHAKE) {
        long hl = lg_handle_upgrade(c);
        if (hl <= 0)
            return;
        off = (size_t)hl;
    }
    long used = lg_parse_frames(c, off, now);
    if (used < 0)
        return;
    if ((size_t)used < c->rlen)
        memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
    c->rlen -= (size_t)used;
    if (filled && c->rcap < (256u << 10)) {
        c->rbuf = lg_xrealloc(c->rbuf, c->rcap * 2);
        c->rcap *= 2;
    }
}

static void lg_on_writable(struct lg_conn *c, int64_t now)
{
    if (c->state == LG_ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            lg_conn_lost(c, 1006, strerror(err));
            return;
        }
        lg_send_upgrade(c);
        return;
    }
    if (lg_flush(c) == 0 && c->role == LG_VISITOR && c->state == LG_ST_OPEN)
        lg_pump(c->s, now);
}

static void lg_on_open(struct lg_conn *c)
{
    c->upgraded++;
    g.conns_open++;
    if (c->role == LG_AGENT) {
        g.agents_open++;
        c->started = c->upgraded > 1 ? 1 : 0;
        c->await_reset = 0;
        c->hello = 0;
        c->hello_from = 0;
    }
}

/* ---- setup and phases ------------------------------------------------------------------------ */

static void lg_load_tokens(void)
{
    FILE *f = fopen(opt.tokens_file, "r");
    if (f == NULL)
        lg_die("cannot open %s: %s", opt.tokens_file, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int n = 0, want = opt.sessions;
    while (getline(&line, &cap, f) > 0 && (want == 0 || n < want)) {
        char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);
        if (tok == NULL || tok[0] == '#')
            continue;
        g.sess = lg_xrealloc(g.sess, sizeof(*g.sess) * (size_t)(n + 1));
        struct lg_session *s = &g.sess[n];
        memset(s, 0, sizeof(*s));
        snprintf(s->id, sizeof(s->id), "%s", tok);
        if ((tok = strtok_r(NULL, " \t\r\n", &save)) == NULL)
            lg_die("%s: line %d has no visitor token", opt.tokens_file, n + 1);
        s->vtoken = strdup(tok);
        while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && s->natokens < LG_MAX_AGENTS)
            s->atoken[s->natokens++] = strdup(tok);
        n++;
    }
    free(line);
    fclose(f);
    if (n == 0)
        lg_die("no sessions in %s", opt.tokens_file);
    if (want && n < want)
        lg_die("%s has %d sessions, %d wanted", opt.tokens_file, n, want);
    g.nsess = n;
}

static struct lg_conn *lg_new_conn(struct lg_session *s, enum lg_role role, const char *token)
{
    struct lg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        lg_die("out of memory");
    c->fd = -1;
    c->role = role;
    c->s = s;
    c->token = token;
    g.conns = lg_xrealloc(g.conns, sizeof(*g.conns) * (size_t)(g.nconns + 1));
    g.conns[g.nconns++] = c;
    return c;
}

static void lg_setup(void)
{
    lg_load_tokens();
    if (opt.mode == LG_IDLE) {
        /* N connections over the sessions: each session's visitor, then its agents */
        int per = 1 + opt.agents_per_session, need = opt.connections;
        if (need <= 0)
            lg_die("--mode idle needs --connections N");
        if ((long)per * g.nsess < need)
            lg_die("%d sessions x (1 visitor + %d agents) < %d connections", g.nsess,
                   opt.agents_per_session, need);
        for (int i = 0; i < g.nsess && g.nconns < need; i++) {
            struct lg_session *s = &g.sess[i];
            s->visitor = lg_new_conn(s, LG_VISITOR, s->vtoken);
            for (int a = 0; a < opt.agents_per_session && g.nconns < need; a++) {
                if (a >= s->natokens)
                    lg_die("session %s has %d agent tokens, %d wanted", s->id, s->natokens,
                           opt.agents_per_session);
                s->agent[s->nagents++] = lg_new_conn(s, LG_AGENT, s->atoken[a]);
            }
        }
        for (int i = 0; i < g.nconns; i++)
            lg_enqueue(g.conns[i]);
        g.nsess = 0; /* no visitor streams */
        return;
    }
    size_t nframes = opt.window_bytes / opt.size;
    g.window = nframes < 16 ? 16 : nframes;
    for (g.ring = 1; g.ring <= g.window; g.ring <<= 1)
        ;
    for (int i = 0; i < g.nsess; i++) {
        struct lg_session *s = &g.sess[i];
        if (s->natokens < opt.agents_per_session)
            lg_die("session %s has %d agent tokens, %d wanted", s->id, s->natokens,
                   opt.agents_per_session);
        s->visitor = lg_new_conn(s, LG_VISITOR, s->vtoken);
        for (int a = 0; a < opt.agents_per_session; a++)
            s->agent[s->nagents++] = lg_new_conn(s, LG_AGENT, s->atoken[a]);
        s->ts = calloc(g.ring, sizeof(*s->ts));
        s->kind = calloc(g.ring, 1);
        if (s->ts == NULL || s->kind == NULL)
            lg_die("out of memory");
        s->need_snapshot = 1;
        lg_enqueue(s->agent[0]); /* agents first: queued in session order */
        for (int a = 1; a < s->nagents; a++)
            lg_enqueue(s->agent[a]);
    }
    g.filler = malloc(opt.size);
    if (g.filler == NULL)
        lg_die("out of memory");
    /* looks like what the SDK sends (rrweb JSON), so a compressing proxy would not cheat */
    static const char pat[] = "[{\"type\":3,\"data\":{\"source\":0,\"texts\":[],\"attributes\":[],"
                              "\"removes\":[],\"adds\":[{\"parentId\":17,\"node\":{\"type\":3,"
                              "\"textContent\":\"lorem ipsum dolor sit amet\"}}]}}]";
    for (size_t i = 0; i < opt.size; i++)
        g.filler[i] = (uint8_t)pat[i % (sizeof(pat) - 1)];
}

static void lg_reset_counters(void)
{
    g.frames = g.bytes = g.produced = 0;
    memset(&g.hist, 0, sizeof(g.hist));
}

static void lg_start_connects(void)
{
    while (g.qhead && g.pending < opt.max_pending) {
        struct lg_conn *c = g.qhead;
        g.qhead = c->qnext;
        if (g.qhead == NULL)
            g.qtail = NULL;
        lg_connect(c);
    }
}

static void lg_retries(int64_t now)
{
    if (g.nwait == 0)
        return;
    for (int i = 0; i < g.nconns; i++) {
        struct lg_conn *c = g.conns[i];
        if (c->state == LG_ST_WAIT && now >= c->retry_at) {
            g.nwait--;
            lg_enqueue(c);
        }
    }
}

static void lg_enter(enum lg_phase ph, int64_t now)
{
    g.phase = ph;
    g.phase_at = now;
    if (opt.verbose)
        fprintf(stderr, "loadgen: phase %d at %.3f s\n", ph, (double)(now - g.t0) / 1e9);
}

/* Resume mode: every socket closed at once, as when a node or a network path goes away; every
 * client then reconnects with resume= (the visitor its last seq sent, an agent its last seq
 * received). Visitors keep making frames into their outbox meanwhile, as a page would. */
static void lg_mass_disconnect(int64_t now)
{
    for (int i = 0; i < g.nsess; i++) {
        struct lg_session *s = &g.sess[i];
        s->target = s->produced;
        s->resumed = 0;
    }
    for (int i = 0; i < g.nconns; i++) {
        struct lg_conn *c = g.conns[i];
        if (c->state == LG_ST_DEAD)
            continue;
        if (c->state == LG_ST_WAIT)
            g.nwait--;
        lg_mark_closed(c);
        lg_close_fd(c);
        c->backoff_ms = 0;
        c->state = LG_ST_NONE;
    }
    g.qhead = g.qtail = NULL;
    for (int i = 0; i < g.nconns; i++)
        if (g.conns[i]->state == LG_ST_NONE)
            lg_enqueue(g.conns[i]);
    g.resumed_visitors = g.reached_agents = 0;
    g.need_visitors = g.nsess;
    g.need_agents = g.nsess * opt.agents_per_session;
    lg_reset_counters();
    g.lost = g.dups = g.resets = 0;
    g.setup_rejects = g.rejects; /* rejections while resuming are what this mode measures */
    g.rejects = 0;
    g.traced[0] = g.traced[1] = 0;
    g.resume_at = now;
    lg_enter(LG_PH_RESUMING, now);
    for (int i = 0; i < g.nconns; i++)
        if (g.conns[i]->role == LG_AGENT)
            lg_agent_reached(g.conns[i]);
}

static const char *const lg_mode_name[] = {"throughput", "latency", "idle", "resume"};

/* CPU seconds (user + system) a process has used so far, from /proc/PID/stat; -1 if unknown. */
static double lg_cpu_seconds(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), pid ? "/proc/%d/stat" : "/proc/self/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The share of one core each side used while measuring: shows which side was saturated, and so
 * how large a ratio this machine could show at all. */
static void lg_cpu_mark(int end, double secs)
{
    double self = lg_cpu_seconds(0), server = opt.server_pid ? lg_cpu_seconds(opt.server_pid) : -1;
    if (!end) {
        g.cpu_self = self;
        g.cpu_server = server;
        return;
    }
    g.cpu_self_pct = self >= 0 && g.cpu_self >= 0 ? 100 * (self - g.cpu_self) / secs : -1;
    g.cpu_server_pct = server >= 0 && g.cpu_server >= 0 ? 100 * (server - g.cpu_server) / secs : -1;
}

static void lg_tick(int64_t now)
{
    double since = (double)(now - g.phase_at) / 1e9;
    int nagents = g.nsess * opt.agents_per_session;
    switch (g.phase) {
    case LG_PH_AGENTS:
        if (opt.mode == LG_IDLE) {
            if (g.conns_open == g.nconns) {
                printf("READY connections=%d seconds=%.2f\n", g.nconns, (double)(now - g.t0) / 1e9);
                fflush(stdout);
                lg_enter(LG_PH_HOLD, now);
            }
        } else if (g.agents_open == nagents) {
            for (int i = 0; i < g.nsess; i++)
                lg_enqueue(g.sess[i].visitor);
            lg_enter(LG_PH_VISITORS, now);
        }
        break;
    case LG_PH_VISITORS:
        if (g.visitors_hello == g.nsess && g.agents_open == nagents) {
            for (int i = 0; i < g.nsess; i++) /* spread the sessions' frames evenly */
                g.sess[i].next_due = now + (int64_t)(1e9 * i / opt.rate);
            lg_enter(LG_PH_WARMUP, now);
            for (int i = 0; i < g.nsess; i++)
                lg_pump(&g.sess[i], now);
        }
        break;
    case LG_PH_WARMUP:
        if (since >= opt.warmup) {
            lg_reset_counters();
            lg_cpu_mark(0, 0);
            lg_enter(LG_PH_MEASURE, now);
        }
        break;
    case LG_PH_MEASURE:
        if (since >= opt.seconds) {
            lg_cpu_mark(1, since);
            if (opt.mode == LG_RESUME)
                lg_mass_disconnect(now);
            else
                lg_enter(LG_PH_DONE, now);
        }
        break;
    case LG_PH_HOLD:
        if (since >= opt.seconds)
            lg_enter(LG_PH_DONE, now);
        break;
    case LG_PH_RESUMING:
        if ((g.resumed_visitors == g.need_visitors && g.reached_agents == g.need_agents) ||
            since >= opt.timeout)
            lg_enter(LG_PH_DONE, now);
        break;
    case LG_PH_DONE:
        break;
    }
    int connecting = g.phase == LG_PH_AGENTS || g.phase == LG_PH_VISITORS;
    int hopeless = g.dead > 0 && g.qhead == NULL && g.pending == 0 && g.nwait == 0;
    if (connecting && (hopeless || (double)(now - g.phase_at) / 1e9 > opt.timeout)) {
        fprintf(stderr,
                "loadgen: could not connect everything: %d of %d connections open, %d agents, %d "
                "visitors with hello, %d given up, %" PRIu64 " rejections\n",
                g.conns_open, g.nconns, g.agents_open, g.visitors_hello, g.dead, g.rejects);
        printf("RESULT mode=%s error=connect_failed open=%d of=%d rejects=%" PRIu64
               " violations=%" PRIu64 "\n",
               lg_mode_name[opt.mode], g.conns_open, g.nconns, g.rejects, g.violations);
        exit(1);
    }
}

static void lg_report(int64_t now)
{
    const struct lg_hist *h = &g.hist;
    printf("RESULT mode=%s", lg_mode_name[opt.mode]);
    if (opt.mode == LG_IDLE) {
        printf(" connections=%d open=%d dead=%d rejects=%" PRIu64 " reconnects=%" PRIu64, g.nconns,
               g.conns_open, g.dead, g.rejects, g.reconnects);
    } else {
        double secs = opt.mode == LG_RESUME ? (double)(now - g.resume_at) / 1e9 : opt.seconds;
        if (opt.mode == LG_RESUME) {
            /* what never arrived: frames up to each session's last one before the disconnect */
            uint64_t missing = 0;
            for (int i = 0; i < g.nconns; i++) {
                struct lg_conn *c = g.conns[i];
                if (c->role == LG_AGENT && c->last < c->s->target)
                    missing += c->s->target - c->last;
            }
            g.lost += missing;
            int complete =
                g.resumed_visitors == g.need_visitors && g.reached_agents == g.need_agents;
            printf(" sessions=%d agents=%d resume_s=%.3f complete=%d visitors_resumed=%d "
                   "agents_caught_up=%d setup_rejects=%" PRIu64,
                   g.nsess, opt.agents_per_session, secs, complete, g.resumed_visitors,
                   g.reached_agents, g.setup_rejects);
        } else {
            printf(" sessions=%d agents=%d size=%zu seconds=%.2f", g.nsess, opt.agents_per_session,
                   opt.size, secs);
        }
        printf(" frames=%" PRIu64 " frames_per_s=%.0f mb_per_s=%.2f in_frames_per_s=%.0f", g.frames,
               (double)g.frames / secs, (double)g.bytes / secs / 1e6, (double)g.produced / secs);
        printf(" p50_us=%.0f p99_us=%.0f max_us=%.0f", (double)lg_hist_pct(h, 0.50) / 1e3,
               (double)lg_hist_pct(h, 0.99) / 1e3, (double)h->max / 1e3);
        printf(" lost=%" PRIu64 " dups=%" PRIu64 " resets=%" PRIu64 " resends=%" PRIu64
               " slow_downs=%" PRIu64 " snapshot_requests=%" PRIu64 " rejects=%" PRIu64
               " reconnects=%" PRIu64,
               g.lost, g.dups, g.resets, g.resends, g.slow_downs, g.snapshot_requests, g.rejects,
               g.reconnects);
    }
    if (opt.mode == LG_THROUGHPUT || opt.mode == LG_LATENCY)
        printf(" cpu_loadgen_pct=%.0f cpu_server_pct=%.0f", g.cpu_self_pct, g.cpu_server_pct);
    printf(" closed=%" PRIu64 " violations=%" PRIu64 "\n", g.closes_final, g.violations);
    fflush(stdout);
}

static void lg_usage(FILE *f)
{
    fprintf(f, "usage: loadgen --url ws://HOST:PORT/v1/relay --tokens FILE --mode MODE [options]\n"
               "  FILE: one session a line: \"session_id visitor_token agent_token...\"\n"
               "  --mode throughput   visitors send as fast as the window allows\n"
               "  --mode latency      --rate frames/s in total, spread over the sessions\n"
               "  --mode idle         open --connections N and hold them --seconds\n"
               "  --mode resume       stream at --rate, close every socket at once, reconnect\n"
               "  --sessions N        sessions to use (default: every line of FILE)\n"
               "  --agents-per-session N (default 1)  --size BYTES frame size (default 1024)\n"
               "  --seconds S (default 5)  --warmup S (default 1)  --rate F (default 4000)\n"
               "  --window-bytes B    unacked bytes per visitor (default 1048576)\n"
               "  --max-pending N     handshakes in flight (default 512)\n"
               "  --timeout S         connect / resume deadline (default 60)  --verbose\n"
               "  --server-pid PID    report the server's CPU use while measuring\n"
               "  --token-via query|header|subprotocol  how the JWT travels (default query:\n"
               "                      ?access_token=, as browsers send it)\n");
}

static void lg_parse_args(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", 1, 0, 'u'},
        {"tokens", 1, 0, 't'},
        {"mode", 1, 0, 'm'},
        {"sessions", 1, 0, 'S'},
        {"agents-per-session", 1, 0, 'a'},
        {"size", 1, 0, 'z'},
        {"seconds", 1, 0, 's'},
        {"warmup", 1, 0, 'w'},
        {"rate", 1, 0, 'r'},
        {"connections", 1, 0, 'c'},
        {"window-bytes", 1, 0, 'W'},
        {"max-pending", 1, 0, 'p'},
        {"timeout", 1, 0, 'T'},
        {"verbose", 0, 0, 'v'},
        {"token-via", 1, 0, 'k'},
        {"server-pid", 1, 0, 'P'},
        {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *url = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'u':
            url = optarg;
            break;
        case 't':
            opt.tokens_file = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "throughput") == 0)
                opt.mode = LG_THROUGHPUT;
            else if (strcmp(optarg, "latency") == 0)
                opt.mode = LG_LATENCY;
            else if (strcmp(optarg, "idle") == 0)
                opt.mode = LG_IDLE;
            else if (strcmp(optarg, "resume") == 0)
                opt.mode = LG_RESUME;
            else
                lg_die("unknown mode %s", optarg);
            break;
        case 'S':
            opt.sessions = atoi(optarg);
            break;
        case 'a':
            opt.agents_per_session = atoi(optarg);
            break;
        case 'z':
            opt.size = strtoul(optarg, NULL, 10);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'w':
            opt.warmup = atof(optarg);
            break;
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 'c':
            opt.connections = atoi(optarg);
            break;
        case 'W':
            opt.window_bytes = strtoul(optarg, NULL, 10);
            break;
        case 'p':
            opt.max_pending = atoi(optarg);
            break;
        case 'T':
            opt.timeout = atof(optarg);
            break;
        case 'v':
            opt.verbose = 1;
            break;
        case 'P':
            opt.server_pid = atoi(optarg);
            break;
        case 'k':
            if (strcmp(optarg, "query") == 0)
                opt.token_via = LG_TOKEN_QUERY;
            else if (strcmp(optarg, "header") == 0)
                opt.token_via = LG_TOKEN_HEADER;
            else if (strcmp(optarg, "subprotocol") == 0)
                opt.token_via = LG_TOKEN_SUBPROTOCOL;
            else
                lg_die("--token-via is query, header or subprotocol");
            break;
        case 'h':
            lg_usage(stdout);
            exit(0);
        default:
            lg_usage(stderr);
            exit(2);
        }
    }
    g.phase = LG_PH_AGENTS;
    if (url == NULL || opt.tokens_file == NULL) {
        lg_usage(stderr);
        exit(2);
    }
    if (opt.size < LG_MIN_FRAME || opt.size > LG_MAX_MSG)
        lg_die("--size must be %d..%u", LG_MIN_FRAME, LG_MAX_MSG);
    if (opt.agents_per_session < 1 || opt.agents_per_session > LG_MAX_AGENTS)
        lg_die("--agents-per-session must be 1..%d", LG_MAX_AGENTS);
    if (opt.rate <= 0 || opt.seconds <= 0 || opt.max_pending < 1)
        lg_die("--rate, --seconds and --max-pending must be positive");
    if (sscanf(url, "ws://%255[^:/]:%15[0-9]%511s", opt.host, opt.port, opt.path) != 3)
        lg_die("--url must look like ws://127.0.0.1:8081/v1/relay");
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(opt.host, opt.port, &hints, &ai);
    if (rc)
        lg_die("%s: %s", opt.host, gai_strerror(rc));
    memcpy(&g.addr, ai->ai_addr, ai->ai_addrlen);
    g.addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
}

int main(int argc, char **argv)
{
    lg_parse_args(argc, argv);
    if (getrandom(&g.rng, sizeof(g.rng), 0) != sizeof(g.rng) || g.rng == 0)
        g.rng = (uint64_t)lg_now() | 1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* 10,000 connections need more than the usual 1,024 */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0)
        lg_die("epoll_create1: %s", strerror(errno));
    lg_setup();
    g.t0 = g.phase_at = lg_now();
    struct epoll_event evs[512];
    int rated = opt.mode == LG_LATENCY || opt.mode == LG_RESUME;
    int64_t next_tick = 0;
    while (g.phase != LG_PH_DONE) {
        lg_start_connects();
        /* 1 ms ticks for the rate modes' schedule; otherwise events drive everything */
        int n = epoll_wait(g.ep, evs, 512, rated && lg_streaming() ? 1 : 10);
        if (n < 0 && errno != EINTR)
            lg_die("epoll_wait: %s", strerror(errno));
        int64_t now = lg_now();
        for (int i = 0; i < n; i++) {
            struct lg_conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                lg_on_readable(c, now);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
                lg_on_writable(c, now);
        }
        if (now >= next_tick) {
            next_tick = now + 1000000;
            lg_retries(now);
            if (lg_streaming()) /* rate schedules, and the end of a slow_down pause */
                for (int i = 0; i < g.nsess; i++)
                    lg_pump(&g.sess[i], now);
            lg_tick(now);
        }
    }
    lg_report(lg_now());
    return 0;
}
