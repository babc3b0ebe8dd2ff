/* The relay protocol as the load generator's visitors and agents speak it (docs/protocol.md).
 * A visitor keeps an outbox (frames acked + 1..produced, their send times and kinds in a ring
 * indexed by seq), sends 16-byte-header binary frames from hello.next_seq, a snapshot first, and
 * honours ack, resend, slow_down and snapshot_request. An agent checks that frames arrive in seq
 * order, each once (or from a reset), and samples visitor-to-agent latency from the send time in
 * the first 8 payload bytes. It owns a session's outbox fields and an agent connection's seq
 * fields (lg_conn_opened resets the latter for a new connection). Loadgen thread only.
 */
#ifndef BENCH_RELAY_LG_SESSION_H
#define BENCH_RELAY_LG_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "lg.h"

/* Makes the frames that are due into s's outbox and writes the unsent ones. */
void lg_session_pump(struct lg_session *s, int64_t now);
/* A complete message from the server on c (op 1: text, 2: binary). */
void lg_session_on_message(struct lg_conn *c, int op, const uint8_t *m, size_t n, int64_t now);
/* Resume mode: counts agent c as caught up once it has every frame made before the disconnect. */
void lg_session_agent_reached(struct lg_conn *c);

#endif
