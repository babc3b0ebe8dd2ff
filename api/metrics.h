/* Prometheus metrics of the REST server: requests by route, method and status, a latency
 * histogram per route, and database pool gauges. Lock-free counters (atomics): any thread may
 * observe; metrics_render runs on the /metrics request's thread.
 */
#ifndef COBROWSE_API_METRICS_H
#define COBROWSE_API_METRICS_H

#include "core/store/db.h"

#define METRICS_MAX_ROUTES 64

/* route_index -1 for requests that matched no route. */
void metrics_observe(int route_index, int status, double seconds);

/* Returns a malloc'd text/plain exposition (caller frees). */
struct relay;
char *metrics_render(struct db_pool *pool, struct relay *relay);

#endif
