#include "api/admin.h"

#include <stdlib.h>
#include <string.h>

#include "api/auth.h"
#include "core/base/ids.h"
#include "core/base/log.h"

int admin_create_token(PGconn *pg, const struct api_config *cfg, const char *name, char *out,
                       size_t out_size)
{
    char id[IDS_MAX_LEN], hash[65];
    if (ids_new("adm", id, sizeof(id)) != 0 || ids_secret("adm_", out, out_size) != 0)
        return -1;
    auth_hash_secret(cfg, out, hash);
    const char *params[] = {id, name, hash};
    PGresult *r =
        PQexecParams(pg, "INSERT INTO admin_tokens (id, name, token_hash) VALUES ($1, $2, $3)", 3,
                     NULL, params, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        log_json(LOG_ERROR, "could not create admin token",
                 json_pack("{s:s}", "error", PQresultErrorMessage(r)));
    PQclear(r);
    return ok ? 0 : -1;
}

int admin_count_tokens(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT count(*) FROM admin_tokens WHERE revoked_at IS NULL");
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return n;
}
