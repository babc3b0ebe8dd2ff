/* Background housekeeping on its own thread: ends sessions past their expiry and forgets
 * idempotency keys older than 24 hours, every interval_seconds.
 *
 * Ownership: sweeper_new returns a sweeper the caller frees with sweeper_free (after
 * sweeper_stop); the pool is borrowed and must outlive the running thread.
 * Threading: new/start/stop/free from one thread (the main thread); sweeper_metrics_text from
 * any thread.
 */
#ifndef COBROWSE_API_SWEEPER_H
#define COBROWSE_API_SWEEPER_H

#include "core/store/db.h"

struct sweeper;

/* Returns NULL when out of memory. */
struct sweeper *sweeper_new(struct db_pool *pool, int interval_seconds);
/* Starts the thread (the first sweep runs at once). Returns 0 or -1 (logged). */
int sweeper_start(struct sweeper *sw);
/* Wakes the thread and joins it: a sweep in progress finishes first. Safe if never started. */
void sweeper_stop(struct sweeper *sw);
void sweeper_free(struct sweeper *sw);

/* Prometheus text of the sweeper's counters (malloc'd, caller frees; NULL when out of memory). */
char *sweeper_metrics_text(struct sweeper *sw);

#endif
