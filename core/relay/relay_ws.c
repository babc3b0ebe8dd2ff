/* The relay's connections over libwebsockets (core/relay/relay_ws.h): admission of the upgrade
 * and refusals, message assembly, batched writes, closing, the core's io seam. Service thread
 * only. The relay listens without TLS (a proxy terminates it), which is what makes writing to
 * the socket directly (flush_queue) correct. */
#include "core/relay/relay_ws.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/relay/relay_admit.h"
#include "core/relay/relay_cluster.h"

_Static_assert(RELAY_PRE >= LWS_PRE, "RELAY_PRE must leave room for the WebSocket header");

#define RELAY_IOV         256               /* frames per sendmsg() */
#define RELAY_FLUSH_BYTES (2 * 1024 * 1024) /* the most one writable callback sends */
#define RELAY_TX_PACKET   (256 * 1024)      /* the most lws itself writes per send() */

/* ---- the io seam ---- */

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

struct relay_io rws_io(void)
{
    return (struct relay_io){NULL, io_wake, io_wake_in, io_pause};
}

/* ---- connections ---- */

static void conn_free(struct lws *wsi, struct rconn *c)
{
    rsession_detach(c);
    rconn_clear_queue(c);
    rframe_unref(c->rx);
    c->rx = NULL;
    lws_set_opaque_user_data(wsi, NULL);
    if (c->core->cluster != NULL)
        rcluster_conn_release(c); /* requests in flight may still hold it */
    else
        free(c);
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

static int admit(struct rws *w, struct lws *wsi)
{
    char path[128], token[TOKEN_MAX_LEN + 1];
    /* As big as the token: lws stops looking at the first argument that does not fit. */
    char resume[TOKEN_MAX_LEN + 32];
    struct radmit_request req = {
        .path = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) > 0 ? path : NULL,
        .token = find_token(wsi, token, sizeof(token)),
        .resume = lws_get_urlarg_by_name(wsi, "resume=", resume, (int)sizeof(resume)),
        .draining = atomic_load(&w->draining),
    };
    struct radmit_refusal no;
    struct rconn *c = radmit_decide(w->core, &req, &no);
    if (c == NULL)
        return refuse_http(wsi, &no);
    lws_set_opaque_user_data(wsi, c);
    return 0;
}

/* ---- the callback ---- */

static int on_established(struct rws *w, struct lws *wsi, struct rconn *c)
{
    if (c == NULL)
        return -1;
    c->wsi = wsi;
    c->established = 1;
    c->fd = lws_get_socket_fd(wsi);
    rmask_watch(w->mask, c->fd, c);
    if (c->core->cluster != NULL) { /* joins once the cluster has admitted it */
        rcluster_admit(c->core->cluster, c);
        return 0;
    }
    int created;
    struct rsession *s = rsession_get(c->core, &c->claims, &created);
    if (s == NULL)
        return -1;
    rsession_attach(s, c);
    return 0;
}

static int on_cancelled(struct rws *w)
{
    struct rconn *bad;
    while ((bad = rmask_take_bad(w->mask)) != NULL) { /* RFC 6455 5.1 (relay_mask.h) */
        io_pause(NULL, bad, 1);
        rconn_close(bad, LWS_CLOSE_STATUS_PROTOCOL_ERR, "client frame not masked");
    }
    w->cancelled(w->ctx); /* the instance: other threads' messages, drain, stop */
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    (void)user;
    struct rws *w = lws_context_user(lws_get_context(wsi));
    struct rconn *c = lws_get_opaque_user_data(wsi);
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return admit(w, wsi);
    case LWS_CALLBACK_HTTP: {
        struct radmit_refusal no = {400, "bad_request", "Bad request",
                                    "the relay speaks WebSocket only, at /v1/relay", 0};
        int rc = refuse_http(wsi, &no);
        return rc < 0 || lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(w, wsi, c);
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
            rmask_forget(w->mask, c->fd);
            c->fd = -1;
            rsession_detach(c);
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) {
            rmask_forget(w->mask, c->fd);
            conn_free(wsi, c);
        }
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return w ? on_cancelled(w) : 0;
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

const struct lws_protocols *rws_protocols(void)
{
    return protocols;
}
