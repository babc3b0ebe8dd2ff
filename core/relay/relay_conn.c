/* Connection send queues and closing (core/relay/relay_conn.h). Relay thread only. */
#include "core/relay/relay_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (c->qbytes > RSTAT_GET(&c->core->stats, queue_high_water))
        RSTAT_SET(&c->core->stats, queue_high_water, c->qbytes);
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
    rcore_wake(c);
}

void rconn_send_text(struct rconn *c, const char *json)
{
    struct rframe *f = rframe_text(&c->core->stats, json);
    rconn_enqueue(c, f);
    rframe_unref(f);
}

void rconn_send_json(struct rconn *c, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (text != NULL)
        rconn_send_text(c, text);
    free(text);
}

void rconn_close(struct rconn *c, int code, const char *reason)
{
    if (c->close_code != 0)
        return;
    rconn_clear_queue(c);
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    rcore_pause(c, RPAUSE_ALL,
                0); /* a connection whose reads are off never gets to send its close */
    rcore_wake(c);
}

void rconn_finish(struct rconn *c, int code, const char *reason, const char *final_json)
{
    if (c->close_code != 0)
        return;
    rconn_clear_queue(c);
    struct rframe *f = rframe_text(&c->core->stats, final_json);
    if (f != NULL) {
        rconn_push(c, f);
        rframe_unref(f);
    }
    c->close_code = code;
    c->close_after_flush = 1;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    rcore_pause(c, RPAUSE_ALL, 0); /* as in rconn_close */
    rcore_wake(c);
}
