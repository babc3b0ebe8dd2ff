/* The relay's messages and send queues: reference-counted frames with room for the WebSocket
 * header, and each connection's FIFO of references. Relay thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/relay/relay_state.h"

struct rframe *rframe_new(size_t cap, int binary)
{
    struct rframe *f = malloc(sizeof(*f) + RELAY_PRE + cap);
    if (f == NULL)
        return NULL;
    f->refs = 1;
    f->binary = binary;
    f->kind = 0;
    f->seq = 0;
    f->len = 0;
    f->cap = cap;
    STAT_ADD(memory_bytes, cap);
    return f;
}

struct rframe *rframe_reserve(struct rframe *f, size_t need)
{
    if (need <= f->cap)
        return f;
    size_t cap = f->cap * 2 > need ? f->cap * 2 : need;
    struct rframe *n = realloc(f, sizeof(*f) + RELAY_PRE + cap);
    if (n == NULL)
        return NULL;
    STAT_ADD(memory_bytes, cap - n->cap);
    n->cap = cap;
    return n;
}

struct rframe *rframe_text(const char *text)
{
    size_t len = strlen(text);
    struct rframe *f = rframe_new(len, 0);
    if (f == NULL)
        return NULL;
    memcpy(f->buf + RELAY_PRE, text, len);
    f->len = len;
    return f;
}

void rframe_ref(struct rframe *f)
{
    f->refs++;
}

void rframe_unref(struct rframe *f)
{
    if (f != NULL && --f->refs == 0) {
        STAT_SUB(memory_bytes, f->cap);
        free(f);
    }
}

/* ---- connection queues ---- */

/* A ring of references, grown by doubling: no allocation per queued frame (a malloc and a free
 * per frame and agent were 13 % of the relay's time with 1 KiB frames). A ring that grew past
 * RING_KEEP for a burst is freed once it is empty again, so idle connections stay small. */
#define RING_FIRST 8
#define RING_KEEP  256

static int ring_room(struct rconn *c)
{
    if (c->qlen < c->qcap)
        return 0;
    unsigned cap = c->qcap ? c->qcap * 2 : RING_FIRST;
    struct rframe **q = malloc(cap * sizeof(*q));
    if (q == NULL)
        return -1;
    for (unsigned i = 0; i < c->qlen; i++)
        q[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = q;
    c->qhead = 0;
    c->qcap = cap;
    return 0;
}

static void queued(struct rconn *c, struct rframe *f)
{
    rframe_ref(f);
    c->qbytes += f->len;
    if (c->qbytes > relay_stats.queue_high_water)
        __atomic_store_n(&relay_stats.queue_high_water, c->qbytes, __ATOMIC_RELAXED);
}

/* A frame that cannot be queued must not leave a silent gap: the connection is closed with 1011
 * and the client resumes from what it has. */
static int room_or_close(struct rconn *c)
{
    if (ring_room(c) == 0)
        return 0;
    rconn_close(c, 1011, "relay out of memory");
    return -1;
}

void rconn_push(struct rconn *c, struct rframe *f)
{
    if (c->close_code != 0 || room_or_close(c) != 0)
        return;
    c->q[(c->qhead + c->qlen++) % c->qcap] = f;
    queued(c, f);
}

void rconn_push_front(struct rconn *c, struct rframe *f)
{
    if (c->close_code != 0 || room_or_close(c) != 0)
        return;
    c->qhead = (c->qhead + c->qcap - 1) % c->qcap;
    c->q[c->qhead] = f;
    c->qlen++;
    queued(c, f);
}

struct rframe *rconn_dequeue(struct rconn *c)
{
    if (c->qlen == 0)
        return NULL;
    struct rframe *f = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    c->qbytes -= f->len;
    if (c->qlen == 0 && c->qcap > RING_KEEP) {
        free(c->q);
        c->q = NULL;
        c->qhead = c->qcap = 0;
    }
    return f;
}

void rconn_clear_queue(struct rconn *c)
{
    struct rframe *f;
    while ((f = rconn_dequeue(c)) != NULL)
        rframe_unref(f);
    free(c->q);
    c->q = NULL;
    c->qhead = c->qcap = 0;
}

void rconn_enqueue(struct rconn *c, struct rframe *f)
{
    if (c->close_code != 0 || f == NULL)
        return;
    rconn_push(c, f);
    relay_io_wake(c);
}

void rconn_send_text(struct rconn *c, const char *json)
{
    struct rframe *f = rframe_text(json);
    rconn_enqueue(c, f);
    rframe_unref(f);
}

void rconn_close(struct rconn *c, int code, const char *reason)
{
    if (c->close_code != 0)
        return;
    rconn_clear_queue(c);
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    relay_io_wake(c);
}

void rconn_finish(struct rconn *c, int code, const char *reason, const char *final_json)
{
    if (c->close_code != 0)
        return;
    rconn_clear_queue(c);
    struct rframe *f = rframe_text(final_json);
    if (f != NULL) {
        rconn_push(c, f);
        rframe_unref(f);
    }
    c->close_code = code;
    c->close_after_flush = 1;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    relay_io_wake(c);
}
