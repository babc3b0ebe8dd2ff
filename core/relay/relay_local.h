/* The single-node implementation of the core's `shared` seam: what admission reads across
 * sessions and tenants (live sessions per tenant, agents per session) comes from this node's
 * session tables, and budgets from an in-process GCRA table (core/base/ratelimit.h). A cluster
 * implementation (Redis) provides the same seam. Relay thread only. */
#ifndef COBROWSE_CORE_RELAY_LOCAL_H
#define COBROWSE_CORE_RELAY_LOCAL_H

#include "core/relay/relay_session.h"

struct rlocal;

/* Reads core's tables (core must outlive it). NULL on out of memory. */
struct rlocal *rlocal_new(struct rcore *core);
void rlocal_free(struct rlocal *l);
struct relay_shared rlocal_seam(struct rlocal *l);

#endif
