/* The REST server: the route table (every /v1 route lives in server.c's `routes`), the
 * dispatcher that runs the middleware chain around each handler, and start/stop.
 *
 * Middleware order: body size (413), authentication (401/403), per-key rate limit (429),
 * scope (403), content type (415), UTF-8 and JSON (400), acting tenant (400/403/404),
 * idempotency (409/422 or replay), handler. Every answer gets X-Request-Id, a log line and
 * metrics.
 * Threading: server_start/server_stop from the main thread; the dispatcher runs on MHD's pool.
 */
#ifndef COBROWSE_API_SERVER_H
#define COBROWSE_API_SERVER_H

#include <pthread.h>
#include <ulfius.h>

#include "app/config.h"
#include "api/http.h"
#include "core/store/db.h"
#include "core/base/ratelimit.h"

struct auth_cache;
struct static_site;

struct relay;

struct server {
    const struct config *cfg;
    struct db_pool *db;
    struct rl_table *key_limits;    /* requests per second per API key */
    struct rl_table *tenant_limits; /* new sessions per minute per tenant */
    struct auth_cache *auth;
    struct static_site *web; /* browser files (api/static.h), read-only once started */
    struct relay *relay;     /* its metrics on /metrics; set before server_start, may be NULL */
    struct _u_instance instance;
    int started;
};

extern const struct route server_routes[];
extern const int server_routes_count;

/* Opens the pool, builds the caches and starts listening. Returns 0 or -1 (logged). */
int server_start(struct server *srv, const struct config *cfg);
void server_stop(struct server *srv);

/* Prints the route table as a JSON array of {"method","path","operationId"} on stdout. */
void server_print_routes(void);

#endif
