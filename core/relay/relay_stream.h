/* The visitor's stream of frames through its session: sequence checks, the visitor's budgets and
 * the node's memory ceiling, coalesced acks, fan-out to the agents and backpressure (pausing the
 * visitor when every agent is behind, resetting or closing an agent that falls behind alone)
 * (docs/protocol.md, "Sequence numbers" and "Backpressure"). Relay thread only; reaches the world
 * only through the core's seams. */
#ifndef COBROWSE_CORE_RELAY_STREAM_H
#define COBROWSE_CORE_RELAY_STREAM_H

#include "core/relay/relay_history.h"

/* A complete binary message from the visitor c (takes ownership of f). */
void rstream_visitor_frame(struct rconn *c, struct rframe *f);
/* Applies an accepted frame f (f->seq and kind set; f->seq > s->have, and either the next one or
 * a snapshot): s->have moves to it, the history stores it, the agents get it. No reference
 * taken from the caller (the history and queues take their own). */
void rstream_apply(struct rsession *s, struct rframe *f);
/* The visitor c sent a frame (of bytes, a snapshot or not): it is acked now or a little later. */
void rstream_ack_later(struct rconn *c, size_t bytes, int snapshot);
/* The ack the visitor c is due, as a text frame (a reference for the caller), or NULL when none
 * is due; called by the I/O layer at each writeable. */
struct rframe *rstream_take_ack(struct rconn *c);
/* An agent's queue shrank: resume the visitor's reads if every agent has room again. */
void rstream_agent_drained(struct rconn *a);
/* Periodic (now: monotonic seconds): a pause that lasted too long ends, so that one stuck agent
 * cannot stall the page; that agent is then reset or closed as it falls further behind. */
void rstream_tick(struct rsession *s, double now);

#endif
