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

#include "api/http.h"
#include "api/listen.h"
#include "core/store/db.h"
#include "core/base/ratelimit.h"

struct auth_cache;
struct proxy;
struct kv;

struct server {
    const struct api_config *cfg;
    struct db_pool *db;
    struct rl_table *key_limits;    /* requests per second per API key */
    struct rl_table *tenant_limits; /* new sessions per minute per tenant */
    struct auth_cache *auth;
    /* Set by the composition root (app/) before server_start, both optional. mount registers
     * handlers outside the JSON route table (the browser files, api/static/static.h) on
     * api.instance before the server listens: 0 or a negative code. metrics renders /metrics for
     * every service (a malloc'd text; NULL when out of memory); unset, /metrics shows the REST
     * server's own (metrics_render). Both run on the thread that calls them: mount on the
     * main thread, metrics on an HTTP worker. */
    struct proxy *proxy; /* the stylesheet proxy (core/proxy/proxy.h), or NULL: 503 */
    struct kv *kv;       /* the cluster's Redis (core/cluster/kv.h, --redis-url), or NULL */
    int (*mount)(struct server *srv, void *arg);
    void *mount_arg;
    char *(*metrics)(void *arg);
    void *metrics_arg;
    /* The relay's state for /readyz (optional; any HTTP worker calls it): 1 while it drains,
     * else 0 (-1: not running), with *redis set to -1 (one node), 1 (Redis reachable) or 0
     * (docs/cluster.md). */
    int (*relay_state)(void *arg, int *redis);
    void *relay_state_arg;
    struct listener api;            /* the REST API, the viewer's files (api/listen.h) */
    struct listener proxy_listener; /* ROUTE_PROXY_LISTENER routes */
};

extern const struct route server_routes[];
extern const int server_routes_count;

/* Opens the pool, builds the caches, registers the routes (and srv->mount's) and starts
 * listening. Returns 0 or -1 (logged); on -1 the caller still calls server_stop, which frees
 * whatever was built. cfg must outlive the server. */
int server_start(struct server *srv, const struct api_config *cfg);
/* Stops listening (waits for requests in flight) and frees everything; safe on a server that
 * never started or failed to. */
void server_stop(struct server *srv);

/* Prints the route table as a JSON array of {"method","path","operationId"} on stdout. */
void server_print_routes(void);

#endif
