/* Handshake admission, without libwebsockets: the token (verified here, on the wall clock, no
 * database), ended sessions, the tenant's limits and the node's handshake budget, with the
 * priority lane for resumes (docs/protocol.md, "Connecting"). Relay thread only; reads the world
 * through the core's seams (clock, ended, shared). */
#ifndef COBROWSE_CORE_RELAY_ADMIT_H
#define COBROWSE_CORE_RELAY_ADMIT_H

#include "core/relay/relay_core.h"

/* What the I/O layer read from the upgrade request. NULL: absent. */
struct radmit_request {
    const char *path;   /* the request path, without the query */
    const char *token;  /* access_token query parameter, else the Bearer header */
    const char *resume; /* the resume query parameter */
    int draining;       /* the node is shutting down */
};

/* A refusal: the HTTP answer (docs/protocol.md lists them). Strings are static. */
struct radmit_refusal {
    unsigned status;
    const char *code;   /* problem+json "code" */
    const char *title;  /* problem+json "title" */
    const char *detail; /* problem+json "detail" */
    int retry_after;    /* seconds, 0: no Retry-After */
};

/* Decides an upgrade. Returns a new connection (caller owns it; free() when it never joins) with
 * its claims and resume point, or NULL with *no filled (an out-of-memory refusal included). */
struct rconn *radmit_decide(struct rcore *core, const struct radmit_request *req,
                            struct radmit_refusal *no);

#endif
