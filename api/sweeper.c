#include "api/sweeper.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/base/log.h"

struct sweeper {
    struct db_pool *pool;
    int interval;
    pthread_t thread;
    pthread_mutex_t lock; /* guards stopping, with wake */
    pthread_cond_t wake;
    int stopping, running;
    /* Read by /metrics on an HTTP worker while the sweeper thread writes them. */
    atomic_ullong sweeps, failures, expired;
};

static void sweep_once(struct sweeper *sw)
{
    static struct db_stmt q_expire = {
        "sweep_expire",
        "SELECT count(*) FROM sessions_end(ARRAY(SELECT id FROM sessions "
        "  WHERE status <> 'ended' AND expires_at <= now()), 'expired')",
        0};
    static struct db_stmt q_idem = {
        "sweep_idempotency",
        "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'", 0};
    atomic_fetch_add(&sw->sweeps, 1);
    struct db_conn *c = db_acquire(sw->pool, 2000);
    if (c == NULL) {
        atomic_fetch_add(&sw->failures, 1);
        log_json(LOG_WARN, "session sweep skipped", json_pack("{s:s}", "error", "no connection"));
        return;
    }
    PGresult *r = db_exec(c, &q_expire, 0, NULL);
    if (db_ok(r) && PQntuples(r) == 1 && atoi(PQgetvalue(r, 0, 0)) > 0) {
        int n = atoi(PQgetvalue(r, 0, 0));
        atomic_fetch_add(&sw->expired, (unsigned long long)n);
        log_json(LOG_INFO, "expired sessions ended", json_pack("{s:i}", "count", n));
    } else if (!db_ok(r)) {
        atomic_fetch_add(&sw->failures, 1);
        log_json(LOG_WARN, "session sweep failed",
                 json_pack("{s:s}", "error", r ? PQresultErrorMessage(r) : "connection lost"));
    }
    PQclear(r);
    PQclear(db_exec(c, &q_idem, 0, NULL));
    db_release(sw->pool, c);
}

static void *run(void *arg)
{
    struct sweeper *sw = arg;
    pthread_mutex_lock(&sw->lock);
    while (!sw->stopping) {
        pthread_mutex_unlock(&sw->lock);
        sweep_once(sw);
        pthread_mutex_lock(&sw->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += sw->interval;
        while (!sw->stopping && pthread_cond_timedwait(&sw->wake, &sw->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&sw->lock);
    return NULL;
}

struct sweeper *sweeper_new(struct db_pool *pool, int interval_seconds)
{
    struct sweeper *sw = calloc(1, sizeof(*sw));
    if (sw == NULL)
        return NULL;
    sw->pool = pool;
    sw->interval = interval_seconds;
    pthread_mutex_init(&sw->lock, NULL);
    pthread_cond_init(&sw->wake, NULL);
    return sw;
}

int sweeper_start(struct sweeper *sw)
{
    sw->stopping = 0;
    if (pthread_create(&sw->thread, NULL, run, sw) != 0) {
        log_json(LOG_ERROR, "cannot start the session sweeper", NULL);
        return -1;
    }
    sw->running = 1;
    return 0;
}

void sweeper_stop(struct sweeper *sw)
{
    if (sw == NULL || !sw->running)
        return;
    pthread_mutex_lock(&sw->lock);
    sw->stopping = 1;
    pthread_cond_signal(&sw->wake);
    pthread_mutex_unlock(&sw->lock);
    pthread_join(sw->thread, NULL);
    sw->running = 0;
}

void sweeper_free(struct sweeper *sw)
{
    if (sw == NULL)
        return;
    sweeper_stop(sw);
    pthread_cond_destroy(&sw->wake);
    pthread_mutex_destroy(&sw->lock);
    free(sw);
}

char *sweeper_metrics_text(struct sweeper *sw)
{
    char *text = NULL;
    if (asprintf(&text,
                 "# HELP sweeper_runs_total Session sweeps run (expired sessions, old "
                 "idempotency keys).\n# TYPE sweeper_runs_total counter\nsweeper_runs_total %llu\n"
                 "# HELP sweeper_failures_total Sweeps that could not reach the database.\n"
                 "# TYPE sweeper_failures_total counter\nsweeper_failures_total %llu\n"
                 "# HELP sweeper_sessions_expired_total Sessions ended because they expired.\n"
                 "# TYPE sweeper_sessions_expired_total counter\n"
                 "sweeper_sessions_expired_total %llu\n",
                 atomic_load(&sw->sweeps), atomic_load(&sw->failures),
                 atomic_load(&sw->expired)) < 0)
        return NULL;
    return text;
}
