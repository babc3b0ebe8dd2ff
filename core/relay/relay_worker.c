/* The relay's database side (core/relay/relay_worker.h). */
#include "core/relay/relay_worker.h"

#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/ids.h"
#include "core/base/token.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/store/db.h"

#define QUEUE_MAX      100000 /* events kept while the database is away; then the oldest go */
#define RETRY_MS       500    /* between attempts while the database is away */
#define RELOAD_HOURS   25     /* longer than any token lives */
#define RELOAD_SLACK_S 60     /* a reconnect reloads what ended since the loss, and this more */

struct event {
    enum relay_event_type type;
    char session[48], tenant[48], agent[TOKEN_SUB_BYTES], name[208];
    struct event *next;
};

struct rworker {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct event *head, *tail; /* under lock */
    int queued, running;       /* under lock */
    atomic_int stop;
    atomic_int reload_requested;
    int gave_up; /* writer: the database was away at shutdown; the rest is dropped at once */
    _Atomic uint64_t dropped;
    pthread_t writer_thread, listener_thread;
    struct db_pool *pool;
    PGconn *listen;
    struct rworker_hooks hooks;
};

static void pause_ms(int ms)
{
    poll(NULL, 0, ms);
}

void rworker_post(struct rworker *w, enum relay_event_type type, const char *session_id,
                  const char *tenant_id, const char *agent_id, const char *agent_name)
{
    struct event *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        atomic_fetch_add(&w->dropped, 1);
        return;
    }
    e->type = type;
    snprintf(e->session, sizeof(e->session), "%s", session_id);
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant_id);
    snprintf(e->agent, sizeof(e->agent), "%s", agent_id ? agent_id : "");
    snprintf(e->name, sizeof(e->name), "%s", agent_name ? agent_name : "");
    pthread_mutex_lock(&w->lock);
    if (!w->running) {
        pthread_mutex_unlock(&w->lock);
        free(e);
        atomic_fetch_add(&w->dropped, 1);
        return;
    }
    if (w->queued >= QUEUE_MAX) { /* the oldest goes: the newest state matters most */
        struct event *old = w->head;
        w->head = old->next;
        free(old);
        w->queued--;
        atomic_fetch_add(&w->dropped, 1);
    }
    if (w->tail)
        w->tail->next = e;
    else
        w->head = e;
    w->tail = e;
    w->queued++;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

uint64_t rworker_dropped(const struct rworker *w)
{
    return w ? atomic_load(&((struct rworker *)w)->dropped) : 0;
}

void rworker_request_reload(struct rworker *w)
{
    atomic_store(&w->reload_requested, 1);
}

static void seam_post(void *ctx, enum relay_event_type type, const char *sid, const char *tid,
                      const char *agent_id, const char *agent_name)
{
    rworker_post(ctx, type, sid, tid, agent_id, agent_name);
}

struct relay_events rworker_seam(struct rworker *w)
{
    return (struct relay_events){.ctx = w, .post = seam_post};
}

/* Runs the statement of event e; the result (caller clears), NULL when the connection failed. */
static PGresult *exec_event(struct db_conn *db, const struct event *e)
{
    static struct db_stmt q_active = {"relay_visitor_connected",
                                      "WITH s AS (UPDATE sessions SET status = 'active', "
                                      "started_at = COALESCE(started_at, now()) "
                                      "  WHERE id = $1 AND status <> 'ended' RETURNING id) "
                                      "INSERT INTO participants (id, session_id, tenant_id, role) "
                                      "SELECT $2, $1, $3, 'visitor' FROM s",
                                      0};
    static struct db_stmt q_visitor_left = {
        "relay_visitor_left",
        "UPDATE participants SET left_at = now() WHERE session_id = $1 AND role = 'visitor' "
        "AND left_at IS NULL",
        0};
    static struct db_stmt q_agent_joined = {
        "relay_agent_joined",
        "INSERT INTO participants (id, session_id, tenant_id, role, external_id, name) "
        "SELECT $2, $1, $3, 'agent', $4, NULLIF($5, '') WHERE EXISTS "
        "(SELECT 1 FROM sessions WHERE id = $1)",
        0};
    static struct db_stmt q_agent_left = {
        "relay_agent_left",
        "UPDATE participants SET left_at = now() WHERE id = (SELECT id FROM participants "
        "WHERE session_id = $1 AND role = 'agent' AND external_id = $2 AND left_at IS NULL "
        "ORDER BY joined_at LIMIT 1)",
        0};
    static struct db_stmt q_event = {
        "relay_session_event",
        "INSERT INTO session_events (id, session_id, tenant_id, type, agent_id) "
        "SELECT $2, $1, $3, $4, NULLIF($5, '') WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $1)",
        0};
    static struct db_stmt q_idle = {"relay_session_idle",
                                    "SELECT 1 FROM sessions_end(ARRAY[$1::text], 'idle')", 0};
    static const char *const event_names[] = {[REV_CONTROL_REQUESTED] = "control_requested",
                                              [REV_CONTROL_GRANTED] = "control_granted",
                                              [REV_CONTROL_DENIED] = "control_denied",
                                              [REV_CONTROL_REVOKED] = "control_revoked"};
    char id[IDS_MAX_LEN];
    PGresult *r = NULL;
    switch (e->type) {
    case REV_VISITOR_CONNECTED: {
        ids_new("par", id, sizeof(id));
        const char *p[] = {e->session, id, e->tenant};
        r = db_exec(db, &q_active, 3, p);
        break;
    }
    case REV_VISITOR_DISCONNECTED: {
        const char *p[] = {e->session};
        r = db_exec(db, &q_visitor_left, 1, p);
        break;
    }
    case REV_AGENT_JOINED: {
        ids_new("par", id, sizeof(id));
        const char *p[] = {e->session, id, e->tenant, e->agent, e->name};
        r = db_exec(db, &q_agent_joined, 5, p);
        break;
    }
    case REV_AGENT_LEFT: {
        const char *p[] = {e->session, e->agent};
        r = db_exec(db, &q_agent_left, 2, p);
        break;
    }
    case REV_SESSION_IDLE: {
        const char *p[] = {e->session};
        r = db_exec(db, &q_idle, 1, p);
        break;
    }
    default: {
        ids_new("evt", id, sizeof(id));
        const char *p[] = {e->session, id, e->tenant, event_names[e->type], e->agent};
        r = db_exec(db, &q_event, 5, p);
        break;
    }
    }
    return r;
}

/* Records e: 0 recorded (or refused by the database for good: logged), -1 the connection failed
 * (retry). */
static int record(struct db_conn *db, const struct event *e)
{
    PGresult *r = exec_event(db, e);
    int ok = db_ok(r), lost = r == NULL || PQstatus(db_pg(db)) != CONNECTION_OK;
    if (!ok && !lost) /* the database refused it: retrying would not help */
        log_json(LOG_WARN, "relay event not recorded",
                 json_pack("{s:s, s:i, s:s}", "session", e->session, "event", (int)e->type, "error",
                           PQresultErrorMessage(r)));
    PQclear(r);
    return ok || !lost ? 0 : -1;
}

/* Records e, retrying while the database is away; gives up only when stopping and the database
 * is still away after one more attempt (then counted as dropped). */
static void record_until_done(struct rworker *w, const struct event *e)
{
    if (w->gave_up) { /* shutdown with the database away: no 5 s wait per event */
        atomic_fetch_add(&w->dropped, 1);
        return;
    }
    for (int attempt = 0;; attempt++) {
        struct db_conn *db = db_acquire(w->pool, 5000);
        int r = -1;
        if (db != NULL) {
            r = record(db, e);
            db_release(w->pool, db);
        }
        if (r == 0)
            return;
        if (atomic_load(&w->stop) && attempt > 0) {
            w->gave_up = 1;
            atomic_fetch_add(&w->dropped, 1);
            log_json(LOG_ERROR, "relay event dropped at shutdown",
                     json_pack("{s:s, s:i}", "session", e->session, "event", (int)e->type));
            return;
        }
        if (attempt == 0)
            log_json(LOG_WARN, "relay event waits for the database",
                     json_pack("{s:s, s:i}", "session", e->session, "event", (int)e->type));
        pause_ms(RETRY_MS);
    }
}

static void *writer(void *arg)
{
    struct rworker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->head == NULL && !atomic_load(&w->stop))
            pthread_cond_wait(&w->wake, &w->lock);
        if (w->head == NULL)
            break;
        struct event *e = w->head;
        w->head = e->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->lock);
        record_until_done(w, e);
        free(e);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* Hands one ended session to the hooks, retrying while they are out of memory. */
static void deliver(struct rworker *w, const char *id, const char *reason)
{
    while (w->hooks.ended(w->hooks.ctx, id, reason) != 0) {
        if (atomic_load(&w->stop))
            return;
        pause_ms(100);
    }
}

/* LISTENs, then (after LISTEN, so that nothing ending in between is missed) hands every session
 * ended in the last `seconds` to the hooks. 0, or -1 (the connection failed: try again). */
static int listen_and_reload(struct rworker *w, double seconds)
{
    PGresult *r = PQexec(w->listen, "LISTEN cobrowse_session_ended");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        return -1;
    char secs[32];
    snprintf(secs, sizeof(secs), "%.0f", seconds + 1);
    const char *p[] = {secs};
    r = PQexecParams(w->listen,
                     "SELECT id, COALESCE(end_reason, 'ended') FROM sessions WHERE status = "
                     "'ended' AND ended_at > now() - make_interval(secs => $1::double precision)",
                     1, NULL, p, NULL, NULL, 0);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    for (int i = 0; ok && i < PQntuples(r); i++)
        deliver(w, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    if (!ok)
        return -1;
    if (w->hooks.reloaded)
        w->hooks.reloaded(w->hooks.ctx);
    return 0;
}

/* After a lost connection: reconnect, LISTEN again and reload what ended since the loss. */
static void reconnect(struct rworker *w, double *lost_at)
{
    if (*lost_at == 0) {
        *lost_at = time_monotonic();
        log_json(LOG_WARN, "relay lost its LISTEN connection",
                 json_pack("{s:s}", "hint", "reconnecting; ended sessions are reloaded after"));
    }
    PQreset(w->listen);
    if (PQstatus(w->listen) != CONNECTION_OK ||
        listen_and_reload(w, time_monotonic() - *lost_at + RELOAD_SLACK_S) != 0) {
        pause_ms(1000);
        return;
    }
    log_json(LOG_INFO, "relay LISTEN connection back", NULL);
    *lost_at = 0;
}

static void take_notifications(struct rworker *w)
{
    PGnotify *n;
    while ((n = PQnotifies(w->listen)) != NULL) {
        char id[48] = "", reason[64] = "ended";
        sscanf(n->extra, "%47s %63s", id, reason);
        if (id[0])
            deliver(w, id, reason);
        PQfreemem(n);
    }
}

static void *listener(void *arg)
{
    struct rworker *w = arg;
    double lost_at = 0;
    while (!atomic_load(&w->stop)) {
        if (PQstatus(w->listen) != CONNECTION_OK) {
            reconnect(w, &lost_at);
            continue;
        }
        if (atomic_exchange(&w->reload_requested, 0) &&
            listen_and_reload(w, RELOAD_HOURS * 3600.0) != 0)
            atomic_store(&w->reload_requested, 1);
        struct pollfd pfd = {PQsocket(w->listen), POLLIN, 0};
        if (poll(&pfd, 1, 250) <= 0)
            continue;
        if (!PQconsumeInput(w->listen)) /* the server went away: status is now BAD */
            continue;
        take_notifications(w);
    }
    return NULL;
}

/* The LISTEN connection: named, so an operator (or a test) can tell it in pg_stat_activity. */
static PGconn *listen_connect(const char *database_url)
{
    char app[64];
    snprintf(app, sizeof(app), "cobrowsed-relay-listen-%ld", (long)getpid());
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {database_url, app, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (pg == NULL || PQstatus(pg) != CONNECTION_OK) {
        log_json(LOG_ERROR, "relay LISTEN connection failed",
                 json_pack("{s:s}", "error", pg ? PQerrorMessage(pg) : "out of memory"));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

struct rworker *rworker_start(const char *database_url, struct rworker_hooks hooks)
{
    struct rworker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->hooks = hooks;
    w->pool = db_pool_new(database_url, 1);
    w->listen = listen_connect(database_url);
    if (w->pool == NULL || w->listen == NULL || listen_and_reload(w, RELOAD_HOURS * 3600.0) != 0)
        goto fail;
    w->running = 1;
    if (pthread_create(&w->writer_thread, NULL, writer, w) != 0) {
        w->running = 0;
        goto fail;
    }
    if (pthread_create(&w->listener_thread, NULL, listener, w) != 0) {
        atomic_store(&w->stop, 1);
        pthread_cond_signal(&w->wake);
        pthread_join(w->writer_thread, NULL);
        goto fail;
    }
    return w;
fail:
    log_json(LOG_ERROR, "relay worker could not start", NULL);
    PQfinish(w->listen);
    db_pool_free(w->pool);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
    return NULL;
}

void rworker_stop(struct rworker *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    atomic_store(&w->stop, 1);
    w->running = 0;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->writer_thread, NULL); /* the writer records what is queued first */
    pthread_join(w->listener_thread, NULL);
    PQfinish(w->listen);
    db_pool_free(w->pool);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
