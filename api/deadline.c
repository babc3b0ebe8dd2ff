#include "api/deadline.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "api/metrics.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"

/* One per open connection, owned by the list; freed when MHD says the connection closed, which
 * it does before closing the socket: while a node is in the list its fd is that connection's. */
struct conn {
    struct conn *prev, *next;
    MHD_socket fd;
    double deadline;        /* time_monotonic() by which the current request must complete */
    const atomic_int *busy; /* the owning thread's handler flag */
    int cut;                /* shut down already; MHD has yet to notice */
};

struct deadline {
    double seconds;
    pthread_mutex_t lock; /* guards the list, every node's deadline and cut, and stopping */
    pthread_cond_t wake;
    struct conn *head;
    int stopping, started;
    pthread_t thread;
};

/* Set while this thread runs a handler. MHD serves a connection on the thread that accepted it
 * (its notify STARTED runs there), so a node can point at its thread's flag. */
static _Thread_local atomic_int handler_busy;

void deadline_handler_enter(void)
{
    atomic_store_explicit(&handler_busy, 1, memory_order_relaxed);
}

void deadline_handler_leave(void)
{
    atomic_store_explicit(&handler_busy, 0, memory_order_relaxed);
}

struct deadline *deadline_new(double seconds)
{
    struct deadline *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->seconds = seconds;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->wake, NULL);
    return d;
}

void deadline_free(struct deadline *d)
{
    if (d == NULL)
        return;
    while (d->head != NULL) { /* none left once the daemon stopped; freed to be safe */
        struct conn *c = d->head;
        d->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
}

static void conn_started(struct deadline *d, struct MHD_Connection *conn, void **socket_context)
{
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL || fd == NULL) {
        /* Untracked, the connection still has MHD's inactivity timeout and the per-address
         * limit; refusing it would need a way to refuse from here, which MHD does not offer. */
        log_json(LOG_WARN, "connection not tracked by the request deadline",
                 json_pack("{s:s}", "error", c == NULL ? "out of memory" : "no socket"));
        free(c);
        return;
    }
    c->fd = fd->connect_fd;
    c->busy = &handler_busy;
    pthread_mutex_lock(&d->lock);
    c->deadline = time_monotonic() + d->seconds;
    c->next = d->head;
    if (d->head != NULL)
        d->head->prev = c;
    d->head = c;
    pthread_mutex_unlock(&d->lock);
    *socket_context = c;
    metrics_connection_opened();
}

void deadline_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode toe)
{
    struct deadline *d = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_started(d, conn, socket_context);
        return;
    }
    struct conn *c = *socket_context;
    if (c == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        d->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&d->lock);
    free(c);
    *socket_context = NULL;
    metrics_connection_closed();
}

void deadline_completed(struct deadline *d, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *c = info != NULL ? info->socket_context : NULL;
    if (c == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    c->deadline = time_monotonic() + d->seconds;
    pthread_mutex_unlock(&d->lock);
}

/* Shuts down every connection past its deadline whose thread is not in a handler. Called with
 * d->lock held. Returns how many. */
static int cut_late(struct deadline *d, double now)
{
    int n = 0;
    for (struct conn *c = d->head; c != NULL; c = c->next) {
        if (c->cut || now < c->deadline || atomic_load_explicit(c->busy, memory_order_relaxed) != 0)
            continue;
        /* shutdown, not close: the fd stays MHD's, its next poll sees the end and cleans up. */
        shutdown(c->fd, SHUT_RDWR);
        c->cut = 1;
        n++;
    }
    return n;
}

static void *watchdog(void *arg)
{
    struct deadline *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct timespec at;
        clock_gettime(CLOCK_REALTIME, &at);
        at.tv_nsec += (long)(DEADLINE_TICK_SECONDS * 1e9);
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&d->wake, &d->lock, &at);
        if (d->stopping || (rc != 0 && rc != ETIMEDOUT))
            continue;
        int n = cut_late(d, time_monotonic());
        if (n > 0) {
            pthread_mutex_unlock(&d->lock);
            metrics_connections_cut(n);
            log_json(LOG_WARN, "closed connections past the request deadline",
                     json_pack("{s:i, s:f}", "connections", n, "deadline_seconds", d->seconds));
            pthread_mutex_lock(&d->lock);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int deadline_start(struct deadline *d)
{
    if (pthread_create(&d->thread, NULL, watchdog, d) != 0) {
        log_json(LOG_ERROR, "cannot start the request deadline watchdog", NULL);
        return -1;
    }
    d->started = 1;
    return 0;
}

void deadline_stop(struct deadline *d)
{
    if (d == NULL || !d->started)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    d->started = 0;
}
