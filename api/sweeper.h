/* Background housekeeping on its own thread: ends sessions past their expiry, forgets
 * idempotency keys older than 24 hours. Start and stop from the main thread. */
#ifndef COBROWSE_API_SWEEPER_H
#define COBROWSE_API_SWEEPER_H

#include "core/store/db.h"

int sweeper_start(struct db_pool *pool, int interval_seconds);
void sweeper_stop(void);

#endif
