/* What the dispatcher's two files share (dispatch.h): core/webhook/dispatch.c (the thread:
 * claiming, signing, sending, the loop, retention) and core/webhook/dispatch_record.c (recording
 * each attempt and what follows from it). Threading: struct dispatcher belongs to the dispatcher
 * thread, except its counters (atomics, read by /metrics) and the done list (under mu, filled by
 * the fetcher thread); a struct flight is the dispatcher thread's but for res, which the
 * fetcher's callback fills before handing it back. */
#ifndef COBROWSE_CORE_WEBHOOK_DISPATCH_INTERNAL_H
#define COBROWSE_CORE_WEBHOOK_DISPATCH_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "core/net/fetch.h"
#include "core/store/db.h"
#include "core/webhook/dispatch.h"

#define EXCERPT_BYTES     512 /* of the receiver's answer, kept with the attempt */
#define LEASE_MARGIN_S    5   /* beyond the timeout: the fetcher's own slack and the recording */
#define POLL_MAX_MS       1000
#define RETENTION_EVERY_S 60.0
#define RETENTION_BATCH   "500" /* rows per pass: a short statement, however much is old */
#define CLAIM_MAX         64
#define ID_MAX            64

enum outcome { OUT_SUCCEEDED, OUT_RETRIED, OUT_FAILED, OUT_GONE, OUT_COUNT };
extern const char *const dispatch_outcome_names[OUT_COUNT];

/* One delivery attempt in flight: made and recorded by the dispatcher thread, filled by the
 * fetcher thread's callback in between. */
struct flight {
    struct flight *next;
    struct dispatcher *d;
    char delivery_id[ID_MAX], endpoint_id[ID_MAX], tenant_id[ID_MAX];
    int attempt; /* the delivery's attempts counting this one (the lease's mark) */
    struct fetch_result res;
};

struct dispatcher {
    struct dispatch_config cfg;
    char *database_url, *allow_private;
    unsigned char data_key[32];
    struct netguard *guard;
    struct fetcher *fetcher;
    struct db_pool *pool;
    PGconn *listen; /* LISTEN cobrowse_webhook; dispatcher thread only after start */
    double listen_retry_at;
    int wake_fd; /* eventfd: a result is queued, or stop */
    pthread_t thread;
    int running;
    atomic_int stopping;
    pthread_mutex_t mu;
    struct flight *done; /* results back from the fetcher; guarded by mu */
    int inflight;        /* dispatcher thread only */
    double next_retention;
    /* Read by /metrics on an HTTP worker. */
    atomic_ullong outcomes[OUT_COUNT], attempts, disabled, errors;
    atomic_int inflight_gauge;
    atomic_llong lag_ms;
};

/* ---- dispatch_record.c ---- */

/* Records every result the fetcher handed back (an attempt row, then the delivery's next
 * attempt or its end, the endpoint's state) and frees the flights; c NULL (no connection): the
 * leases expire and the deliveries are made again. Dispatcher thread. */
void dispatch_take_done(struct dispatcher *d, struct db_conn *c);
/* Runs a statement whose result is not needed; logs a failure. 0 or -1. */
int dispatch_exec(struct db_conn *c, struct db_stmt *q, int n, const char *const *p);

#endif
