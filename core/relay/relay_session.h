/* The relay's session logic: sequence numbers, history, resume, fan-out, backpressure, the
 * node's memory ceiling, idle and token expiry (docs/protocol.md). Relay thread only. It reaches
 * the world only through the core's seams (core/relay/relay_core.h). */
#ifndef COBROWSE_CORE_RELAY_SESSION_H
#define COBROWSE_CORE_RELAY_SESSION_H

#include "core/relay/relay_control.h"

/* The session tables of core (empty); 0 or -1 (out of memory). */
int rsession_tables_init(struct rcore *core);
/* Frees every session (without telling anyone) and the tables. */
void rsession_tables_free(struct rcore *core);

struct rsession *rsession_find(struct rcore *core, const char *id);
/* Finds or creates the session of claims; *created tells which. NULL on out of memory. */
struct rsession *rsession_get(struct rcore *core, const struct token_claims *claims, int *created);
int rsession_count_tenant(struct rcore *core, const char *tenant);
/* Calls fn for every live session (fn may end the session). */
void rsession_foreach(struct rcore *core, void (*fn)(struct rsession *s, void *arg), void *arg);

/* A connection joins its session after the upgrade: sends hello, history or reset. */
void rsession_attach(struct rsession *s, struct rconn *c);
/* A connection left; the session may become idle (and is freed when ended). */
void rsession_detach(struct rconn *c);
/* A complete binary message from the visitor c (takes ownership of f). */
void rsession_visitor_frame(struct rconn *c, struct rframe *f);
/* The ack the visitor c is due, as a text frame (a reference for the caller), or NULL when none
 * is due; called by the I/O layer at each writeable. */
struct rframe *rsession_take_ack(struct rconn *c);
/* Ends a session: it goes into the ended set, every connection gets session_ended and close
 * 4001, the state is freed. */
void rsession_end(struct rsession *s, const char *reason);
/* An agent's queue shrank: resume the visitor's reads if every agent has room again. */
void rsession_agent_drained(struct rconn *a);
/* Periodic work (once a second): idle and token expiry, pauses, the memory ceiling. */
void rsession_tick(struct rcore *core);

#endif
