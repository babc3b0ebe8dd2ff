/* The relay's database side, on two threads of its own so the relay thread never waits:
 * - the writer takes lifecycle events from a bounded queue and records them (session status and
 *   times, participants, session_events);
 * - the listener LISTENs for ended sessions (trigger in migrations/002_relay.sql) and tells the
 *   relay, which closes their sockets. At start it loads the sessions that ended recently, so a
 *   fresh node refuses their tokens too. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/store/db.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/relay/relay_state.h"

#define QUEUE_MAX 100000 /* events kept while the database is away; older ones are dropped */

struct event {
    enum relay_event_type type;
    char session[48], tenant[48], agent[208], name[208];
    struct event *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct event *head, *tail;
static int queued, running, stop;
static uint64_t dropped;
static pthread_t writer_thread, listener_thread;
static struct db_pool *pool;
static char *conninfo;

void relay_worker_post(enum relay_event_type type, const char *session_id, const char *tenant_id,
                       const char *agent_id, const char *agent_name)
{
    struct event *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return;
    e->type = type;
    snprintf(e->session, sizeof(e->session), "%s", session_id);
    snprintf(e->tenant, sizeof(e->tenant), "%s", tenant_id);
    snprintf(e->agent, sizeof(e->agent), "%s", agent_id ? agent_id : "");
    snprintf(e->name, sizeof(e->name), "%s", agent_name ? agent_name : "");
    pthread_mutex_lock(&lock);
    if (!running) {
        pthread_mutex_unlock(&lock);
        free(e);
        return;
    }
    if (queued >= QUEUE_MAX) { /* the oldest goes: the newest state matters most */
        struct event *old = head;
        head = old->next;
        free(old);
        queued--;
        dropped++;
    }
    if (tail)
        tail->next = e;
    else
        head = e;
    tail = e;
    queued++;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
}

static void record(struct db_conn *db, const struct event *e)
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
    if (!db_ok(r))
        log_json(LOG_WARN, "relay event not recorded",
                 json_pack("{s:s, s:i, s:s}", "session", e->session, "event", (int)e->type, "error",
                           r ? PQresultErrorMessage(r) : "connection lost"));
    PQclear(r);
}

static void *writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (head == NULL && !stop)
            pthread_cond_wait(&wake, &lock);
        if (head == NULL && stop)
            break;
        struct event *e = head;
        head = e->next;
        if (head == NULL)
            tail = NULL;
        queued--;
        pthread_mutex_unlock(&lock);
        struct db_conn *db = db_acquire(pool, 5000);
        if (db != NULL) {
            record(db, e);
            db_release(pool, db);
        }
        free(e);
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void *listener(void *arg)
{
    PGconn *pg = arg;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        if (PQstatus(pg) != CONNECTION_OK) {
            PQreset(pg);
            if (PQstatus(pg) == CONNECTION_OK)
                PQclear(PQexec(pg, "LISTEN cobrowse_session_ended"));
            else {
                struct pollfd none = {-1, 0, 0};
                poll(&none, 0, 1000);
                continue;
            }
        }
        struct pollfd pfd = {PQsocket(pg), POLLIN, 0};
        if (poll(&pfd, 1, 250) <= 0)
            continue;
        PQconsumeInput(pg);
        PGnotify *n;
        while ((n = PQnotifies(pg)) != NULL) {
            char id[48] = "", reason[64] = "ended";
            sscanf(n->extra, "%47s %63s", id, reason);
            if (id[0])
                relay_notify_ended(id, reason);
            PQfreemem(n);
        }
    }
    PQfinish(pg);
    return NULL;
}

int relay_worker_start(const char *database_url)
{
    conninfo = strdup(database_url);
    pool = db_pool_new(database_url, 1);
    PGconn *pg = db_connect(database_url);
    if (conninfo == NULL || pool == NULL || pg == NULL)
        goto fail;
    PGresult *r = PQexec(pg, "LISTEN cobrowse_session_ended");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    /* After LISTEN, so that nothing ending in between is missed. */
    r = PQexec(pg, "SELECT id FROM sessions WHERE status = 'ended' "
                   "AND ended_at > now() - interval '25 hours'");
    ok = ok && PQresultStatus(r) == PGRES_TUPLES_OK;
    for (int i = 0; ok && i < PQntuples(r); i++)
        relay_mark_ended(PQgetvalue(r, i, 0));
    PQclear(r);
    if (!ok)
        goto fail;
    stop = 0;
    running = 1;
    if (pthread_create(&writer_thread, NULL, writer, NULL) != 0)
        goto fail;
    if (pthread_create(&listener_thread, NULL, listener, pg) != 0) {
        relay_worker_stop();
        return -1;
    }
    return 0;
fail:
    log_json(LOG_ERROR, "relay worker could not start", NULL);
    running = 0;
    PQfinish(pg);
    db_pool_free(pool);
    pool = NULL;
    free(conninfo);
    conninfo = NULL;
    return -1;
}

void relay_worker_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&lock);
    stop = 1;
    running = 0;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    pthread_join(writer_thread, NULL); /* the writer drains what is queued first */
    pthread_join(listener_thread, NULL);
    db_pool_free(pool);
    pool = NULL;
    free(conninfo);
    conninfo = NULL;
}
