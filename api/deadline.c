#include "api/deadline.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "api/metrics.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"

/* FIRST: accepted, its first request must complete within the deadline of the accept.
 * IDLE: a request completed; the connection may wait for the next one (MHD's inactivity timeout
 * ends it when nothing comes). Cutting idle keep-alive connections early would race clients
 * that reuse them (a request sent as the server closes fails, and POSTs are not retried).
 * ACTIVE: bytes arrived after the last answer: the next request has begun and has the deadline. */
enum conn_phase { PHASE_FIRST, PHASE_IDLE, PHASE_ACTIVE };

/* One per open connection, owned by the list; freed when MHD says the connection closed, which
 * it does before closing the socket: while a node is in the list its fd is that connection's. */
struct conn {
    struct conn *prev, *next;
    MHD_socket fd;
    double started;            /* time_monotonic() when the current request's clock started */
    double busy_base;          /* its thread's busy_seconds() then */
    struct thread_busy *owner; /* the thread that serves this connection */
    enum conn_phase phase;
    int cut; /* shut down already; MHD has yet to notice */
};

struct deadline {
    double seconds;
    enum deadline_clock clock;
    pthread_mutex_t lock; /* guards the list, every node's clock, phase and cut, and stopping */
    pthread_cond_t wake;
    struct conn *head;
    int stopping, started;
    pthread_t thread;
};

/* Time a thread spent running handlers. A connection is charged only the time its thread was
 * free to read it: when the server is overloaded and a thread's connections queue behind its
 * handlers, the wait is the server's, and cutting those connections would turn slow answers into
 * failed ones. MHD serves a connection on the thread that accepted it (its notify STARTED runs
 * there), so a node can point at that thread's counters. Written by the owning thread only; the
 * watchdog reads them (a torn read overstates busy time, so it can only spare a connection). */
struct thread_busy {
    _Atomic double total; /* seconds in handlers that have returned */
    _Atomic double since; /* time_monotonic() when the running handler started, 0 if none */
};
static _Thread_local struct thread_busy thread_busy;

void deadline_handler_enter(void)
{
    atomic_store_explicit(&thread_busy.since, time_monotonic(), memory_order_relaxed);
}

void deadline_handler_leave(void)
{
    double since = atomic_load_explicit(&thread_busy.since, memory_order_relaxed);
    double total = atomic_load_explicit(&thread_busy.total, memory_order_relaxed);
    if (since > 0)
        atomic_store_explicit(&thread_busy.total, total + (time_monotonic() - since),
                              memory_order_relaxed);
    atomic_store_explicit(&thread_busy.since, 0, memory_order_relaxed);
}

static double busy_seconds(struct thread_busy *t, double now)
{
    if (t == NULL) /* DEADLINE_WALL_TIME */
        return 0;
    double since = atomic_load_explicit(&t->since, memory_order_relaxed);
    return atomic_load_explicit(&t->total, memory_order_relaxed) + (since > 0 ? now - since : 0);
}

/* Starts c's clock. Called with d->lock held. */
static void clock_restart(struct conn *c)
{
    c->started = time_monotonic();
    c->busy_base = busy_seconds(c->owner, c->started);
}

struct deadline *deadline_new(double seconds, enum deadline_clock clock)
{
    struct deadline *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->seconds = seconds;
    d->clock = clock;
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
    c->owner = d->clock == DEADLINE_SERVED_TIME ? &thread_busy : NULL;
    c->phase = PHASE_FIRST;
    pthread_mutex_lock(&d->lock);
    clock_restart(c);
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
    clock_restart(c);
    c->phase = PHASE_IDLE;
    pthread_mutex_unlock(&d->lock);
}

/* For an idle connection: whether bytes arrived since its last answer, from the kernel's count of
 * the time since the socket last received data (MHD reads them at once, so the socket's buffer
 * cannot tell). If so the connection becomes ACTIVE, its clock started when those bytes came
 * (within one tick for a request's first bytes). One getsockopt per idle connection and tick. */
static void notice_activity(struct conn *c, double now)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
        return;
    /* The kernel counts in jiffies (up to 10 ms): bytes within 50 ms of the answer may be the
     * answered request's own. A request trickled from then on shows with its next byte. */
    double ago = ti.tcpi_last_data_recv / 1000.0;
    if (ago + 0.05 >= now - c->started)
        return;
    c->phase = PHASE_ACTIVE;
    c->started = now - ago;
    c->busy_base = busy_seconds(c->owner, now);
}

/* Shuts down every connection whose thread has been free to serve it for d->seconds since its
 * clock started. Called with d->lock held. Returns how many. */
static int cut_late(struct deadline *d, double now)
{
    int n = 0;
    for (struct conn *c = d->head; c != NULL; c = c->next) {
        if (c->phase == PHASE_IDLE)
            notice_activity(c, now);
        if (c->cut || c->phase == PHASE_IDLE || now - c->started < d->seconds ||
            now - c->started - (busy_seconds(c->owner, now) - c->busy_base) < d->seconds)
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
