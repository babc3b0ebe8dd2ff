/* The webhook dispatcher (docs/webhooks.md, "Delivery"): one thread per node that claims due
 * deliveries in PostgreSQL (FOR UPDATE SKIP LOCKED and a lease, so nodes share the work and a
 * killed node's leases expire), signs them (sign.h), POSTs them with its own fetcher thread
 * (core/net/fetch.h: the SSRF guard, no redirects, a timeout) and records every attempt, the
 * next one by the schedule (schedule.h), or the end: succeeded, failed, the endpoint disabled
 * (410, or failing longer than disable_after) with a webhook_endpoint.disabled event. It wakes on
 * NOTIFY cobrowse_webhook and at least every second, and deletes events past the retention.
 *
 * Ownership: dispatch_new copies cfg (strings and the data key included); the caller frees the
 * dispatcher with dispatch_free. Threading: new, start, stop and free from one thread (the
 * composition root); dispatch_metrics_text from any thread. Only the dispatcher thread touches
 * the database: the fetcher's callbacks hand results back through a queue.
 */
#ifndef COBROWSE_CORE_WEBHOOK_DISPATCH_H
#define COBROWSE_CORE_WEBHOOK_DISPATCH_H

#include "core/webhook/schedule.h"

struct dispatcher;

struct dispatch_config {
    const char *database_url;
    const unsigned char *data_key; /* 32 bytes: opens the endpoints' sealed secrets */
    const char *allow_private;     /* --webhook-allow-private: CIDRs, "" none */
    int concurrency;               /* deliveries in flight */
    int timeout_ms;                /* one attempt */
    struct schedule schedule;
    long long disable_after_ms; /* an endpoint failing this long is disabled */
    int retention_days;
};

/* Connects (one connection for the work, one for LISTEN) and builds the fetcher's guard.
 * Returns NULL (logged) on failure. */
struct dispatcher *dispatch_new(const struct dispatch_config *cfg);
/* Starts the fetcher and the dispatcher thread. 0 or -1 (logged). */
int dispatch_start(struct dispatcher *d);
/* Stops the thread: deliveries in flight are abandoned and their leases released (their attempt
 * not counted), so a restarted node sends them again at once. Safe if never started. */
void dispatch_stop(struct dispatcher *d);
/* Stops if needed, then frees. NULL-safe. */
void dispatch_free(struct dispatcher *d);

/* Prometheus text (malloc'd, caller frees; NULL when out of memory): deliveries by outcome,
 * attempts, in flight, queue lag. */
char *dispatch_metrics_text(struct dispatcher *d);

#endif
