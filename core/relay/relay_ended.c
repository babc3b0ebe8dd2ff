/* Sessions known to have ended (core/relay/relay_ended.h). Memory: one entry of ~64 bytes per
 * session ended in the last 25 hours, in a fixed table of chains. */
#include "core/relay/relay_ended.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/hash.h"

#define RENDED_BUCKETS      65536
#define RENDED_KEEP_SECONDS (25 * 3600) /* longer than any token lives */

struct rended_entry {
    char id[48];
    double at;
    struct rended_entry *next;
};

struct rended {
    struct rended_entry **buckets;
    int lossy; /* an add failed since the last full reload */
    const struct relay_clock *clock;
};

struct rended *rended_new(void)
{
    struct rended *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->buckets = calloc(RENDED_BUCKETS, sizeof(*e->buckets));
    if (e->buckets == NULL) {
        free(e);
        return NULL;
    }
    return e;
}

static void drop_where(struct rended *e, double before, int all)
{
    for (int b = 0; b < RENDED_BUCKETS; b++) {
        struct rended_entry **pp = &e->buckets[b];
        while (*pp) {
            if (all || (*pp)->at < before) {
                struct rended_entry *dead = *pp;
                *pp = dead->next;
                free(dead);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
}

void rended_free(struct rended *e)
{
    if (e == NULL)
        return;
    drop_where(e, 0, 1);
    free(e->buckets);
    free(e);
}

static struct rended_entry **bucket(const struct rended *e, const char *id)
{
    return &e->buckets[hash_fnv1a(id) % RENDED_BUCKETS];
}

static int held(const struct rended *e, const char *id)
{
    for (struct rended_entry *x = *bucket(e, id); x; x = x->next)
        if (strcmp(x->id, id) == 0)
            return 1;
    return 0;
}

int rended_contains(const struct rended *e, const char *id)
{
    if (held(e, id))
        return 1;
    return e->lossy ? -1 : 0;
}

int rended_add(struct rended *e, const char *id, double at)
{
    if (held(e, id))
        return 0;
    struct rended_entry *x = malloc(sizeof(*x));
    if (x == NULL) {
        e->lossy = 1;
        return -1;
    }
    snprintf(x->id, sizeof(x->id), "%s", id);
    x->at = at;
    struct rended_entry **b = bucket(e, id);
    x->next = *b;
    *b = x;
    return 0;
}

void rended_expire(struct rended *e, double now)
{
    drop_where(e, now - RENDED_KEEP_SECONDS, 0);
}

int rended_lossy(const struct rended *e)
{
    return e->lossy;
}

void rended_reloaded(struct rended *e)
{
    e->lossy = 0;
}

static int seam_add(void *ctx, const char *id)
{
    struct rended *e = ctx;
    return rended_add(e, id, e->clock->wall(e->clock->ctx));
}

static int seam_contains(void *ctx, const char *id)
{
    return rended_contains(ctx, id);
}

struct relay_ended_set rended_seam(struct rended *e, const struct relay_clock *clock)
{
    e->clock = clock;
    return (struct relay_ended_set){.ctx = e, .add = seam_add, .contains = seam_contains};
}
