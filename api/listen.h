/* One HTTP listener of the server: a ulfius instance on one address, its libmicrohttpd daemon
 * and its request deadline (api/deadline.h). The server has two (api/server.h):
 *   - the REST API's: a pool of worker threads, so handlers must never wait on anything slower
 *     than PostgreSQL;
 *   - the proxy's (--proxy-listen): a thread per connection, for the stylesheet proxy whose cache
 *     misses wait for an upstream server (seconds) and for visitors' stylesheet uploads (bodies up
 *     to HTTP_UPLOAD_BODY_BYTES, which the API's listener never buffers). A browser sends one
 *     request at a time per connection, so a wait holds only the connection that asked.
 *
 * Ownership: the listener owns its instance and deadline; spec's strings are read during
 * listen_init and listen_start only. Threading: everything here from the main thread.
 */
#ifndef COBROWSE_API_LISTEN_H
#define COBROWSE_API_LISTEN_H

#include <netinet/in.h>
#include <stddef.h>
#include <ulfius.h>

struct deadline;

struct listen_spec {
    const char *name;   /* for log lines: "api", "proxy" */
    const char *option; /* the flag that sets the address, for the error's hint: "--listen" */
    const char *host;   /* an IPv4 address, or "localhost" */
    int port;
    size_t max_body;        /* the largest body a route of this listener takes */
    int threads;            /* > 0: a pool of this many workers; 0: a thread per connection */
    int max_connections;    /* the whole listener */
    int per_ip;             /* one client address */
    double request_seconds; /* the request deadline */
};

struct listener {
    struct _u_instance instance;
    struct deadline *deadline;
    struct sockaddr_in addr;
    int initialised, started;
};

/* Reads the address, builds the instance (body limit, no post processing, no UTF-8 dropping) and
 * the deadline. Routes are added to l->instance after this. Returns 0 or -1 (logged). */
int listen_init(struct listener *l, const struct listen_spec *spec);
/* Starts the daemon and the deadline's watchdog. Returns 0 or -1 (logged). */
int listen_start(struct listener *l, const struct listen_spec *spec);
/* Stops (waiting for requests in flight) and frees; safe on a listener never initialised. */
void listen_stop(struct listener *l);

#endif
