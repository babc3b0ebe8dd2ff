/* The requests of core/cluster/cluster.h: their keys and arguments, and the parsing of their
 * replies (the scripts are core/cluster/lua/NAME.lua; their reply shapes are written at the top of
 * each). */
#include "core/cluster/cluster_internal.h"

#include "core/base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_MAX_MEMBERS 256 /* cluster_touch: agents of one session on one node */

/* A session or tenant id becomes part of a key: 1..64 bytes, no hash-tag braces, no spaces. */
static int ops_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > CLUSTER_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (id[i] <= ' ' || id[i] == '{' || id[i] == '}' || id[i] == 0x7f)
            return 0;
    return 1;
}

static int ops_refuse(struct cluster *cl, enum creq_kind kind, union cluster_fn fn, void *arg,
                      const char *why)
{
    cluster_count(&cl->requests);
    cluster_count(&cl->errors);
    log_json(LOG_ERROR, "cluster request refused", json_pack("{s:s}", "why", why));
    cluster_answer(kind, fn, arg, CLUSTER_ERROR, NULL);
    return -1;
}

/* The arguments of one request: strings that outlive the call only until cluster_call copies
 * them, numbers printed into `num`. */
struct ops_args {
    int n;
    const char *v[OPS_MAX_MEMBERS + 16];
    size_t len[OPS_MAX_MEMBERS + 16];
    char num[8][24];
    int n_num;
};

static void arg_bin(struct ops_args *a, const void *p, size_t len)
{
    a->v[a->n] = p;
    a->len[a->n++] = len;
}

static void arg_str(struct ops_args *a, const char *s)
{
    arg_bin(a, s, strlen(s));
}

static void arg_u64(struct ops_args *a, uint64_t x)
{
    char *p = a->num[a->n_num++];
    snprintf(p, sizeof a->num[0], "%" PRIu64, x);
    arg_str(a, p);
}

static void arg_key(struct ops_args *a, char *buf, size_t size, const char *fmt, const char *id)
{
    snprintf(buf, size, fmt, id);
    arg_str(a, buf);
}

static int ops_reply_u64(const redisReply *r, uint64_t *out)
{
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
        return -1;
    *out = (uint64_t)r->integer;
    return 0;
}

static int ops_reply_copy(const redisReply *r, char *out, size_t size)
{
    if (r->type != REDIS_REPLY_STRING || r->len >= size)
        return -1;
    memcpy(out, r->str, r->len);
    out[r->len] = '\0';
    return 0;
}

static int answer_admit(cluster_admit_fn fn, void *arg, const redisReply *r)
{
    struct cluster_admit_reply a = {0};
    char code[32];
    uint64_t retry;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        ops_reply_copy(r->element[0], code, sizeof code) < 0 ||
        ops_reply_u64(r->element[1], &retry) < 0)
        return -1;
    a.refused = code[0] ? code : NULL;
    a.retry_ms = retry > INT32_MAX ? INT32_MAX : (int)retry;
    fn(arg, CLUSTER_OK, &a);
    return 0;
}

static int answer_claim(cluster_claim_fn fn, void *arg, const redisReply *r)
{
    struct cluster_claim_reply c = {0};
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5 || ops_reply_u64(r->element[0], &c.gen) ||
        ops_reply_u64(r->element[1], &c.last) || ops_reply_u64(r->element[2], &c.snap) ||
        ops_reply_copy(r->element[3], c.epoch, sizeof c.epoch) ||
        r->element[4]->type != REDIS_REPLY_ARRAY)
        return -1;
    const redisReply *ag = r->element[4];
    const char **agents = calloc(ag->elements + 1, sizeof *agents);
    if (!agents)
        return -1;
    for (size_t i = 0; i < ag->elements; i++) {
        if (ag->element[i]->type != REDIS_REPLY_STRING) {
            free(agents);
            return -1;
        }
        agents[i] = ag->element[i]->str;
    }
    c.n_agents = ag->elements;
    c.agents = agents;
    fn(arg, CLUSTER_OK, &c);
    free(agents);
    return 0;
}

static int answer_append(cluster_append_fn fn, void *arg, const redisReply *r)
{
    uint64_t result, last;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || ops_reply_u64(r->element[0], &result) ||
        ops_reply_u64(r->element[1], &last) || result > CLUSTER_APPEND_LOST)
        return -1;
    fn(arg, CLUSTER_OK, (enum cluster_append_result)result, last);
    return 0;
}

static int answer_sync(cluster_sync_fn fn, void *arg, const redisReply *r)
{
    struct cluster_sync_reply s = {0};
    uint64_t exists, visitor;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || ops_reply_u64(r->element[0], &exists))
        return -1;
    if (!exists) {
        fn(arg, CLUSTER_OK, &s);
        return 0;
    }
    if (r->elements < 7 || ops_reply_copy(r->element[1], s.epoch, sizeof s.epoch) ||
        ops_reply_u64(r->element[2], &s.gen) || ops_reply_u64(r->element[3], &s.last) ||
        ops_reply_u64(r->element[4], &s.snap) || ops_reply_u64(r->element[5], &visitor) ||
        ops_reply_copy(r->element[6], s.consent, sizeof s.consent))
        return -1;
    s.exists = 1;
    s.visitor = visitor != 0;
    s.n_frames = r->elements - 7;
    const unsigned char **frames = calloc(s.n_frames + 1, sizeof *frames);
    size_t *lens = calloc(s.n_frames + 1, sizeof *lens);
    int rc = -1;
    if (!frames || !lens)
        goto done;
    for (size_t i = 0; i < s.n_frames; i++) {
        const redisReply *f = r->element[7 + i];
        if (f->type != REDIS_REPLY_STRING)
            goto done;
        frames[i] = (const unsigned char *)f->str;
        lens[i] = f->len;
    }
    s.frames = frames;
    s.frame_lens = lens;
    fn(arg, CLUSTER_OK, &s);
    rc = 0;
done:
    free(frames);
    free(lens);
    return rc;
}

static int answer_idle(cluster_idle_fn fn, void *arg, const redisReply *r)
{
    uint64_t idle, wait;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || ops_reply_u64(r->element[0], &idle) ||
        ops_reply_u64(r->element[1], &wait))
        return -1;
    fn(arg, CLUSTER_OK, idle != 0, wait > INT32_MAX ? INT32_MAX : (int)wait);
    return 0;
}

static int answer_ok(enum creq_kind kind, union cluster_fn fn, void *arg, const redisReply *r)
{
    switch (kind) {
    case RQ_ADMIT:
        return answer_admit(fn.admit, arg, r);
    case RQ_CLAIM:
        return answer_claim(fn.claim, arg, r);
    case RQ_APPEND:
        return answer_append(fn.append, arg, r);
    case RQ_SYNC:
        return answer_sync(fn.sync, arg, r);
    case RQ_IDLE:
        return answer_idle(fn.idle, arg, r);
    case RQ_DONE:
        if (fn.done)
            fn.done(arg, CLUSTER_OK);
        return 0;
    }
    return -1;
}

int cluster_answer(enum creq_kind kind, union cluster_fn fn, void *arg, int status,
                   const redisReply *r)
{
    if (status == CLUSTER_OK && r) {
        if (answer_ok(kind, fn, arg, r) == 0)
            return CLUSTER_OK;
        log_json(LOG_ERROR, "redis reply of an unexpected shape",
                 json_pack("{s:i,s:i}", "kind", (int)kind, "type", r->type));
        status = CLUSTER_ERROR;
    }
    switch (kind) {
    case RQ_ADMIT:
        fn.admit(arg, status, NULL);
        break;
    case RQ_CLAIM:
        fn.claim(arg, status, NULL);
        break;
    case RQ_APPEND:
        fn.append(arg, status, CLUSTER_APPEND_LOST, 0);
        break;
    case RQ_SYNC:
        fn.sync(arg, status, NULL);
        break;
    case RQ_IDLE:
        fn.idle(arg, status, 0, 1000);
        break;
    case RQ_DONE:
        if (fn.done)
            fn.done(arg, status);
        break;
    }
    return status;
}

#define KEY_SIZE (CLUSTER_ID_MAX + 16)

void cluster_admit(struct cluster *cl, const struct cluster_admit *req, cluster_admit_fn fn,
                   void *arg)
{
    union cluster_fn f = {.admit = fn};
    struct ops_args a = {0};
    char live[KEY_SIZE], nw[KEY_SIZE], agents[KEY_SIZE];
    if (!ops_id_ok(req->tenant) || !ops_id_ok(req->session) || (req->agent && !req->member))
        return (void)ops_refuse(cl, RQ_ADMIT, f, arg, "admit: bad tenant, session or member");
    arg_key(&a, live, sizeof live, "cb:t:{%s}:live", req->tenant);
    arg_key(&a, nw, sizeof nw, "cb:t:{%s}:new", req->tenant);
    arg_key(&a, agents, sizeof agents, "cb:{%s}:agents", req->session);
    arg_str(&a, req->session);
    arg_str(&a, req->agent ? "1" : "0");
    arg_str(&a, req->resume ? "1" : "0");
    arg_str(&a, req->agent ? req->member : "");
    arg_u64(&a, req->concurrent_sessions > 0 ? (uint64_t)req->concurrent_sessions : 0);
    arg_u64(&a, req->sessions_per_minute > 0 ? (uint64_t)req->sessions_per_minute : 0);
    arg_u64(&a, req->agents_per_session > 0 ? (uint64_t)req->agents_per_session : 0);
    arg_u64(&a, req->presence_ttl_ms > 0 ? (uint64_t)req->presence_ttl_ms : 0);
    arg_u64(&a, (uint64_t)cl->key_ttl_ms);
    cluster_call(cl, CS_ADMIT, RQ_ADMIT, f, arg, 3, a.n, a.v, a.len);
}

void cluster_claim(struct cluster *cl, const char *session, uint64_t have, const char *epoch,
                   int presence_ttl_ms, cluster_claim_fn fn, void *arg)
{
    union cluster_fn f = {.claim = fn};
    struct ops_args a = {0};
    char meta[KEY_SIZE], h[KEY_SIZE], agents[KEY_SIZE], ch[KEY_SIZE];
    if (!ops_id_ok(session) || !epoch || strlen(epoch) != 32)
        return (void)ops_refuse(cl, RQ_CLAIM, f, arg, "claim: bad session or epoch");
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_key(&a, h, sizeof h, "cb:{%s}:h", session);
    arg_key(&a, agents, sizeof agents, "cb:{%s}:agents", session);
    arg_key(&a, ch, sizeof ch, "cb:{%s}:m", session);
    arg_u64(&a, have);
    arg_str(&a, epoch);
    arg_str(&a, cl->node);
    arg_u64(&a, presence_ttl_ms > 0 ? (uint64_t)presence_ttl_ms : 0);
    arg_u64(&a, (uint64_t)cl->key_ttl_ms);
    cluster_call(cl, CS_CLAIM, RQ_CLAIM, f, arg, 4, a.n, a.v, a.len);
}

void cluster_append(struct cluster *cl, const char *session, uint64_t gen, uint64_t seq,
                    int snapshot, const unsigned char *frame, size_t len, cluster_append_fn fn,
                    void *arg)
{
    union cluster_fn f = {.append = fn};
    struct ops_args a = {0};
    char meta[KEY_SIZE], h[KEY_SIZE], ch[KEY_SIZE];
    if (!ops_id_ok(session) || seq == 0 || seq >= (1ULL << 53))
        return (void)ops_refuse(cl, RQ_APPEND, f, arg, "append: bad session or seq");
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_key(&a, h, sizeof h, "cb:{%s}:h", session);
    arg_key(&a, ch, sizeof ch, "cb:{%s}:m", session);
    arg_u64(&a, gen);
    arg_u64(&a, seq);
    arg_str(&a, snapshot ? "1" : "0");
    arg_bin(&a, frame, len);
    arg_u64(&a, (uint64_t)cl->key_ttl_ms);
    cluster_call(cl, CS_APPEND, RQ_APPEND, f, arg, 3, a.n, a.v, a.len);
}

void cluster_sync(struct cluster *cl, const char *session, uint64_t after, cluster_sync_fn fn,
                  void *arg)
{
    union cluster_fn f = {.sync = fn};
    struct ops_args a = {0};
    char meta[KEY_SIZE], h[KEY_SIZE];
    if (!ops_id_ok(session) || after >= (1ULL << 53))
        return (void)ops_refuse(cl, RQ_SYNC, f, arg, "sync: bad session or seq");
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_key(&a, h, sizeof h, "cb:{%s}:h", session);
    arg_u64(&a, after);
    cluster_call(cl, CS_SYNC, RQ_SYNC, f, arg, 2, a.n, a.v, a.len);
}

void cluster_touch(struct cluster *cl, const char *tenant, const char *session,
                   uint64_t visitor_gen, const char *const *members, size_t n_members,
                   int presence_ttl_ms, cluster_done_fn fn, void *arg)
{
    union cluster_fn f = {.done = fn};
    struct ops_args a = {0};
    char live[KEY_SIZE], meta[KEY_SIZE], h[KEY_SIZE], agents[KEY_SIZE];
    if (!ops_id_ok(tenant) || !ops_id_ok(session) || n_members > OPS_MAX_MEMBERS)
        return (void)ops_refuse(cl, RQ_DONE, f, arg, "touch: bad ids or too many members");
    arg_key(&a, live, sizeof live, "cb:t:{%s}:live", tenant);
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_key(&a, h, sizeof h, "cb:{%s}:h", session);
    arg_key(&a, agents, sizeof agents, "cb:{%s}:agents", session);
    arg_str(&a, session);
    arg_u64(&a, visitor_gen);
    arg_u64(&a, presence_ttl_ms > 0 ? (uint64_t)presence_ttl_ms : 0);
    arg_u64(&a, (uint64_t)cl->key_ttl_ms);
    for (size_t i = 0; i < n_members; i++)
        arg_str(&a, members[i]);
    cluster_call(cl, CS_TOUCH, RQ_DONE, f, arg, 4, a.n, a.v, a.len);
}

void cluster_left(struct cluster *cl, const char *session, const char *member, uint64_t visitor_gen,
                  cluster_done_fn fn, void *arg)
{
    union cluster_fn f = {.done = fn};
    struct ops_args a = {0};
    char meta[KEY_SIZE], agents[KEY_SIZE];
    if (!ops_id_ok(session) || (member && !member[0]))
        return (void)ops_refuse(cl, RQ_DONE, f, arg, "left: bad session or member");
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_key(&a, agents, sizeof agents, "cb:{%s}:agents", session);
    arg_str(&a, member ? member : "");
    arg_u64(&a, visitor_gen);
    cluster_call(cl, CS_LEFT, RQ_DONE, f, arg, 2, a.n, a.v, a.len);
}

void cluster_idle(struct cluster *cl, const char *session, int idle_ms, cluster_idle_fn fn,
                  void *arg)
{
    union cluster_fn f = {.idle = fn};
    struct ops_args a = {0};
    char meta[KEY_SIZE], agents[KEY_SIZE];
    if (!ops_id_ok(session))
        return (void)ops_refuse(cl, RQ_IDLE, f, arg, "idle: bad session");
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_key(&a, agents, sizeof agents, "cb:{%s}:agents", session);
    arg_u64(&a, idle_ms > 0 ? (uint64_t)idle_ms : 0);
    cluster_call(cl, CS_IDLE, RQ_IDLE, f, arg, 2, a.n, a.v, a.len);
}

void cluster_consent(struct cluster *cl, const char *session, const char *state, cluster_done_fn fn,
                     void *arg)
{
    union cluster_fn f = {.done = fn};
    struct ops_args a = {0};
    char meta[KEY_SIZE];
    if (!ops_id_ok(session) || !state ||
        strlen(state) >= sizeof(((struct cluster_sync_reply *)0)->consent))
        return (void)ops_refuse(cl, RQ_DONE, f, arg, "consent: bad session or state");
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_str(&a, state);
    cluster_call(cl, CS_CONSENT, RQ_DONE, f, arg, 1, a.n, a.v, a.len);
}

void cluster_end(struct cluster *cl, const char *tenant, const char *session, cluster_done_fn fn,
                 void *arg)
{
    union cluster_fn f = {.done = fn};
    struct ops_args a = {0};
    char meta[KEY_SIZE], h[KEY_SIZE], agents[KEY_SIZE], live[KEY_SIZE];
    if (!ops_id_ok(tenant) || !ops_id_ok(session))
        return (void)ops_refuse(cl, RQ_DONE, f, arg, "end: bad tenant or session");
    arg_key(&a, meta, sizeof meta, "cb:{%s}:meta", session);
    arg_key(&a, h, sizeof h, "cb:{%s}:h", session);
    arg_key(&a, agents, sizeof agents, "cb:{%s}:agents", session);
    arg_key(&a, live, sizeof live, "cb:t:{%s}:live", tenant);
    arg_str(&a, session);
    cluster_call(cl, CS_END, RQ_DONE, f, arg, 4, a.n, a.v, a.len);
}

void cluster_publish(struct cluster *cl, const char *session, const unsigned char *data, size_t len,
                     cluster_done_fn fn, void *arg)
{
    union cluster_fn f = {.done = fn};
    struct ops_args a = {0};
    char ch[KEY_SIZE];
    if (!ops_id_ok(session))
        return (void)ops_refuse(cl, RQ_DONE, f, arg, "publish: bad session");
    arg_str(&a, "PUBLISH");
    arg_key(&a, ch, sizeof ch, "cb:{%s}:m", session);
    arg_bin(&a, data, len);
    cluster_call(cl, -1, RQ_DONE, f, arg, 0, a.n, a.v, a.len);
}

void cluster_subscribe(struct cluster *cl, const char *session, cluster_done_fn fn, void *arg)
{
    union cluster_fn f = {.done = fn};
    if (!ops_id_ok(session))
        return (void)ops_refuse(cl, RQ_DONE, f, arg, "subscribe: bad session");
    if (!cluster_is_up(cl)) {
        cluster_count(&cl->down_answers);
        if (fn)
            fn(arg, CLUSTER_DOWN);
        return;
    }
    subs_subscribe(cl, session, fn, arg);
}

void cluster_unsubscribe(struct cluster *cl, const char *session)
{
    if (ops_id_ok(session) && !cl->freeing)
        subs_unsubscribe(cl, session);
}
