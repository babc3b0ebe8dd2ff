/* Prometheus metrics of the REST server: requests by route, method and status, a latency
 * histogram per route, and database pool gauges. Lock-free counters (atomics): any thread may
 * observe; metrics_render runs on the /metrics request's thread.
 */
#ifndef COBROWSE_API_METRICS_H
#define COBROWSE_API_METRICS_H

#include <sys/socket.h>

#include "core/store/db.h"

#define METRICS_MAX_ROUTES 64

/* route_index -1 for requests that matched no route. */
void metrics_observe(int route_index, int status, double seconds);

/* Connections of the REST listener (api/deadline.c): opened, closed, and shut down because their
 * request missed its deadline. */
void metrics_connection_opened(void);
void metrics_connection_closed(void);
void metrics_connections_cut(int n);

/* Who may read /metrics. The counters tell an outsider the traffic of every tenant, the routes
 * in use and the pool's load, so the public listener must not hand them out:
 * - with a scrape token configured (COBROWSE_METRICS_TOKEN), only requests with
 *   `Authorization: Bearer <token>` (compared in constant time), from any address;
 * - without one, only clients on a loopback address (127.0.0.0/8, ::1): a Prometheus or an
 *   operator on the same host keeps working with no setup, nobody else gets them. A reverse
 *   proxy on the same host connects from loopback too: behind one, configure a token.
 * Pure: any thread. token "" means none configured; authorization and peer may be NULL. */
enum metrics_access {
    METRICS_ALLOWED = 0,
    METRICS_TOKEN_MISSING, /* a token is configured; the request has no bearer token (401) */
    METRICS_TOKEN_WRONG,   /* a token is configured; the request's is another one (401) */
    METRICS_NOT_LOOPBACK,  /* no token configured and the client is not on loopback (403) */
};
enum metrics_access metrics_access(const char *token, const char *authorization,
                                   const struct sockaddr *peer);

/* Returns a malloc'd text/plain exposition (caller frees). */
char *metrics_render(struct db_pool *pool);

#endif
