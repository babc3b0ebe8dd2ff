/* Platform admin tokens (adm_...): created by `cobrowsed create-admin-token`, or once on the
 * first development start. Main thread only (CLI and start-up). */
#ifndef COBROWSE_API_ADMIN_H
#define COBROWSE_API_ADMIN_H

#include <libpq-fe.h>

#include "api/http.h"

/* Creates a token named name and writes it (NUL-terminated) into out (size >= 64).
 * Returns 0 or -1 (logged). */
int admin_create_token(PGconn *pg, const struct api_config *cfg, const char *name, char *out,
                       size_t out_size);

/* Returns the number of active admin tokens, or -1 on error. */
int admin_count_tokens(PGconn *pg);

#endif
