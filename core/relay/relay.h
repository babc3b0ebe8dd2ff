/* The live relay: carries each session's page from its visitor to its agents over WebSockets
 * (libwebsockets on a libev epoll loop), in order, resumable, under per-tenant limits with a
 * priority lane for ongoing sessions. The wire protocol is docs/protocol.md.
 *
 * Threading: relay_start/relay_drain/relay_stop from the main thread. The relay runs on its own
 * service thread and never blocks on it: no SQL, no DNS, no disk. Lifecycle events go to a
 * worker thread (core/relay/relay_worker.c) which owns the database connections.
 */
#ifndef COBROWSE_CORE_RELAY_H
#define COBROWSE_CORE_RELAY_H

#include <stddef.h>

struct relay_config {
    char listen_host[64];
    int listen_port;
    size_t history_bytes;      /* per session, from the latest snapshot on */
    size_t queue_bytes;        /* per connection send queue */
    size_t max_memory;         /* node-wide bytes of frames alive */
    size_t max_frame_bytes;    /* largest message accepted */
    int idle_seconds;          /* a session with nobody connected ends after this */
    int handshakes_per_second; /* node budget for new sessions' handshakes */
    int drain_seconds;
    const unsigned char *jwt_secret;
    size_t jwt_secret_len;
    const char *database_url;
};

/* Starts the worker and the service thread, listening on cfg->listen_host:listen_port.
 * cfg must outlive the relay. Returns 0 or -1 (logged). */
int relay_start(const struct relay_config *cfg);

/* Stops accepting (new handshakes get 503), closes every connection with 1012 and a reconnect
 * hint, and waits until they are gone or drain_seconds have passed. */
void relay_drain(void);

/* Stops the service thread and the worker and frees everything. */
void relay_stop(void);

/* Appends the relay's Prometheus metrics to a malloc'd text (caller frees). Any thread. */
char *relay_metrics_text(void);

#endif
