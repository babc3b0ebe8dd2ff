/* The request deadline of the REST listener. libmicrohttpd has only an inactivity timeout, so a
 * client that trickles one byte of its headers every few seconds keeps its connection for ever,
 * and a few thousand of them keep everyone else (and /healthz) out. This module tracks every
 * connection (MHD_OPTION_NOTIFY_CONNECTION), and a watchdog thread shuts down (shutdown(2)) the
 * socket of every connection whose request has not completed within `seconds`: a new connection's
 * first request from the accept, a keep-alive connection's next request from its first bytes
 * (the kernel's TCP_INFO tells when bytes last arrived; the server's MHD_OPTION_NOTIFY_COMPLETED
 * calls deadline_completed to end a request). An idle keep-alive connection, with no byte of a
 * next request, is left to MHD's inactivity timeout: closing it early races clients that reuse
 * it. MHD sees the shut-down socket end and closes the connection on its own thread. Only the
 * time the connection's thread was free to serve it counts (time spent in handlers, this
 * connection's or others', does not): when the server is the slow party, its clients are not cut.
 * A listener with a thread per connection counts wall time instead (enum deadline_clock).
 *
 * Cost: one list node per connection (O(1) add and remove under one mutex) and a walk of all
 * connections every DEADLINE_TICK_SECONDS on the watchdog thread, with one getsockopt per idle
 * keep-alive connection.
 *
 * Threading: deadline_new/start/stop/free on the main thread (start once the daemon runs, stop
 * before stopping the daemon, free after it stopped); deadline_notify and deadline_completed on
 * MHD's threads; deadline_handler_enter/leave on the thread running a request's handler.
 */
#ifndef COBROWSE_API_DEADLINE_H
#define COBROWSE_API_DEADLINE_H

#include <microhttpd.h>

#define DEADLINE_TICK_SECONDS 0.25

struct deadline;

/* What a request's clock counts. */
enum deadline_clock {
    /* The time the connection's thread was free to serve it (a pool of workers, each serving
     * many connections: the REST API's listener). */
    DEADLINE_SERVED_TIME,
    /* Wall time, handlers included (a thread per connection, whose handlers may wait: the proxy
     * listener, whose longest wait, --proxy-timeout-ms, stays under the deadline). */
    DEADLINE_WALL_TIME,
};

/* Returns a tracker for seconds (> 0), or NULL when out of memory. */
struct deadline *deadline_new(double seconds, enum deadline_clock clock);
/* Starts the watchdog thread. Returns 0 or -1 (logged). */
int deadline_start(struct deadline *d);
/* Stops the watchdog thread (no-op if it never started). */
void deadline_stop(struct deadline *d);
/* Frees the tracker; every connection must have been closed (the daemon stopped). NULL is ok. */
void deadline_free(struct deadline *d);

/* An MHD_NotifyConnectionCallback: pass it with MHD_OPTION_NOTIFY_CONNECTION and the tracker as
 * its closure. */
void deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe);
/* A request of conn completed (answered, or abandoned): its next request gets a fresh deadline. */
void deadline_completed(struct deadline *d, struct MHD_Connection *conn);

/* Brackets a handler on the calling thread (api/http.c's http_ctx_init/finish). */
void deadline_handler_enter(void);
void deadline_handler_leave(void);

#endif
