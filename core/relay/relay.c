/* The relay's I/O layer over libwebsockets: the service thread, message assembly, batched
 * writes, closing, drain. Admission is core/relay/relay_admit.c, the session logic
 * core/relay/relay_session.c and core/relay/relay_control.c, ended sessions
 * core/relay/relay_ended.c. */
#include "core/relay/relay.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/relay/relay_state.h"
#include "core/base/timeutil.h"

_Static_assert(RELAY_PRE >= LWS_PRE, "RELAY_PRE must leave room for the WebSocket header");

#define RELAY_IOV         256               /* frames per sendmsg() */
#define RELAY_FLUSH_BYTES (2 * 1024 * 1024) /* the most one writable callback sends */
#define RELAY_TX_PACKET   (256 * 1024)      /* the most lws itself writes per send() */

const struct relay_config *relay_cfg;
static struct lws_context *ctx;
static struct ev_loop *evloop; /* the relay's epoll loop (libev), NULL if lws polls itself */
static pthread_t thread;
static volatile int stopping, draining, drain_requested, drain_started;

int relay_is_draining(void)
{
    return draining;
}
static lws_sorted_usec_list_t tick_sul;

/* ---- helpers for the session layer ---- */

void relay_io_cancel(void)
{
    if (ctx)
        lws_cancel_service(ctx);
}

void relay_io_wake(struct rconn *c)
{
    if (c->wsi && c->established)
        lws_callback_on_writable((struct lws *)c->wsi);
}

void relay_io_wake_in(struct rconn *c, unsigned ms)
{
    if (c->wsi && c->established)
        lws_set_timer_usecs((struct lws *)c->wsi, (lws_usec_t)ms * 1000);
}

void relay_io_pause(struct rconn *c, int pause)
{
    if (c->wsi && c->established)
        lws_rx_flow_control((struct lws *)c->wsi, pause ? 0 : 1);
}

double relay_io_wall(void)
{
    return time_now();
}

double relay_io_now(void)
{
    return time_monotonic();
}

/* ---- connections ---- */

static void conn_free(struct lws *wsi, struct rconn *c)
{
    rsession_detach(c);
    rconn_clear_queue(c);
    rframe_unref(c->rx);
    free(c);
    lws_set_opaque_user_data(wsi, NULL);
}

static int on_receive(struct lws *wsi, struct rconn *c, const void *in, size_t len)
{
    if (c->close_code != 0 || c->close_sent)
        return 0;
    if (lws_is_first_fragment(wsi) || c->rx == NULL) {
        rframe_unref(c->rx);
        c->rx = NULL;
        c->rx_binary = lws_frame_is_binary(wsi);
    }
    size_t limit = c->rx_binary ? relay_cfg->max_frame_bytes : RELAY_TEXT_MAX;
    /* Judge the size the frame announces before allocating anything for it. */
    size_t have = c->rx ? c->rx->len : 0;
    if (have + len + lws_remaining_packet_payload(wsi) > limit) {
        const char *why =
            c->rx_binary ? "message larger than max_frame_bytes" : "text message larger than 4 KiB";
        lws_close_reason(wsi,
                         c->rx_binary ? LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE
                                      : LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         (unsigned char *)why, strlen(why));
        return -1;
    }
    if (c->rx == NULL) {
        size_t want = len + lws_remaining_packet_payload(wsi);
        c->rx = rframe_new(want < 256 ? 256 : want, c->rx_binary);
        if (c->rx == NULL)
            return -1;
    }
    struct rframe *f = rframe_reserve(c->rx, c->rx->len + len);
    if (f == NULL)
        return -1;
    c->rx = f;
    memcpy(f->buf + RELAY_PRE + f->len, in, len);
    f->len += len;
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) != 0)
        return 0;
    c->rx = NULL;
    if (f->binary) {
        if (c->role != RROLE_VISITOR) {
            rframe_unref(f);
            const char *why = "agents send text messages only";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
                             strlen(why));
            return -1;
        }
        rsession_visitor_frame(c, f);
    } else {
        rsession_text(c, (const char *)f->buf + RELAY_PRE, f->len);
        rframe_unref(f);
    }
    return 0;
}

/* The size of a server WebSocket frame header (never masked) for a payload of len bytes. */
static size_t ws_header_len(size_t len)
{
    return len < 126 ? 2 : len < 65536 ? 4 : 10;
}

/* Writes that header into the ws_header_len(len) bytes at h. */
static void ws_header(unsigned char *h, int binary, size_t len)
{
    size_t hl = ws_header_len(len);
    h[0] = 0x80 | (binary ? 0x2 : 0x1);
    h[1] = hl == 2 ? (unsigned char)len : hl == 4 ? 126 : 127;
    for (size_t i = 2; i < hl; i++)
        h[i] = (unsigned char)((uint64_t)len >> (8 * (hl - 1 - i)));
}

static void count_out(struct rframe *f)
{
    STAT_ADD(frames_out, 1);
    STAT_ADD(bytes_out, f->len);
}

/* Hands lws the rest of a frame the kernel took only part of. lws keeps what the socket does not
 * take and sends it before anything else (its pongs and close frames included), so the stream is
 * never cut inside a frame; lws_partial_buffered() stays true until it is out. The copy gives lws
 * the LWS_PRE bytes of headroom its API asks for without touching the shared frame. */
static int write_rest(struct lws *wsi, const unsigned char *rest, size_t n)
{
    unsigned char *tmp = malloc(LWS_PRE + n);
    if (tmp == NULL)
        return -1;
    memcpy(tmp + LWS_PRE, rest, n);
    int r = lws_write(wsi, tmp + LWS_PRE, n, LWS_WRITE_HTTP);
    free(tmp);
    return r < (int)n ? -1 : 0;
}

/* Sends what is queued, up to RELAY_FLUSH_BYTES per writable callback (fairness between
 * connections), up to RELAY_IOV frames per sendmsg() and no copy in user space: each frame's
 * header goes into its own headroom, the same bytes for every connection that shares it. The
 * socket is not polled per frame (lws_send_pipe_choked() is a poll() syscall: it was 32 of them
 * per send() with 1 KiB frames); this runs when the socket is writable, a short write means it
 * is full, and then nothing more is written until the next callback. The relay listens without
 * TLS (a proxy terminates it), which is what makes writing to the socket directly correct. */
static int flush_queue(struct lws *wsi, struct rconn *c)
{
    int fd = lws_get_socket_fd(wsi);
    size_t sent = 0;
    while (c->qlen > 0 && sent < RELAY_FLUSH_BYTES && !lws_partial_buffered(wsi)) {
        struct iovec iov[RELAY_IOV];
        int n = 0;
        size_t want = 0;
        for (unsigned i = 0; i < c->qlen && n < RELAY_IOV && sent + want < RELAY_FLUSH_BYTES; i++) {
            struct rframe *f = c->q[(c->qhead + i) % c->qcap];
            size_t hl = ws_header_len(f->len);
            unsigned char *h = f->buf + RELAY_PRE - hl;
            ws_header(h, f->binary, f->len);
            iov[n].iov_base = h;
            iov[n].iov_len = hl + f->len;
            want += iov[n++].iov_len;
        }
        /* MSG_NOSIGNAL: a peer that is gone is EPIPE (and lws closes it), never SIGPIPE. */
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        size_t left = (size_t)w;
        for (int i = 0; i < n && left > 0; i++) {
            struct rframe *f = rconn_dequeue(c);
            count_out(f);
            sent += f->len;
            int r = 0;
            if (left < iov[i].iov_len)
                r = write_rest(wsi, (unsigned char *)iov[i].iov_base + left, iov[i].iov_len - left);
            left -= left < iov[i].iov_len ? left : iov[i].iov_len;
            rframe_unref(f);
            if (r != 0)
                return -1;
        }
        if ((size_t)w < want)
            break; /* the socket is full */
    }
    return 0;
}

static int on_writeable(struct lws *wsi, struct rconn *c)
{
    if (c->close_sent)
        return 0;
    if (lws_partial_buffered(wsi)) { /* lws still holds the rest of a frame: that goes first */
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->close_code != 0 && (!c->close_after_flush || c->qlen == 0)) {
        /* lws sends our close frame and waits for the peer's answer. Asking it to close a
         * second time would make it hang up at once, and with the peer still sending, the
         * kernel resets the connection before the peer reads the code. */
        c->close_sent = 1;
        lws_close_reason(wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    struct rframe *ack = rsession_take_ack(c);
    if (ack != NULL) { /* first in line: a due ack is never delayed further */
        rconn_push_front(c, ack);
        rframe_unref(ack);
    }
    if (flush_queue(wsi, c) != 0)
        return -1;
    if (c->role == RROLE_AGENT)
        rsession_agent_drained(c);
    if (c->qlen > 0 || c->close_code != 0)
        lws_callback_on_writable(wsi);
    return 0;
}

/* ---- drain and tick ---- */

static void drain_one(struct rsession *s, void *arg)
{
    (void)arg;
    char reason[64];
    uint32_t jitter = 0;
    if (s->visitor) {
        ids_random(&jitter, sizeof(jitter));
        snprintf(reason, sizeof(reason), "{\"retry_ms\":%u}", 250 + jitter % 2000);
        rconn_close(s->visitor, 1012, reason);
    }
    for (struct rconn *a = s->agents; a; a = a->next) {
        ids_random(&jitter, sizeof(jitter));
        snprintf(reason, sizeof(reason), "{\"retry_ms\":%u}", 250 + jitter % 2000);
        rconn_close(a, 1012, reason);
    }
}

static void tick(lws_sorted_usec_list_t *sul)
{
    static double last_expire;
    double now = relay_io_now();
    rsession_tick(now);
    if (now - last_expire > 60) {
        relay_ended_expire(time_now(), 0);
        last_expire = now;
    }
    lws_sul_schedule(ctx, 0, sul, tick, LWS_US_PER_SEC);
}

/* ---- the callback ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    struct rconn *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return relay_admit(wsi);
    case LWS_CALLBACK_HTTP: {
        int r = relay_refuse(wsi, 400, "bad_request",
                             "the relay speaks WebSocket only, at /v1/relay", 0);
        return r < 0 || lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        if (c == NULL)
            return -1;
        c->wsi = wsi;
        c->established = 1;
        int created;
        struct rsession *s = rsession_get(&c->claims, &created);
        if (s == NULL)
            return -1;
        rsession_attach(s, c);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        return c ? on_receive(wsi, c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? on_writeable(wsi, c) : -1;
    case LWS_CALLBACK_TIMER: /* a delayed ack is due (relay_io_wake_in) */
        if (c) {
            c->ack_timer = 0;
            relay_io_wake(c);
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c)
            rsession_detach(c);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            conn_free(wsi, c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (stopping && evloop != NULL) /* lws_service() runs ev_run() until it is broken */
            ev_break(evloop, EVBREAK_ALL);
        relay_drain_inbox();
        if (drain_requested && !drain_started) {
            drain_started = 1;
            rsession_foreach(drain_one, NULL);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"http", callback, 0, 0, 0, NULL, 0},
    /* rx_buffer_size is a per-connection buffer and also the most lws reads per recv(). Agents
     * (most connections) only send small control messages: 4 KiB keeps them cheap. Visitors
     * stream big frames: with 64 KiB a 64 KiB frame costs one recv() instead of sixteen
     * (measured in docs/benchmarks.md). Both roles may use either; the visitor SDK offers
     * cobrowse.visitor.v1. tx_packet_size is the most lws writes per send(); it defaults to
     * rx_buffer_size, which cut every write into 4 KiB sends. (Queued frames are sent by
     * flush_queue() itself; lws writes its control frames and the rest of a short write.) */
    {"cobrowse.v1", callback, 0, 4096, 0, NULL, RELAY_TX_PACKET},
    {"cobrowse.visitor.v1", callback, 0, 65536, 0, NULL, RELAY_TX_PACKET},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", line);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_json(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "libwebsockets",
             json_pack("{s:s}", "detail", msg));
}

static void *service(void *arg)
{
    (void)arg;
    while (!stopping)
        if (lws_service(ctx, 0) < 0)
            break;
    return NULL;
}

static void free_loop(void)
{
    if (evloop != NULL)
        ev_loop_destroy(evloop);
    evloop = NULL;
}

int relay_start(const struct relay_config *cfg)
{
    relay_cfg = cfg;
    if (relay_admit_init() != 0)
        return -1;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = cfg->listen_port;
    info.iface = cfg->listen_host;
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.max_http_header_data = TOKEN_MAX_LEN + 1024;
    info.pt_serv_buf_size = 65536;
    info.count_threads = 1;
    info.timeout_secs = 10;
    info.ka_time = 60;
    info.ka_probes = 3;
    info.ka_interval = 10;
    /* lws's own loop calls poll() on every connection at each turn: with 10,000 idle connections
     * held, p99 at 4,000 frames/s went from 1.5 to 10.6 ms (docs/benchmarks.md). libev (epoll)
     * costs per event instead. The loop is ours ("foreign"), so lws installs no signal watcher:
     * SIGINT and SIGTERM stay with main()'s sigwait(). */
    evloop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    void *loops[1] = {evloop};
    if (evloop != NULL) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = loops;
        ctx = lws_create_context(&info);
        if (ctx == NULL) {
            ev_loop_destroy(evloop);
            evloop = NULL;
            info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
            info.foreign_loops = NULL;
        }
    }
    if (evloop == NULL) {
        log_json(LOG_WARN, "relay without its epoll loop",
                 json_pack("{s:s}", "hint",
                           "install libwebsockets-evlib-ev (Debian); lws's poll() loop costs time "
                           "in proportion to the open connections"));
        ctx = lws_create_context(&info);
    }
    if (ctx == NULL) {
        log_json(LOG_ERROR, "relay could not listen",
                 json_pack("{s:s, s:i, s:s}", "host", cfg->listen_host, "port", cfg->listen_port,
                           "hint", "is the port free? change --relay-listen"));
        relay_admit_free();
        return -1;
    }
    if (relay_worker_start(cfg->database_url) != 0) {
        lws_context_destroy(ctx);
        ctx = NULL;
        free_loop();
        relay_admit_free();
        return -1;
    }
    lws_sul_schedule(ctx, 0, &tick_sul, tick, LWS_US_PER_SEC);
    stopping = 0;
    if (pthread_create(&thread, NULL, service, NULL) != 0)
        return -1;
    return 0;
}

void relay_drain(void)
{
    if (ctx == NULL)
        return;
    draining = 1;
    drain_requested = 1;
    lws_cancel_service(ctx);
    double deadline = time_monotonic() + relay_cfg->drain_seconds;
    while (time_monotonic() < deadline &&
           __atomic_load_n(&relay_stats.conns_visitor, __ATOMIC_RELAXED) +
                   __atomic_load_n(&relay_stats.conns_agent, __ATOMIC_RELAXED) >
               0) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void relay_stop(void)
{
    if (ctx == NULL)
        return;
    stopping = 1;
    lws_cancel_service(ctx);
    pthread_join(thread, NULL);
    relay_worker_stop();
    lws_context_destroy(ctx);
    ctx = NULL;
    free_loop();
    rsession_free_all();
    relay_drain_inbox(); /* what arrived after the thread stopped */
    relay_ended_expire(0, 1);
    relay_admit_free();
}
