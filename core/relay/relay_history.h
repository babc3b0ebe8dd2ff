/* A session's history (struct rsession's hist*): the frames from the latest snapshot on, kept by
 * reference, and what is sent from it to an agent that joins, resumes or falls behind
 * (docs/protocol.md, "History" and "Ordering, resume and fencing"). Owns the history's references;
 * the session owns the array. Relay thread only; reaches the world only through the core's seams.
 */
#ifndef COBROWSE_CORE_RELAY_HISTORY_H
#define COBROWSE_CORE_RELAY_HISTORY_H

#include "core/relay/relay_conn.h"

/* Drops every frame of the history (the array stays for reuse). */
void rhistory_clear(struct rsession *s);
/* 1 when the history starts at a snapshot and has no hole: a joiner can be given the page. */
int rhistory_usable(const struct rsession *s);
/* Stores an accepted frame (a new reference): a snapshot restarts the history (and with gap set,
 * tells the agents to reset); a history past history_bytes asks the visitor for a snapshot. */
void rhistory_store(struct rsession *s, struct rframe *f, int gap);
/* Sends the agent reset (with reason) and the whole history, and wakes it. */
void rhistory_replay(struct rconn *a, const char *reason);
/* Queues the frames after seq `after` for the agent and wakes it. */
void rhistory_resume(struct rconn *a, uint64_t after);
/* Asks the visitor for a snapshot, once until one arrives (or a new visitor connects). */
void rhistory_request_snapshot(struct rsession *s, const char *reason);

#endif
