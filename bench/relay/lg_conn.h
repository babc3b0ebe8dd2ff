/* The load generator's connections and their life: queued for a handshake slot, connecting,
 * open, waiting for a retry, given up. It owns a connection's state, queue link, retry time and
 * backoff, the handshake queue (at most --max-pending upgrades in flight), the run's counts of
 * connections in each state (pending, nwait, conns_open, agents_open, visitors_hello, dead) and
 * the reconnect policy of docs/protocol.md: which close codes mean stop, Retry-After with jitter,
 * doubling backoff up to 30 s. The socket and its bytes are lg_ws's. Loadgen thread only.
 */
#ifndef BENCH_RELAY_LG_CONN_H
#define BENCH_RELAY_LG_CONN_H

#include <stdint.h>

#include "lg.h"

/* A connection of s with token (which the caller keeps), not connected, added to lg.conns. */
struct lg_conn *lg_conn_new(struct lg_session *s, enum lg_role role, const char *token);
/* Queues c for a handshake slot. */
void lg_conn_enqueue(struct lg_conn *c);
/* Starts queued connections while fewer than --max-pending are connecting or handshaking. */
void lg_conn_start_connects(void);
/* Queues again the connections whose retry time has come. */
void lg_conn_retries(int64_t now);
/* The upgrade succeeded (lg_ws): c is open. */
void lg_conn_opened(struct lg_conn *c);
/* The upgrade was refused with status (lg_ws has counted and shown it); retry_s is Retry-After,
 * -1 if absent. Closes c, then retries it later or gives it up. */
void lg_conn_rejected(struct lg_conn *c, int status, int retry_s);
/* A connection ended without us asking: code is the close code (1006 for a dropped TCP
 * connection). Gives c up or schedules its reconnect with resume=. */
void lg_conn_lost(struct lg_conn *c, int code, const char *why);
/* Resume mode: closes every socket not given up at once and queues its connection again. */
void lg_conn_close_all(void);

#endif
