/* Recording the results of the webhook dispatcher's attempts (dispatch_internal.h): an attempt
 * row each, then the delivery's next attempt by the schedule or its end, and the endpoint's state
 * (its failure run, disabled on a 410 or after failing too long). Dispatcher thread only. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/base/utf8.h"
#include "core/net/netguard.h"
#include "core/webhook/dispatch_internal.h"
#include "core/webhook/schedule.h"

const char *const dispatch_outcome_names[OUT_COUNT] = {"succeeded", "retried", "failed", "gone"};

/* How many bytes of s[0..n) to keep so that they are valid UTF-8 when only the last character
 * was cut (up to 3 bytes dropped); 0 when something else is invalid. */
static size_t utf8_prefix(const char *s, size_t n)
{
    for (size_t cut = 0; cut < 4 && cut < n; cut++)
        if (utf8_valid(s, n - cut))
            return n - cut;
    return 0;
}

/* The first EXCERPT_BYTES of the answer as valid UTF-8 text (a column of type text): a character
 * cut at the end is dropped, otherwise NUL and bytes past ASCII become '?'. Malloc'd or NULL. */
static char *excerpt(const struct fetch_result *r)
{
    size_t n = r->body_len < EXCERPT_BYTES ? r->body_len : EXCERPT_BYTES;
    /* cppcheck 2.10 takes body_len for 0 from the flight's calloc; the fetcher's callback fills
     * it on another thread. */
    // cppcheck-suppress knownConditionTrueFalse
    if (r->body == NULL || n == 0)
        return NULL;
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, r->body, n);
    s[n] = '\0';
    size_t keep = utf8_prefix(s, n);
    if (keep == 0) {
        keep = n;
        for (char *p = s; p < s + n; p++)
            if (*p == '\0' || (unsigned char)*p >= 0x80)
                *p = '?';
    }
    s[keep] = '\0';
    return s;
}

int dispatch_exec(struct db_conn *c, struct db_stmt *q, int n, const char *const *p)
{
    PGresult *r = db_exec(c, q, n, p);
    int ok = db_ok(r);
    if (!ok)
        log_json(LOG_WARN, "webhook dispatcher statement failed",
                 json_pack("{s:s,s:s}", "statement", q->name, "error",
                           r != NULL ? PQresultErrorMessage(r) : "out of memory"));
    PQclear(r);
    return ok ? 0 : -1;
}

/* Disables the endpoint (reason "gone" or "failing"), fails its pending deliveries and tells the
 * tenant's other endpoints. Inside the caller's transaction. */
static int disable_endpoint(struct dispatcher *d, struct db_conn *c, const struct flight *fl,
                            const char *reason)
{
    static struct db_stmt q_disable = {
        "webhook_disable",
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() "
        "WHERE id = $1 AND enabled AND deleted_at IS NULL RETURNING tenant_id",
        0};
    static struct db_stmt q_fail_pending = {
        "webhook_fail_pending",
        "UPDATE webhook_deliveries SET status = 'failed', locked_until = NULL, "
        "last_error = COALESCE(last_error, 'endpoint disabled: ' || $2), "
        "updated_at = clock_timestamp() WHERE endpoint_id = $1 AND status = 'pending'",
        0};
    static struct db_stmt q_emit = {
        "webhook_emit_disabled",
        "SELECT webhook_emit($1, NULL, 'webhook_endpoint.disabled', "
        "jsonb_build_object('endpoint_id', $2::text, 'reason', $3::text))",
        0};
    const char *p[] = {fl->endpoint_id, reason};
    PGresult *r = db_exec(c, &q_disable, 2, p);
    int rc = db_ok(r) ? 0 : -1, changed = rc == 0 && PQntuples(r) == 1;
    PQclear(r);
    if (!changed)
        return rc;
    if (dispatch_exec(c, &q_fail_pending, 2, p) != 0)
        return -1;
    const char *e[] = {fl->tenant_id, fl->endpoint_id, reason};
    if (dispatch_exec(c, &q_emit, 3, e) != 0)
        return -1;
    atomic_fetch_add(&d->disabled, 1);
    log_json(LOG_WARN, "webhook endpoint disabled",
             json_pack("{s:s,s:s,s:s}", "endpoint_id", fl->endpoint_id, "tenant_id", fl->tenant_id,
                       "reason", reason));
    return 0;
}

/* The endpoint's failure run: started by this failure if none was running; disabled when it has
 * lasted disable_after. Inside the caller's transaction. */
static int endpoint_failed(struct dispatcher *d, struct db_conn *c, const struct flight *fl)
{
    static struct db_stmt q_failing = {
        "webhook_endpoint_failing",
        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) "
        "WHERE id = $1 RETURNING failing_since <= now() - make_interval(secs => $2::float8)",
        0};
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", (double)d->cfg.disable_after_ms / 1000.0);
    const char *p[] = {fl->endpoint_id, secs};
    PGresult *r = db_exec(c, &q_failing, 2, p);
    int rc = db_ok(r) ? 0 : -1;
    int too_long = rc == 0 && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (too_long)
        rc = disable_endpoint(d, c, fl, "failing");
    return rc;
}

/* What the attempt means: the outcome, and for OUT_RETRIED the delay before the next one. */
static enum outcome judge(const struct dispatcher *d, const struct flight *fl, long long *next_ms)
{
    const struct fetch_result *r = &fl->res;
    *next_ms = -1;
    if (r->error == FETCH_OK && r->status >= 200 && r->status < 300)
        return OUT_SUCCEEDED;
    if (r->error == FETCH_OK && r->status == 410)
        return OUT_GONE;
    long long after = -1;
    if (r->error == FETCH_OK && (r->status == 429 || r->status == 503))
        after = schedule_retry_after_ms(r->retry_after, time_now());
    *next_ms = schedule_next_ms(&d->cfg.schedule, fl->attempt, after, schedule_rand_default, NULL);
    return *next_ms >= 0 ? OUT_RETRIED : OUT_FAILED;
}

/* The attempt's row and the delivery's new state, under the lease's mark (attempts): when the
 * lease expired and another node claimed the delivery again, only the attempt row is written. */
static int write_attempt(struct db_conn *c, const struct flight *fl, enum outcome o,
                         long long next_ms)
{
    static struct db_stmt q_attempt = {
        "webhook_attempt",
        "INSERT INTO webhook_attempts (id, delivery_id, status_code, error, response_excerpt, "
        "duration_ms) VALUES (ids_new('wha'), $1, $2::int, $3, $4, $5::int)",
        0};
    static struct db_stmt q_delivery = {
        "webhook_delivery_done",
        "UPDATE webhook_deliveries SET status = $3, locked_until = NULL, last_status = $4::int, "
        "last_error = $5, updated_at = clock_timestamp(), next_attempt_at = CASE WHEN $3 = "
        "'pending' THEN now() + make_interval(secs => $6::float8) ELSE next_attempt_at END "
        "WHERE id = $1 AND attempts = $2::int AND status = 'pending'",
        0};
    const struct fetch_result *r = &fl->res;
    char status[16], ms[24], attempt[16], next[32];
    const char *err = r->error == FETCH_OK ? NULL : fetch_error_str(r->error);
    char errbuf[96];
    if (r->error == FETCH_E_BLOCKED) {
        snprintf(errbuf, sizeof errbuf, "blocked: %s", netguard_verdict_str(r->blocked));
        err = errbuf;
    }
    snprintf(status, sizeof status, "%ld", r->status);
    snprintf(ms, sizeof ms, "%ld", r->elapsed_ms);
    snprintf(attempt, sizeof attempt, "%d", fl->attempt);
    snprintf(next, sizeof next, "%.3f", (double)(next_ms > 0 ? next_ms : 0) / 1000.0);
    char *ex = excerpt(r);
    const char *pa[] = {fl->delivery_id, r->status > 0 ? status : NULL, err, ex, ms};
    int rc = dispatch_exec(c, &q_attempt, 5, pa);
    free(ex);
    const char *state = o == OUT_SUCCEEDED ? "succeeded" : o == OUT_RETRIED ? "pending" : "failed";
    const char *pd[] = {fl->delivery_id,
                        attempt,
                        state,
                        r->status > 0 ? status : NULL,
                        err != NULL || o == OUT_SUCCEEDED ? err : "HTTP status",
                        next};
    if (rc == 0)
        rc = dispatch_exec(c, &q_delivery, 6, pd);
    return rc;
}

/* A success, the common case, in one statement (one round trip, atomic on its own): the attempt's
 * row, the delivery succeeded under the lease's mark, the endpoint's failure run ended (the
 * failure paths below take a transaction of four or more round trips). */
static int record_success(struct db_conn *c, const struct flight *fl)
{
    static struct db_stmt q_success = {
        "webhook_success",
        "WITH a AS (INSERT INTO webhook_attempts (id, delivery_id, status_code, response_excerpt, "
        "  duration_ms) VALUES (ids_new('wha'), $1, $2::int, $3, $4::int)), "
        "d AS (UPDATE webhook_deliveries SET status = 'succeeded', locked_until = NULL, "
        "  last_status = $2::int, last_error = NULL, updated_at = clock_timestamp() "
        "  WHERE id = $1 AND attempts = $5::int AND status = 'pending') "
        "UPDATE webhook_endpoints SET failing_since = NULL "
        "WHERE id = $6 AND failing_since IS NOT NULL",
        0};
    const struct fetch_result *r = &fl->res;
    char status[16], ms[24], attempt[16];
    snprintf(status, sizeof status, "%ld", r->status);
    snprintf(ms, sizeof ms, "%ld", r->elapsed_ms);
    snprintf(attempt, sizeof attempt, "%d", fl->attempt);
    char *ex = excerpt(r);
    const char *p[] = {fl->delivery_id, status, ex, ms, attempt, fl->endpoint_id};
    int rc = dispatch_exec(c, &q_success, 6, p);
    free(ex);
    return rc;
}

/* A finished attempt, recorded in one transaction. On failure the lease expires and the
 * delivery is made again (at least once). */
static void record(struct dispatcher *d, struct db_conn *c, const struct flight *fl)
{
    long long next_ms;
    enum outcome o = judge(d, fl, &next_ms);
    int rc;
    if (o == OUT_SUCCEEDED) {
        rc = record_success(c, fl);
    } else {
        PGresult *b = db_exec_simple(c, "BEGIN");
        rc = db_ok(b) ? 0 : -1;
        PQclear(b);
        if (rc == 0)
            rc = write_attempt(c, fl, o, next_ms);
        if (rc == 0 && o == OUT_GONE)
            rc = disable_endpoint(d, c, fl, "gone");
        else if (rc == 0)
            rc = endpoint_failed(d, c, fl);
        PQclear(db_exec_simple(c, rc == 0 ? "COMMIT" : "ROLLBACK"));
    }
    atomic_fetch_add(&d->attempts, 1);
    if (rc != 0) {
        atomic_fetch_add(&d->errors, 1);
        return;
    }
    atomic_fetch_add(&d->outcomes[o], 1);
    log_json(o == OUT_SUCCEEDED ? LOG_DEBUG : LOG_INFO, "webhook attempt",
             json_pack("{s:s,s:s,s:i,s:i,s:s,s:s,s:I}", "delivery_id", fl->delivery_id,
                       "endpoint_id", fl->endpoint_id, "attempt", fl->attempt, "status",
                       (int)fl->res.status, "error", fetch_error_str(fl->res.error), "outcome",
                       dispatch_outcome_names[o], "next_ms", (json_int_t)next_ms));
}

/* A delivery abandoned at shutdown: its lease and its attempt are given back. */
static void release(struct db_conn *c, const struct flight *fl)
{
    static struct db_stmt q_release = {
        "webhook_release",
        "UPDATE webhook_deliveries SET locked_until = NULL, attempts = attempts - 1 "
        "WHERE id = $1 AND attempts = $2::int AND status = 'pending'",
        0};
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", fl->attempt);
    const char *p[] = {fl->delivery_id, attempt};
    dispatch_exec(c, &q_release, 2, p);
}

void dispatch_take_done(struct dispatcher *d, struct db_conn *c)
{
    pthread_mutex_lock(&d->mu);
    struct flight *list = d->done;
    d->done = NULL;
    pthread_mutex_unlock(&d->mu);
    while (list != NULL) {
        struct flight *fl = list;
        list = fl->next;
        if (c != NULL && fl->res.error == FETCH_E_SHUTDOWN)
            release(c, fl);
        else if (c != NULL)
            record(d, c, fl);
        /* Without a connection the lease expires: the delivery is made again. */
        fetch_result_free(&fl->res);
        free(fl);
        d->inflight--;
    }
    atomic_store(&d->inflight_gauge, d->inflight);
}
