/* bench/relay/ceiling.c: the rig's ceiling for scripts/bench-relay.sh, a WebSocket room broadcast
 * in C that does the least work any relay of a visitor's frames to its agents must do, so that
 * the benchmark can show, in the same run, how far any relay can go on this machine.
 *
 * It speaks the same subset of docs/protocol.md as bench/relay/baseline.mjs (a `hello` for the
 * visitor, coalesced `ack`s, every binary message of a visitor sent to all of its agents) and adds
 * only what keeps it correct at saturation: a visitor is not read while one of its agents has
 * more than 4 MiB queued (TCP then slows the visitor down), so nothing is dropped. Each frame is
 * unmasked in place, copied once into a reference-counted message (server header + payload) and
 * written to every agent with writev, many frames per call. No token check, no history, no
 * limits, no fragmentation (a continuation frame closes the connection): it is a measuring
 * instrument, not a relay to run.
 *
 * One thread, one epoll loop, level-triggered. Usage: ceiling PORT [HOST]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_MSG     (16u << 20) /* larger frames: close 1009 */
#define MAX_REQUEST 16384       /* upgrade request */
#define VISITOR_RX  (1u << 20)  /* one recv() takes up to this much of a visitor's frames */
#define PAUSE_AT    (4u << 20)  /* an agent with this much queued pauses its visitor */
#define RESUME_AT   (1u << 20)  /* ... until every agent is under this */
#define IOV_MAX_N   64
#define ROOMS       4096

struct msg {
    int refs;
    size_t len;
    uint8_t data[];
};

struct room;

struct conn {
    int fd, agent, upgraded, epout, paused, ack_due;
    struct room *room;
    uint8_t *rbuf;
    size_t rlen, rcap;
    struct msg **q; /* ring of queued messages */
    size_t qhead, qlen, qcap, qoff, qbytes;
    uint64_t last_seq;
};

struct room {
    char sid[64];
    struct conn *visitor;
    struct conn **agents;
    int nagents, cap;
    struct room *next;
};

static int ep;
static struct room *rooms[ROOMS];

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) {
        fputs("ceiling: out of memory\n", stderr);
        exit(2);
    }
    return p;
}

static void msg_release(struct msg *m)
{
    if (--m->refs == 0)
        free(m);
}

/* A server frame (never masked): FIN + opcode, then the length in 1, 3 or 9 bytes. */
static struct msg *msg_frame(int op, const uint8_t *payload, size_t n, int refs)
{
    size_t hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
    struct msg *m = xrealloc(NULL, sizeof(*m) + hl + n);
    m->refs = refs;
    m->len = hl + n;
    m->data[0] = (uint8_t)(0x80 | op);
    if (hl == 2) {
        m->data[1] = (uint8_t)n;
    } else if (hl == 4) {
        m->data[1] = 126;
        m->data[2] = (uint8_t)(n >> 8);
        m->data[3] = (uint8_t)n;
    } else {
        m->data[1] = 127;
        for (int i = 0; i < 8; i++)
            m->data[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    memcpy(m->data + hl, payload, n);
    return m;
}

static void set_events(struct conn *c)
{
    struct epoll_event ev = {.events = (c->paused ? 0u : EPOLLIN) | (c->epout ? EPOLLOUT : 0u),
                             .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void enqueue(struct conn *c, struct msg *m)
{
    if (c->qlen == c->qcap) {
        size_t ncap = c->qcap ? c->qcap * 2 : 64;
        struct msg **nq = xrealloc(NULL, ncap * sizeof(*nq));
        for (size_t i = 0; i < c->qlen; i++)
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq;
        c->qhead = 0;
        c->qcap = ncap;
    }
    c->q[(c->qhead + c->qlen++) % c->qcap] = m;
    c->qbytes += m->len;
}

static void room_flow(struct room *r);

/* Writes as much of the queue as the socket takes; -1 when the peer is gone. */
static int flush(struct conn *c)
{
    while (c->qlen) {
        struct iovec iov[IOV_MAX_N];
        int n = 0;
        for (size_t i = 0; i < c->qlen && n < IOV_MAX_N; i++, n++) {
            struct msg *m = c->q[(c->qhead + i) % c->qcap];
            size_t off = i == 0 ? c->qoff : 0;
            iov[n].iov_base = m->data + off;
            iov[n].iov_len = m->len - off;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        c->qbytes -= (size_t)w;
        size_t left = (size_t)w;
        while (left) {
            struct msg *m = c->q[c->qhead];
            size_t rest = m->len - c->qoff;
            if (left < rest) {
                c->qoff += left;
                break;
            }
            left -= rest;
            c->qoff = 0;
            c->qhead = (c->qhead + 1) % c->qcap;
            c->qlen--;
            msg_release(m);
        }
    }
    int want = c->qlen > 0;
    if (want != c->epout) {
        c->epout = want;
        set_events(c);
    }
    if (c->agent && c->room && c->room->visitor && c->room->visitor->paused &&
        c->qbytes < RESUME_AT)
        room_flow(c->room);
    return 0;
}

/* Pauses the visitor while any agent is over PAUSE_AT, resumes it when all are under RESUME_AT. */
static void room_flow(struct room *r)
{
    struct conn *v = r->visitor;
    if (!v)
        return;
    size_t worst = 0;
    for (int i = 0; i < r->nagents; i++)
        if (r->agents[i]->qbytes > worst)
            worst = r->agents[i]->qbytes;
    int pause = v->paused ? worst >= RESUME_AT : worst > PAUSE_AT;
    if (pause != v->paused) {
        v->paused = pause;
        set_events(v);
    }
}

static struct room *room_get(const char *sid)
{
    unsigned h = 5381;
    for (const char *p = sid; *p; p++)
        h = h * 33 + (unsigned char)*p;
    struct room **b = &rooms[h % ROOMS];
    for (struct room *r = *b; r; r = r->next)
        if (strcmp(r->sid, sid) == 0)
            return r;
    struct room *r = xrealloc(NULL, sizeof(*r));
    memset(r, 0, sizeof(*r));
    snprintf(r->sid, sizeof(r->sid), "%s", sid);
    r->next = *b;
    *b = r;
    return r;
}

static void conn_close(struct conn *c)
{
    struct room *r = c->room;
    if (r && c->agent) {
        for (int i = 0; i < r->nagents; i++)
            if (r->agents[i] == c) {
                r->agents[i] = r->agents[--r->nagents];
                break;
            }
        room_flow(r);
    } else if (r && r->visitor == c) {
        r->visitor = NULL;
    }
    while (c->qlen) {
        msg_release(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    close(c->fd); /* also leaves the epoll set */
    free(c->q);
    free(c->rbuf);
    free(c);
}

static void send_text(struct conn *c, const char *s)
{
    enqueue(c, msg_frame(0x1, (const uint8_t *)s, strlen(s), 1));
}

static void send_close(struct conn *c, unsigned code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    enqueue(c, msg_frame(0x8, p, 2, 1));
    flush(c);
}

/* Copies header NAME's value (case-insensitive name) out of the request; 0 when found. */
static int header(const char *req, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(req, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ')
                h++;
            size_t n = strcspn(h, "\r");
            if (n >= cap)
                return -1;
            memcpy(out, h, n);
            out[n] = 0;
            return 0;
        }
    }
    return -1;
}

/* The JWT payload's "sid" and "role" (the token is not verified: see the top of the file). */
static int claims(const char *jwt, char *sid, size_t sidcap, int *agent)
{
    const char *a = strchr(jwt, '.');
    const char *b = a ? strchr(a + 1, '.') : NULL;
    if (!b || b - a - 1 > 4096)
        return -1;
    char in[4100];
    size_t n = (size_t)(b - a - 1);
    memcpy(in, a + 1, n);
    for (size_t i = 0; i < n; i++)
        in[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
    while (n % 4)
        in[n++] = '=';
    unsigned char js[3100];
    int len = EVP_DecodeBlock(js, (unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    js[len] = 0;
    const char *s = strstr((char *)js, "\"sid\":\"");
    if (!s)
        return -1;
    s += 7;
    size_t sl = strcspn(s, "\"");
    if (sl == 0 || sl >= sidcap)
        return -1;
    memcpy(sid, s, sl);
    sid[sl] = 0;
    *agent = strstr((char *)js, "\"role\":\"agent\"") != NULL;
    return 0;
}

static int upgrade(struct conn *c)
{
    char *req = (char *)c->rbuf, key[128], proto[256], auth[4200], sid[64];
    char *end = strstr(req, "\r\n\r\n");
    if (!end)
        return c->rlen >= MAX_REQUEST ? -1 : 0;
    *end = 0;
    const char *tok = strstr(req, "access_token=");
    char jwt[4200] = "";
    if (tok) {
        tok += 13;
        size_t n = strcspn(tok, "& \r");
        if (n >= sizeof(jwt))
            return -1;
        memcpy(jwt, tok, n);
        jwt[n] = 0;
    } else if (header(req, "Authorization", auth, sizeof(auth)) == 0 &&
               strncmp(auth, "Bearer ", 7) == 0) {
        snprintf(jwt, sizeof(jwt), "%s", auth + 7);
    }
    if (header(req, "Sec-WebSocket-Key", key, sizeof(key)) ||
        header(req, "Sec-WebSocket-Protocol", proto, sizeof(proto)) ||
        !strstr(proto, "cobrowse.v1") || claims(jwt, sid, sizeof(sid), &c->agent)) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        (void)!write(c->fd, bad, sizeof(bad) - 1);
        return -1;
    }
    char cat[200];
    unsigned char sha[SHA_DIGEST_LENGTH], acc[64];
    int kn = snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    SHA1((unsigned char *)cat, (size_t)kn, sha);
    EVP_EncodeBlock(acc, sha, SHA_DIGEST_LENGTH);
    char resp[512];
    int rn = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                      "Sec-WebSocket-Protocol: cobrowse.v1\r\n\r\n",
                      (char *)acc);
    struct msg *m = xrealloc(NULL, sizeof(*m) + (size_t)rn);
    m->refs = 1;
    m->len = (size_t)rn;
    memcpy(m->data, resp, (size_t)rn);
    enqueue(c, m);
    c->upgraded = 1;
    size_t used = (size_t)(end + 4 - req);
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
    struct room *r = room_get(sid);
    c->room = r;
    if (c->agent) {
        if (r->nagents == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 8;
            r->agents = xrealloc(r->agents, (size_t)r->cap * sizeof(*r->agents));
        }
        r->agents[r->nagents++] = c;
    } else {
        if (r->visitor) {
            struct conn *old = r->visitor;
            old->room = NULL;
            send_close(old, 4002);
        }
        r->visitor = c;
        send_text(c, "{\"type\":\"hello\",\"have\":0,\"next_seq\":1}");
        c->rcap = VISITOR_RX;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    return flush(c);
}

static void unmask(uint8_t *p, size_t n, const uint8_t k[4])
{
    uint32_t k32;
    memcpy(&k32, k, 4);
    uint64_t k64 = (uint64_t)k32 << 32 | k32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k64;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= k[i & 3];
}

/* Handles every complete frame in the read buffer; -1 closes the connection. */
static int frames(struct conn *c)
{
    size_t off = 0;
    struct room *r = c->room;
    while (c->rlen - off >= 2) {
        uint8_t *f = c->rbuf + off;
        int op = f[0] & 0x0f, fin = f[0] & 0x80;
        size_t hl = 2, n = f[1] & 0x7f;
        if (!(f[1] & 0x80) || !fin || op == 0) {
            send_close(c, 1002);
            return -1;
        }
        if (n == 126) {
            if (c->rlen - off < 4)
                break;
            n = (size_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (n == 127) {
            if (c->rlen - off < 10)
                break;
            uint64_t v = 0;
            for (int i = 0; i < 8; i++)
                v = v << 8 | f[2 + i];
            if (v > MAX_MSG) {
                send_close(c, 1009);
                return -1;
            }
            n = (size_t)v;
            hl = 10;
        }
        size_t total = hl + 4 + n;
        if (c->rlen - off < total) {
            if (total > c->rcap) {
                c->rcap = total;
                c->rbuf = xrealloc(c->rbuf, c->rcap);
            }
            break;
        }
        uint8_t *p = f + hl + 4;
        unmask(p, n, f + hl);
        if (op == 0x8) {
            send_close(c, 1000);
            return -1;
        }
        if (op == 0x9)
            enqueue(c, msg_frame(0xA, p, n, 1));
        if (op == 0x2 && !c->agent && r && r->visitor == c && n >= 16) {
            if (r->nagents) {
                struct msg *m = msg_frame(0x2, p, n, r->nagents);
                for (int i = 0; i < r->nagents; i++)
                    enqueue(r->agents[i], m);
            }
            c->last_seq = 0;
            for (int i = 0; i < 8; i++)
                c->last_seq = c->last_seq << 8 | p[8 + i];
            c->ack_due = 1;
        }
        off += total;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    if (c->ack_due) {
        char ack[64];
        snprintf(ack, sizeof(ack), "{\"type\":\"ack\",\"seq\":%llu}",
                 (unsigned long long)c->last_seq);
        send_text(c, ack);
        c->ack_due = 0;
    }
    if (r && r->visitor == c) {
        for (int i = 0; i < r->nagents; i++)
            if (flush(r->agents[i]) < 0) /* its EPOLLHUP closes it on the next turn */
                continue;
        room_flow(r);
    }
    return flush(c);
}

static int on_readable(struct conn *c)
{
    if (c->rlen == c->rcap) {
        c->rcap = c->rcap ? c->rcap * 2 : 16384;
        c->rbuf = xrealloc(c->rbuf, c->rcap + 1);
    }
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (n == 0)
        return -1;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    c->rlen += (size_t)n;
    if (!c->upgraded) {
        c->rbuf[c->rlen] = 0;
        return upgrade(c);
    }
    return frames(c);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: ceiling PORT [HOST]\n", stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    if (inet_pton(AF_INET, argc > 2 ? argv[2] : "127.0.0.1", &a.sin_addr) != 1) {
        fputs("ceiling: HOST must be an IPv4 address\n", stderr);
        return 2;
    }
    int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 4096)) {
        perror("ceiling: listen");
        return 2;
    }
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    fprintf(stderr, "ceiling listening on ws://%s:%s/v1/relay\n", argc > 2 ? argv[2] : "127.0.0.1",
            argv[1]);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    c = xrealloc(NULL, sizeof(*c));
                    memset(c, 0, sizeof(*c));
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            int bad = (evs[i].events & (EPOLLERR | EPOLLHUP)) != 0;
            if (!bad && (evs[i].events & EPOLLOUT))
                bad = flush(c) < 0;
            if (!bad && (evs[i].events & EPOLLIN))
                bad = on_readable(c) < 0;
            if (bad)
                conn_close(c);
        }
    }
}
