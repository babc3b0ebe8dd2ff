/* The relay's database side, on two threads of its own so the relay thread never waits:
 * - the writer takes lifecycle events from a bounded queue and records them (session status and
 *   times, participants, session_events), retrying while the database is away: a participant
 *   whose "left" is lost would stay open for good;
 * - the listener LISTENs for ended sessions (trigger in migrations/002_relay.sql) and hands each
 *   to hooks.ended. At start, after every reconnect of its connection and on request, it reloads
 *   the sessions that ended meanwhile (a NOTIFY sent while nobody listened is lost), then calls
 *   hooks.reloaded.
 * The hooks run on the listener thread (at start, on the caller's); hooks.ended returns 0, or -1
 * when it could not take the id (out of memory): the listener then retries it, never drops it.
 * rworker_post and rworker_request_reload: any thread. */
#ifndef COBROWSE_CORE_RELAY_WORKER_H
#define COBROWSE_CORE_RELAY_WORKER_H

#include <stdint.h>

#include "core/relay/relay_core.h"

struct rworker;

struct rworker_hooks {
    void *ctx;
    int (*ended)(void *ctx, const char *session_id, const char *reason);
    void (*reloaded)(void *ctx); /* every session ended recently has gone through ended() */
};

/* Connects, LISTENs, loads the sessions ended in the last 25 hours (through hooks.ended, on this
 * thread), then starts both threads. NULL on failure (logged). */
struct rworker *rworker_start(const char *database_url, struct rworker_hooks hooks);
/* Records what is queued (while the database answers), stops both threads, frees w. */
void rworker_stop(struct rworker *w);
void rworker_post(struct rworker *w, enum relay_event_type type, const char *session_id,
                  const char *tenant_id, const char *agent_id, const char *agent_name);
/* Asks the listener for a full reload of recently ended sessions (the ended set lost one). */
void rworker_request_reload(struct rworker *w);
/* Events dropped because the queue was full (the database away for long). */
uint64_t rworker_dropped(const struct rworker *w);
/* The core's `events` seam over w. */
struct relay_events rworker_seam(struct rworker *w);

#endif
