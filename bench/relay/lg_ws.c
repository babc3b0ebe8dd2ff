/* The load generator's WebSocket client (RFC 6455, client side): see lg_ws.h. */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lg_conn.h"
#include "lg_session.h"
#include "lg_ws.h"

#define LG_MAX_HEADER 16384 /* handshake answer headers */
#define LG_WS_GUID    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- buffers and sockets --------------------------------------------------------------- */

static void lg_epoll_set(struct lg_conn *c, int out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(lg.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
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

int lg_ws_flush(struct lg_conn *c)
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

void lg_ws_mask(uint8_t *p, size_t n, uint32_t key)
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

uint8_t *lg_ws_frame(struct lg_conn *c, int opcode, size_t n, uint32_t *key)
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
    uint8_t *p = lg_ws_frame(c, opcode, n, &key);
    memcpy(p, data, n);
    lg_ws_mask(p, n, key);
}

void lg_ws_close(struct lg_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
    }
    free(c->rbuf);
    free(c->wbuf);
    free(c->msg);
    c->rbuf = c->wbuf = c->msg = NULL;
    c->rlen = c->rcap = c->woff = c->wlen = c->wcap = c->mlen = c->mcap = 0;
    c->mop = 0;
    c->epout = 0;
}

/* ---- the opening handshake ------------------------------------------------------------- */

static void lg_base64(const uint8_t *in, int n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, n);
}

void lg_ws_connect(struct lg_conn *c)
{
    const struct lg_target *t = &lg.target[c->target];
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        lg_die("socket: %s (raise ulimit -n)", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(lg.ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        lg_die("epoll_ctl: %s", strerror(errno));
    c->epout = 1;
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS)
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
    const char *tok = c->token, *q = lg_opt.token_via == LG_TOKEN_QUERY ? tok : "";
    const char *h = lg_opt.token_via == LG_TOKEN_HEADER ? tok : "";
    const char *sp = lg_opt.token_via == LG_TOKEN_SUBPROTOCOL ? tok : "";
    const struct lg_target *t = &lg.target[c->target];
    size_t cap = strlen(tok) + strlen(lg_opt.path) + strlen(t->host) + 512;
    char *req = malloc(cap);
    if (req == NULL)
        lg_die("out of memory");
    int n = snprintf(req, cap,
                     "GET %s%s%s%s%s%s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s"
                     "Sec-WebSocket-Protocol: %scobrowse.v1%s%s\r\n\r\n",
                     lg_opt.path, *q || *resume ? "?" : "", *q ? "access_token=" : "", q,
                     *q && *resume ? "&" : "", resume, t->host, t->port, c->key,
                     *h ? "Authorization: Bearer " : "", h, *h ? "\r\n" : "",
                     /* visitors ask for the relay's large receive buffer (docs/protocol.md) */
                     c->role == LG_AGENT ? "" : "cobrowse.visitor.v1, ",
                     *sp ? ", cobrowse.token." : "", sp);
    memcpy(lg_wreserve(c, (size_t)n), req, (size_t)n);
    free(req);
    c->state = LG_ST_HANDSHAKE;
    lg_ws_flush(c);
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
        lg_conn_opened(c);
        return (long)hl;
    }
    /* A rejection: counted and shown here; lg_conn_rejected decides whether and when to retry. */
    lg.rejects++;
    int retry_s = -1;
    if (lg_header(hdr, "Retry-After", val, sizeof(val)) == 0)
        retry_s = atoi(val);
    if (lg_opt.verbose || lg.rejects <= 5)
        fprintf(stderr, "loadgen: %s of %s rejected with %d (Retry-After %d): %.*s\n",
                c->role == LG_AGENT ? "agent" : "visitor", c->s->id, status, retry_s,
                (int)(c->rlen - hl > 200 ? 200 : c->rlen - hl), (const char *)c->rbuf + hl);
    free(hdr);
    lg_conn_rejected(c, status, retry_s);
    return -1;
}

/* ---- server frames ----------------------------------------------------------------------- */

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
                lg_ws_flush(c);
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
                lg_session_on_message(c, c->mop, c->msg, c->mlen, now);
                c->mop = 0;
                c->mlen = 0;
            }
        } else if (op == 1 || op == 2) {
            if (c->mop)
                lg_violation("new message inside a fragmented one");
            if (fin) {
                lg_session_on_message(c, op, data, len, now);
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

void lg_ws_on_readable(struct lg_conn *c, int64_t now)
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

void lg_ws_on_writable(struct lg_conn *c, int64_t now)
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
    if (lg_ws_flush(c) == 0 && c->role == LG_VISITOR && c->state == LG_ST_OPEN)
        lg_session_pump(c->s, now);
}
