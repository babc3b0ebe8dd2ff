/* The relay's sessions across nodes (core/relay/relay_cluster.h): admission, presence, the
 * visitor's appends, idle and the lifecycle. Following a session's channel and history is
 * core/relay/relay_follow.c. Relay thread only. */
#include "core/relay/relay_cluster.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/frame.h"
#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/cluster/cluster.h"
#include "core/relay/relay_peers.h"

/* The commands hiredis has not written yet (cluster_backlog): past HIGH the visitor whose frame
 * went over is paused, and every paused one resumes once the backlog is under LOW. hiredis shifts
 * that buffer after each partial write, so its cost grows with the square of the backlog: at 32
 * visitors' worth of megabytes the node spent a third of its time in memmove and Redis closed its
 * subscription (docs/benchmarks.md, "Cluster"). */
#define BACKLOG_HIGH       (1024 * 1024)
#define BACKLOG_LOW        (256 * 1024)
#define TOUCH_SECONDS      10.0
#define KEY_TTL_SECONDS    86400 /* a session's keys outlive any token */
#define IDLE_RETRY_SECONDS 5     /* Redis did not answer whether the session is idle */

void rcluster_conn_release(struct rconn *c)
{
    c->gone = 1;
    c->wsi = NULL;
    c->established = 0;
    c->async_refs++;
    rfollow_conn_drop(c);
}

/* ---- the instance ---- */

/* ---- the backlog of appends ---- */

static void hold_back(struct rcluster *rc, struct rconn *c)
{
    size_t backlog = cluster_backlog(rc->cl);
    atomic_store_explicit(&rc->backlog_seen, backlog, memory_order_relaxed);
    if ((c->paused & RPAUSE_CLUSTER) || backlog <= BACKLOG_HIGH)
        return;
    if (rc->n_held_back == rc->cap_held_back) {
        size_t cap = rc->cap_held_back ? rc->cap_held_back * 2 : 16;
        struct rconn **n = realloc(rc->held_back, cap * sizeof(*n));
        if (n == NULL)
            return; /* not paused: the backlog only grows a little more */
        rc->held_back = n;
        rc->cap_held_back = cap;
    }
    rfollow_conn_hold(c);
    rc->held_back[rc->n_held_back++] = c;
    rcore_pause(c, RPAUSE_CLUSTER, 1);
    atomic_fetch_add_explicit(&rc->st.backlog_pauses, 1, memory_order_relaxed);
}

/* After each answer: once the backlog is small again, the visitors held back read again. */
static void release_held_back(struct rcluster *rc, int all)
{
    if (rc->n_held_back == 0 || (!all && cluster_backlog(rc->cl) >= BACKLOG_LOW))
        return;
    size_t n = rc->n_held_back;
    rc->n_held_back = 0;
    for (size_t i = 0; i < n; i++) {
        struct rconn *c = rc->held_back[i];
        if (!c->gone)
            rcore_pause(c, RPAUSE_CLUSTER, 0);
        rfollow_conn_drop(c);
    }
}

static void on_state(void *ctx, int up)
{
    struct rcluster *rc = ctx;
    release_held_back(rc, 1);
    atomic_store(&rc->up, up);
    log_json(up ? LOG_INFO : LOG_WARN, up ? "cluster up" : "cluster down",
             json_pack("{s:s, s:s}", "node", rc->node, "hint",
                       up ? "sessions follow the cluster again"
                          : "sessions on this node go on locally; joins from other nodes are "
                            "refused (4503) until Redis is back"));
    if (up)
        rfollow_resume_all(rc);
}

static void on_message(void *ctx, const char *sid, const unsigned char *data, size_t len)
{
    rpeers_message(ctx, sid, data, len);
}

struct rcluster *rcluster_new(struct rcore *core, struct ev_loop *loop, const char *url,
                              const char *node_id)
{
    struct rcluster *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return NULL;
    rc->core = core;
    snprintf(rc->node, sizeof(rc->node), "%s", node_id);
    struct cluster_config cfg = {url, rc->node, KEY_TTL_SECONDS};
    rc->cl = cluster_new(loop, &cfg, (struct cluster_hooks){rc, on_state, on_message});
    if (rc->cl == NULL) {
        free(rc);
        return NULL;
    }
    return rc;
}

void rcluster_free(struct rcluster *rc)
{
    if (rc == NULL)
        return;
    rc->closing = 1; /* the answers below only release what they hold */
    release_held_back(rc, 1);
    cluster_free(rc->cl);
    free(rc->held_back);
    free(rc);
}

int rcluster_is_up(const struct rcluster *rc)
{
    return rc != NULL && atomic_load(&rc->up);
}

/* ---- admission ---- */

static void refuse(struct rconn *c, int code, const char *name, int retry_ms)
{
    char reason[96];
    if (retry_ms > 0)
        snprintf(reason, sizeof(reason), "{\"code\":\"%s\",\"retry_ms\":%d}", name, retry_ms);
    else
        snprintf(reason, sizeof(reason), "{\"code\":\"%s\"}", name);
    c->admitting = 0;
    rconn_close(c, code, reason);
}

/* Admitted (or Redis is down and the session is here): the connection joins the session. */
static void join(struct rcluster *rc, struct rconn *c)
{
    int created;
    struct rsession *s = rsession_get(rc->core, &c->claims, &created);
    if (s != NULL && s->cl == NULL && rfollow_session_new(rc, s) != 0) {
        rsession_forget(s); /* never a session here that does not follow the cluster */
        s = NULL;
    }
    if (s == NULL) {
        refuse(c, 1011, "out_of_memory", 1000);
        return;
    }
    rfollow_join(s, c);
}

static void on_admit(void *arg, int status, const struct cluster_admit_reply *r)
{
    struct rconn *c = arg;
    struct rcluster *rc = c->core->cluster;
    if (rfollow_conn_drop(c) || rc == NULL || rc->closing)
        return;
    if (status != CLUSTER_OK) {
        if (rsession_find(rc->core, c->claims.sid) != NULL) {
            join(rc, c); /* the session is here: it goes on locally */
            return;
        }
        RSTAT_ADD(&rc->core->stats, rej_unavailable, 1);
        refuse(c, 4503, "cluster_unavailable", 1000);
        return;
    }
    if (r->refused == NULL) {
        join(rc, c);
    } else if (strcmp(r->refused, "session_limit") == 0) {
        RSTAT_ADD(&rc->core->stats, rej_session_limit, 1);
        refuse(c, 4030, "session_limit", r->retry_ms);
    } else if (strcmp(r->refused, "agent_limit") == 0) {
        RSTAT_ADD(&rc->core->stats, rej_agent_limit, 1);
        refuse(c, 4031, "agent_limit", 0);
    } else {
        RSTAT_ADD(&rc->core->stats, rej_rate, 1);
        refuse(c, 4029, "rate_limited", r->retry_ms);
    }
}

/* "<node>/<conn id> <agent json>": unique per connection, and what a visitor's hello lists. */
static char *agent_member(struct rcluster *rc, struct rconn *c)
{
    json_t *a = rsession_agent_json(c);
    char *json = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (json == NULL)
        return NULL;
    size_t n = strlen(rc->node) + strlen(json) + 32;
    char *m = malloc(n);
    if (m != NULL)
        snprintf(m, n, "%s/%llu %s", rc->node, (unsigned long long)c->id, json);
    free(json);
    return m;
}

void rcluster_admit(struct rcluster *rc, struct rconn *c)
{
    c->id = ++rc->next_conn;
    c->admitting = 1;
    rcore_pause(c, RPAUSE_ADMIT, 1); /* nothing is read before the connection has joined */
    if (c->role == RROLE_AGENT && (c->member = agent_member(rc, c)) == NULL) {
        refuse(c, 1011, "out_of_memory", 1000);
        return;
    }
    const struct token_limits *lim = &c->claims.lim;
    struct cluster_admit req = {
        .tenant = c->claims.tid,
        .session = c->claims.sid,
        .agent = c->role == RROLE_AGENT,
        .resume = c->has_resume,
        .member = c->member,
        .concurrent_sessions = lim->concurrent_sessions,
        .sessions_per_minute = lim->sessions_per_minute,
        .agents_per_session = lim->agents_per_session,
        .presence_ttl_ms = RCLUSTER_PRESENCE_TTL_MS,
    };
    rfollow_conn_hold(c);
    cluster_admit(rc->cl, &req, on_admit, c);
}

/* ---- presence ---- */

static void span_attached(struct rconn *c)
{
    if (c->role == RROLE_AGENT)
        rfollow_publish_json(c->s, 'C',
                             json_pack("{s:s, s:s, s:o}", "t", "agent", "state", "joined", "agent",
                                       rsession_agent_json(c)));
}

static void span_detached(struct rsession *s, struct rconn *c)
{
    struct rcluster *rc = s->core->cluster;
    if (c->role == RROLE_AGENT) {
        cluster_left(rc->cl, s->id, c->member, 0, NULL, NULL);
        rfollow_publish_json(s, 'C',
                             json_pack("{s:s, s:s, s:o}", "t", "agent", "state", "left", "agent",
                                       rsession_agent_json(c)));
        return;
    }
    uint64_t gen = rfollow_visitor_gen(s);
    if (gen == 0)
        return; /* it never got its generation (Redis was down): nobody elsewhere knows it */
    rfollow_visitor_gone(s, gen);
    rfollow_visitor_left(s);
}

static void span_to_visitor(struct rsession *s, const char *text)
{
    rfollow_publish(s, 'U', text);
}

static void span_to_agents(struct rsession *s, const char *text)
{
    rfollow_publish(s, 'D', text);
}

static void span_consent_all(struct rsession *s, const char *state)
{
    cluster_consent(s->core->cluster->cl, s->id, state, NULL, NULL);
}

#define TOUCH_BATCH 64 /* agents per touch */

struct touch {
    struct rcluster *rc;
    const char *members[TOUCH_BATCH];
};

/* The session's presence here: the visitor's generation and the agents, TOUCH_BATCH at a time. */
static void touch_one(struct rsession *s, void *arg)
{
    struct touch *t = arg;
    if (s->cl == NULL || (s->visitor == NULL && s->agents == NULL))
        return;
    rfollow_recheck(s);
    uint64_t gen = s->visitor ? rfollow_visitor_gen(s) : 0;
    struct rconn *a = s->agents;
    do {
        size_t n = 0;
        for (; a != NULL && n < TOUCH_BATCH; a = a->next)
            if (a->member != NULL)
                t->members[n++] = a->member;
        cluster_touch(t->rc->cl, s->tenant, s->id, gen, t->members, n, RCLUSTER_PRESENCE_TTL_MS,
                      NULL, NULL);
        gen = 0; /* once is enough */
    } while (a != NULL);
}

void rcluster_tick(struct rcluster *rc)
{
    double now = rcore_now(rc->core);
    if (now - rc->last_touch < TOUCH_SECONDS || !rcluster_is_up(rc))
        return;
    rc->last_touch = now;
    struct touch t = {.rc = rc};
    rsession_foreach(rc->core, touch_one, &t);
}

/* ---- appends ---- */

struct append_req {
    struct rconn *c;
    struct rframe *f;
    struct rfollow_ref ref;
};

static void append_result(struct rsession *s, struct rconn *c, struct rframe *f, int status,
                          enum cluster_append_result res, uint64_t last)
{
    struct rcluster *rc = s->core->cluster;
    int mine = c->s == s && s->visitor == c && !c->gone;
    if (status != CLUSTER_OK) { /* Redis down: the session goes on here; history rewritten later */
        atomic_fetch_add_explicit(&rc->st.append_down, 1, memory_order_relaxed);
        rfollow_degraded(s, f);
        if (mine)
            rstream_ack_later(c, f->len, f->kind == FRAME_KIND_SNAPSHOT);
        return;
    }
    switch (res) {
    case CLUSTER_APPEND_OK:
        atomic_fetch_add_explicit(&rc->st.appends, 1, memory_order_relaxed);
        rfollow_frame(s, f); /* unless the channel brought it first */
        /* fall through */
    case CLUSTER_APPEND_DUPLICATE:
        if (mine)
            rstream_ack_later(c, f->len, f->kind == FRAME_KIND_SNAPSHOT);
        return;
    case CLUSTER_APPEND_GAP: /* Redis is behind what this node accepted */
        atomic_fetch_add_explicit(&rc->st.append_gap, 1, memory_order_relaxed);
        if (!mine)
            return;
        if (rfollow_dirty(s)) { /* frames applied while Redis was down: claim again */
            rfollow_reclaim(s);
        } else if (s->want_from == 0) { /* frames lost on the way (not acked): resend them */
            s->sent = last < s->sent ? last : s->sent;
            s->want_from = s->sent + 1;
            rconn_send_json(
                c, json_pack("{s:s, s:I}", "type", "resend", "from", (json_int_t)s->want_from));
        }
        return;
    case CLUSTER_APPEND_FENCED: /* a newer visitor connected on another node */
        atomic_fetch_add_explicit(&rc->st.append_fenced, 1, memory_order_relaxed);
        if (mine)
            rsession_fence_visitor(s);
        return;
    case CLUSTER_APPEND_LOST:
        atomic_fetch_add_explicit(&rc->st.append_lost, 1, memory_order_relaxed);
        if (mine) /* Redis restarted empty or failed over: claim again, ask for a page */
            rfollow_reclaim(s);
        return;
    }
}

static void on_append(void *arg, int status, enum cluster_append_result res, uint64_t last)
{
    struct append_req *q = arg;
    struct rcluster *rc = q->ref.rc;
    struct rsession *s = rc->closing ? NULL : rfollow_find(&q->ref);
    if (s != NULL)
        append_result(s, q->c, q->f, status, res, last);
    if (!rc->closing)
        release_held_back(rc, 0);
    rfollow_conn_drop(q->c);
    rframe_unref(q->f);
    free(q);
}

static void span_append(struct rconn *c, struct rframe *f)
{
    struct rsession *s = c->s;
    struct rcluster *rc = s->core->cluster;
    struct append_req *q = calloc(1, sizeof(*q));
    if (q == NULL) { /* the visitor resends what is not acked */
        rconn_close(c, 1011, "out of memory");
        return;
    }
    q->c = c;
    q->f = f;
    rfollow_ref(s, &q->ref);
    rfollow_conn_hold(c);
    rframe_ref(f);
    cluster_append(rc->cl, s->id, rfollow_visitor_gen(s), f->seq, f->kind == FRAME_KIND_SNAPSHOT,
                   f->buf + RELAY_PRE, f->len, on_append, q);
    if (!c->gone && c->close_code == 0)
        hold_back(rc, c);
}

/* ---- idle and the end ---- */

static void on_idle(void *arg, int status, int idle, int wait_ms)
{
    struct rfollow_ref *q = arg;
    struct rsession *s = q->rc->closing ? NULL : rfollow_find(q);
    free(q);
    if (s == NULL)
        return;
    rfollow_idle_answered(s);
    if (s->idle_since == 0)
        return; /* somebody came back meanwhile */
    if (status != CLUSTER_OK) {
        s->idle_since += IDLE_RETRY_SECONDS; /* ask again a little later */
        return;
    }
    if (idle) {
        rcore_post(s->core, REV_SESSION_IDLE, s->id, s->tenant, NULL, NULL);
        rsession_end(s, "idle");
    } else if (!rfollow_busy(s)) {
        (void)wait_ms;
        rsession_forget(s); /* clients elsewhere: their node decides when it is idle */
    }
}

static void span_idle(struct rsession *s)
{
    if (rfollow_idle_asking(s))
        return;
    struct rfollow_ref *q = malloc(sizeof(*q));
    if (q == NULL)
        return;
    rfollow_ref(s, q);
    cluster_idle(s->core->cluster->cl, s->id, s->core->cfg->idle_seconds * 1000, on_idle, q);
}

static int span_visitor_elsewhere(const struct rsession *s)
{
    return rfollow_visitor_elsewhere(s);
}

static void span_session_free(struct rsession *s)
{
    rfollow_session_free(s);
}

static void span_session_end(struct rsession *s)
{
    cluster_end(s->core->cluster->cl, s->tenant, s->id, NULL, NULL);
}

/* ---- metrics ---- */

char *rcluster_metrics(const struct rcluster *rc)
{
    struct cluster_stats cs;
    cluster_stats(rc->cl, &cs);
#define L(x) atomic_load_explicit(&rc->st.x, memory_order_relaxed)
    char *out = NULL;
    if (asprintf(&out,
                 "# TYPE cobrowse_relay_cluster_up gauge\ncobrowse_relay_cluster_up %d\n"
                 "# TYPE cobrowse_relay_cluster_appends_total counter\n"
                 "cobrowse_relay_cluster_appends_total{result=\"ok\"} %llu\n"
                 "cobrowse_relay_cluster_appends_total{result=\"gap\"} %llu\n"
                 "cobrowse_relay_cluster_appends_total{result=\"fenced\"} %llu\n"
                 "cobrowse_relay_cluster_appends_total{result=\"lost\"} %llu\n"
                 "cobrowse_relay_cluster_appends_total{result=\"down\"} %llu\n"
                 "# TYPE cobrowse_relay_cluster_follows_total counter\n"
                 "cobrowse_relay_cluster_follows_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_catchups_total counter\n"
                 "cobrowse_relay_cluster_catchups_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_resets_total counter\n"
                 "cobrowse_relay_cluster_resets_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_backlog_pauses_total counter\n"
                 "cobrowse_relay_cluster_backlog_pauses_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_backlog_bytes gauge\n"
                 "cobrowse_relay_cluster_backlog_bytes %zu\n"
                 "# TYPE cobrowse_relay_cluster_requests_total counter\n"
                 "cobrowse_relay_cluster_requests_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_errors_total counter\n"
                 "cobrowse_relay_cluster_errors_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_reconnects_total counter\n"
                 "cobrowse_relay_cluster_reconnects_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_messages_total counter\n"
                 "cobrowse_relay_cluster_messages_total %llu\n"
                 "# TYPE cobrowse_relay_cluster_subscriptions gauge\n"
                 "cobrowse_relay_cluster_subscriptions %llu\n",
                 rcluster_is_up(rc), (unsigned long long)L(appends),
                 (unsigned long long)L(append_gap), (unsigned long long)L(append_fenced),
                 (unsigned long long)L(append_lost), (unsigned long long)L(append_down),
                 (unsigned long long)L(follows), (unsigned long long)L(catchups),
                 (unsigned long long)L(resets), (unsigned long long)L(backlog_pauses),
                 atomic_load_explicit(&rc->backlog_seen, memory_order_relaxed),
                 (unsigned long long)cs.requests, (unsigned long long)cs.errors,
                 (unsigned long long)cs.reconnects, (unsigned long long)cs.messages_in,
                 (unsigned long long)cs.subscriptions) < 0)
        return NULL;
#undef L
    return out;
}

struct relay_span rcluster_span(void)
{
    return (struct relay_span){.append = span_append,
                               .attached = span_attached,
                               .detached = span_detached,
                               .visitor_elsewhere = span_visitor_elsewhere,
                               .to_visitor = span_to_visitor,
                               .to_agents = span_to_agents,
                               .consent_all = span_consent_all,
                               .idle = span_idle,
                               .session_end = span_session_end,
                               .session_free = span_session_free};
}
