/* The relay's connections over libwebsockets: the lws protocol callback. It reads the upgrade
 * request for admission (core/relay/relay_admit.c) and answers refusals, assembles messages,
 * writes queued frames in batches, closes, and implements the core's io seam. The instance
 * (core/relay/relay.c) owns the lws context, the service thread and struct rws; this module
 * owns each connection (struct rconn) from its admission to LWS_CALLBACK_WSI_DESTROY.
 *
 * Threading: the callback and the io seam run on the relay's service thread only (lws calls
 * them there). rws.draining may be set from any thread. */
#ifndef COBROWSE_CORE_RELAY_WS_H
#define COBROWSE_CORE_RELAY_WS_H

#include <stdatomic.h>

#include "core/relay/relay_mask.h"
#include "core/relay/relay_session.h"

struct lws_protocols;

/* What the callback needs from the instance: the lws context's user pointer. */
struct rws {
    struct rcore *core;
    struct rmask *mask;  /* unmasked client frames (the instance's; set before the thread) */
    atomic_int draining; /* new handshakes get 503 */
    /* Called at each LWS_CALLBACK_EVENT_WAIT_CANCELLED (lws_cancel_service from any thread),
     * on the service thread, after the connections relay_mask found unmasked are closed. */
    void (*cancelled)(void *ctx);
    void *ctx;
};

/* The protocol table for lws_context_creation_info.protocols (static storage); the context's
 * user pointer must be a struct rws that outlives the context. */
const struct lws_protocols *rws_protocols(void);
/* The core's io seam over lws (wake, timed wake, read pause). */
struct relay_io rws_io(void);

#endif
