#include "core/base/ratelimit.h"
#include "core/base/hash.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RL_SHARDS  16
#define RL_KEY_MAX 64
#define RL_PROBE   8 /* open addressing: look at most this many slots */

struct rl_entry {
    uint64_t hash; /* of the whole key: keys longer than key[] still never share a limit */
    char key[RL_KEY_MAX];
    double tat; /* theoretical arrival time */
    int used;
};

struct rl_shard {
    pthread_mutex_t lock;
    struct rl_entry *slots;
};

struct rl_table {
    unsigned per_shard;
    struct rl_shard shards[RL_SHARDS];
};

struct rl_table *rl_new(unsigned capacity)
{
    struct rl_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->per_shard = capacity / RL_SHARDS + RL_PROBE;
    for (int i = 0; i < RL_SHARDS; i++) {
        pthread_mutex_init(&t->shards[i].lock, NULL);
        t->shards[i].slots = calloc(t->per_shard, sizeof(struct rl_entry));
        if (t->shards[i].slots == NULL) {
            rl_free(t);
            return NULL;
        }
    }
    return t;
}

void rl_free(struct rl_table *t)
{
    if (t == NULL)
        return;
    for (int i = 0; i < RL_SHARDS; i++) {
        free(t->shards[i].slots);
        pthread_mutex_destroy(&t->shards[i].lock);
    }
    free(t);
}

void rl_take(struct rl_table *t, const char *key, double rate, int burst, double now,
             struct rl_result *out)
{
    rl_take_n(t, key, rate, burst, 1, now, out);
}

void rl_take_n(struct rl_table *t, const char *key, double rate, int burst, int n, double now,
               struct rl_result *out)
{
    if (n < 1)
        n = 1;
    if (burst < 1)
        burst = 1;
    if (rate <= 0)
        rate = 1e-9;
    double interval = 1.0 / rate;
    double tolerance = interval * (burst - 1);
    uint64_t h = hash_fnv1a(key);
    struct rl_shard *sh = &t->shards[h % RL_SHARDS];
    unsigned base = (unsigned)((h / RL_SHARDS) % t->per_shard);

    pthread_mutex_lock(&sh->lock);
    struct rl_entry *e = NULL, *stalest = NULL;
    for (unsigned i = 0; i < RL_PROBE; i++) {
        struct rl_entry *cand = &sh->slots[(base + i) % t->per_shard];
        if (cand->hash == h && cand->used && strncmp(cand->key, key, RL_KEY_MAX - 1) == 0) {
            e = cand;
            break;
        }
        if (stalest == NULL || cand->tat < stalest->tat)
            stalest = cand;
    }
    if (e == NULL) {
        /* An entry whose tat is in the past is indistinguishable from a fresh one: reuse it. */
        e = stalest;
        strncpy(e->key, key, RL_KEY_MAX - 1);
        e->key[RL_KEY_MAX - 1] = '\0';
        e->hash = h;
        e->used = 1;
        e->tat = now;
    }
    double tat = e->tat > now ? e->tat : now;
    double new_tat = tat + interval * n;
    if (new_tat - now > tolerance + interval + 1e-9) {
        out->allowed = 0;
        out->retry_after = (new_tat - now) - (tolerance + interval);
        out->remaining = 0;
        out->reset = tat - now;
    } else {
        e->tat = new_tat;
        out->allowed = 1;
        out->retry_after = 0;
        double room = tolerance + interval - (new_tat - now);
        out->remaining = (int)(room / interval + 1e-9);
        out->reset = new_tat - now;
    }
    out->limit = burst;
    pthread_mutex_unlock(&sh->lock);
}
