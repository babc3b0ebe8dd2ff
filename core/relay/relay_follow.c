/* Following a session across nodes (core/relay/relay_follow.h). */
#include "core/relay/relay_follow.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/frame.h"
#include "core/base/ids.h"
#include "core/cluster/cluster.h"

#define HELD_MAX 65536 /* live frames held during one catch-up; past it they are read again */

/* ---- connections held by requests in flight ---- */

void rfollow_conn_hold(struct rconn *c)
{
    c->async_refs++;
}

/* Drops a hold; 1 when c is gone (freed now, or still held by others): the caller stops. */
int rfollow_conn_drop(struct rconn *c)
{
    c->async_refs--;
    if (!c->gone)
        return 0;
    if (c->async_refs == 0) {
        json_decref(c->peers);
        free(c->member);
        free(c);
    }
    return 1;
}

/* ---- references and the copy ---- */

void rfollow_ref(struct rsession *s, struct rfollow_ref *ref)
{
    ref->rc = s->core->cluster;
    snprintf(ref->sid, sizeof(ref->sid), "%s", s->id);
    ref->inc = s->cl->inc;
}

struct rsession *rfollow_find(const struct rfollow_ref *ref)
{
    if (ref->rc->closing)
        return NULL;
    struct rsession *s = rsession_find(ref->rc->core, ref->sid);
    return s != NULL && s->cl != NULL && s->cl->inc == ref->inc ? s : NULL;
}

static struct rfollow_ref *new_ref(struct rsession *s)
{
    struct rfollow_ref *q = malloc(sizeof(*q));
    if (q != NULL)
        rfollow_ref(s, q);
    return q;
}

int rfollow_session_new(struct rcluster *rc, struct rsession *s)
{
    s->cl = calloc(1, sizeof(*s->cl));
    if (s->cl == NULL)
        return -1;
    s->cl->rc = rc;
    s->cl->inc = ++rc->next_inc;
    return 0;
}

static void drop_held(struct rcsession *cl)
{
    for (size_t i = 0; i < cl->n_held; i++)
        rframe_unref(cl->held[i]);
    cl->n_held = 0;
}

/* Takes the waiting list; each connection on it is still held. */
static struct rconn *take_waiting(struct rcsession *cl)
{
    struct rconn *list = cl->waiting;
    cl->waiting = cl->waiting_tail = NULL;
    return list;
}

static void refuse_waiting(struct rcsession *cl, int code, const char *reason)
{
    struct rconn *c = take_waiting(cl);
    while (c != NULL) {
        struct rconn *next = c->wnext;
        c->wnext = NULL;
        if (!c->gone) {
            c->admitting = 0;
            rconn_close(c, code, reason);
        }
        rfollow_conn_drop(c);
        c = next;
    }
}

void rfollow_session_free(struct rsession *s)
{
    struct rcsession *cl = s->cl;
    if (!cl->rc->closing)
        cluster_unsubscribe(cl->rc->cl, s->id);
    refuse_waiting(cl, 4001, "session ended");
    drop_held(cl);
    free(cl->held);
    free(cl);
    s->cl = NULL;
}

/* ---- frames ---- */

struct rframe *rfollow_frame_from(struct rsession *s, const unsigned char *data, size_t len)
{
    struct frame_header h;
    if (frame_parse(data, len, &h) != 0)
        return NULL; /* the visitor's node checked it: never happens unless Redis was tampered */
    struct rframe *f = rframe_new(&s->core->stats, len, 1);
    if (f == NULL)
        return NULL;
    memcpy(f->buf + RELAY_PRE, data, len);
    f->len = len;
    f->seq = h.seq;
    f->kind = h.kind;
    return f;
}

static void hold(struct rsession *s, struct rframe *f)
{
    struct rcsession *cl = s->cl;
    if (cl->n_held == cl->cap_held) {
        size_t cap = cl->cap_held ? cl->cap_held * 2 : 64;
        struct rframe **n = cap <= HELD_MAX ? realloc(cl->held, cap * sizeof(*n)) : NULL;
        if (n == NULL) { /* the catch-up after this one reads them from the history */
            drop_held(cl);
            return;
        }
        cl->held = n;
        cl->cap_held = cap;
    }
    rframe_ref(f);
    cl->held[cl->n_held++] = f;
}

static void request_sync(struct rsession *s, uint64_t after);

/* A hole the history no longer covers (trimmed, or lost with Redis): the agents here cannot be
 * given what is missing, so they wait for the next page, as after a gap on one node. */
static void hole(struct rsession *s, struct rframe *f)
{
    atomic_fetch_add_explicit(&s->cl->rc->st.resets, 1, memory_order_relaxed);
    rhistory_clear(s);
    s->hist_incomplete = 1;
    s->have = f->seq;
    if (s->sent < s->have)
        s->sent = s->have;
    for (struct rconn *a = s->agents; a; a = a->next) {
        if (a->waiting_snapshot)
            continue;
        rconn_clear_queue(a);
        a->waiting_snapshot = 1;
        rconn_send_text(a, "{\"type\":\"waiting_snapshot\"}");
    }
    rhistory_request_snapshot(s, "gap"); /* from the visitor, here or on its node */
}

void rfollow_frame(struct rsession *s, struct rframe *f)
{
    struct rcsession *cl = s->cl;
    if (f->seq <= s->have)
        return; /* the channel and this node's append both bring each frame */
    if (cl->state != F_LIVE) {
        hold(s, f);
        return;
    }
    if (f->seq != s->have + 1 && f->kind != FRAME_KIND_SNAPSHOT) {
        hold(s, f);
        cl->state = F_CATCHUP;
        atomic_fetch_add_explicit(&cl->rc->st.catchups, 1, memory_order_relaxed);
        request_sync(s, s->have);
        return;
    }
    rstream_apply(s, f);
}

void rfollow_degraded(struct rsession *s, struct rframe *f)
{
    s->cl->dirty = 1;
    if (f->seq > s->have && (f->seq == s->have + 1 || f->kind == FRAME_KIND_SNAPSHOT))
        rstream_apply(s, f);
}

/* ---- following: subscribe, then read the history ---- */

static void attach_now(struct rsession *s, struct rconn *c)
{
    c->admitting = 0;
    rsession_attach(s, c);
    rcore_pause(c, RPAUSE_ADMIT, 0);
}

static void claim(struct rsession *s, struct rconn *c);

/* Each waiting connection joins: a visitor claims the session first. */
static void drain_waiting(struct rsession *s)
{
    struct rconn *c = take_waiting(s->cl);
    while (c != NULL) {
        struct rconn *next = c->wnext;
        c->wnext = NULL;
        if (c->gone || c->close_code != 0) {
            rfollow_conn_drop(c);
        } else if (c->role == RROLE_VISITOR) {
            claim(s, c); /* keeps the hold until its answer */
        } else {
            attach_now(s, c);
            rfollow_conn_drop(c);
        }
        c = next;
    }
}

/* Following failed (Redis down): the waiting connections are refused, and a copy nobody here
 * uses is forgotten. */
static void follow_failed(struct rsession *s)
{
    s->cl->state = F_NEW;
    cluster_unsubscribe(s->cl->rc->cl, s->id);
    refuse_waiting(s->cl, 4503, "{\"code\":\"cluster_unavailable\",\"retry_ms\":1000}");
    if (s->visitor == NULL && s->agents == NULL)
        rsession_forget(s);
}

static void reset_copy(struct rsession *s)
{
    atomic_fetch_add_explicit(&s->cl->rc->st.resets, 1, memory_order_relaxed);
    rhistory_clear(s);
    s->have = s->sent = 0;
    s->snapshot_seq = 0;
    s->hist_incomplete = 0;
    for (struct rconn *a = s->agents; a; a = a->next) {
        rconn_clear_queue(a);
        a->waiting_snapshot = 1;
        rconn_send_text(a, "{\"type\":\"waiting_snapshot\"}");
    }
}

/* Applies a history read from Redis. 0 when done, 1 when it must be read again from the start
 * (the epoch changed: Redis lost the history the copy had followed). */
static int apply_sync(struct rsession *s, const struct cluster_sync_reply *r)
{
    struct rcsession *cl = s->cl;
    if (!r->exists)
        return 0; /* nothing in Redis yet (or lost: the visitor's node claims it again) */
    if (cl->epoch[0] != '\0' && strcmp(cl->epoch, r->epoch) != 0 && s->have > 0) {
        snprintf(cl->epoch, sizeof(cl->epoch), "%s", r->epoch);
        reset_copy(s);
        return 1;
    }
    snprintf(cl->epoch, sizeof(cl->epoch), "%s", r->epoch);
    if (s->visitor == NULL) {
        if (r->gen > cl->remote_gen)
            cl->remote_gen = r->gen;
        if (r->visitor != cl->remote_visitor)
            rsession_visitor_state(s, r->visitor);
        cl->remote_visitor = r->visitor;
        if (r->consent[0] != '\0')
            s->consent_all = rcontrol_consent_state(r->consent);
    }
    for (size_t i = 0; i < r->n_frames; i++) {
        struct rframe *f = rfollow_frame_from(s, r->frames[i], r->frame_lens[i]);
        if (f == NULL || f->seq <= s->have) {
            rframe_unref(f);
            continue;
        }
        if (f->seq == s->have + 1 || f->kind == FRAME_KIND_SNAPSHOT)
            rstream_apply(s, f);
        else
            hole(s, f);
        rframe_unref(f);
    }
    return 0;
}

static void on_sync(void *arg, int status, const struct cluster_sync_reply *r)
{
    struct rsession *s = rfollow_find(arg);
    free(arg);
    if (s == NULL)
        return;
    struct rcsession *cl = s->cl;
    if (status != CLUSTER_OK) {
        if (cl->state == F_SYNCING) {
            follow_failed(s);
        } else { /* a catch-up: read again once Redis is back (rfollow_resume_all) */
            drop_held(cl);
            cl->state = F_LIVE;
            drain_waiting(s); /* they join what this node has */
        }
        return;
    }
    if (apply_sync(s, r) != 0) {
        request_sync(s, 0);
        return;
    }
    cl->state = F_LIVE;
    size_t n = cl->n_held;
    struct rframe **held = cl->held;
    cl->held = NULL;
    cl->n_held = cl->cap_held = 0;
    for (size_t i = 0; i < n; i++) { /* may start another catch-up: the rest is held again */
        rfollow_frame(s, held[i]);
        rframe_unref(held[i]);
    }
    free(held);
    if (cl->state == F_LIVE)
        drain_waiting(s);
}

static void request_sync(struct rsession *s, uint64_t after)
{
    struct rfollow_ref *q = new_ref(s);
    if (q == NULL) {
        follow_failed(s);
        return;
    }
    cluster_sync(s->cl->rc->cl, s->id, after, on_sync, q);
}

static void on_subscribed(void *arg, int status)
{
    struct rsession *s = rfollow_find(arg);
    free(arg);
    if (s == NULL)
        return;
    if (status != CLUSTER_OK) {
        follow_failed(s);
        return;
    }
    s->cl->state = F_SYNCING;
    request_sync(s, s->have);
}

void rfollow_join(struct rsession *s, struct rconn *c)
{
    struct rcsession *cl = s->cl;
    rfollow_conn_hold(c);
    c->wnext = NULL;
    if (cl->waiting_tail)
        cl->waiting_tail->wnext = c;
    else
        cl->waiting = c;
    cl->waiting_tail = c;
    if (cl->state == F_LIVE) {
        drain_waiting(s);
    } else if (cl->state == F_NEW) {
        struct rfollow_ref *q = new_ref(s);
        if (q == NULL) {
            follow_failed(s);
            return;
        }
        cl->state = F_SUBSCRIBING;
        atomic_fetch_add_explicit(&cl->rc->st.follows, 1, memory_order_relaxed);
        cluster_subscribe(cl->rc->cl, s->id, on_subscribed, q);
    }
}

/* ---- the visitor's generation ---- */

struct claim_req {
    struct rfollow_ref ref;
    struct rconn *c; /* NULL: a claim again after Redis lost the session or was down */
};

static json_t *agents_listed(const struct cluster_claim_reply *r)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < r->n_agents; i++) {
        const char *json = strchr(r->agents[i], ' ');
        json_t *a = json ? json_loads(json + 1, 0, NULL) : NULL;
        if (json_is_object(a))
            json_array_append(list, a);
        json_decref(a);
    }
    return list;
}

/* After a claim again: the visitor resends what Redis may not have and sends a page. */
static void reclaimed(struct rsession *s)
{
    s->cl->dirty = 0;
    if (s->visitor == NULL)
        return;
    s->sent = s->have;
    s->want_from = s->have + 1;
    rconn_send_json(s->visitor,
                    json_pack("{s:s, s:I}", "type", "resend", "from", (json_int_t)s->want_from));
    s->snapshot_requested = 0;
    rhistory_request_snapshot(s, "cluster");
}

static void on_claim(void *arg, int status, const struct cluster_claim_reply *r)
{
    struct claim_req *q = arg;
    struct rsession *s = rfollow_find(&q->ref);
    struct rconn *c = q->c;
    if (s != NULL && (c == NULL || !c->gone)) {
        struct rcsession *cl = s->cl;
        cl->reclaiming = 0;
        if (status == CLUSTER_OK) {
            cl->gen = r->gen;
            if (r->gen > cl->remote_gen)
                cl->remote_gen = r->gen;
            cl->remote_visitor = 0;
            snprintf(cl->epoch, sizeof(cl->epoch), "%s", r->epoch);
        } else {
            cl->gen = 0; /* Redis down: the visitor works here; claimed again once it is back */
            cl->dirty = 1;
        }
        if (c != NULL) {
            c->peers = status == CLUSTER_OK ? agents_listed(r) : NULL;
            attach_now(s, c);
        } else if (status == CLUSTER_OK) {
            reclaimed(s);
        }
    } else if (c != NULL && !c->gone) {
        c->admitting = 0;
        rconn_close(c, 4001, "session ended");
    } else if (s != NULL && status == CLUSTER_OK) { /* it went away before it joined */
        rfollow_visitor_gone(s, r->gen);
    }
    if (c != NULL)
        rfollow_conn_drop(c);
    free(q);
}

static void claim(struct rsession *s, struct rconn *c)
{
    struct claim_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        if (c != NULL) {
            c->admitting = 0;
            rconn_close(c, 1011, "out of memory");
            rfollow_conn_drop(c);
        }
        return;
    }
    rfollow_ref(s, &q->ref);
    q->c = c;
    char epoch[33];
    if (s->cl->epoch[0] != '\0') {
        snprintf(epoch, sizeof(epoch), "%s", s->cl->epoch);
    } else {
        unsigned char raw[16];
        ids_random(raw, sizeof(raw));
        for (int i = 0; i < 16; i++)
            snprintf(epoch + 2 * i, 3, "%02x", raw[i]);
    }
    cluster_claim(s->cl->rc->cl, s->id, s->have, epoch, RCLUSTER_PRESENCE_TTL_MS, on_claim, q);
}

void rfollow_reclaim(struct rsession *s)
{
    if (s->cl->reclaiming || s->visitor == NULL)
        return;
    s->cl->reclaiming = 1;
    claim(s, NULL);
}

/* ---- what other nodes say ---- */

void rfollow_visitor_news(struct rsession *s, const char *state, uint64_t gen)
{
    struct rcsession *cl = s->cl;
    if (strcmp(state, "connected") == 0) {
        if (s->visitor != NULL && cl->gen != 0 && gen > cl->gen) {
            rsession_fence_visitor(s); /* a newer visitor connected on another node */
            cl->gen = 0;
        }
        if (gen > cl->remote_gen) {
            cl->remote_gen = gen;
            cl->remote_visitor = 1;
            rsession_visitor_state(s, 1);
        }
        rfollow_catch_up(s); /* a claim may have started a new epoch: check */
    } else if (gen == cl->remote_gen && cl->remote_visitor) {
        cl->remote_visitor = 0;
        if (s->visitor == NULL)
            rsession_visitor_state(s, 0);
    }
}

void rfollow_catch_up(struct rsession *s)
{
    if (s->cl->state != F_LIVE)
        return; /* a sync is on its way anyway */
    s->cl->state = F_CATCHUP;
    request_sync(s, s->have);
}

void rfollow_recheck(struct rsession *s)
{
    if (s->visitor == NULL && s->cl->remote_visitor)
        rfollow_catch_up(s); /* reads meta (and whatever frames it missed): vexp says */
}

static void resume_one(struct rsession *s, void *arg)
{
    (void)arg;
    if (s->cl == NULL)
        return;
    if (s->cl->dirty && s->visitor != NULL)
        rfollow_reclaim(s);
    rfollow_catch_up(s); /* last: a failure may forget the copy */
}

void rfollow_resume_all(struct rcluster *rc)
{
    rsession_foreach(rc->core, resume_one, NULL);
}

/* ---- what this node says ---- */

void rfollow_publish(struct rsession *s, char type, const char *json)

{
    struct rcluster *rc = s->core->cluster;
    size_t n = 1 + strlen(rc->node) + 1 + strlen(json);
    char *buf = malloc(n + 1);
    if (buf == NULL)
        return;
    snprintf(buf, n + 1, "%c%s %s", type, rc->node, json);
    cluster_publish(rc->cl, s->id, (const unsigned char *)buf, n, NULL, NULL);
    free(buf);
}

void rfollow_publish_json(struct rsession *s, char type, json_t *msg)
{
    char *json = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (json == NULL)
        return;
    rfollow_publish(s, type, json);
    free(json);
}

void rfollow_visitor_gone(struct rsession *s, uint64_t gen)
{
    cluster_left(s->core->cluster->cl, s->id, NULL, gen, NULL, NULL);
    rfollow_publish_json(s, 'C',
                         json_pack("{s:s, s:s, s:I}", "t", "visitor", "state", "disconnected",
                                   "gen", (json_int_t)gen));
}
