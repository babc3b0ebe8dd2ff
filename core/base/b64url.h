/* base64url (RFC 4648 section 5) without padding: what JWTs (core/base/token.c) and the proxy's
 * signed URLs (core/proxy/proxy_sign.c) are written in. No state; any thread. */
#ifndef COBROWSE_CORE_BASE_B64URL_H
#define COBROWSE_CORE_BASE_B64URL_H

#include <stddef.h>

/* Encodes in[0..len) into out (size >= 4 * ceil(len / 3) + 1, NUL-terminated); returns the
 * characters written. */
size_t b64url_encode(const unsigned char *in, size_t len, char *out);

/* Strict decoding of s[0..n) into out: the URL-safe alphabet only, no padding, no length that
 * cannot occur, zero trailing bits (so that each byte string has exactly one spelling). Returns
 * the byte count, or -1 (bad input, or out's size too small). */
int b64url_decode(const char *s, size_t n, unsigned char *out, size_t size);

#endif
