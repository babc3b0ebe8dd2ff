/* Hashing helpers over OpenSSL's libcrypto. Thread-safe, no state. */
#ifndef COBROWSE_CORE_CRYPTO_H
#define COBROWSE_CORE_CRYPTO_H

#include <stddef.h>

#define CRYPTO_HEX_SHA256 65 /* 64 hex chars + NUL */

/* HMAC-SHA256(key, msg) into out[32]. Returns 0 or -1. */
int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[32]);

/* HMAC-SHA256(key, msg) as lowercase hex into out[65]. Returns 0 or -1. */
int crypto_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                    char out[CRYPTO_HEX_SHA256]);

/* SHA-256(msg) as lowercase hex into out[65]. Returns 0 or -1. */
int crypto_sha256_hex(const void *msg, size_t msg_len, char out[CRYPTO_HEX_SHA256]);

/* Constant-time equality of two buffers of the same length: 1 if equal, else 0. */
int crypto_equal(const void *a, const void *b, size_t len);

/* Hex codec. crypto_hex_decode returns the number of bytes written or -1 on bad input. */
void crypto_hex_encode(const unsigned char *in, size_t len, char *out /* 2*len+1 */);
int crypto_hex_decode(const char *hex, unsigned char *out, size_t out_size);

#endif
