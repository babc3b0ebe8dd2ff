/* Reference-counted messages with room for the WebSocket header (struct rframe). Relay thread
 * only. Every byte allocated for a frame is counted in stats->memory_bytes while it lives. */
#ifndef COBROWSE_CORE_RELAY_FRAME_H
#define COBROWSE_CORE_RELAY_FRAME_H

#include "core/relay/relay_core.h"

/* A new frame with room for cap bytes (one reference for the caller), or NULL. */
struct rframe *rframe_new(struct relay_stats *stats, size_t cap, int binary);
struct rframe *rframe_text(struct relay_stats *stats, const char *text); /* a text message */
void rframe_ref(struct rframe *f);
void rframe_unref(struct rframe *f); /* NULL is fine */
/* Grows f (realloc) to hold at least need bytes; returns the new pointer or NULL (f intact). */
struct rframe *rframe_reserve(struct rframe *f, size_t need);

#endif
