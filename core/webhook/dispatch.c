/* The webhook dispatcher thread (dispatch.h).
 *
 * One loop on the dispatcher thread: record the results the fetcher handed back, claim as many
 * due deliveries as there are free slots, launch them, delete old events now and then, then wait
 * for a result, a NOTIFY or the next due time (at most a second). The fetcher thread only queues
 * results (on_fetched): every SQL statement runs here, on the dispatcher's own connection.
 * Recording a result is in dispatch_record.c.
 */
#include "core/webhook/dispatch.h"

#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/base/crypto.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/net/fetch.h"
#include "core/net/netguard.h"
#include "core/store/db.h"
#include "core/webhook/sign.h"

#include "core/webhook/dispatch_internal.h"

/* ---- results from the fetcher thread ---- */

static void wake(struct dispatcher *d)
{
    uint64_t one = 1;
    if (write(d->wake_fd, &one, sizeof one) < 0) {
        /* The counter only saturates; the loop polls every second anyway. */
    }
}

static void push_done(struct dispatcher *d, struct flight *fl)
{
    pthread_mutex_lock(&d->mu);
    fl->next = d->done;
    d->done = fl;
    pthread_mutex_unlock(&d->mu);
    wake(d);
}

/* Fetcher thread: keeps the result and hands the flight back; nothing else. r is not const: the
 * signature is fetch_done_fn's, whose callbacks take r's strings. */
// cppcheck-suppress constParameter
static void on_fetched(void *arg, struct fetch_result *r)
{
    struct flight *fl = arg;
    fl->res = *r;
    push_done(fl->d, fl);
}

/* ---- claiming and sending (dispatcher thread) ---- */

/* Opens a sealed secret (hex of crypto_seal's output, the endpoint's id as associated data). */
static int open_secret(const struct dispatcher *d, const char *hex, const char *endpoint_id,
                       unsigned char out[SIGN_SECRET_LEN])
{
    unsigned char sealed[SIGN_SECRET_LEN + CRYPTO_SEAL_OVERHEAD + 16];
    int n = crypto_hex_decode(hex, sealed, sizeof sealed);
    if (n < 0)
        return -1;
    int len = crypto_open(d->data_key, sealed, (size_t)n, endpoint_id, strlen(endpoint_id), out,
                          SIGN_SECRET_LEN);
    return len == SIGN_SECRET_LEN ? 0 : -1;
}

/* Signs and submits one claimed row (columns of q_claim). A flight that cannot leave is
 * recorded as a failed attempt like any other. */
static void launch(struct dispatcher *d, const PGresult *r, int row)
{
    struct flight *fl = calloc(1, sizeof *fl);
    if (fl == NULL)
        return; /* the lease expires: made again later */
    fl->d = d;
    snprintf(fl->delivery_id, ID_MAX, "%s", PQgetvalue(r, row, 0));
    fl->attempt = atoi(PQgetvalue(r, row, 1));
    snprintf(fl->endpoint_id, ID_MAX, "%s", PQgetvalue(r, row, 2));
    snprintf(fl->tenant_id, ID_MAX, "%s", PQgetvalue(r, row, 3));
    const char *url = PQgetvalue(r, row, 4), *event_id = PQgetvalue(r, row, 7);
    const char *body = PQgetvalue(r, row, 8);
    d->inflight++;
    unsigned char secret[SIGN_SECRET_LEN], previous[SIGN_SECRET_LEN];
    char sig[SIGN_HEADER_SIZE], h_id[ID_MAX + 16], h_ts[48], h_sig[SIGN_HEADER_SIZE + 32];
    int has_prev = !PQgetisnull(r, row, 6) &&
                   open_secret(d, PQgetvalue(r, row, 6), fl->endpoint_id, previous) == 0;
    long long ts = (long long)time(NULL);
    int rc = -FETCH_E_OTHER;
    if (open_secret(d, PQgetvalue(r, row, 5), fl->endpoint_id, secret) != 0)
        log_json(LOG_ERROR, "webhook secret cannot be opened (wrong COBROWSE_DATA_KEY?)",
                 json_pack("{s:s}", "endpoint_id", fl->endpoint_id));
    else if (sign_header(secret, has_prev ? previous : NULL, event_id, ts, body, strlen(body),
                         sig) == 0) {
        snprintf(h_id, sizeof h_id, "webhook-id: %s", event_id);
        snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", ts);
        snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
        const char *headers[] = {"content-type: application/json", h_id, h_ts, h_sig, NULL};
        struct fetch_request req = {.url = url,
                                    .method = "POST",
                                    .body = body,
                                    .body_len = strlen(body),
                                    .headers = headers};
        rc = fetcher_submit(d->fetcher, &req, on_fetched, fl);
    }
    explicit_bzero(secret, sizeof secret); /* no secret outlives its signature */
    explicit_bzero(previous, sizeof previous);
    if (rc != 0) {
        fl->res.error = (enum fetch_error)(-rc);
        push_done(d, fl);
    }
}

/* Claims up to want due deliveries (lease, attempt counted) and launches them; returns how many,
 * or -1. The envelope is built here in SQL so that its key order is fixed (docs/webhooks.md,
 * "The envelope"). */
static int claim(struct dispatcher *d, struct db_conn *c, int want)
{
    static struct db_stmt q_claim = {
        "webhook_claim",
        "WITH due AS (SELECT d.id FROM webhook_deliveries d "
        "  JOIN webhook_endpoints e ON e.id = d.endpoint_id "
        "  WHERE d.status = 'pending' AND d.next_attempt_at <= now() "
        "    AND (d.locked_until IS NULL OR d.locked_until < now()) "
        "    AND e.enabled AND e.deleted_at IS NULL "
        "  ORDER BY d.next_attempt_at LIMIT $1::int FOR UPDATE OF d SKIP LOCKED) "
        "UPDATE webhook_deliveries d SET attempts = d.attempts + 1, updated_at = "
        "clock_timestamp(), "
        "  locked_until = now() + make_interval(secs => $2::float8) "
        "FROM due, webhook_endpoints e, webhook_events ev "
        "WHERE d.id = due.id AND e.id = d.endpoint_id AND ev.id = d.event_id "
        "RETURNING d.id, d.attempts, e.id, e.tenant_id, e.url, encode(e.secret_sealed, 'hex'), "
        "  CASE WHEN e.previous_until > now() THEN encode(e.previous_sealed, 'hex') END, ev.id, "
        "  '{\"id\":' || to_json(ev.id)::text || ',\"type\":' || to_json(ev.type)::text || "
        "  ',\"timestamp\":' || to_json(to_char(ev.created_at AT TIME ZONE 'UTC', "
        "    'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))::text || "
        "  ',\"tenant_id\":' || to_json(ev.tenant_id)::text || "
        "  ',\"session_id\":' || COALESCE(to_json(ev.session_id)::text, 'null') || "
        "  ',\"seq\":' || COALESCE(ev.seq::text, 'null') || ',\"data\":' || ev.data::text || '}', "
        "  (extract(epoch FROM now() - d.next_attempt_at) * 1000)::bigint",
        0};
    char n[16], lease[32];
    snprintf(n, sizeof n, "%d", want);
    snprintf(lease, sizeof lease, "%d", d->cfg.timeout_ms / 1000 + LEASE_MARGIN_S);
    const char *p[] = {n, lease};
    PGresult *r = db_exec(c, &q_claim, 2, p);
    if (!db_ok(r)) {
        log_json(LOG_WARN, "webhook claim failed",
                 json_pack("{s:s}", "error", r != NULL ? PQresultErrorMessage(r) : "no memory"));
        PQclear(r);
        return -1;
    }
    int rows = PQntuples(r);
    long long lag = 0;
    for (int i = 0; i < rows; i++) {
        long long l = atoll(PQgetvalue(r, i, 9));
        lag = l > lag ? l : lag;
        launch(d, r, i);
    }
    if (rows > 0)
        atomic_store(&d->lag_ms, lag);
    PQclear(r);
    atomic_store(&d->inflight_gauge, d->inflight);
    return rows;
}

/* Milliseconds until the next pending delivery falls due (POLL_MAX_MS when none sooner). */
static int next_due_ms(struct db_conn *c)
{
    static struct db_stmt q_next = {
        "webhook_next_due",
        "SELECT (extract(epoch FROM min(next_attempt_at) - now()) * 1000)::bigint "
        "FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at > now()",
        0};
    PGresult *r = db_exec(c, &q_next, 0, NULL);
    int ms = POLL_MAX_MS;
    if (db_ok(r) && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        long long v = atoll(PQgetvalue(r, 0, 0));
        ms = v < 1 ? 1 : v < POLL_MAX_MS ? (int)v : POLL_MAX_MS;
    }
    PQclear(r);
    return ms;
}

/* Deletes a batch of events past the retention (their deliveries and attempts go with them),
 * once no delivery of them is pending. */
static void retention(struct dispatcher *d, struct db_conn *c)
{
    static struct db_stmt q_old = {
        "webhook_retention",
        "DELETE FROM webhook_events WHERE id IN (SELECT ev.id FROM webhook_events ev "
        "WHERE ev.created_at < now() - make_interval(days => $1::int) AND NOT EXISTS "
        "(SELECT 1 FROM webhook_deliveries d WHERE d.event_id = ev.id AND d.status = 'pending') "
        "ORDER BY ev.created_at LIMIT " RETENTION_BATCH ")",
        0};
    double now = time_monotonic();
    if (now < d->next_retention)
        return;
    d->next_retention = now + RETENTION_EVERY_S;
    char days[16];
    snprintf(days, sizeof days, "%d", d->cfg.retention_days);
    const char *p[] = {days};
    PGresult *r = db_exec(c, &q_old, 1, p);
    if (db_ok(r) && atoi(PQcmdTuples(r)) > 0)
        log_json(LOG_INFO, "old webhook events deleted",
                 json_pack("{s:i}", "count", atoi(PQcmdTuples(r))));
    PQclear(r);
}

/* ---- the loop ---- */

static PGconn *listen_connect(const char *url)
{
    PGconn *pg = PQconnectdb(url);
    PGresult *r = NULL;
    if (PQstatus(pg) == CONNECTION_OK)
        r = PQexec(pg, "LISTEN cobrowse_webhook");
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        log_json(LOG_WARN, "webhook LISTEN connection failed",
                 json_pack("{s:s}", "error", pg != NULL ? PQerrorMessage(pg) : "no memory"));
        PQclear(r);
        PQfinish(pg);
        return NULL;
    }
    PQclear(r);
    return pg;
}

/* Waits up to ms for a result, a NOTIFY or stop; reconnects LISTEN (the poll covers the gap). */
static void wait_for_work(struct dispatcher *d, int ms)
{
    if ((d->listen == NULL || PQstatus(d->listen) != CONNECTION_OK) &&
        time_monotonic() >= d->listen_retry_at) {
        PQfinish(d->listen);
        d->listen = listen_connect(d->database_url);
        d->listen_retry_at = time_monotonic() + 1.0;
    }
    struct pollfd p[2] = {{.fd = d->wake_fd, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    if (d->listen != NULL && PQstatus(d->listen) == CONNECTION_OK)
        p[1].fd = PQsocket(d->listen);
    if (poll(p, 2, ms) <= 0)
        return;
    uint64_t v;
    if (p[0].revents != 0 && read(d->wake_fd, &v, sizeof v) < 0) {
        /* EAGAIN: another read took it. */
    }
    if (p[1].revents != 0 && PQconsumeInput(d->listen)) {
        PGnotify *n;
        while ((n = PQnotifies(d->listen)) != NULL)
            PQfreemem(n); /* the payload is empty: a NOTIFY only says "look" */
    }
}

/* One turn: record, claim, clean up; returns how long to wait. */
static int turn(struct dispatcher *d)
{
    struct db_conn *c = db_acquire(d->pool, 1000);
    dispatch_take_done(d, c);
    if (c == NULL)
        return POLL_MAX_MS;
    int wait = POLL_MAX_MS, free_slots = d->cfg.concurrency - d->inflight;
    if (free_slots > 0) {
        int want = free_slots < CLAIM_MAX ? free_slots : CLAIM_MAX;
        int got = claim(d, c, want);
        wait = got == want ? 0 : got >= 0 ? next_due_ms(c) : POLL_MAX_MS;
    }
    retention(d, c);
    db_release(d->pool, c);
    return wait;
}

static void *run(void *arg)
{
    struct dispatcher *d = arg;
    while (!atomic_load(&d->stopping)) {
        int wait = turn(d);
        if (wait > 0 && !atomic_load(&d->stopping))
            wait_for_work(d, wait);
    }
    /* In-flight attempts end with FETCH_E_SHUTDOWN; their leases are given back. */
    fetcher_stop(d->fetcher);
    d->fetcher = NULL;
    struct db_conn *c = db_acquire(d->pool, 1000);
    dispatch_take_done(d, c);
    if (c != NULL)
        db_release(d->pool, c);
    return NULL;
}

/* ---- public API ---- */

struct dispatcher *dispatch_new(const struct dispatch_config *cfg)
{
    char err[256] = "";
    struct dispatcher *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->cfg = *cfg;
    d->wake_fd = -1;
    pthread_mutex_init(&d->mu, NULL);
    memcpy(d->data_key, cfg->data_key, sizeof d->data_key);
    d->database_url = strdup(cfg->database_url != NULL ? cfg->database_url : "");
    d->allow_private = strdup(cfg->allow_private != NULL ? cfg->allow_private : "");
    d->cfg.database_url = d->database_url;
    d->cfg.allow_private = d->allow_private;
    d->cfg.data_key = d->data_key;
    if (d->database_url == NULL || d->allow_private == NULL)
        goto fail;
    if (netguard_new(d->allow_private, &d->guard, err, sizeof err) != 0) {
        log_json(LOG_ERROR, "webhook dispatcher: bad --webhook-allow-private",
                 json_pack("{s:s}", "error", err));
        goto fail;
    }
    d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->pool = db_pool_new(d->database_url, 1);
    if (d->wake_fd < 0 || d->pool == NULL)
        goto fail;
    d->listen = listen_connect(d->database_url); /* retried by the loop when NULL */
    return d;
fail:
    log_json(LOG_ERROR, "webhook dispatcher could not be built", NULL);
    dispatch_free(d);
    return NULL;
}

int dispatch_start(struct dispatcher *d)
{
    struct fetch_config fc = {
        .guard = d->guard,
        .connect_timeout_ms = d->cfg.timeout_ms,
        .total_timeout_ms = d->cfg.timeout_ms,
        .max_bytes = EXCERPT_BYTES,
        .max_redirects = 0,
        .max_parallel = d->cfg.concurrency,
        .max_queued = d->cfg.concurrency,
        .user_agent = "cobrowsed-webhooks/1",
        .no_redirects = 1,
        .keep_prefix = 1,
    };
    d->fetcher = fetcher_start(&fc);
    if (d->fetcher == NULL)
        return -1;
    atomic_store(&d->stopping, 0);
    if (pthread_create(&d->thread, NULL, run, d) != 0) {
        log_json(LOG_ERROR, "cannot start the webhook dispatcher", NULL);
        fetcher_stop(d->fetcher);
        d->fetcher = NULL;
        return -1;
    }
    d->running = 1;
    log_json(LOG_INFO, "webhook dispatcher started",
             json_pack("{s:i,s:i,s:i}", "concurrency", d->cfg.concurrency, "timeout_ms",
                       d->cfg.timeout_ms, "attempts", d->cfg.schedule.attempts));
    return 0;
}

void dispatch_stop(struct dispatcher *d)
{
    if (d == NULL || !d->running)
        return;
    atomic_store(&d->stopping, 1);
    wake(d);
    pthread_join(d->thread, NULL);
    d->running = 0;
}

void dispatch_free(struct dispatcher *d)
{
    if (d == NULL)
        return;
    dispatch_stop(d);
    PQfinish(d->listen);
    db_pool_free(d->pool);
    if (d->wake_fd >= 0)
        close(d->wake_fd);
    netguard_free(d->guard);
    explicit_bzero(d->data_key, sizeof d->data_key);
    free(d->database_url);
    free(d->allow_private);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

char *dispatch_metrics_text(struct dispatcher *d)
{
    char *text = NULL;
    if (asprintf(&text,
                 "# HELP webhook_deliveries_total Delivery attempts recorded, by what followed "
                 "(succeeded; retried later; failed for good; gone: the receiver answered 410).\n"
                 "# TYPE webhook_deliveries_total counter\n"
                 "webhook_deliveries_total{outcome=\"succeeded\"} %llu\n"
                 "webhook_deliveries_total{outcome=\"retried\"} %llu\n"
                 "webhook_deliveries_total{outcome=\"failed\"} %llu\n"
                 "webhook_deliveries_total{outcome=\"gone\"} %llu\n"
                 "# HELP webhook_attempts_total Attempts that ended (recording errors included).\n"
                 "# TYPE webhook_attempts_total counter\nwebhook_attempts_total %llu\n"
                 "# HELP webhook_record_errors_total Attempts whose recording failed (made again "
                 "once their lease expires).\n"
                 "# TYPE webhook_record_errors_total counter\nwebhook_record_errors_total %llu\n"
                 "# HELP webhook_endpoints_disabled_total Endpoints this node disabled (410, or "
                 "failing too long).\n"
                 "# TYPE webhook_endpoints_disabled_total counter\n"
                 "webhook_endpoints_disabled_total %llu\n"
                 "# HELP webhook_in_flight Deliveries being sent now by this node.\n"
                 "# TYPE webhook_in_flight gauge\nwebhook_in_flight %d\n"
                 "# HELP webhook_queue_lag_seconds How late past due the last claimed delivery "
                 "was.\n# TYPE webhook_queue_lag_seconds gauge\nwebhook_queue_lag_seconds %.3f\n",
                 atomic_load(&d->outcomes[OUT_SUCCEEDED]), atomic_load(&d->outcomes[OUT_RETRIED]),
                 atomic_load(&d->outcomes[OUT_FAILED]), atomic_load(&d->outcomes[OUT_GONE]),
                 atomic_load(&d->attempts), atomic_load(&d->errors), atomic_load(&d->disabled),
                 atomic_load(&d->inflight_gauge), (double)atomic_load(&d->lag_ms) / 1000.0) < 0)
        return NULL;
    return text;
}
