/* When a webhook delivery is tried again (docs/webhooks.md, "Delivery"): the retry schedule of
 * --webhook-retry-schedule ("0,5s,5m,30m,2h,...": the delay before each attempt), up to 20 %
 * jitter, a Retry-After answer honoured when later than the schedule (at most 24 h), and
 * durations like --webhook-disable-after's "5d".
 *
 * No state beyond the caller's struct schedule; any thread. The random source is the caller's
 * (tests pass a fixed one).
 */
#ifndef COBROWSE_CORE_WEBHOOK_SCHEDULE_H
#define COBROWSE_CORE_WEBHOOK_SCHEDULE_H

#include <stddef.h>

#define SCHEDULE_MAX_ATTEMPTS       32
#define SCHEDULE_MAX_DELAY_MS       (7LL * 24 * 3600 * 1000) /* one step of the schedule */
#define SCHEDULE_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)
#define SCHEDULE_JITTER             0.2

struct schedule {
    int attempts; /* 1..SCHEDULE_MAX_ATTEMPTS */
    long long
        delay_ms[SCHEDULE_MAX_ATTEMPTS]; /* before attempt i + 1; delay_ms[0] is the first's */
};

/* Parses a duration: digits then ms, s, m, h or d ("500ms", "5d"); a bare "0" is zero. Returns
 * the milliseconds, or -1 (no unit, a sign, a fraction, overflow). */
long long schedule_parse_duration(const char *s);

/* Parses a comma-separated schedule (spaces around items allowed), each step from 0 to
 * SCHEDULE_MAX_DELAY_MS, 1 to SCHEDULE_MAX_ATTEMPTS steps. Returns 0, or -1 with why in err. */
int schedule_parse(const char *s, struct schedule *out, char *err, size_t err_size);

/* A uniform draw in [0, 1). */
typedef double (*schedule_rand_fn)(void *arg);
/* The kernel's random source (getrandom), so that nodes draw different jitter. */
double schedule_rand_default(void *arg);

/* Retry-After's value (delta seconds, or an HTTP date compared with now, unix seconds) in
 * milliseconds from now, capped at SCHEDULE_RETRY_AFTER_MAX_MS; a date in the past is 0.
 * Returns -1 when value is NULL or neither form. */
long long schedule_retry_after_ms(const char *value, double now);

/* After `made` attempts (>= 1) failed: the delay before the next one, the schedule's step with
 * jitter (the step times 1 - SCHEDULE_JITTER to 1 + SCHEDULE_JITTER, drawn from rnd), or
 * retry_after_ms when that is later (-1: none); -1 when the schedule has no attempt left. */
long long schedule_next_ms(const struct schedule *s, int made, long long retry_after_ms,
                           schedule_rand_fn rnd, void *arg);

#endif
