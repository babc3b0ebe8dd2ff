/* The live relay: carries each session's page from its visitor to its agents over WebSockets
 * (libwebsockets on a libev epoll loop), in order, resumable, under per-tenant limits with a
 * priority lane for ongoing sessions. The wire protocol is docs/protocol.md.
 *
 * An instance (struct relay) owns its configuration (a copy; the strings and the secret it points
 * to stay the caller's and must outlive it), its counters, its session and tenant tables, its set
 * of ended sessions and its worker (the database side, core/relay/relay_worker.c).
 *
 * Threading: relay_new/start/drain/stop/free from one thread (main). The relay runs on its own
 * service thread and never blocks on it: no SQL, no DNS, no disk. relay_metrics_text from any
 * thread between relay_new and relay_free.
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
    /* Clustering (docs/cluster.md): "" runs one node without Redis. */
    char redis_url[512]; /* --redis-url: redis://[:password@]host[:port][/db] or unix://path */
    char node_id[72];    /* --node-id: this node's name in the cluster ("" : host:relay port) */
};

struct relay;

/* A relay that does nothing yet (no threads, no sockets). NULL on out of memory. */
struct relay *relay_new(const struct relay_config *cfg);
/* Starts the worker and the service thread, listening on cfg->listen_host:listen_port.
 * Returns 0 or -1 (logged); after -1, relay_free is still the caller's. */
int relay_start(struct relay *r);
/* Stops accepting (new handshakes get 503), closes every connection with 1012 and a reconnect
 * hint, and waits until they are gone or drain_seconds have passed. */
void relay_drain(struct relay *r);
/* Stops the service thread and the worker (which records what is queued first). */
void relay_stop(struct relay *r);
/* Stops it if needed and frees everything. NULL is fine. */
void relay_free(struct relay *r);
/* The relay's Prometheus metrics as a malloc'd text (caller frees). Any thread. */
char *relay_metrics_text(struct relay *r);
/* -1 on one node; with --redis-url 1 when Redis is reachable, else 0. Any thread. */
int relay_cluster_state(const struct relay *r);
/* 1 once relay_drain has begun (new handshakes get 503), else 0. Any thread. */
int relay_draining(const struct relay *r);

#endif
