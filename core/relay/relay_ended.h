/* The set of sessions known to have ended on this node (their tokens are refused at the
 * handshake), forgotten after longer than any token lives. The single-node implementation of the
 * core's `ended` seam (rended_seam). Not thread-safe: the relay thread owns it (other threads
 * report ended sessions through the relay's inbox, core/relay/relay.c).
 *
 * Fails closed: when an id cannot be stored (out of memory) the set becomes "lossy" and answers
 * -1 (unknown) for every id it does not hold, until rended_reloaded() says a full reload from the
 * database has put back everything that ended recently. */
#ifndef COBROWSE_CORE_RELAY_ENDED_H
#define COBROWSE_CORE_RELAY_ENDED_H

#include "core/relay/relay_core.h"

struct rended;

struct rended *rended_new(void);
void rended_free(struct rended *e);
/* 0, or -1 (out of memory: the set is lossy from now on). `at` is wall seconds. */
int rended_add(struct rended *e, const char *session_id, double at);
/* 1 ended, 0 not, -1 unknown (lossy and not held). */
int rended_contains(const struct rended *e, const char *session_id);
/* Forgets entries older than tokens live (wall seconds). */
void rended_expire(struct rended *e, double now);
/* 1 while an add has failed since the last full reload. */
int rended_lossy(const struct rended *e);
/* A reload of every recently ended session has completed: the set is whole again. */
void rended_reloaded(struct rended *e);
/* The seam of core/relay/relay_core.h over e, with the wall clock of `clock`. */
struct relay_ended_set rended_seam(struct rended *e, const struct relay_clock *clock);

#endif
