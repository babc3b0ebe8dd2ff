/* A connection's send queue and closing (struct rconn): a ring of frame references, so fan-out
 * is a pointer push per agent. Relay thread only. Wakes go through the core's I/O seam. */
#ifndef COBROWSE_CORE_RELAY_CONN_H
#define COBROWSE_CORE_RELAY_CONN_H

#include <jansson.h>

#include "core/relay/relay_frame.h"

void rconn_push(struct rconn *c, struct rframe *f);            /* queues a new reference, no wake */
void rconn_push_front(struct rconn *c, struct rframe *f);      /* first in line (acks), no wake */
static inline struct rframe *rconn_peek(const struct rconn *c) /* the next to send, or NULL */
{
    return c->qlen ? c->q[c->qhead] : NULL;
}
void rconn_enqueue(struct rconn *c, struct rframe *f); /* takes a new reference, wakes c */
void rconn_send_text(struct rconn *c, const char *json);
/* Sends msg as compact JSON text; takes the reference to msg (NULL: out of memory, nothing sent).
 */
void rconn_send_json(struct rconn *c, json_t *msg);
void rconn_close(struct rconn *c, int code, const char *reason); /* drops the queue */
/* Drops the queue, sends final_json, then closes with code. */
void rconn_finish(struct rconn *c, int code, const char *reason, const char *final_json);
void rconn_clear_queue(struct rconn *c);
struct rframe *rconn_dequeue(struct rconn *c); /* caller owns the returned reference */

#endif
