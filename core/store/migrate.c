#include "core/store/migrate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/crypto.h"
#include "core/base/log.h"

#define MIGRATE_LOCK_KEY "726163" /* arbitrary constant shared by all nodes */

static int exec_ok(PGconn *pg, const char *sql, const char *what)
{
    PGresult *r = PQexec(pg, sql);
    int ok = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    if (!ok)
        log_json(LOG_ERROR, "migration step failed",
                 json_pack("{s:s, s:s}", "step", what, "error",
                           r ? PQresultErrorMessage(r) : PQerrorMessage(pg)));
    PQclear(r);
    return ok ? 0 : -1;
}

int migrate_run(PGconn *pg)
{
    int applied = 0;
    PGresult *r = NULL;
    if (exec_ok(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "lock") != 0)
        return -1;
    if (exec_ok(pg,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                "create schema_migrations") != 0)
        goto fail;

    for (int i = 0; i < migrate_files_count; i++) {
        const struct migrate_file *m = &migrate_files[i];
        int version = atoi(m->name);
        char vbuf[16], sum[CRYPTO_HEX_SHA256];
        snprintf(vbuf, sizeof(vbuf), "%d", version);
        crypto_sha256_hex(m->sql, strlen(m->sql), sum);
        const char *params[] = {vbuf};
        r = PQexecParams(pg, "SELECT checksum FROM schema_migrations WHERE version = $1", 1, NULL,
                         params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            goto fail;
        if (PQntuples(r) == 1) {
            if (strcmp(PQgetvalue(r, 0, 0), sum) != 0)
                log_json(LOG_WARN, "applied migration differs from the file",
                         json_pack("{s:s, s:s}", "migration", m->name, "hint",
                                   "never edit an applied migration: add a new numbered file"));
            PQclear(r);
            r = NULL;
            continue;
        }
        PQclear(r);
        r = NULL;
        log_json(LOG_INFO, "applying migration", json_pack("{s:s}", "migration", m->name));
        if (exec_ok(pg, "BEGIN", "begin") != 0)
            goto fail;
        if (exec_ok(pg, m->sql, m->name) != 0) {
            exec_ok(pg, "ROLLBACK", "rollback");
            goto fail;
        }
        const char *ins[] = {vbuf, m->name, sum};
        r = PQexecParams(pg,
                         "INSERT INTO schema_migrations (version, name, checksum) "
                         "VALUES ($1, $2, $3)",
                         3, NULL, ins, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            exec_ok(pg, "ROLLBACK", "rollback");
            goto fail;
        }
        PQclear(r);
        r = NULL;
        if (exec_ok(pg, "COMMIT", "commit") != 0)
            goto fail;
        applied++;
    }
    exec_ok(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", "unlock");
    return applied;
fail:
    if (r != NULL)
        log_json(LOG_ERROR, "migration failed",
                 json_pack("{s:s}", "error", PQresultErrorMessage(r)));
    PQclear(r);
    exec_ok(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", "unlock");
    return -1;
}
