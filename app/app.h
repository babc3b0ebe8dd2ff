/* The composition root: builds every service of `cobrowsed serve` from the options and runs them
 * through one lifecycle (app/lifecycle.h). Start order: the browser files, the stylesheet proxy
 * (its fetcher thread), the REST server (which mounts the files and serves the proxy), the session
 * sweeper (on the server's database pool), the webhook dispatcher (its own connections and
 * fetcher thread), the relay. Drain and stop run in reverse order, so the
 * relay sends its clients elsewhere while the REST API still answers.
 * `/metrics` shows every started service's metrics, in that order.
 *
 * Ownership: the app borrows cfg (it must outlive the app) and owns every service it builds.
 * Threading: main thread only; signals must be blocked before app_start (threads inherit it).
 */
#ifndef COBROWSE_APP_APP_H
#define COBROWSE_APP_APP_H

#include "api/server.h"
#include "app/config.h"
#include "app/lifecycle.h"

struct sweeper;
struct relay;
struct static_site;
struct proxy;
struct dispatcher;

struct app {
    struct config *cfg;
    struct server server;
    struct static_site *site;
    struct sweeper *sweeper;
    struct relay *relay;         /* NULL until its service starts */
    struct proxy *proxy;         /* the stylesheet proxy; NULL until its service starts */
    struct dispatcher *webhooks; /* the webhook dispatcher; NULL until its service starts */
    struct service services[6];
    struct lifecycle lifecycle;
};

/* Builds the services (nothing runs yet). */
void app_init(struct app *app, struct config *cfg);
/* Starts every service in order. Returns 0, or the failing service's negative code after those
 * already started were stopped (logged). */
int app_start(struct app *app);
/* Drains then stops every started service, in reverse order. Call it after app_start whatever
 * that returned (it also releases the lifecycle). */
void app_stop(struct app *app);

#endif
