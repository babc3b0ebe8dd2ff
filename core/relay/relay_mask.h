/* RFC 6455 5.1: a server MUST close the connection on a client frame that is not masked.
 * libwebsockets 4.1 (Debian 12) accepts them and exposes nothing to tell (upstream added the check
 * in 2026, commit cae06c63a "Audit fixes", after every release Debian ships). So the relay watches
 * the bytes lws reads: this module defines recv(), which libwebsockets' reads go through (symbol
 * interposition from the executable), and on the relay's service thread only it follows the frame
 * headers of the WebSocket connections it was told to watch. On any other thread (libpq's reads
 * included) recv() is recvfrom() and one thread-local load.
 *
 * At the first unmasked frame header, recv() hands lws only the bytes before that frame, marks the
 * connection and wakes the relay (on_bad); from then on the descriptor reads as empty (EAGAIN)
 * until the relay closes the connection with 1002. Bytes lws read together with the handshake,
 * before rmask_watch, are not seen (a client that pipelines its first frame with the upgrade).
 * Relay thread only. */
#ifndef COBROWSE_CORE_RELAY_MASK_H
#define COBROWSE_CORE_RELAY_MASK_H

struct rmask;

/* A watch table; on_bad(ctx) is called from recv() (inside lws) when a connection turns bad: it
 * may only wake the loop. NULL on failure. */
struct rmask *rmask_new(void (*on_bad)(void *ctx), void *ctx);
/* Makes recv() on the calling thread (the service thread, once) follow m's descriptors. */
void rmask_bind_thread(struct rmask *m);
/* After the service thread has ended. NULL is fine. */
void rmask_free(struct rmask *m);
/* Starts or stops following fd (owner: the relay's connection, returned by rmask_take_bad). */
void rmask_watch(struct rmask *m, int fd, void *owner);
void rmask_forget(struct rmask *m, int fd);
/* The owner of a connection that sent an unmasked frame (each once), or NULL when none. */
void *rmask_take_bad(struct rmask *m);

#endif
