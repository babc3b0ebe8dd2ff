/* The subscription table of core/cluster (cluster_internal.h): one entry per session channel,
 * chained hash on the session id. O(1) per operation; O(channels) at a reconnect. */
#include "core/cluster/cluster_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t subs_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct cluster_sub **subs_slot(struct cluster *cl, const char *sid)
{
    if (!cl->buckets)
        return NULL;
    struct cluster_sub **p = &cl->buckets[subs_hash(sid) & (cl->n_buckets - 1)];
    while (*p && strcmp((*p)->sid, sid) != 0)
        p = &(*p)->next;
    return p;
}

static struct cluster_sub *subs_find(struct cluster *cl, const char *sid)
{
    struct cluster_sub **p = subs_slot(cl, sid);
    return p ? *p : NULL;
}

/* Doubles the buckets when they are full: chains stay about one long. */
static int subs_grow(struct cluster *cl)
{
    size_t n = cl->n_buckets ? cl->n_buckets * 2 : 64;
    struct cluster_sub **b = calloc(n, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < cl->n_buckets; i++) {
        struct cluster_sub *e = cl->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t k = subs_hash(e->sid) & (n - 1);
            e->next = b[k];
            b[k] = e;
        }
    }
    free(cl->buckets);
    cl->buckets = b;
    cl->n_buckets = n;
    return 0;
}

static void subs_remove(struct cluster *cl, struct cluster_sub *e)
{
    struct cluster_sub **p = subs_slot(cl, e->sid);
    *p = e->next;
    cl->n_subs--;
    free(e);
}

static void subs_set_want(struct cluster *cl, struct cluster_sub *e, int want)
{
    if (e->want == want)
        return;
    e->want = want;
    if (want)
        atomic_fetch_add_explicit(&cl->subscriptions, 1, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&cl->subscriptions, 1, memory_order_relaxed);
}

/* Each waiter is answered once: the list is detached before any callback runs, since a callback
 * may subscribe again. */
static void subs_answer(struct cluster *cl, struct cluster_sub *e, int status)
{
    struct cluster_waiter *w = e->waiters, *next;
    e->waiters = NULL;
    for (; w; w = next) {
        next = w->next;
        if (status == CLUSTER_DOWN)
            cluster_count(&cl->down_answers);
        if (w->fn)
            w->fn(w->arg, status);
        free(w);
    }
}

void subs_subscribe(struct cluster *cl, const char *sid, cluster_done_fn fn, void *arg)
{
    struct cluster_sub *e = subs_find(cl, sid);
    struct cluster_waiter *w = NULL;
    if (e && e->want && e->state == SUB_SUBSCRIBED) {
        if (fn)
            fn(arg, CLUSTER_OK);
        return;
    }
    if (!e && cl->n_subs >= cl->n_buckets && subs_grow(cl) < 0)
        goto fail;
    w = calloc(1, sizeof *w);
    if (!w || (!e && !(e = calloc(1, sizeof *e))))
        goto fail;
    if (e->sid[0] == '\0') {
        snprintf(e->sid, sizeof e->sid, "%s", sid);
        struct cluster_sub **p = subs_slot(cl, sid);
        *p = e;
        cl->n_subs++;
    }
    w->fn = fn;
    w->arg = arg;
    w->next = e->waiters;
    e->waiters = w;
    subs_set_want(cl, e, 1);
    if (e->state == SUB_IDLE) {
        if (cluster_sub_send(cl, "SUBSCRIBE", sid) < 0) {
            subs_set_want(cl, e, 0);
            subs_answer(cl, e, CLUSTER_DOWN);
            subs_remove(cl, e);
            return;
        }
        e->state = SUB_SUBSCRIBING;
    }
    return; /* SUBSCRIBING: the reply answers; UNSUBSCRIBING: its reply subscribes again */
fail:
    free(w);
    cluster_count(&cl->errors);
    if (fn)
        fn(arg, CLUSTER_ERROR);
}

/* Answers pending subscribers with CLUSTER_DOWN: the caller gave the channel up. */
void subs_unsubscribe(struct cluster *cl, const char *sid)
{
    struct cluster_sub *e = subs_find(cl, sid);
    if (!e || !e->want)
        return;
    subs_set_want(cl, e, 0);
    subs_answer(cl, e, CLUSTER_DOWN);
    if (e->state == SUB_IDLE) {
        subs_remove(cl, e);
    } else if (e->state == SUB_SUBSCRIBED) {
        if (cluster_sub_send(cl, "UNSUBSCRIBE", sid) < 0)
            subs_remove(cl, e); /* the connection is going: nothing to undo on it */
        else
            e->state = SUB_UNSUBSCRIBING;
    } /* SUBSCRIBING and UNSUBSCRIBING: their replies decide */
}

int subs_on_subscribe(struct cluster *cl, const char *sid)
{
    struct cluster_sub *e = subs_find(cl, sid);
    if (!e || e->state != SUB_SUBSCRIBING)
        return 0;
    int restoring = e->restoring;
    e->restoring = 0;
    e->state = SUB_SUBSCRIBED;
    if (e->want) {
        subs_answer(cl, e, CLUSTER_OK);
    } else if (cluster_sub_send(cl, "UNSUBSCRIBE", sid) == 0) {
        e->state = SUB_UNSUBSCRIBING;
    } else {
        subs_remove(cl, e);
    }
    return restoring;
}

void subs_on_unsubscribe(struct cluster *cl, const char *sid)
{
    struct cluster_sub *e = subs_find(cl, sid);
    if (!e || e->state != SUB_UNSUBSCRIBING)
        return;
    e->state = SUB_IDLE;
    if (!e->want) {
        subs_remove(cl, e);
    } else if (cluster_sub_send(cl, "SUBSCRIBE", sid) == 0) {
        e->state = SUB_SUBSCRIBING;
    } else {
        subs_set_want(cl, e, 0);
        subs_answer(cl, e, CLUSTER_DOWN);
        subs_remove(cl, e);
    }
}

void subs_on_message(struct cluster *cl, const char *sid, const unsigned char *data, size_t len)
{
    struct cluster_sub *e = subs_find(cl, sid);
    if (!e || !e->want || e->state != SUB_SUBSCRIBED)
        return; /* a message racing an UNSUBSCRIBE, or before the confirmation */
    atomic_fetch_add_explicit(&cl->messages_in, 1, memory_order_relaxed);
    if (cl->hooks.message)
        cl->hooks.message(cl->hooks.ctx, sid, data, len);
}

/* Collects the entries first: callbacks may subscribe or unsubscribe (changing the table). */
void subs_lost(struct cluster *cl)
{
    struct cluster_sub *answer = NULL;
    for (size_t i = 0; i < cl->n_buckets; i++) {
        struct cluster_sub **p = &cl->buckets[i];
        while (*p) {
            struct cluster_sub *e = *p;
            e->state = SUB_IDLE;
            e->restoring = 0;
            if (e->want && !e->waiters) {
                p = &e->next;
                continue;
            }
            *p = e->next;
            cl->n_subs--;
            subs_set_want(cl, e, 0);
            e->next = answer;
            answer = e;
        }
    }
    while (answer) {
        struct cluster_sub *e = answer;
        answer = e->next;
        subs_answer(cl, e, CLUSTER_DOWN);
        free(e);
    }
}

int subs_restore(struct cluster *cl)
{
    int n = 0;
    for (size_t i = 0; i < cl->n_buckets; i++)
        for (struct cluster_sub *e = cl->buckets[i]; e; e = e->next) {
            if (cluster_sub_send(cl, "SUBSCRIBE", e->sid) < 0)
                return -1;
            e->state = SUB_SUBSCRIBING;
            e->restoring = 1;
            n++;
        }
    return n;
}

void subs_free(struct cluster *cl)
{
    for (size_t i = 0; i < cl->n_buckets; i++) {
        struct cluster_sub *e, *next;
        for (e = cl->buckets[i]; e; e = next) {
            next = e->next;
            subs_answer(cl, e, CLUSTER_DOWN);
            free(e);
        }
        cl->buckets[i] = NULL;
    }
    free(cl->buckets);
    cl->buckets = NULL;
    cl->n_buckets = cl->n_subs = 0;
}
