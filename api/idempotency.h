/* Idempotency-Key handling for POST requests (stored in the idempotency_keys table for 24 h).
 * Nothing secret is stored in plain text: the record is named by an HMAC of the key (server
 * secret) and the answer is sealed (AES-256-GCM) under a key derived from the Idempotency-Key
 * (HKDF-SHA256), which is never stored; see migrations/005.
 * Called by the dispatcher on the request's thread, with the request's database connection.
 */
#ifndef COBROWSE_API_IDEMPOTENCY_H
#define COBROWSE_API_IDEMPOTENCY_H

#include "api/http.h"

/* Before the handler. Returns 0 to run the handler (with *claimed = 1 if a key was claimed), or
 * 1 if the request has been answered (replay, conflict, reuse with another body, bad key). */
int idem_begin(struct http_ctx *c, int *claimed);

/* After the handler, for a claimed key: stores the answer, or forgets the key when the answer
 * should not be replayed (5xx, 429, 409) so that a retry runs again. */
void idem_finish(struct http_ctx *c);

#endif
