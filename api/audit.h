/* The audit trail's request side (docs/audit.md, migrations/010_audit.sql): who acts in this
 * request, told to the database so that the triggers that write the entries can record it, and
 * the /v1/audit_events routes (their prototypes are in api/routes.h).
 *
 * The actor is a session-level setting of the request's database connection
 * ('cobrowse.actor'): set before the request's first statement on a mutating route, cleared
 * before the connection goes back to the pool so that the sweeper or the next request never
 * inherits it. Threading: the request's own MHD thread, on its own http_ctx.
 */
#ifndef COBROWSE_API_AUDIT_H
#define COBROWSE_API_AUDIT_H

#include "api/http.h"

/* 1 if requests of this route change something, so their actor must be set (every method but
 * GET, HEAD and OPTIONS, off the proxy listener). */
int audit_route_mutates(const struct route *rt);
/* Sets the actor (c->who, the request id, the client's address) on c->db, which must be
 * acquired. Returns 0 or -1 (the statement failed; logged). */
int audit_set_actor(struct http_ctx *c);
/* Clears the actor from c->db if it was set; rolls back an open transaction first (the pool
 * would). Called once, before the connection is released. */
void audit_clear_actor(struct http_ctx *c);

#endif
