/* Cross-session state on one node (core/relay/relay_local.h). */
#include "core/relay/relay_local.h"

#include <stdlib.h>

#include "core/base/ratelimit.h"

#define RLOCAL_KEYS 65536 /* budgets held: the node's and one per tenant starting sessions */

struct rlocal {
    struct rcore *core;
    struct rl_table *limits;
};

struct rlocal *rlocal_new(struct rcore *core)
{
    struct rlocal *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->core = core;
    l->limits = rl_new(RLOCAL_KEYS);
    if (l->limits == NULL) {
        free(l);
        return NULL;
    }
    return l;
}

void rlocal_free(struct rlocal *l)
{
    if (l == NULL)
        return;
    rl_free(l->limits);
    free(l);
}

static int tenant_sessions(void *ctx, const char *tenant)
{
    struct rlocal *l = ctx;
    return rsession_count_tenant(l->core, tenant);
}

static int session_agents(void *ctx, const char *sid)
{
    struct rlocal *l = ctx;
    struct rsession *s = rsession_find(l->core, sid);
    return s ? s->n_agents : -1;
}

static int take(void *ctx, const char *key, double rate, int burst, double now, double *retry)
{
    struct rlocal *l = ctx;
    struct rl_result rr;
    rl_take(l->limits, key, rate, burst, now, &rr);
    *retry = rr.retry_after;
    return rr.allowed;
}

struct relay_shared rlocal_seam(struct rlocal *l)
{
    return (struct relay_shared){.ctx = l,
                                 .tenant_sessions = tenant_sessions,
                                 .session_agents = session_agents,
                                 .take = take};
}
