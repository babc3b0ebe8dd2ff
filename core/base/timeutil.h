/* Time helpers: RFC 3339 parsing and monotonic clocks. Thread-safe. */
#ifndef COBROWSE_CORE_TIMEUTIL_H
#define COBROWSE_CORE_TIMEUTIL_H

#include <stdint.h>

/* Parses "2026-11-25T10:00:00Z", "...T10:00:00.123+02:00" into seconds since the epoch.
 * Returns 0, or -1 if s is not RFC 3339 date-time (date, 'T', time, fraction?, Z or offset). */
int time_parse_rfc3339(const char *s, double *epoch);

/* Formats epoch seconds as "2026-11-25T10:00:00Z" into out (size >= 21). */
void time_format_rfc3339(int64_t epoch, char *out, unsigned long out_size);

double time_now(void);       /* wall clock, seconds since epoch */
double time_monotonic(void); /* CLOCK_MONOTONIC seconds */

#endif
