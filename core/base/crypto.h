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

/* Authenticated encryption of small secrets at rest (AES-256-GCM): out is a 12-byte random
 * nonce, the ciphertext (len bytes) and the 16-byte tag, so CRYPTO_SEAL_OVERHEAD more bytes than
 * in. aad (may be NULL with aad_len 0) is bound to the ciphertext but not stored: pass the same
 * at crypto_open (the id of the row that holds it, so that a sealed value cannot be moved to
 * another row). Return the bytes written, or -1 (out too small, a failure; crypto_open also on
 * a wrong key, aad or tampered input). */
#define CRYPTO_SEAL_OVERHEAD (12 + 16)
int crypto_seal(const unsigned char key[32], const void *in, size_t len, const void *aad,
                size_t aad_len, unsigned char *out, size_t out_size);
int crypto_open(const unsigned char key[32], const unsigned char *in, size_t len, const void *aad,
                size_t aad_len, unsigned char *out, size_t out_size);

/* Hex codec. crypto_hex_decode returns the number of bytes written or -1 on bad input. */
void crypto_hex_encode(const unsigned char *in, size_t len, char *out /* 2*len+1 */);
int crypto_hex_decode(const char *hex, unsigned char *out, size_t out_size);

#endif
