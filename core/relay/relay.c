/* The relay instance (core/relay/relay.h): the lws context on the relay's libev loop, the
 * service thread, the once-a-second tick, drain and stop, and the inbox through which other
 * threads (the worker's LISTEN) reach the relay thread. It builds the session layer (struct
 * rcore) with its seams: the connections over lws (core/relay/relay_ws.c), the system clocks,
 * the worker (core/relay/relay_worker.c), the ended set (relay_ended.c) and the node's tables
 * (relay_local.c). Nothing below calls back into this file except through those seams and the
 * rws.cancelled hook. */
#include "core/relay/relay.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ctype.h>
#include <unistd.h>

#include "core/base/ids.h"
#include "core/base/log.h"
#include "core/base/timeutil.h"
#include "core/relay/relay_cluster.h"
#include "core/relay/relay_ended.h"
#include "core/relay/relay_local.h"
#include "core/relay/relay_mask.h"
#include "core/relay/relay_metrics.h"
#include "core/relay/relay_session.h"
#include "core/relay/relay_worker.h"
#include "core/relay/relay_ws.h"

/* An ended session reported by another thread (the worker's LISTEN), FIFO: a reload's "done"
 * marker (id "") must come after the ids of that reload. */
struct inbox_item {
    char id[48];
    char reason[64];
    struct inbox_item *next;
};

struct relay {
    struct relay_config cfg;
    struct rcore core;
    struct relay_clock clock;
    struct rended *ended;
    struct rlocal *local;
    struct rworker *worker;
    struct rmask *mask; /* unmasked client frames: the service thread's recv() watch */
    struct rws ws;      /* what the lws callback reads: the context's user pointer */
    struct lws_context *ctx;
    struct ev_loop *evloop; /* the relay's epoll loop (libev), NULL if lws polls itself */
    pthread_t thread;
    int thread_started;
    atomic_int stopping, drain_requested; /* draining: ws.draining */
    int drain_started;                    /* relay thread */
    lws_sorted_usec_list_t tick_sul;
    double last_expire;
    pthread_mutex_t inbox_lock;
    struct inbox_item *inbox_head, *inbox_tail;
};

/* ---- the clocks and the events seam before the worker runs ---- */

static double clock_monotonic(void *ctx)
{
    (void)ctx;
    return time_monotonic();
}

static double clock_wall(void *ctx)
{
    (void)ctx;
    return time_now();
}

/* Events after the worker has stopped (relay_free of a relay that never started, or stopped). */
static void drop_event(void *ctx, enum relay_event_type type, const char *sid, const char *tid,
                       const char *agent_id, const char *agent_name)
{
    (void)ctx, (void)type, (void)sid, (void)tid, (void)agent_id, (void)agent_name;
}

/* ---- the inbox: other threads to the relay thread ---- */

static int inbox_put(void *ctx, const char *session_id, const char *reason)
{
    struct relay *r = ctx;
    struct inbox_item *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return -1; /* the worker retries: an ended session is never dropped */
    snprintf(it->id, sizeof(it->id), "%s", session_id);
    snprintf(it->reason, sizeof(it->reason), "%s", reason ? reason : "ended");
    pthread_mutex_lock(&r->inbox_lock);
    if (r->inbox_tail)
        r->inbox_tail->next = it;
    else
        r->inbox_head = it;
    r->inbox_tail = it;
    pthread_mutex_unlock(&r->inbox_lock);
    if (r->ctx)
        lws_cancel_service(r->ctx);
    return 0;
}

static void inbox_reloaded(void *ctx)
{
    while (inbox_put(ctx, "", "reloaded") != 0) /* rare: out of memory; the worker thread waits */
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
}

/* Relay thread (or the main thread before it starts): acts on what other threads said. */
static void inbox_drain(struct relay *r)
{
    pthread_mutex_lock(&r->inbox_lock);
    struct inbox_item *list = r->inbox_head;
    r->inbox_head = r->inbox_tail = NULL;
    pthread_mutex_unlock(&r->inbox_lock);
    while (list) {
        struct inbox_item *next = list->next;
        if (list->id[0] == '\0') {
            rended_reloaded(r->ended);
        } else {
            struct rsession *s = rsession_find(&r->core, list->id);
            if (s != NULL)
                rsession_end(s, list->reason); /* records it in the ended set too */
            else if (r->core.ended.add(r->core.ended.ctx, list->id) != 0)
                RSTAT_ADD(&r->core.stats, ended_set_failures, 1);
        }
        free(list);
        list = next;
    }
}

/* Frees what is left in the inbox after the relay thread has stopped (nobody to act on it). */
static void inbox_drain_free(struct relay *r)
{
    struct inbox_item *list = r->inbox_head;
    r->inbox_head = r->inbox_tail = NULL;
    while (list) {
        struct inbox_item *next = list->next;
        free(list);
        list = next;
    }
}

/* ---- drain and tick ---- */

static void drain_one(struct rsession *s, void *arg)
{
    (void)arg;
    char reason[64];
    uint32_t jitter = 0;
    if (s->visitor) {
        ids_random(&jitter, sizeof(jitter));
        snprintf(reason, sizeof(reason), "{\"retry_ms\":%u}", 250 + jitter % 2000);
        rconn_close(s->visitor, 1012, reason);
    }
    for (struct rconn *a = s->agents; a; a = a->next) {
        ids_random(&jitter, sizeof(jitter));
        snprintf(reason, sizeof(reason), "{\"retry_ms\":%u}", 250 + jitter % 2000);
        rconn_close(a, 1012, reason);
    }
}

static void tick(lws_sorted_usec_list_t *sul)
{
    struct relay *r = lws_container_of(sul, struct relay, tick_sul);
    double now = time_monotonic();
    rsession_tick(&r->core);
    if (r->core.cluster != NULL)
        rcluster_tick(r->core.cluster);
    if (now - r->last_expire > 60) {
        rended_expire(r->ended, time_now());
        r->last_expire = now;
    }
    if (rended_lossy(r->ended)) /* the worker puts back what the set lost */
        rworker_request_reload(r->worker);
    lws_sul_schedule(r->ctx, 0, sul, tick, LWS_US_PER_SEC);
}

/* Service thread, at each lws_cancel_service(): stop, the inbox, the start of a drain. */
static void service_cancelled(void *ctx)
{
    struct relay *r = ctx;
    if (atomic_load(&r->stopping) && r->evloop != NULL) /* lws_service() runs ev_run() */
        ev_break(r->evloop, EVBREAK_ALL);
    inbox_drain(r);
    if (atomic_load(&r->drain_requested) && !r->drain_started) {
        r->drain_started = 1;
        rsession_foreach(&r->core, drain_one, NULL);
    }
}

static void lws_log(int level, const char *line)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", line);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_json(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "libwebsockets",
             json_pack("{s:s}", "detail", msg));
}

static void mask_bad(void *ctx)
{
    struct relay *r = ctx;
    lws_cancel_service(r->ctx); /* relay_ws.c closes it there, outside lws's read path */
}

static void *service(void *arg)
{
    struct relay *r = arg;
    rmask_bind_thread(r->mask); /* lws reads on this thread: recv() watches here only */
    while (!atomic_load(&r->stopping))
        if (lws_service(r->ctx, 0) < 0)
            break;
    return NULL;
}

/* ---- the instance ---- */

struct relay *relay_new(const struct relay_config *cfg)
{
    struct relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    pthread_mutex_init(&r->inbox_lock, NULL);
    r->clock = (struct relay_clock){NULL, clock_monotonic, clock_wall};
    r->core.cfg = &r->cfg;
    r->core.clock = r->clock;
    r->core.io = rws_io();
    r->ws.core = &r->core; /* ws.draining is 0 (calloc) */
    r->ws.cancelled = service_cancelled;
    r->ws.ctx = r;
    r->core.events = (struct relay_events){NULL, drop_event};
    r->ended = rended_new();
    r->local = rlocal_new(&r->core);
    if (r->ended == NULL || r->local == NULL || rsession_tables_init(&r->core) != 0) {
        relay_free(r);
        return NULL;
    }
    r->core.ended = rended_seam(r->ended, &r->clock);
    r->core.shared = rlocal_seam(r->local);
    return r;
}

/* The lws context on the relay's own libev loop, else (no evlib plugin) on lws's poll loop. */
static int create_context(struct relay *r)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = r->cfg.listen_port;
    info.iface = r->cfg.listen_host;
    info.protocols = rws_protocols();
    info.user = &r->ws;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.max_http_header_data = TOKEN_MAX_LEN + 1024;
    info.pt_serv_buf_size = 65536;
    info.count_threads = 1;
    info.timeout_secs = 10;
    info.ka_time = 60;
    info.ka_probes = 3;
    info.ka_interval = 10;
    /* lws's own loop calls poll() on every connection at each turn: with 10,000 idle connections
     * held, p99 at 4,000 frames/s went from 1.5 to 10.6 ms (docs/benchmarks.md). libev (epoll)
     * costs per event instead. The loop is ours ("foreign"), so lws installs no signal watcher:
     * SIGINT and SIGTERM stay with main()'s sigwait(). */
    r->evloop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    void *loops[1] = {r->evloop};
    if (r->evloop != NULL) {
        info.options |= LWS_SERVER_OPTION_LIBEV;
        info.foreign_loops = loops;
        r->ctx = lws_create_context(&info);
        if (r->ctx == NULL) {
            ev_loop_destroy(r->evloop);
            r->evloop = NULL;
            info.options &= ~(uint64_t)LWS_SERVER_OPTION_LIBEV;
            info.foreign_loops = NULL;
        }
    }
    if (r->evloop == NULL) {
        log_json(LOG_WARN, "relay without its epoll loop",
                 json_pack("{s:s}", "hint",
                           "install libwebsockets-evlib-ev (Debian); lws's poll() loop costs time "
                           "in proportion to the open connections"));
        r->ctx = lws_create_context(&info);
    }
    if (r->ctx != NULL)
        return 0;
    log_json(LOG_ERROR, "relay could not listen",
             json_pack("{s:s, s:i, s:s}", "host", r->cfg.listen_host, "port", r->cfg.listen_port,
                       "hint", "is the port free? change --relay-listen"));
    return -1;
}

/* With --redis-url: the cluster's client on the relay's loop (docs/cluster.md). */
static int start_cluster(struct relay *r)
{
    if (r->cfg.redis_url[0] == '\0')
        return 0;
    if (r->evloop == NULL) {
        log_json(LOG_ERROR, "clustering needs the relay's libev loop",
                 json_pack("{s:s}", "hint", "install libwebsockets-evlib-ev (Debian)"));
        return -1;
    }
    char node[80];
    if (r->cfg.node_id[0] != '\0') {
        snprintf(node, sizeof(node), "%s", r->cfg.node_id);
    } else {
        char host[64] = "node";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        for (char *p = host; *p; p++) /* the node id's alphabet (--node-id) */
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                *p = '-';
        snprintf(node, sizeof(node), "%s:%d", host, r->cfg.listen_port);
    }
    r->core.cluster = rcluster_new(&r->core, r->evloop, r->cfg.redis_url, node);
    r->core.span = rcluster_span();
    return r->core.cluster != NULL ? 0 : -1;
}

int relay_start(struct relay *r)
{
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    /* The worker first: it loads the recently ended sessions into the inbox, drained here before
     * the port opens, so that no handshake of an ended session is ever admitted. */
    r->worker =
        rworker_start(r->cfg.database_url, (struct rworker_hooks){r, inbox_put, inbox_reloaded});
    if (r->worker == NULL)
        return -1;
    r->core.events = rworker_seam(r->worker);
    inbox_drain(r);
    if (create_context(r) != 0 || start_cluster(r) != 0)
        return -1;
    lws_sul_schedule(r->ctx, 0, &r->tick_sul, tick, LWS_US_PER_SEC);
    r->mask = rmask_new(mask_bad, r);
    r->ws.mask = r->mask;
    if (r->mask == NULL || pthread_create(&r->thread, NULL, service, r) != 0)
        return -1;
    r->thread_started = 1;
    return 0;
}

void relay_drain(struct relay *r)
{
    if (r == NULL || r->ctx == NULL)
        return;
    atomic_store(&r->ws.draining, 1);
    atomic_store(&r->drain_requested, 1);
    lws_cancel_service(r->ctx);
    double deadline = time_monotonic() + r->cfg.drain_seconds;
    while (time_monotonic() < deadline &&
           RSTAT_GET(&r->core.stats, conns_visitor) + RSTAT_GET(&r->core.stats, conns_agent) > 0) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void relay_stop(struct relay *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, 1);
    if (r->thread_started) {
        lws_cancel_service(r->ctx);
        pthread_join(r->thread, NULL);
        r->thread_started = 0;
    }
    if (r->ctx != NULL) /* WSI_DESTROY for every connection: they detach, events are posted */
        lws_context_destroy(r->ctx);
    r->ctx = NULL;
    if (r->core.cluster != NULL) { /* on the loop, so before it goes; copies unsubscribe first */
        rsession_tables_free(&r->core);
        rcluster_free(r->core.cluster);
        r->core.cluster = NULL;
    }
    rworker_stop(r->worker); /* records what is queued, those events included */
    r->worker = NULL;
    r->core.events = (struct relay_events){NULL, drop_event};
    if (r->evloop != NULL)
        ev_loop_destroy(r->evloop);
    r->evloop = NULL;
}

void relay_free(struct relay *r)
{
    if (r == NULL)
        return;
    relay_stop(r);
    rsession_tables_free(&r->core);
    inbox_drain_free(r);
    rlocal_free(r->local);
    rended_free(r->ended);
    rmask_free(r->mask);
    pthread_mutex_destroy(&r->inbox_lock);
    free(r);
}

char *relay_metrics_text(struct relay *r)
{
    char *text = rmetrics_text(&r->core.stats, rworker_dropped(r->worker));
    if (text == NULL || r->core.cluster == NULL)
        return text;
    char *cl = rcluster_metrics(r->core.cluster);
    char *both = NULL;
    if (cl != NULL && asprintf(&both, "%s%s", text, cl) < 0)
        both = NULL;
    free(cl);
    if (both == NULL)
        return text;
    free(text);
    return both;
}

int relay_draining(const struct relay *r)
{
    return r != NULL && atomic_load(&r->ws.draining);
}

int relay_cluster_state(const struct relay *r)
{
    if (r == NULL || r->core.cluster == NULL)
        return -1;
    return rcluster_is_up(r->core.cluster);
}
