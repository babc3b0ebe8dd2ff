/* One lifecycle for every service of the process (the REST server, the browser files, the
 * session sweeper, the relay, the stylesheet proxy's fetcher, the webhook dispatcher).
 *
 * A service is a small interface: start (0 or a negative code; a failing start releases what it
 * took itself), drain (stop taking new work and let work in flight finish, bounded by the
 * service's own grace period), stop (release everything; only called after a successful start),
 * metrics (Prometheus text, malloc'd). Every function but start and self may be NULL.
 *
 * lifecycle_start starts services in the order they were added; if one fails, those already
 * started are stopped in reverse order and its code is returned. lifecycle_drain drains every
 * started service in reverse order (the last started first: the relay tells its clients to
 * reconnect while the REST API still answers); lifecycle_stop stops them in reverse order.
 *
 * Ownership: the lifecycle borrows the services (they must outlive it). Threading: add, start,
 * drain and stop from the main thread; lifecycle_metrics from any thread once started (each
 * service's metrics function must allow that).
 */
#ifndef COBROWSE_APP_LIFECYCLE_H
#define COBROWSE_APP_LIFECYCLE_H

#include <pthread.h>

#define LIFECYCLE_MAX_SERVICES 16

struct service {
    const char *name; /* in log lines: "api", "static", "sweeper", "relay" */
    int (*start)(void *self);
    void (*drain)(void *self);
    void (*stop)(void *self);
    char *(*metrics)(void *self);
    void *self;
};

struct lifecycle {
    const struct service *services[LIFECYCLE_MAX_SERVICES];
    int count;
    int started; /* how many of services[] are running (a prefix); guarded by lock */
    /* Held while metrics are rendered and while started changes, so that /metrics (on an HTTP
     * worker) never asks a service that is being stopped. Never held across start or stop. */
    pthread_mutex_t lock;
};

void lifecycle_init(struct lifecycle *lc);
/* After lifecycle_stop. */
void lifecycle_destroy(struct lifecycle *lc);
/* Returns 0, or -1 when the table is full or the service lacks start. */
int lifecycle_add(struct lifecycle *lc, const struct service *svc);
int lifecycle_start(struct lifecycle *lc);
void lifecycle_drain(struct lifecycle *lc);
void lifecycle_stop(struct lifecycle *lc);
/* fn(self) of the service named `name` while it runs (under the lock that start and stop take,
 * so the service cannot stop meanwhile), else `otherwise`. Any thread. */
int lifecycle_query(struct lifecycle *lc, const char *name, int (*fn)(void *self), int otherwise);
/* Every started service's metrics, in start order, in one malloc'd text (caller frees); NULL
 * when out of memory. A service whose metrics fail is skipped (logged). */
char *lifecycle_metrics(struct lifecycle *lc);

#endif
