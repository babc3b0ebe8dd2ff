/* The relay's sessions (core/relay/relay_session.h): the tables, who is connected (hello, join,
 * resume or wait, leave), the end of a session, and the periodic work over every session. Relay
 * thread only. The visitor's frames are core/relay/relay_stream.c, the history
 * core/relay/relay_history.c. */
#include "core/relay/relay_session.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/hash.h"
#include "core/base/log.h"

#define SESSION_BUCKETS 4096
#define TENANT_BUCKETS  1024
#define DEFAULT_LIMIT   1000000
/* The memory ceiling (docs/protocol.md, "Backpressure"): from MEMORY_ASK_PERCENT of
 * --relay-max-memory on, the sessions holding the most history are asked for a snapshot. */
#define MEMORY_ASK_PERCENT  80
#define MEMORY_GOAL_PERCENT 60

struct rtenant {
    char tenant[48];
    int n;
    struct rtenant *next;
};

/* ---- sessions ---- */

int rsession_tables_init(struct rcore *core)
{
    core->sessions = calloc(SESSION_BUCKETS, sizeof(*core->sessions));
    core->tenants = calloc(TENANT_BUCKETS, sizeof(*core->tenants));
    if (core->sessions != NULL && core->tenants != NULL)
        return 0;
    free(core->sessions);
    free(core->tenants);
    core->sessions = NULL;
    core->tenants = NULL;
    return -1;
}

struct rsession *rsession_find(struct rcore *core, const char *id)
{
    for (struct rsession *s = core->sessions[hash_fnv1a(id) % SESSION_BUCKETS]; s; s = s->hnext)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

static struct rtenant *tenant_slot(struct rcore *core, const char *tenant, int create)
{
    struct rtenant **head = &core->tenants[hash_fnv1a(tenant) % TENANT_BUCKETS];
    for (struct rtenant *t = *head; t; t = t->next)
        if (strcmp(t->tenant, tenant) == 0)
            return t;
    if (!create)
        return NULL;
    struct rtenant *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    snprintf(t->tenant, sizeof(t->tenant), "%s", tenant);
    t->next = *head;
    *head = t;
    return t;
}

int rsession_count_tenant(struct rcore *core, const char *tenant)
{
    struct rtenant *t = tenant_slot(core, tenant, 0);
    return t ? t->n : 0;
}

static int or_default(int v)
{
    return v > 0 ? v : DEFAULT_LIMIT;
}

struct rsession *rsession_get(struct rcore *core, const struct token_claims *claims, int *created)
{
    *created = 0;
    struct rsession *s = rsession_find(core, claims->sid);
    if (s != NULL)
        return s;
    s = calloc(1, sizeof(*s));
    struct rtenant *t = tenant_slot(core, claims->tid, 1);
    if (s == NULL || t == NULL) {
        free(s);
        return NULL;
    }
    s->core = core;
    snprintf(s->id, sizeof(s->id), "%s", claims->sid);
    snprintf(s->tenant, sizeof(s->tenant), "%s", claims->tid);
    s->lim = claims->lim;
    s->lim.frames_per_second = or_default(s->lim.frames_per_second);
    s->lim.bytes_per_second = or_default(s->lim.bytes_per_second);
    s->lim.agents_per_session = or_default(s->lim.agents_per_session);
    s->remote_control = claims->remote_control;
    s->idle_since = rcore_now(core);
    uint64_t b = hash_fnv1a(s->id) % SESSION_BUCKETS;
    s->hnext = core->sessions[b];
    core->sessions[b] = s;
    t->n++;
    RSTAT_ADD(&core->stats, sessions_live, 1);
    *created = 1;
    return s;
}

static void session_free(struct rsession *s)
{
    struct rcore *core = s->core;
    struct rsession **pp = &core->sessions[hash_fnv1a(s->id) % SESSION_BUCKETS];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    struct rtenant *t = tenant_slot(core, s->tenant, 0);
    if (t)
        t->n--;
    if (s->cl != NULL)
        s->core->span.session_free(s);
    rhistory_clear(s);
    free(s->hist);
    RSTAT_SUB(&core->stats, sessions_live, 1);
    free(s);
}

void rsession_foreach(struct rcore *core, void (*fn)(struct rsession *s, void *arg), void *arg)
{
    for (int b = 0; b < SESSION_BUCKETS; b++) {
        struct rsession *s = core->sessions[b];
        while (s) {
            struct rsession *next = s->hnext; /* fn may free s */
            fn(s, arg);
            s = next;
        }
    }
}

static void free_one(struct rsession *s, void *arg)
{
    (void)arg;
    session_free(s);
}

void rsession_tables_free(struct rcore *core)
{
    if (core->sessions == NULL)
        return;
    rsession_foreach(core, free_one, NULL);
    for (int b = 0; b < TENANT_BUCKETS; b++) {
        while (core->tenants[b]) {
            struct rtenant *n = core->tenants[b]->next;
            free(core->tenants[b]);
            core->tenants[b] = n;
        }
    }
    free(core->sessions);
    free(core->tenants);
    core->sessions = NULL;
    core->tenants = NULL;
}

static void to_agents(struct rsession *s, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    for (struct rconn *a = s->agents; a && text; a = a->next)
        rconn_send_text(a, text);
    free(text);
}

void rsession_visitor_state(struct rsession *s, int connected)
{
    to_agents(s, json_pack("{s:s, s:s}", "type", "visitor", "state",
                           connected ? "connected" : "disconnected"));
}

json_t *rsession_agent_json(const struct rconn *a)
{
    return json_pack("{s:s, s:s?}", "id", a->claims.sub, "name",
                     a->claims.name[0] ? a->claims.name : NULL);
}

void rsession_fence_visitor(struct rsession *s)
{
    if (s->visitor == NULL)
        return;
    s->visitor->fenced = 1;
    rconn_close(s->visitor, 4002, "replaced by a newer connection");
    s->visitor->s = NULL; /* its later detach is a no-op: count it out here */
    s->visitor = NULL;
    s->paused_at = 0;
    RSTAT_SUB(&s->core->stats, conns_visitor, 1);
}

/* A visitor joins: it fences the one before it and gets hello; agents learn it is here. */
static void attach_visitor(struct rsession *s, struct rconn *c)
{
    rsession_fence_visitor(s); /* a newer connection takes over; the old one is fenced */
    s->visitor = c;
    s->sent = s->have; /* what the old one had in flight to Redis is fenced there */
    s->paused_at = 0;
    s->remote_control = c->claims.remote_control; /* the visitor token carries the session's */
    s->want_from = 0;
    s->snapshot_requested = 0;
    RSTAT_ADD(&s->core->stats, conns_visitor, 1);
    if (c->has_resume)
        RSTAT_ADD(&s->core->stats, resumes_visitor, 1);
    uint64_t base = s->have > c->resume ? s->have : c->resume;
    json_t *agents = c->peers; /* in a cluster: the agents on every node */
    c->peers = NULL;
    if (agents == NULL) {
        agents = json_array();
        for (struct rconn *a = s->agents; a; a = a->next)
            json_array_append_new(agents, rsession_agent_json(a));
    }
    rconn_send_json(c, json_pack("{s:s, s:s, s:s, s:I, s:I, s:{s:s}, s:o, s:{s:I, s:i, s:i}}",
                                 "type", "hello", "role", "visitor", "session_id", s->id, "have",
                                 (json_int_t)s->have, "next_seq", (json_int_t)(base + 1),
                                 "permissions", "remote_control", s->remote_control ? "ask" : "off",
                                 "agents", agents, "limits", "max_frame_bytes",
                                 (json_int_t)s->core->cfg->max_frame_bytes, "frames_per_second",
                                 s->lim.frames_per_second, "bytes_per_second",
                                 s->lim.bytes_per_second));
    to_agents(s, json_pack("{s:s, s:s}", "type", "visitor", "state", "connected"));
    rcore_post(s->core, REV_VISITOR_CONNECTED, s->id, s->tenant, NULL, NULL);
}

/* An agent joins: hello, then the frames after its resume point, the page, or a wait for it. */
static void attach_agent(struct rsession *s, struct rconn *c)
{
    for (struct rconn *o = s->agents; o; o = o->next) { /* the same agent on another tab */
        if (o->has_consent && strcmp(o->claims.sub, c->claims.sub) == 0) {
            c->has_consent = 1;
            c->consent = o->consent;
            break;
        }
    }
    c->next = s->agents;
    c->prev = NULL;
    if (s->agents)
        s->agents->prev = c;
    s->agents = c;
    s->n_agents++;
    RSTAT_ADD(&s->core->stats, conns_agent, 1);
    if (c->has_resume)
        RSTAT_ADD(&s->core->stats, resumes_agent, 1);
    int cont =
        c->has_resume && rhistory_usable(s) && c->resume >= s->snapshot_seq && c->resume <= s->have;
    const char *rc = s->remote_control && c->claims.remote_control ? "ask" : "off";
    rconn_send_json(
        c, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s}, s:s}", "type", "hello", "role",
                     "agent", "session_id", s->id, "visitor",
                     s->visitor || (s->cl && s->core->span.visitor_elsewhere(s)) ? "connected"
                                                                                 : "disconnected",
                     "resume", cont ? "continue" : "reset", "from",
                     (json_int_t)(cont ? c->resume + 1
                                       : (rhistory_usable(s) ? s->snapshot_seq : s->have + 1)),
                     "permissions", "remote_control", rc, "remote_control",
                     rcontrol_consent(s, c->claims.sub)));
    if (cont) {
        rhistory_resume(c, c->resume);
    } else if (rhistory_usable(s)) {
        rhistory_replay(c, c->has_resume ? "resume_too_old" : "join");
    } else {
        c->waiting_snapshot = 1;
        rconn_send_text(c, "{\"type\":\"waiting_snapshot\"}");
        if (s->have > 0) /* a visitor that has sent nothing yet starts with a snapshot anyway */
            rhistory_request_snapshot(s, "gap");
    }
    if (s->visitor)
        rconn_send_json(s->visitor, json_pack("{s:s, s:o}", "type", "agent_joined", "agent",
                                              rsession_agent_json(c)));
    rcore_post(s->core, REV_AGENT_JOINED, s->id, s->tenant, c->claims.sub, c->claims.name);
}

void rsession_attach(struct rsession *s, struct rconn *c)
{
    c->s = s;
    s->idle_since = 0;
    if (c->role == RROLE_VISITOR)
        attach_visitor(s, c);
    else
        attach_agent(s, c);
    if (s->cl != NULL)
        s->core->span.attached(c);
}

void rsession_detach(struct rconn *c)
{
    struct rsession *s = c->s;
    if (s == NULL)
        return;
    c->s = NULL;
    if (c->role == RROLE_VISITOR) {
        RSTAT_SUB(&s->core->stats, conns_visitor, 1);
        if (s->visitor == c) {
            s->visitor = NULL;
            to_agents(s, json_pack("{s:s, s:s}", "type", "visitor", "state", "disconnected"));
            rcore_post(s->core, REV_VISITOR_DISCONNECTED, s->id, s->tenant, NULL, NULL);
        }
    } else {
        RSTAT_SUB(&s->core->stats, conns_agent, 1);
        if (c->prev)
            c->prev->next = c->next;
        else
            s->agents = c->next;
        if (c->next)
            c->next->prev = c->prev;
        s->n_agents--;
        if (s->visitor)
            rconn_send_json(s->visitor, json_pack("{s:s, s:o}", "type", "agent_left", "agent",
                                                  rsession_agent_json(c)));
        rcore_post(s->core, REV_AGENT_LEFT, s->id, s->tenant, c->claims.sub, c->claims.name);
    }
    if (s->cl != NULL)
        s->core->span.detached(s, c);
    if (s->visitor == NULL && s->agents == NULL)
        s->idle_since = rcore_now(s->core);
}

void rsession_end(struct rsession *s, const char *reason)
{
    struct rcore *core = s->core;
    /* Fail closed: the connections below are closed whatever happens; if the set could not
     * record the id, it answers "unknown" for it and admission refuses its tokens. */
    if (core->ended.add(core->ended.ctx, s->id) != 0) {
        RSTAT_ADD(&core->stats, ended_set_failures, 1);
        log_json(LOG_ERROR, "ended session not recorded",
                 json_pack("{s:s, s:s}", "session", s->id, "hint",
                           "out of memory: handshakes of unknown sessions are refused until the "
                           "next reload of ended sessions"));
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "{\"type\":\"session_ended\",\"reason\":\"%.100s\"}", reason);
    if (s->visitor)
        rconn_finish(s->visitor, 4001, "session ended", msg);
    while (s->agents) {
        struct rconn *a = s->agents;
        rconn_finish(a, 4001, "session ended", msg);
        rsession_detach(a);
    }
    if (s->visitor)
        rsession_detach(s->visitor);
    if (s->cl != NULL)
        core->span.session_end(s);
    session_free(s);
}

void rsession_forget(struct rsession *s)
{
    session_free(s);
}

static void tick_one(struct rsession *s, void *arg)
{
    double now = *(double *)arg;
    int64_t wall = (int64_t)rcore_wall(s->core); /* exp is wall-clock time, never monotonic */
    if (s->visitor && wall >= s->visitor->claims.exp + TOKEN_LEEWAY_SECONDS)
        rconn_close(s->visitor, 4003, "token expired");
    for (struct rconn *a = s->agents; a; a = a->next)
        if (wall >= a->claims.exp + TOKEN_LEEWAY_SECONDS)
            rconn_close(a, 4003, "token expired");
    rstream_tick(s, now);
    if (s->idle_since > 0 && now - s->idle_since >= s->core->cfg->idle_seconds) {
        if (s->cl != NULL) { /* somebody may be connected on another node */
            s->core->span.idle(s);
            return;
        }
        rcore_post(s->core, REV_SESSION_IDLE, s->id, s->tenant, NULL, NULL);
        rsession_end(s, "idle");
    }
}

/* Under memory pressure, sessions nobody is connected to give up their history first: a client
 * that comes back gets waiting_snapshot and the visitor is asked for a new page. */
static void shed_idle_history(struct rsession *s, void *arg)
{
    (void)arg;
    if (s->idle_since > 0 && s->hist_n > 0) {
        rhistory_clear(s);
        s->hist_incomplete = 1;
    }
}

struct heavy {
    struct rsession **v;
    size_t n, cap;
};

static void collect_heavy(struct rsession *s, void *arg)
{
    struct heavy *h = arg;
    if (s->visitor == NULL || s->snapshot_requested || s->hist_bytes == 0 || h->n == h->cap)
        return;
    h->v[h->n++] = s;
}

static int by_history_desc(const void *a, const void *b)
{
    size_t x = (*(struct rsession *const *)a)->hist_bytes;
    size_t y = (*(struct rsession *const *)b)->hist_bytes;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Before the ceiling (MEMORY_ASK_PERCENT), the sessions holding the most history are asked for
 * a snapshot, largest first, until what they hold covers the way back to MEMORY_GOAL_PERCENT:
 * each snapshot replaces its session's history. O(sessions log sessions) once a second, only
 * while memory is high; nobody is refused anything. */
static void ask_heaviest(struct rcore *core)
{
    size_t used = RSTAT_GET(&core->stats, memory_bytes), max = core->cfg->max_memory;
    size_t live = RSTAT_GET(&core->stats, sessions_live);
    struct heavy h = {calloc(live ? live : 1, sizeof(struct rsession *)), 0, live};
    if (h.v == NULL)
        return; /* out of memory: the ceiling itself still holds (slow_down) */
    rsession_foreach(core, collect_heavy, &h);
    qsort(h.v, h.n, sizeof(*h.v), by_history_desc);
    size_t goal = max / 100 * MEMORY_GOAL_PERCENT, freed = 0;
    for (size_t i = 0; i < h.n && used - freed > goal; i++) {
        rhistory_request_snapshot(h.v[i], "memory");
        RSTAT_ADD(&core->stats, snapshots_requested_memory, 1);
        freed += h.v[i]->hist_bytes;
    }
    free(h.v);
}

void rsession_tick(struct rcore *core)
{
    double now = rcore_now(core);
    rsession_foreach(core, tick_one, &now);
    size_t used = RSTAT_GET(&core->stats, memory_bytes), max = core->cfg->max_memory;
    if (used > max / 100 * MEMORY_ASK_PERCENT)
        ask_heaviest(core);
    if (used > max / 10 * 9)
        rsession_foreach(core, shed_idle_history, NULL);
}
