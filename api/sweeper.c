#include "api/sweeper.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/base/log.h"

static pthread_t thread;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int stopping, running;
static struct db_pool *the_pool;
static int interval;

static void sweep_once(void)
{
    static struct db_stmt q_expire = {
        "sweep_expire",
        "SELECT count(*) FROM sessions_end(ARRAY(SELECT id FROM sessions "
        "  WHERE status <> 'ended' AND expires_at <= now()), 'expired')",
        0};
    static struct db_stmt q_idem = {
        "sweep_idempotency",
        "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'", 0};
    struct db_conn *c = db_acquire(the_pool, 2000);
    if (c == NULL)
        return;
    PGresult *r = db_exec(c, &q_expire, 0, NULL);
    if (db_ok(r) && PQntuples(r) == 1 && atoi(PQgetvalue(r, 0, 0)) > 0)
        log_json(LOG_INFO, "expired sessions ended",
                 json_pack("{s:i}", "count", atoi(PQgetvalue(r, 0, 0))));
    else if (!db_ok(r))
        log_json(LOG_WARN, "session sweep failed",
                 json_pack("{s:s}", "error", r ? PQresultErrorMessage(r) : "connection lost"));
    PQclear(r);
    PQclear(db_exec(c, &q_idem, 0, NULL));
    db_release(the_pool, c);
}

static void *run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        pthread_mutex_unlock(&lock);
        sweep_once();
        pthread_mutex_lock(&lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += interval;
        while (!stopping && pthread_cond_timedwait(&wake, &lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int sweeper_start(struct db_pool *pool, int interval_seconds)
{
    the_pool = pool;
    interval = interval_seconds;
    stopping = 0;
    if (pthread_create(&thread, NULL, run, NULL) != 0)
        return -1;
    running = 1;
    return 0;
}

void sweeper_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    running = 0;
}
