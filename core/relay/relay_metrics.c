/* Prometheus text for the relay's counters (core/relay/relay_metrics.h). */
#include "core/relay/relay_metrics.h"

#include <stdio.h>
#include <stdlib.h>

#define LOAD(f) ((unsigned long long)RSTAT_GET(st, f))

char *rmetrics_text(const struct relay_stats *st, uint64_t worker_dropped)
{
    size_t cap = 12288;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    snprintf(
        out, cap,
        "# HELP relay_connections Open relay connections by role.\n"
        "# TYPE relay_connections gauge\n"
        "relay_connections{role=\"visitor\"} %llu\nrelay_connections{role=\"agent\"} %llu\n"
        "# HELP relay_sessions_live Sessions with state on this node.\n"
        "# TYPE relay_sessions_live gauge\nrelay_sessions_live %llu\n"
        "# HELP relay_frames_in_total Frames received from visitors.\n"
        "# TYPE relay_frames_in_total counter\nrelay_frames_in_total %llu\n"
        "# HELP relay_bytes_in_total Bytes received from visitors.\n"
        "# TYPE relay_bytes_in_total counter\nrelay_bytes_in_total %llu\n"
        "# HELP relay_frames_out_total Messages written to clients.\n"
        "# TYPE relay_frames_out_total counter\nrelay_frames_out_total %llu\n"
        "# HELP relay_bytes_out_total Bytes written to clients.\n"
        "# TYPE relay_bytes_out_total counter\nrelay_bytes_out_total %llu\n"
        "# HELP relay_frames_dropped_total Visitor frames not accepted, by reason.\n"
        "# TYPE relay_frames_dropped_total counter\n"
        "relay_frames_dropped_total{reason=\"duplicate\"} %llu\n"
        "relay_frames_dropped_total{reason=\"gap\"} %llu\n"
        "relay_frames_dropped_total{reason=\"rate\"} %llu\n"
        "relay_frames_dropped_total{reason=\"memory\"} %llu\n"
        "# HELP relay_rejections_total Handshakes refused, by reason.\n"
        "# TYPE relay_rejections_total counter\n"
        "relay_rejections_total{reason=\"invalid_token\"} %llu\n"
        "relay_rejections_total{reason=\"session_ended\"} %llu\n"
        "relay_rejections_total{reason=\"agent_limit\"} %llu\n"
        "relay_rejections_total{reason=\"tenant_rate\"} %llu\n"
        "relay_rejections_total{reason=\"session_limit\"} %llu\n"
        "relay_rejections_total{reason=\"saturated\"} %llu\n"
        "relay_rejections_total{reason=\"draining\"} %llu\n"
        "relay_rejections_total{reason=\"bad_request\"} %llu\n"
        "relay_rejections_total{reason=\"unavailable\"} %llu\n"
        "# HELP relay_resumes_total Handshakes that resumed an ongoing session, by role.\n"
        "# TYPE relay_resumes_total counter\n"
        "relay_resumes_total{role=\"visitor\"} %llu\nrelay_resumes_total{role=\"agent\"} %llu\n"
        "# HELP relay_history_bytes Bytes held in session histories.\n"
        "# TYPE relay_history_bytes gauge\nrelay_history_bytes %llu\n"
        "# HELP relay_memory_bytes Bytes of frames alive (history, queues, partial messages).\n"
        "# TYPE relay_memory_bytes gauge\nrelay_memory_bytes %llu\n"
        "# HELP relay_send_queue_high_water_bytes Largest send queue seen.\n"
        "# TYPE relay_send_queue_high_water_bytes gauge\nrelay_send_queue_high_water_bytes %llu\n"
        "# HELP relay_slow_consumers_total Agents moved ahead (reset) or closed (4008).\n"
        "# TYPE relay_slow_consumers_total counter\n"
        "relay_slow_consumers_total{action=\"reset\"} %llu\n"
        "relay_slow_consumers_total{action=\"closed\"} %llu\n"
        "# HELP relay_control_total Agent control messages, forwarded or refused.\n"
        "# TYPE relay_control_total counter\n"
        "relay_control_total{result=\"forwarded\"} %llu\n"
        "relay_control_total{result=\"refused\"} %llu\n"
        "# HELP relay_snapshot_requests_memory_total Snapshots asked of the sessions holding the "
        "most history as memory neared the ceiling.\n"
        "# TYPE relay_snapshot_requests_memory_total counter\n"
        "relay_snapshot_requests_memory_total %llu\n"
        "# HELP relay_ended_set_failures_total Ended sessions the ended set could not record "
        "(out of memory; admission fails closed until a reload).\n"
        "# TYPE relay_ended_set_failures_total counter\nrelay_ended_set_failures_total %llu\n"
        "# HELP relay_seq_exhausted_total Visitors closed for a frame with the last seq (2^64-1).\n"
        "# TYPE relay_seq_exhausted_total counter\nrelay_seq_exhausted_total %llu\n"
        "# HELP relay_worker_events_dropped_total Lifecycle events the database side dropped "
        "(queue full, or the database away at shutdown).\n"
        "# TYPE relay_worker_events_dropped_total counter\n"
        "relay_worker_events_dropped_total %llu\n",
        LOAD(conns_visitor), LOAD(conns_agent), LOAD(sessions_live), LOAD(frames_in),
        LOAD(bytes_in), LOAD(frames_out), LOAD(bytes_out), LOAD(drop_duplicate), LOAD(drop_gap),
        LOAD(drop_rate), LOAD(drop_memory), LOAD(rej_invalid_token), LOAD(rej_ended),
        LOAD(rej_agent_limit), LOAD(rej_rate), LOAD(rej_session_limit), LOAD(rej_saturated),
        LOAD(rej_draining), LOAD(rej_bad_request), LOAD(rej_unavailable), LOAD(resumes_visitor),
        LOAD(resumes_agent), LOAD(history_bytes), LOAD(memory_bytes), LOAD(queue_high_water),
        LOAD(slow_resets), LOAD(slow_closes), LOAD(control_forwarded), LOAD(control_refused),
        LOAD(snapshots_requested_memory), LOAD(ended_set_failures), LOAD(seq_exhausted),
        (unsigned long long)worker_dropped);
    return out;
}
