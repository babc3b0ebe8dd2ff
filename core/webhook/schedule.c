/* Retry schedule, jitter and Retry-After (schedule.h). */
#include "core/webhook/schedule.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>

#include "core/base/ids.h"

long long schedule_parse_duration(const char *s)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    long long v = 0;
    const char *p = s;
    if (s == NULL || !isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (LLONG_MAX / 10 - 9) / 86400000LL) /* room for the largest unit */
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (*p == '\0')
        return v == 0 ? 0 : -1; /* a bare number has no unit: only 0 means the same in all */
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(p, units[i].unit) == 0)
            return v * units[i].ms;
    return -1;
}

int schedule_parse(const char *s, struct schedule *out, char *err, size_t err_size)
{
    char item[32];
    memset(out, 0, sizeof *out);
    const char *p = s != NULL ? s : "";
    for (;;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ",");
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (out->attempts == SCHEDULE_MAX_ATTEMPTS) {
            snprintf(err, err_size, "more than %d steps", SCHEDULE_MAX_ATTEMPTS);
            return -1;
        }
        long long ms = -1;
        if (len > 0 && len < sizeof item) {
            memcpy(item, p, len);
            item[len] = '\0';
            ms = schedule_parse_duration(item);
        }
        if (ms < 0 || ms > SCHEDULE_MAX_DELAY_MS) {
            snprintf(err, err_size,
                     "step %d is not a duration from 0 to 7d (digits then ms, s, m, h or d)",
                     out->attempts + 1);
            return -1;
        }
        out->delay_ms[out->attempts++] = ms;
        p += strcspn(p, ",");
        if (*p == '\0')
            return 0;
        p++;
    }
}

/* From the kernel's random source, not random(): unseeded, random() gives every node the same
 * sequence, and jitter that is the same on every node spreads nothing. */
double schedule_rand_default(void *arg)
{
    (void)arg;
    uint32_t v;
    if (ids_random(&v, sizeof v) != 0)
        return 0.5;
    return (double)v / 4294967296.0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110's IMF-fixdate, the form senders must use). */
static int parse_http_date(const char *v, double *epoch)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    *epoch = (double)timegm(&tm);
    return 0;
}

long long schedule_retry_after_ms(const char *value, double now)
{
    if (value == NULL)
        return -1;
    while (*value == ' ')
        value++;
    long long ms;
    if (isdigit((unsigned char)*value)) {
        long long secs = 0;
        const char *p = value;
        for (; isdigit((unsigned char)*p); p++)
            secs = secs < SCHEDULE_RETRY_AFTER_MAX_MS ? secs * 10 + (*p - '0') : secs;
        while (*p == ' ')
            p++;
        if (*p != '\0')
            return -1;
        ms = secs >= SCHEDULE_RETRY_AFTER_MAX_MS / 1000 ? SCHEDULE_RETRY_AFTER_MAX_MS : secs * 1000;
    } else {
        double at;
        if (parse_http_date(value, &at) != 0)
            return -1;
        double d = (at - now) * 1000.0;
        ms = d <= 0                                     ? 0
             : d >= (double)SCHEDULE_RETRY_AFTER_MAX_MS ? SCHEDULE_RETRY_AFTER_MAX_MS
                                                        : (long long)d;
    }
    return ms;
}

long long schedule_next_ms(const struct schedule *s, int made, long long retry_after_ms,
                           schedule_rand_fn rnd, void *arg)
{
    if (made < 1 || made >= s->attempts)
        return -1;
    double r = rnd(arg);
    double factor = 1.0 - SCHEDULE_JITTER + 2.0 * SCHEDULE_JITTER * r;
    long long ms = (long long)((double)s->delay_ms[made] * factor);
    return retry_after_ms > ms ? retry_after_ms : ms;
}
