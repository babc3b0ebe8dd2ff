/* Prometheus text of the relay's counters. Any thread: relaxed reads of the atomics. */
#ifndef COBROWSE_CORE_RELAY_METRICS_H
#define COBROWSE_CORE_RELAY_METRICS_H

#include "core/relay/relay_core.h"

/* A malloc'd text (caller frees), or NULL. worker_dropped: lifecycle events the worker dropped. */
char *rmetrics_text(const struct relay_stats *st, uint64_t worker_dropped);

#endif
