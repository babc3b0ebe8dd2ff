/* The relay's sessions: the session and tenant tables, connections joining (hello, then resume,
 * the page or a wait for it) and leaving, the end of a session, and the periodic work (idle and
 * token expiry, the node's memory ceiling) (docs/protocol.md). Owns every struct rsession and
 * frees it when it ends; connections stay the I/O layer's. Relay thread only. It reaches the
 * world only through the core's seams (core/relay/relay_core.h). The visitor's frames, acks,
 * fan-out and backpressure are core/relay/relay_stream.h; the history relay_history.h. */
#ifndef COBROWSE_CORE_RELAY_SESSION_H
#define COBROWSE_CORE_RELAY_SESSION_H

#include "core/relay/relay_control.h"
#include "core/relay/relay_stream.h"

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
/* Ends a session: it goes into the ended set, every connection gets session_ended and close
 * 4001, the state is freed. */
void rsession_end(struct rsession *s, const char *reason);
/* Frees this node's copy of a session nobody here is connected to, without ending it (in a
 * cluster, others may be). */
void rsession_forget(struct rsession *s);
/* Closes the session's visitor with 4002 (a newer one connected, here or on another node). */
void rsession_fence_visitor(struct rsession *s);
/* Tells the agents here that the visitor is connected (somewhere) or not. */
void rsession_visitor_state(struct rsession *s, int connected);
/* {"id", "name"} of an agent's connection (a new reference). */
json_t *rsession_agent_json(const struct rconn *a);
/* Periodic work (once a second): idle and token expiry, pauses, the memory ceiling. */
void rsession_tick(struct rcore *core);

#endif
