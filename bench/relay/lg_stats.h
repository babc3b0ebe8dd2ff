/* What a load generator run measured, and how it says so: the visitor-to-agent latency
 * histogram, the share of a core the load generator and the server used while measuring, and
 * the one RESULT line on stdout ("RESULT mode=... key=value ...", read by scripts/bench-relay.sh).
 * The counters live in the run's state (lg.h) because every module adds to them; this module
 * owns the histogram and the CPU marks. Loadgen thread only.
 */
#ifndef BENCH_RELAY_LG_STATS_H
#define BENCH_RELAY_LG_STATS_H

#include <stdint.h>

#include "lg.h"

/* One visitor-to-agent latency sample, in nanoseconds. */
void lg_stats_latency(uint64_t ns);
/* Measuring starts (again): frames, bytes, frames made and the histogram from zero. */
void lg_stats_reset(void);
/* The CPU both sides used so far: at the start of measuring (end 0), then at its end (end 1,
 * secs measured) to turn it into a share of one core. */
void lg_stats_cpu_mark(int end, double secs);
/* The RESULT line of a finished run; now is when it finished (the resume time). */
void lg_stats_report(int64_t now);
/* The RESULT line of a run that could not connect everything. */
void lg_stats_report_connect_failed(void);

#endif
