/* PostgreSQL connection pool over libpq, with statements prepared lazily per connection.
 *
 * Threading: db_acquire/db_release may be called from any worker thread; a db_conn belongs to the
 * thread that acquired it until it releases it. Never call these from the relay thread.
 * Only parameterized statements are offered: SQL text never contains caller data.
 */
#ifndef COBROWSE_CORE_DB_H
#define COBROWSE_CORE_DB_H

#include <libpq-fe.h>
#include <stdint.h>

/* A statement known at compile time. Define one per query as a static at its call site:
 *   static struct db_stmt q_get = {"sessions_get", "SELECT ... WHERE id = $1"};
 * slot is assigned on first use (0 means unassigned). */
struct db_stmt {
    const char *name;
    const char *sql;
    int slot;
};

#define DB_MAX_STMTS 256

struct db_conn;
struct db_pool;

struct db_pool_stats {
    int size, in_use;
    uint64_t acquires, waits, timeouts;
    double wait_seconds;
};

/* Opens size connections to conninfo. Returns NULL (and logs why) if the first fails. */
struct db_pool *db_pool_new(const char *conninfo, int size);
void db_pool_free(struct db_pool *pool);

/* Waits up to timeout_ms for a connection. Returns NULL on timeout or if the database is down. */
struct db_conn *db_acquire(struct db_pool *pool, int timeout_ms);
void db_release(struct db_pool *pool, struct db_conn *conn);
void db_pool_get_stats(struct db_pool *pool, struct db_pool_stats *out);

PGconn *db_pg(struct db_conn *conn);

/* Executes stmt with text parameters (NULL entries are SQL NULL). Returns the result (caller
 * PQclear()s it; NULL only when out of memory). Errors from the server come back as a result with
 * PGRES_FATAL_ERROR: check with db_ok(). When the statement fails because the connection is gone
 * and no transaction was open (a backend terminated, a PostgreSQL restart), the connection is
 * reset and the statement run once more, so a stale pooled connection costs the caller nothing;
 * inside a transaction the failure is returned (the transaction is lost either way). */
PGresult *db_exec(struct db_conn *conn, struct db_stmt *stmt, int nparams,
                  const char *const *params);
/* Runs plain SQL without parameters (BEGIN, COMMIT, migrations); retried like db_exec. */
PGresult *db_exec_simple(struct db_conn *conn, const char *sql);

/* 1 if res is a success (command or tuples), else 0. */
int db_ok(const PGresult *res);
/* The SQLSTATE of a failed result ("23505" unique violation), or "" if none. */
const char *db_sqlstate(const PGresult *res);

/* Opens one standalone connection (for migrations and CLI commands). Logs and returns NULL on
 * failure. Sets the session time zone to UTC. */
PGconn *db_connect(const char *conninfo);

#endif
