/* The relay's Redis client (core/cluster/cluster.h): the two connections, their handshakes,
 * liveness and reconnection, and the request plumbing (EVALSHA, NOSCRIPT, answering exactly
 * once). The requests' arguments and replies are in cluster_ops.c, subscriptions in
 * cluster_subs.c.
 *
 * Liveness: hiredis 0.14 cannot hand a PING's reply to its callback on a subscribed connection
 * (the reply is an array it looks up as a channel), so once a second the command connection
 * PUBLISHes on this client's own ping channel, to which the subscribe connection is subscribed:
 * the PUBLISH's reply proves the first alive (and gives the round trip), the message the second.
 * No answer within CLUSTER_DEAD_S: the connection is dropped and opened again. */
#include "core/cluster/cluster_internal.h"

#include "core/base/log.h"
#include "core/cluster/cluster_lua.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/sds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER_DEAD_S         3.0
#define CLUSTER_BACKOFF_MIN_MS 100
#define CLUSTER_BACKOFF_MAX_MS 2000

static const char *const cluster_script_names[CS_COUNT] = {
    "admit", "append", "claim", "consent", "end", "idle", "left", "sync", "touch"};

static void conn_open(struct cconn *cc);

void cluster_count(atomic_ullong *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void cluster_update_state(struct cluster *cl)
{
    int up = cl->cmd.ready && cl->sub.ready && !cl->freeing;
    atomic_store_explicit(&cl->up, up, memory_order_relaxed);
    if (up == cl->reported_up || cl->freeing)
        return;
    cl->reported_up = up;
    log_json(up ? LOG_INFO : LOG_WARN, up ? "redis up" : "redis down",
             json_pack("{s:s}", "redis", cl->redacted));
    if (cl->hooks.state)
        cl->hooks.state(cl->hooks.ctx, up);
}

static void conn_schedule(struct cconn *cc)
{
    double delay = cc->backoff_ms / 1000.0;
    cc->backoff_ms *= 2;
    if (cc->backoff_ms > CLUSTER_BACKOFF_MAX_MS)
        cc->backoff_ms = CLUSTER_BACKOFF_MAX_MS;
    ev_timer_set(&cc->retry, delay, 0.);
    ev_timer_start(cc->cl->loop, &cc->retry);
}

/* The connection is gone or going (its context is freed by hiredis or by conn_drop). */
static void conn_lost(struct cconn *cc, const char *why)
{
    struct cluster *cl = cc->cl;
    cc->ac = NULL;
    cc->ready = 0;
    cc->ping_sent = 0;
    cluster_count(&cl->reconnects);
    log_json(LOG_WARN, "redis connection lost",
             json_pack("{s:s,s:s,s:s}", "conn", cc->name, "why", why, "redis", cl->redacted));
    cluster_update_state(cl);
    if (cc->is_sub)
        subs_lost(cl);
    if (!cl->freeing)
        conn_schedule(cc);
}

/* Frees the context ourselves: its pending callbacks run now, with a NULL reply. */
static void conn_drop(struct cconn *cc, const char *why)
{
    redisAsyncContext *ac = cc->ac;
    if (!ac)
        return;
    conn_lost(cc, why);
    redisAsyncFree(ac);
}

static void conn_ready(struct cconn *cc)
{
    struct cluster *cl = cc->cl;
    cc->ready = 1;
    cc->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
    cl->sub.last_seen = ev_now(cl->loop); /* the ping channel's silence counts from here */
    cluster_update_state(cl);
}

static void conn_handshake_step(struct cconn *cc)
{
    if (--cc->handshake_left == 0)
        conn_ready(cc);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct cconn *cc = ac->data;
    if (status != REDIS_OK && cc->ac == ac)
        conn_lost(cc, ac->errstr); /* hiredis frees the context after this callback */
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct cconn *cc = ac->data;
    if (cc->ac == ac)
        conn_lost(cc, status == REDIS_OK ? "closed" : ac->errstr);
}

/* AUTH, SELECT and SCRIPT LOAD replies. */
// cppcheck-suppress constParameter ; the signature is hiredis's redisCallbackFn
static void on_handshake(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cconn *cc = privdata;
    redisReply *r = reply;
    if (!r || cc->ac != ac)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        log_json(LOG_ERROR, "redis refused the handshake",
                 json_pack("{s:s,s:s,s:s}", "conn", cc->name, "error", r->str, "redis",
                           cc->cl->redacted));
        conn_drop(cc, "handshake refused");
        return;
    }
    if (!cc->is_sub && r->type == REDIS_REPLY_STRING && r->len == 40 &&
        cc->next_script < CS_COUNT) {
        memcpy(cc->cl->sha[cc->next_script], r->str, 40);
        cc->cl->sha[cc->next_script++][40] = '\0';
    }
    conn_handshake_step(cc);
}

static int conn_send_auth_select(struct cconn *cc)
{
    const struct redis_url *u = &cc->cl->url;
    char db[16];
    int rc = REDIS_OK;
    if (u->password[0] && u->user[0])
        rc = redisAsyncCommand(cc->ac, on_handshake, cc, "AUTH %s %s", u->user, u->password);
    else if (u->password[0])
        rc = redisAsyncCommand(cc->ac, on_handshake, cc, "AUTH %s", u->password);
    cc->handshake_left += u->password[0] ? 1 : 0;
    if (rc == REDIS_OK && u->db != 0) {
        snprintf(db, sizeof db, "%d", u->db);
        rc = redisAsyncCommand(cc->ac, on_handshake, cc, "SELECT %s", db);
        cc->handshake_left++;
    }
    return rc == REDIS_OK ? 0 : -1;
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Queues the handshake (hiredis writes it once the socket connects); 0 or -1. */
static int conn_send_handshake(struct cconn *cc)
{
    struct cluster *cl = cc->cl;
    cc->handshake_left = 1; /* held until everything is queued */
    cc->next_script = 0;
    if (conn_send_auth_select(cc) < 0)
        return -1;
    if (!cc->is_sub) {
        for (int i = 0; i < CS_COUNT; i++, cc->handshake_left++)
            if (redisAsyncCommand(cc->ac, on_handshake, cc, "SCRIPT LOAD %s", cl->script_text[i]) !=
                REDIS_OK)
                return -1;
    } else {
        if (redisAsyncCommand(cc->ac, on_sub_reply, cl, "SUBSCRIBE %s", cl->ping_channel) !=
            REDIS_OK)
            return -1;
        cc->handshake_left++;
        int n = subs_restore(cl);
        if (n < 0)
            return -1;
        cc->handshake_left += n;
    }
    conn_handshake_step(cc);
    return 0;
}

static void conn_open(struct cconn *cc)
{
    struct cluster *cl = cc->cl;
    const struct redis_url *u = &cl->url;
    redisAsyncContext *ac =
        u->path[0] ? redisAsyncConnectUnix(u->path) : redisAsyncConnect(cl->address, u->port);
    if (!ac || ac->err) {
        log_json(LOG_WARN, "redis connect failed",
                 json_pack("{s:s,s:s,s:s}", "conn", cc->name, "why", ac ? ac->errstr : "no memory",
                           "redis", cl->redacted));
        if (ac)
            redisAsyncFree(ac);
        conn_schedule(cc);
        return;
    }
    ac->data = cc;
    redisLibevAttach(cl->loop, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    cc->ac = ac;
    cc->ready = 0;
    cc->started = ev_now(cl->loop);
    if (conn_send_handshake(cc) < 0)
        conn_drop(cc, "handshake not queued");
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    conn_open(w->data);
}

/* "cb:{S}:m" -> S into out; -1 for any other channel. */
static int channel_sid(const redisReply *ch, char *out, size_t size)
{
    if (ch->type != REDIS_REPLY_STRING || ch->len < 8 || ch->len - 7 >= size ||
        memcmp(ch->str, "cb:{", 4) != 0 || memcmp(ch->str + ch->len - 3, "}:m", 3) != 0)
        return -1;
    memcpy(out, ch->str + 4, ch->len - 7);
    out[ch->len - 7] = '\0';
    return 0;
}

/* Every SUBSCRIBE's callback: confirmations, messages and unsubscriptions of every channel. */
// cppcheck-suppress constParameter ; the signature is hiredis's redisCallbackFn
static void on_sub_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cluster *cl = privdata;
    redisReply *r = reply;
    char sid[CLUSTER_ID_MAX + 1];
    if (!r || cl->sub.ac != ac || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    const redisReply *ch = r->element[1];
    if (strcmp(kind, "message") == 0) /* any message shows the connection alive */
        cl->sub.last_seen = ev_now(cl->loop);
    if (strcmp(ch->str, cl->ping_channel) == 0) {
        if (strcmp(kind, "subscribe") == 0 && !cl->sub.ready)
            conn_handshake_step(&cl->sub);
        return;
    }
    if (channel_sid(ch, sid, sizeof sid) < 0)
        return;
    if (strcmp(kind, "message") == 0 && r->element[2]->type == REDIS_REPLY_STRING) {
        subs_on_message(cl, sid, (const unsigned char *)r->element[2]->str, r->element[2]->len);
    } else if (strcmp(kind, "subscribe") == 0) {
        if (subs_on_subscribe(cl, sid) && !cl->sub.ready && cl->sub.ac == ac)
            conn_handshake_step(&cl->sub);
    } else if (strcmp(kind, "unsubscribe") == 0) {
        subs_on_unsubscribe(cl, sid);
    }
}

int cluster_sub_send(struct cluster *cl, const char *verb, const char *sid)
{
    char ch[CLUSTER_ID_MAX + 8];
    if (!cl->sub.ac)
        return -1;
    snprintf(ch, sizeof ch, "cb:{%s}:m", sid);
    /* UNSUBSCRIBE takes no callback in hiredis: its replies go to the channel's. */
    return redisAsyncCommand(cl->sub.ac, on_sub_reply, cl, "%s %s", verb, ch) == REDIS_OK ? 0 : -1;
}

// cppcheck-suppress constParameter ; the signature is hiredis's redisCallbackFn
static void on_ping(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cconn *cc = privdata;
    if (!reply || cc->ac != ac || cc->ping_sent <= 0)
        return;
    double rtt = ev_time() - cc->ping_sent;
    atomic_store_explicit(&cc->cl->rtt_us, (long long)(rtt * 1e6), memory_order_relaxed);
    cc->ping_sent = 0;
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct cluster *cl = w->data;
    double now = ev_now(loop);
    (void)revents;
    struct cconn *both[2] = {&cl->cmd, &cl->sub};
    for (int i = 0; i < 2; i++)
        if (both[i]->ac && !both[i]->ready && now - both[i]->started > CLUSTER_DEAD_S)
            conn_drop(both[i], "handshake timed out");
    struct cconn *cmd = &cl->cmd;
    /* Silence counts only while the loop runs: after a stall (the relay busy, a debugger) the
     * answers may be waiting unread in the sockets. And a ping queued behind many requests is
     * late while every other answer shows the connection alive. */
    double t = ev_time(), last_tick = cl->last_tick;
    cl->last_tick = t;
    if (last_tick > 0 && t - last_tick > CLUSTER_DEAD_S / 2) {
        cl->sub.last_seen = now;
        return;
    }
    double heard = cmd->last_reply > cmd->ping_sent ? cmd->last_reply : cmd->ping_sent;
    if (cmd->ready && cmd->ping_sent > 0 && t - heard > CLUSTER_DEAD_S) {
        conn_drop(cmd, "no answer to the ping");
    } else if (cmd->ready && cmd->ping_sent <= 0) {
        if (redisAsyncCommand(cmd->ac, on_ping, cmd, "PUBLISH %s p", cl->ping_channel) == REDIS_OK)
            cmd->ping_sent = ev_time();
    }
    if (cl->sub.ready && cmd->ready && now - cl->sub.last_seen > CLUSTER_DEAD_S)
        conn_drop(&cl->sub, "no ping message");
}

/* A request in flight: owned by hiredis's callback list until on_reply. The arguments are kept
 * for the one retry after NOSCRIPT; argv[0..2] are filled at each send. */
struct creq {
    struct cluster *cl;
    enum creq_kind kind;
    union cluster_fn fn;
    void *arg;
    int script, retried, argc;
    char numkeys[16];
    const char **argv;
    size_t *lens;
};

static void req_finish(struct creq *q, int status, const redisReply *r)
{
    int given = cluster_answer(q->kind, q->fn, q->arg, status, r);
    if (given == CLUSTER_DOWN)
        cluster_count(&q->cl->down_answers);
    else if (given == CLUSTER_ERROR)
        cluster_count(&q->cl->errors);
    free(q);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* EVAL carries the script's text: Redis caches it again, so one retry reloads and runs it. */
static int req_send(struct creq *q, int eval)
{
    struct cluster *cl = q->cl;
    int off = 0;
    if (!cl->cmd.ac || !cl->cmd.ready)
        return -1;
    if (q->script >= 0) {
        const char *code = eval ? cl->script_text[q->script] : cl->sha[q->script];
        q->argv[0] = eval ? "EVAL" : "EVALSHA";
        q->lens[0] = strlen(q->argv[0]);
        q->argv[1] = code;
        q->lens[1] = strlen(code);
        q->argv[2] = q->numkeys;
        q->lens[2] = strlen(q->numkeys);
    } else {
        off = 3;
    }
    return redisAsyncCommandArgv(cl->cmd.ac, on_reply, q, q->argc + 3 - off, q->argv + off,
                                 q->lens + off) == REDIS_OK
               ? 0
               : -1;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct creq *q = privdata;
    redisReply *r = reply;
    (void)ac;
    if (!r) {
        req_finish(q, CLUSTER_DOWN, NULL);
        return;
    }
    q->cl->cmd.last_reply = ev_time();
    if (r->type == REDIS_REPLY_ERROR) {
        if (q->script >= 0 && !q->retried && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            q->retried = 1;
            if (req_send(q, 1) == 0)
                return;
            req_finish(q, CLUSTER_DOWN, NULL);
            return;
        }
        log_json(LOG_ERROR, "redis answered an error",
                 json_pack("{s:s,s:s}", "script",
                           q->script >= 0 ? cluster_script_names[q->script] : "command", "error",
                           r->str));
        req_finish(q, CLUSTER_ERROR, NULL);
        return;
    }
    req_finish(q, CLUSTER_OK, r);
}

static struct creq *req_new(int argc, const char *const *argv, const size_t *lens)
{
    size_t bytes = sizeof(struct creq) + (size_t)(argc + 3) * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < argc; i++)
        bytes += lens[i] + 1;
    struct creq *q = calloc(1, bytes);
    if (!q)
        return NULL;
    q->argv = (const char **)(q + 1);
    q->lens = (size_t *)(q->argv + argc + 3);
    char *p = (char *)(q->lens + argc + 3);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], lens[i]);
        p[lens[i]] = '\0';
        q->argv[i + 3] = p;
        q->lens[i + 3] = lens[i];
        p += lens[i] + 1;
    }
    q->argc = argc;
    return q;
}

void cluster_call(struct cluster *cl, int script, enum creq_kind kind, union cluster_fn fn,
                  void *arg, int numkeys, int argc, const char *const *argv, const size_t *lens)
{
    cluster_count(&cl->requests);
    if (!cluster_is_up(cl)) {
        cluster_count(&cl->down_answers);
        cluster_answer(kind, fn, arg, CLUSTER_DOWN, NULL);
        return;
    }
    struct creq *q = req_new(argc, argv, lens);
    if (!q) {
        cluster_count(&cl->errors);
        cluster_answer(kind, fn, arg, CLUSTER_ERROR, NULL);
        return;
    }
    q->cl = cl;
    q->kind = kind;
    q->fn = fn;
    q->arg = arg;
    q->script = script;
    snprintf(q->numkeys, sizeof q->numkeys, "%d", numkeys);
    if (req_send(q, 0) < 0)
        req_finish(q, CLUSTER_DOWN, NULL);
}

static const char *lua_find(const char *name)
{
    for (int i = 0; i < cluster_lua_count; i++)
        if (strcmp(cluster_lua_files[i].name, name) == 0)
            return cluster_lua_files[i].text;
    return NULL;
}

static int cluster_load_scripts(struct cluster *cl)
{
    const char *common = lua_find("common");
    for (int i = 0; i < CS_COUNT; i++) {
        const char *text = lua_find(cluster_script_names[i]);
        if (!common || !text)
            return -1;
        size_t n = strlen(common) + strlen(text) + 2;
        if (!(cl->script_text[i] = malloc(n)))
            return -1;
        snprintf(cl->script_text[i], n, "%s\n%s", common, text);
    }
    return 0;
}

static int cluster_node_ok(const char *node)
{
    size_t n = node ? strlen(node) : 0;
    if (n == 0 || n > CLUSTER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", node[i]))
            return 0;
    return 1;
}

static void cconn_init(struct cluster *cl, struct cconn *cc, const char *name, int is_sub)
{
    cc->cl = cl;
    cc->name = name;
    cc->is_sub = is_sub;
    cc->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
    ev_timer_init(&cc->retry, on_retry, 0., 0.);
    cc->retry.data = cc;
}

struct cluster *cluster_new(struct ev_loop *loop, const struct cluster_config *cfg,
                            struct cluster_hooks hooks)
{
    char err[128];
    struct cluster *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    if (redis_url_parse(cfg->url, &cl->url, err, sizeof err) < 0) {
        log_json(LOG_ERROR, "bad redis url", json_pack("{s:s}", "why", err));
        goto fail;
    }
    if (!cluster_node_ok(cfg->node_id) || cfg->key_ttl_seconds <= 0) {
        log_msg(LOG_ERROR, "cluster: bad node id or key ttl");
        goto fail;
    }
    if (cluster_load_scripts(cl) < 0) {
        log_msg(LOG_ERROR, "cluster: Lua scripts missing or out of memory");
        goto fail;
    }
    redis_url_redacted(&cl->url, cl->redacted, sizeof cl->redacted);
    if (!cl->url.path[0] && redis_url_resolve(cl->url.host, cl->address, sizeof cl->address) != 0)
        goto fail;
    snprintf(cl->node, sizeof cl->node, "%s", cfg->node_id);
    /* Its own ping channel: two clients of one node (tests, a restart) never feed each other. */
    snprintf(cl->ping_channel, sizeof cl->ping_channel, "cb:n:%s:ping:%d:%p", cl->node,
             (int)getpid(), (void *)cl);
    cl->key_ttl_ms = (long long)cfg->key_ttl_seconds * 1000;
    cl->loop = loop;
    cl->hooks = hooks;
    atomic_store(&cl->rtt_us, -1);
    cconn_init(cl, &cl->cmd, "command", 0);
    cconn_init(cl, &cl->sub, "subscribe", 1);
    ev_timer_init(&cl->tick, on_tick, 1., 1.);
    cl->tick.data = cl;
    ev_timer_start(loop, &cl->tick);
    conn_open(&cl->cmd);
    conn_open(&cl->sub);
    return cl;
fail:
    for (int i = 0; i < CS_COUNT; i++)
        free(cl->script_text[i]);
    free(cl);
    return NULL;
}

void cluster_free(struct cluster *cl)
{
    if (!cl)
        return;
    cl->freeing = 1;
    atomic_store_explicit(&cl->up, 0, memory_order_relaxed);
    ev_timer_stop(cl->loop, &cl->tick);
    struct cconn *both[2] = {&cl->cmd, &cl->sub};
    for (int i = 0; i < 2; i++) {
        redisAsyncContext *ac = both[i]->ac;
        ev_timer_stop(cl->loop, &both[i]->retry);
        both[i]->ac = NULL;
        both[i]->ready = 0;
        if (ac)
            redisAsyncFree(ac); /* answers its requests in flight: CLUSTER_DOWN */
    }
    subs_free(cl);
    for (int i = 0; i < CS_COUNT; i++)
        free(cl->script_text[i]);
    free(cl);
}

int cluster_is_up(const struct cluster *cl)
{
    return cl && atomic_load_explicit(&((struct cluster *)cl)->up, memory_order_relaxed);
}

double cluster_rtt_ms(const struct cluster *cl)
{
    long long us = atomic_load_explicit(&((struct cluster *)cl)->rtt_us, memory_order_relaxed);
    return us < 0 ? -1.0 : (double)us / 1000.0;
}

size_t cluster_backlog(const struct cluster *cl)
{
    if (cl == NULL || cl->cmd.ac == NULL || cl->cmd.ac->c.obuf == NULL)
        return 0;
    return sdslen(cl->cmd.ac->c.obuf);
}

void cluster_stats(const struct cluster *cl, struct cluster_stats *out)
{
    struct cluster *c = (struct cluster *)cl;
    out->requests = atomic_load_explicit(&c->requests, memory_order_relaxed);
    out->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
    out->down_answers = atomic_load_explicit(&c->down_answers, memory_order_relaxed);
    out->reconnects = atomic_load_explicit(&c->reconnects, memory_order_relaxed);
    out->messages_in = atomic_load_explicit(&c->messages_in, memory_order_relaxed);
    out->subscriptions = atomic_load_explicit(&c->subscriptions, memory_order_relaxed);
}
