/* Schema migrations: numbered SQL files from migrations/, compiled into the binary
 * (cmake/embed_files.cmake), applied in order, each in its own transaction, recorded in
 * schema_migrations. A session-level advisory lock serializes nodes that start at once.
 * Call from the main thread at start-up or from `cobrowsed migrate`.
 */
#ifndef COBROWSE_CORE_MIGRATE_H
#define COBROWSE_CORE_MIGRATE_H

#include <libpq-fe.h>

struct migrate_file {
    const char *name; /* "001_init.sql": the number before '_' is the version */
    const char *sql;
};

extern const struct migrate_file migrate_files[];
extern const int migrate_files_count;

/* Applies every pending migration. Returns the number applied (>= 0) or -1 (logged). */
int migrate_run(PGconn *pg);

#endif
