/* The relay instance (core/relay/relay.h) and its I/O layer over libwebsockets: the service
 * thread, reading the upgrade request for admission (core/relay/relay_admit.c) and answering
 * refusals, message assembly, batched writes, closing, drain, the inbox from other threads. It
 * builds the session layer (struct rcore) with the seams over lws, the system clocks, the worker
 * (core/relay/relay_worker.c), the ended set (relay_ended.c) and the node's tables
 * (relay_local.c). The session layer never calls back into this file except through those. */
#include "core/relay/relay.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <errno.h>
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/relay/relay_admit.h"
#include "core/relay/relay_ended.h"
#include "core/relay/relay_local.h"
#include "core/relay/relay_mask.h"
#include "core/relay/relay_metrics.h"
#include "core/relay/relay_session.h"
#include "core/relay/relay_worker.h"

_Static_assert(RELAY_PRE >= LWS_PRE, "RELAY_PRE must leave room for the WebSocket header");

#define RELAY_IOV         256               /* frames per sendmsg() */
#define RELAY_FLUSH_BYTES (2 * 1024 * 1024) /* the most one writable callback sends */
#define RELAY_TX_PACKET   (256 * 1024)      /* the most lws itself writes per send() */

/* An ended session reported by another thread (the worker's LISTEN), FIFO: a reload's "done"
 * marker (id "") must come after the ids of that reload. */
struct inbox_item {
    char id[48];
    char reason[64];
    struct inbox_item *next;
};

struct relay {
    struct relay_config cfg;
    struct rcore core;
    struct relay_clock clock;
    struct rended *ended;
    struct rlocal *local;
    struct rworker *worker;
    struct rmask *mask; /* unmasked client frames: the service thread's recv() watch */
    struct lws_context *ctx;
    struct ev_loop *evloop; /* the relay's epoll loop (libev), NULL if lws polls itself */
    pthread_t thread;
    int thread_started;
    atomic_int stopping, draining, drain_requested;
    int drain_started; /* relay thread */
    lws_sorted_usec_list_t tick_sul;
    double last_expire;
    pthread_mutex_t inbox_lock;
    struct inbox_item *inbox_head, *inbox_tail;
};

/* ---- the seams over libwebsockets and the system clocks ---- */

static void io_wake(void *ctx, struct rconn *c)
{
    (void)ctx;
    if (c->wsi && c->established)
        lws_callback_on_writable((struct lws *)c->wsi);
}

static void io_wake_in(void *ctx, struct rconn *c, unsigned ms)
{
    (void)ctx;
    if (c->wsi && c->established)
        lws_set_timer_usecs((struct lws *)c->wsi, (lws_usec_t)ms * 1000);
}

static void io_pause(void *ctx, struct rconn *c, int pause)
{
    (void)ctx;
    if (c->wsi && c->established)
        lws_rx_flow_control((struct lws *)c->wsi, pause ? 0 : 1);
}

static double clock_monotonic(void *ctx)
{
    (void)ctx;
    return time_monotonic();
}

static double clock_wall(void *ctx)
{
    (void)ctx;
    return time_now();
}

/* Events after the worker has stopped (relay_free of a relay that never started, or stopped). */
static void drop_event(void *ctx, enum relay_event_type type, const char *sid, const char *tid,
                       const char *agent_id, const char *agent_name)
{
    (void)ctx, (void)type, (void)sid, (void)tid, (void)agent_id, (void)agent_name;
}

/* ---- the inbox: other threads to the relay thread ---- */

static int inbox_put(void *ctx, const char *session_id, const char *reason)
{
    struct relay *r = ctx;
    struct inbox_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return -1; /* the worker retries: an ended session is never dropped */
    snprintf(it->id, sizeof(it->id), "%s", session_id);
    snprintf(it->reason, sizeof(it->reason), "%s", reason ? reason : "ended");
    pthread_mutex_lock(&r->inbox_lock);
    if (r->inbox_tail)
        r->inbox_tail->next = it;
    else
        r->inbox_head = it;
    r->inbox_tail = it;
    pthread_mutex_unlock(&r->inbox_lock);
    if (r->ctx)
        lws_cancel_service(r->ctx);
    return 0;
}

static void inbox_reloaded(void *ctx)
{
    while (inbox_put(ctx, "", "reloaded") != 0) /* rare: out of memory; the worker thread waits */
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
}

/* Relay thread (or the main thread before it starts): acts on what other threads said. */
static void inbox_drain(struct relay *r)
{
    pthread_mutex_lock(&r->inbox_lock);
    struct inbox_item *list = r->inbox_head;
    r->inbox_head = r->inbox_tail = NULL;
    pthread_mutex_unlock(&r->inbox_lock);
    while (list) {
        struct inbox_item *next = list->next;
        if (list->id[0] == '\0') {
            rended_reloaded(r->ended);
        } else {
            struct rsession *s = rsession_find(&r->core, list->id);
            if (s != NULL)
                rsession_end(s, list->reason); /* records it in the ended set too */
            else if (r->core.ended.add(r->core.ended.ctx, list->id) != 0)
                RSTAT_ADD(&r->core.stats, ended_set_failures, 1);
        }
        free(list);
        list = next;
    }
}

/* Frees what is left in the inbox after the relay thread has stopped (nobody to act on it). */
static void inbox_drain_free(struct relay *r)
{
    struct inbox_item *list = r->inbox_head;
    r->inbox_head = r->inbox_tail = NULL;
    while (list) {
        struct inbox_item *next = list->next;
        free(list);
        list = next;
    }
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
    size_t limit = c->rx_binary ? c->core->cfg->max_frame_bytes : RELAY_TEXT_MAX;
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
        c->rx = rframe_new(&c->core->stats, want < 256 ? 256 : want, c->rx_binary);
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
        rstream_visitor_frame(c, f);
    } else {
        rcontrol_text(c, (const char *)f->buf + RELAY_PRE, f->len);
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
    RSTAT_ADD(f->stats, frames_out, 1);
    RSTAT_ADD(f->stats, bytes_out, f->len);
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
    struct rframe *ack = rstream_take_ack(c);
    if (ack != NULL) { /* first in line: a due ack is never delayed further */
        rconn_push_front(c, ack);
        rframe_unref(ack);
    }
    if (flush_queue(wsi, c) != 0)
        return -1;
    if (c->role == RROLE_AGENT)
        rstream_agent_drained(c);
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
    struct relay *r = lws_container_of(sul, struct relay, tick_sul);
    double now = time_monotonic();
    rsession_tick(&r->core);
    if (now - r->last_expire > 60) {
        rended_expire(r->ended, time_now());
        r->last_expire = now;
    }
    if (rended_lossy(r->ended)) /* the worker puts back what the set lost */
        rworker_request_reload(r->worker);
    lws_sul_schedule(r->ctx, 0, sul, tick, LWS_US_PER_SEC);
}

/* ---- admission over lws ---- */

/* Answers a refused upgrade with an RFC 9457 problem (the REST API's shape), an optional
 * Retry-After. Returns 1 (what LWS_CALLBACK_HTTP_CONFIRM_UPGRADE expects once it has answered
 * itself), or -1. */
static int refuse_http(struct lws *wsi, const struct radmit_refusal *no)
{
    unsigned char buf[LWS_PRE + 1024];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof(buf) - 1;
    json_t *body = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", "about:blank", "title", no->title,
                             "status", (int)no->status, "detail", no->detail, "code", no->code);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return -1;
    size_t n = strlen(text);
    unsigned char *out = malloc(LWS_PRE + n);
    int rc = -1;
    if (out == NULL || lws_add_http_common_headers(wsi, no->status, "application/problem+json",
                                                   (lws_filepos_t)n, &p, end))
        goto done;
    if (no->retry_after > 0) {
        char ra[16];
        int rl = snprintf(ra, sizeof(ra), "%d", no->retry_after);
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)"retry-after:", (const unsigned char *)ra, rl, &p, end))
            goto done;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        goto done;
    memcpy(out + LWS_PRE, text, n);
    if (lws_write(wsi, out + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) == (int)n)
        rc = 1;
done:
    free(out);
    free(text);
    return rc;
}

/* The token: the access_token query parameter (browsers), else a Bearer header. The URI is
 * never logged, since it carries the token. */
static const char *find_token(struct lws *wsi, char *out, size_t size)
{
    char hdr[TOKEN_MAX_LEN + 32];
    const char *q = lws_get_urlarg_by_name(wsi, "access_token=", hdr, (int)sizeof(hdr));
    if (q != NULL && strlen(q) < size) {
        snprintf(out, size, "%s", q);
        return out;
    }
    if (lws_hdr_copy(wsi, hdr, sizeof(hdr), WSI_TOKEN_HTTP_AUTHORIZATION) > 7 &&
        strncasecmp(hdr, "Bearer ", 7) == 0 && strlen(hdr + 7) < size) {
        snprintf(out, size, "%s", hdr + 7);
        return out;
    }
    return NULL;
}

static int admit(struct relay *r, struct lws *wsi)
{
    char path[128], token[TOKEN_MAX_LEN + 1];
    /* As big as the token: lws stops looking at the first argument that does not fit. */
    char resume[TOKEN_MAX_LEN + 32];
    struct radmit_request req = {
        .path = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) > 0 ? path : NULL,
        .token = find_token(wsi, token, sizeof(token)),
        .resume = lws_get_urlarg_by_name(wsi, "resume=", resume, (int)sizeof(resume)),
        .draining = atomic_load(&r->draining),
    };
    struct radmit_refusal no;
    struct rconn *c = radmit_decide(&r->core, &req, &no);
    if (c == NULL)
        return refuse_http(wsi, &no);
    lws_set_opaque_user_data(wsi, c);
    return 0;
}

/* ---- the callback ---- */

static int on_established(struct relay *r, struct lws *wsi, struct rconn *c)
{
    if (c == NULL)
        return -1;
    c->wsi = wsi;
    c->established = 1;
    c->fd = lws_get_socket_fd(wsi);
    rmask_watch(r->mask, c->fd, c);
    int created;
    struct rsession *s = rsession_get(c->core, &c->claims, &created);
    if (s == NULL)
        return -1;
    rsession_attach(s, c);
    return 0;
}

static int on_cancelled(struct relay *r)
{
    if (atomic_load(&r->stopping) && r->evloop != NULL) /* lws_service() runs ev_run() */
        ev_break(r->evloop, EVBREAK_ALL);
    struct rconn *bad;
    while ((bad = rmask_take_bad(r->mask)) != NULL) { /* RFC 6455 5.1 (relay_mask.h) */
        io_pause(NULL, bad, 1);
        rconn_close(bad, LWS_CLOSE_STATUS_PROTOCOL_ERR, "client frame not masked");
    }
    inbox_drain(r);
    if (atomic_load(&r->drain_requested) && !r->drain_started) {
        r->drain_started = 1;
        rsession_foreach(&r->core, drain_one, NULL);
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    struct relay *r = lws_context_user(lws_get_context(wsi));
    struct rconn *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return admit(r, wsi);
    case LWS_CALLBACK_HTTP: {
        struct radmit_refusal no = {400, "bad_request", "Bad request",
                                    "the relay speaks WebSocket only, at /v1/relay", 0};
        int rc = refuse_http(wsi, &no);
        return rc < 0 || lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(r, wsi, c);
    case LWS_CALLBACK_RECEIVE:
        return c ? on_receive(wsi, c, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c ? on_writeable(wsi, c) : -1;
    case LWS_CALLBACK_TIMER: /* a delayed ack is due (io_wake_in) */
        if (c) {
            c->ack_timer = 0;
            io_wake(NULL, c);
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c) {
            rmask_forget(r->mask, c->fd);
            c->fd = -1;
            rsession_detach(c);
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) {
            rmask_forget(r->mask, c->fd);
            conn_free(wsi, c);
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return r ? on_cancelled(r) : 0;
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

static void mask_bad(void *ctx)
{
    struct relay *r = ctx;
    lws_cancel_service(r->ctx); /* on_cancelled closes it, outside lws's read path */
}

static void *service(void *arg)
{
    struct relay *r = arg;
    rmask_bind_thread(r->mask); /* lws reads on this thread: recv() watches here only */
    while (!atomic_load(&r->stopping))
        if (lws_service(r->ctx, 0) < 0)
            break;
    return NULL;
}

/* ---- the instance ---- */

struct relay *relay_new(const struct relay_config *cfg)
{
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    pthread_mutex_init(&r->inbox_lock, NULL);
    r->clock = (struct relay_clock){NULL, clock_monotonic, clock_wall};
    r->core.cfg = &r->cfg;
    r->core.clock = r->clock;
    r->core.io = (struct relay_io){r, io_wake, io_wake_in, io_pause};
    r->core.events = (struct relay_events){NULL, drop_event};
    r->ended = rended_new();
    r->local = rlocal_new(&r->core);
    if (r->ended == NULL || r->local == NULL || rsession_tables_init(&r->core) != 0) {
        relay_free(r);
        return NULL;
    }
    r->core.ended = rended_seam(r->ended, &r->clock);
    r->core.shared = rlocal_seam(r->local);
    return r;
}

/* The lws context on the relay's own libev loop, else (no evlib plugin) on lws's poll loop. */
static int create_context(struct relay *r)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = r->cfg.listen_port;
    info.iface = r->cfg.listen_host;
    info.protocols = protocols;
    info.user = r;
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
    r->evloop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    void *loops[1] = {r->evloop};
    if (r->evloop != NULL) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = loops;
        r->ctx = lws_create_context(&info);
        if (r->ctx == NULL) {
            ev_loop_destroy(r->evloop);
            r->evloop = NULL;
            info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
            info.foreign_loops = NULL;
        }
    }
    if (r->evloop == NULL) {
        log_json(LOG_WARN, "relay without its epoll loop",
                 json_pack("{s:s}", "hint",
                           "install libwebsockets-evlib-ev (Debian); lws's poll() loop costs time "
                           "in proportion to the open connections"));
        r->ctx = lws_create_context(&info);
    }
    if (r->ctx != NULL)
        return 0;
    log_json(LOG_ERROR, "relay could not listen",
             json_pack("{s:s, s:i, s:s}", "host", r->cfg.listen_host, "port", r->cfg.listen_port,
                       "hint", "is the port free? change --relay-listen"));
    return -1;
}

int relay_start(struct relay *r)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    /* The worker first: it loads the recently ended sessions into the inbox, drained here before
     * the port opens, so that no handshake of an ended session is ever admitted. */
    r->worker =
        rworker_start(r->cfg.database_url, (struct rworker_hooks){r, inbox_put, inbox_reloaded});
    if (r->worker == NULL)
        return -1;
    r->core.events = rworker_seam(r->worker);
    inbox_drain(r);
    if (create_context(r) != 0)
        return -1;
    lws_sul_schedule(r->ctx, 0, &r->tick_sul, tick, LWS_US_PER_SEC);
    r->mask = rmask_new(mask_bad, r);
    if (r->mask == NULL || pthread_create(&r->thread, NULL, service, r) != 0)
        return -1;
    r->thread_started = 1;
    return 0;
}

void relay_drain(struct relay *r)
{
    if (r == NULL || r->ctx == NULL)
        return;
    atomic_store(&r->draining, 1);
    atomic_store(&r->drain_requested, 1);
    lws_cancel_service(r->ctx);
    double deadline = time_monotonic() + r->cfg.drain_seconds;
    while (time_monotonic() < deadline &&
           RSTAT_GET(&r->core.stats, conns_visitor) + RSTAT_GET(&r->core.stats, conns_agent) > 0) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void relay_stop(struct relay *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, 1);
    if (r->thread_started) {
        lws_cancel_service(r->ctx);
        pthread_join(r->thread, NULL);
        r->thread_started = 0;
    }
    if (r->ctx != NULL) /* WSI_DESTROY for every connection: they detach, events are posted */
        lws_context_destroy(r->ctx);
    r->ctx = NULL;
    rworker_stop(r->worker); /* records what is queued, those events included */
    r->worker = NULL;
    r->core.events = (struct relay_events){NULL, drop_event};
    if (r->evloop != NULL)
        ev_loop_destroy(r->evloop);
    r->evloop = NULL;
}

void relay_free(struct relay *r)
{
    if (r == NULL)
        return;
    relay_stop(r);
    rsession_tables_free(&r->core);
    inbox_drain_free(r);
    rlocal_free(r->local);
    rended_free(r->ended);
    rmask_free(r->mask);
    pthread_mutex_destroy(&r->inbox_lock);
    free(r);
}

char *relay_metrics_text(struct relay *r)
{
    return rmetrics_text(&r->core.stats, rworker_dropped(r->worker));
}
