/* Rate limiting with GCRA (the generic cell rate algorithm): one timestamp per key, no timers.
 *
 * A table holds up to `capacity` keys (bounded memory); when full, the stalest entries are
 * reused. Limits are per process: with several nodes each enforces its own share.
 * Thread-safe: a mutex per shard; O(1) per call.
 */
#ifndef COBROWSE_CORE_RATELIMIT_H
#define COBROWSE_CORE_RATELIMIT_H

struct rl_table;

struct rl_result {
    int allowed;        /* 1 if the request fits */
    int limit;          /* burst size */
    int remaining;      /* requests left in the current burst */
    double retry_after; /* seconds until one more request fits (0 if allowed) */
    double reset;       /* seconds until the bucket is full again */
};

struct rl_table *rl_new(unsigned capacity);
void rl_free(struct rl_table *t);

/* Takes one token for key at time now (seconds, monotonic) with the given rate (per second)
 * and burst (>= 1). */
void rl_take(struct rl_table *t, const char *key, double rate, int burst, double now,
             struct rl_result *out);

/* Takes n tokens at once (n >= 1; a byte budget: n bytes at rate bytes per second). Refused
 * whole when they do not all fit; n above burst never fits. retry_after says when they would. */
void rl_take_n(struct rl_table *t, const char *key, double rate, int burst, int n, double now,
               struct rl_result *out);

#endif
