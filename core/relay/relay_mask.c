/* Unmasked client frames (core/relay/relay_mask.h). */
#include "core/relay/relay_mask.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define RMASK_FDS 65536 /* descriptors above it are not watched (the relay raises its limit) */

struct rmask_fd {
    void *owner; /* NULL: not watched */
    int bad, reported;
    unsigned char hdr[14];
    unsigned hlen;
    uint64_t skip; /* payload bytes of the current frame still to pass */
};

#define RMASK_PENDING 256 /* bad connections not yet taken by the relay */

struct rmask {
    struct rmask_fd *fds; /* RMASK_FDS entries */
    int pending[RMASK_PENDING], npending;
    void (*on_bad)(void *ctx);
    void *ctx;
};

static _Thread_local struct rmask *thread_table;

struct rmask *rmask_new(void (*on_bad)(void *ctx), void *ctx)
{
    struct rmask *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->fds = calloc(RMASK_FDS, sizeof(*m->fds));
    if (m->fds == NULL) {
        free(m);
        return NULL;
    }
    m->on_bad = on_bad;
    m->ctx = ctx;
    return m;
}

void rmask_bind_thread(struct rmask *m)
{
    thread_table = m;
}

void rmask_free(struct rmask *m)
{
    if (m == NULL)
        return;
    free(m->fds);
    free(m);
}

void rmask_watch(struct rmask *m, int fd, void *owner)
{
    if (m != NULL && fd >= 0 && fd < RMASK_FDS)
        m->fds[fd] = (struct rmask_fd){.owner = owner};
}

void rmask_forget(struct rmask *m, int fd)
{
    if (m != NULL && fd >= 0 && fd < RMASK_FDS)
        m->fds[fd] = (struct rmask_fd){0};
}

void *rmask_take_bad(struct rmask *m)
{
    while (m != NULL && m->npending > 0) {
        struct rmask_fd *s = &m->fds[m->pending[--m->npending]];
        if (s->bad && !s->reported && s->owner != NULL) {
            s->reported = 1;
            return s->owner;
        }
    }
    return NULL;
}

/* The header length once its first two bytes are known. */
static unsigned header_len(const unsigned char *h)
{
    unsigned len7 = h[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (h[1] & 0x80 ? 4 : 0);
}

static uint64_t payload_len(const unsigned char *h)
{
    unsigned len7 = h[1] & 0x7f;
    if (len7 < 126)
        return len7;
    uint64_t n = 0;
    for (unsigned i = 0; i < (len7 == 126 ? 2u : 8u); i++)
        n = n << 8 | h[2 + i];
    return n;
}

/* Follows the frames in buf[0..n): returns how many bytes lws may have (n, or fewer when a frame
 * in it is unmasked). */
static size_t scan(struct rmask_fd *s, const unsigned char *buf, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s->skip > 0) {
            size_t take = n - i < s->skip ? n - i : (size_t)s->skip;
            i += take;
            s->skip -= take;
            continue;
        }
        size_t start = i; /* where this header begins in buf (0 if it began earlier) */
        if (s->hlen > 0)
            start = 0;
        while (i < n && (s->hlen < 2 || s->hlen < header_len(s->hdr)))
            s->hdr[s->hlen++] = buf[i++];
        if (s->hlen < 2 || s->hlen < header_len(s->hdr))
            return n; /* the header continues in the next read */
        if (!(s->hdr[1] & 0x80)) {
            s->bad = 1;
            return start;
        }
        s->skip = payload_len(s->hdr);
        s->hlen = 0;
    }
    return n;
}

/* Every recv() of the process comes here (see the header): the relay thread's watched sockets are
 * followed, everything else passes through. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    struct rmask *m = thread_table;
    struct rmask_fd *s = m != NULL && fd >= 0 && fd < RMASK_FDS ? &m->fds[fd] : NULL;
    if (s != NULL && s->owner != NULL && s->bad) {
        errno = EAGAIN;
        return -1;
    }
    ssize_t n = recvfrom(fd, buf, len, flags, NULL, NULL);
    if (s == NULL || s->owner == NULL || n <= 0 || (flags & MSG_PEEK))
        return n;
    size_t ok = scan(s, buf, (size_t)n);
    if (!s->bad)
        return n;
    /* Pending list full (256 bad clients within one loop turn): the descriptor stays silent
     * (EAGAIN) and lws's 10 s timeout closes it instead. */
    if (m->npending < RMASK_PENDING)
        m->pending[m->npending++] = fd;
    m->on_bad(m->ctx);
    if (ok > 0)
        return (ssize_t)ok;
    errno = EAGAIN;
    return -1;
}
