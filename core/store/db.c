#include "core/store/db.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/log.h"
#include "core/base/timeutil.h"

struct db_conn {
    PGconn *pg;
    unsigned char prepared[DB_MAX_STMTS]; /* 1 once stmt slot i is prepared on this connection */
    struct db_conn *next_free;
};

struct db_pool {
    char *conninfo;
    pthread_mutex_t lock;
    pthread_cond_t available;
    struct db_conn *conns;
    struct db_conn *free_list;
    int size, in_use;
    uint64_t acquires, waits, timeouts;
    double wait_seconds;
};

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static int next_slot = 1;

static int stmt_slot(struct db_stmt *stmt)
{
    int s = __atomic_load_n(&stmt->slot, __ATOMIC_ACQUIRE);
    if (s != 0)
        return s;
    pthread_mutex_lock(&slot_lock);
    if (stmt->slot == 0 && next_slot < DB_MAX_STMTS)
        __atomic_store_n(&stmt->slot, next_slot++, __ATOMIC_RELEASE);
    s = stmt->slot;
    pthread_mutex_unlock(&slot_lock);
    return s; /* 0 if the table is full: the statement then runs unprepared */
}

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs (e.g. "relation already exists, skipping") are not errors */
}

PGconn *db_connect(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        log_json(LOG_ERROR, "database connection failed",
                 json_pack("{s:s, s:s}", "error", pg ? PQerrorMessage(pg) : "out of memory", "hint",
                           "check DATABASE_URL and that PostgreSQL is running"));
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, notice_quiet, NULL);
    PGresult *r = PQexec(pg, "SET TIME ZONE 'UTC'; SET statement_timeout = '10s'");
    PQclear(r);
    return pg;
}

/* Reconnects a broken connection: same conninfo, session settings again, and every statement
 * prepared anew on its next use (a new backend knows none of them). Returns 0 or -1 (logged). */
static int conn_reset(struct db_conn *c)
{
    PQreset(c->pg);
    memset(c->prepared, 0, sizeof(c->prepared));
    if (PQstatus(c->pg) != CONNECTION_OK) {
        log_json(LOG_WARN, "database reconnect failed",
                 json_pack("{s:s}", "error", PQerrorMessage(c->pg)));
        return -1;
    }
    PQsetNoticeProcessor(c->pg, notice_quiet, NULL);
    PQclear(PQexec(c->pg, "SET TIME ZONE 'UTC'; SET statement_timeout = '10s'"));
    log_json(LOG_INFO, "database connection reset", NULL);
    return 0;
}

struct db_pool *db_pool_new(const char *conninfo, int size)
{
    if (size < 1)
        size = 1;
    struct db_pool *pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        return NULL;
    pool->conninfo = strdup(conninfo);
    pool->conns = calloc((size_t)size, sizeof(struct db_conn));
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->available, NULL);
    pool->size = size;
    if (pool->conninfo == NULL || pool->conns == NULL)
        goto fail;
    for (int i = 0; i < size; i++) {
        pool->conns[i].pg = db_connect(conninfo);
        if (pool->conns[i].pg == NULL)
            goto fail;
        pool->conns[i].next_free = pool->free_list;
        pool->free_list = &pool->conns[i];
    }
    return pool;
fail:
    db_pool_free(pool);
    return NULL;
}

void db_pool_free(struct db_pool *pool)
{
    if (pool == NULL)
        return;
    for (int i = 0; pool->conns && i < pool->size; i++)
        PQfinish(pool->conns[i].pg);
    free(pool->conns);
    free(pool->conninfo);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->available);
    free(pool);
}

struct db_conn *db_acquire(struct db_pool *pool, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    double started = 0;
    pthread_mutex_lock(&pool->lock);
    pool->acquires++;
    if (pool->free_list == NULL) {
        pool->waits++;
        started = time_monotonic();
    }
    while (pool->free_list == NULL) {
        if (pthread_cond_timedwait(&pool->available, &pool->lock, &deadline) == ETIMEDOUT &&
            pool->free_list == NULL) {
            pool->timeouts++;
            pool->wait_seconds += time_monotonic() - started;
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
    }
    if (started > 0)
        pool->wait_seconds += time_monotonic() - started;
    struct db_conn *c = pool->free_list;
    pool->free_list = c->next_free;
    pool->in_use++;
    pthread_mutex_unlock(&pool->lock);

    /* Reconnected outside the lock. */
    if (PQstatus(c->pg) != CONNECTION_OK && conn_reset(c) != 0) {
        db_release(pool, c);
        return NULL;
    }
    return c;
}

void db_release(struct db_pool *pool, struct db_conn *conn)
{
    if (conn == NULL)
        return;
    if (PQtransactionStatus(conn->pg) != PQTRANS_IDLE &&
        PQtransactionStatus(conn->pg) != PQTRANS_UNKNOWN)
        PQclear(PQexec(conn->pg, "ROLLBACK")); /* never hand out a connection mid-transaction */
    pthread_mutex_lock(&pool->lock);
    conn->next_free = pool->free_list;
    pool->free_list = conn;
    pool->in_use--;
    pthread_cond_signal(&pool->available);
    pthread_mutex_unlock(&pool->lock);
}

void db_pool_get_stats(struct db_pool *pool, struct db_pool_stats *out)
{
    pthread_mutex_lock(&pool->lock);
    out->size = pool->size;
    out->in_use = pool->in_use;
    out->acquires = pool->acquires;
    out->waits = pool->waits;
    out->timeouts = pool->timeouts;
    out->wait_seconds = pool->wait_seconds;
    pthread_mutex_unlock(&pool->lock);
}

PGconn *db_pg(struct db_conn *conn)
{
    return conn->pg;
}

static PGresult *exec_once(struct db_conn *conn, struct db_stmt *stmt, int nparams,
                           const char *const *params)
{
    int slot = stmt_slot(stmt);
    if (slot == 0)
        return PQexecParams(conn->pg, stmt->sql, nparams, NULL, params, NULL, NULL, 0);
    if (!conn->prepared[slot]) {
        PGresult *r = PQprepare(conn->pg, stmt->name, stmt->sql, 0, NULL);
        if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
            log_json(LOG_ERROR, "prepare failed",
                     json_pack("{s:s, s:s}", "statement", stmt->name, "error",
                               r ? PQresultErrorMessage(r) : PQerrorMessage(conn->pg)));
            return r; /* the caller sees the failure as a failed result */
        }
        PQclear(r);
        conn->prepared[slot] = 1;
    }
    return PQexecPrepared(conn->pg, stmt->name, nparams, params, NULL, NULL, 0);
}

/* 1 when res failed because the connection itself is gone (its backend was terminated, or
 * PostgreSQL restarted since the connection was last used) while no transaction was open, so
 * running the statement again on a new connection is the same request, not half of one. A
 * pooled connection learns that its backend died only when it next sends something: without
 * this, each one would give its next caller a 503. What it costs: a statement whose backend died
 * after committing it and before answering runs twice; that window is the moment between the
 * commit and the reply, while the common case (a backend gone before the statement was sent)
 * ran nothing. */
static int should_retry(struct db_conn *conn, PGTransactionStatusType before, const PGresult *res)
{
    return !db_ok(res) && before == PQTRANS_IDLE && PQstatus(conn->pg) == CONNECTION_BAD;
}

PGresult *db_exec(struct db_conn *conn, struct db_stmt *stmt, int nparams,
                  const char *const *params)
{
    PGTransactionStatusType before = PQtransactionStatus(conn->pg);
    PGresult *r = exec_once(conn, stmt, nparams, params);
    if (should_retry(conn, before, r) && conn_reset(conn) == 0) {
        PQclear(r);
        r = exec_once(conn, stmt, nparams, params);
    }
    return r;
}

PGresult *db_exec_simple(struct db_conn *conn, const char *sql)
{
    PGTransactionStatusType before = PQtransactionStatus(conn->pg);
    PGresult *r = PQexec(conn->pg, sql);
    if (should_retry(conn, before, r) && conn_reset(conn) == 0) {
        PQclear(r);
        r = PQexec(conn->pg, sql);
    }
    return r;
}

int db_ok(const PGresult *res)
{
    if (res == NULL)
        return 0;
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

const char *db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}
