/* The load generator's own WebSocket client (RFC 6455, client side), kept minimal so that it
 * costs the server under test as little CPU as possible: the socket and its epoll registration,
 * the upgrade request and the check of its answer, masked client frames, and the parser of
 * server frames (7/16/64-bit lengths, fragmentation, ping, close). It owns a connection's fd, its
 * buffers (rbuf, wbuf, msg), its reassembly state and its EPOLLOUT flag. What a connection's life
 * means (queues, retries, close codes) is lg_conn's; what a message says is lg_session's, which
 * gets every complete message. Loadgen thread only.
 */
#ifndef BENCH_RELAY_LG_WS_H
#define BENCH_RELAY_LG_WS_H

#include <stddef.h>
#include <stdint.h>

#include "lg.h"

/* A non-blocking socket to lg.addr, in the epoll set (in and out), connect started; a failed
 * connect goes to lg_conn_lost. */
void lg_ws_connect(struct lg_conn *c);
/* Closes the socket (which also leaves the epoll set) and frees the buffers. */
void lg_ws_close(struct lg_conn *c);
/* Reserves a masked client frame of payload length n; returns where the payload goes (the caller
 * fills it, then calls lg_ws_mask on it with *key). */
uint8_t *lg_ws_frame(struct lg_conn *c, int opcode, size_t n, uint32_t *key);
void lg_ws_mask(uint8_t *p, size_t n, uint32_t key);
/* Writes what the socket takes; EPOLLOUT stays registered only while something is left. -1 when
 * the connection was lost. */
int lg_ws_flush(struct lg_conn *c);
/* The epoll events: readable (or an error, or a hang-up) and writable. */
void lg_ws_on_readable(struct lg_conn *c, int64_t now);
void lg_ws_on_writable(struct lg_conn *c, int64_t now);

#endif
