/* Standard Webhooks 1.0.0 signatures (docs/webhooks.md, "Signing") and the `whsec_` secret
 * format. A signature is `v1,` + base64(HMAC-SHA256(secret, id "." timestamp "." body)); during
 * a rotation's overlap the header carries two, the new one first, separated by a space.
 *
 * No state: any thread. The caller owns every buffer; secrets are never logged here.
 */
#ifndef COBROWSE_CORE_WEBHOOK_SIGN_H
#define COBROWSE_CORE_WEBHOOK_SIGN_H

#include <stddef.h>

#define SIGN_SECRET_LEN  32                 /* an endpoint's secret: 32 random bytes */
#define SIGN_WHSEC_SIZE  (6 + 44 + 1)       /* "whsec_" + base64 of 32 bytes + NUL */
#define SIGN_V1_SIZE     (3 + 44 + 1)       /* "v1," + base64 of a SHA-256 + NUL */
#define SIGN_HEADER_SIZE (2 * SIGN_V1_SIZE) /* two signatures, a space between */

/* "whsec_" + standard base64 (padded) of secret into out. */
void sign_secret_encode(const unsigned char secret[SIGN_SECRET_LEN], char out[SIGN_WHSEC_SIZE]);

/* The 32 bytes of a "whsec_..." string (the prefix required, the one canonical base64 spelling
 * of exactly 32 bytes). Returns 0, or -1 on anything else. */
int sign_secret_decode(const char *s, unsigned char out[SIGN_SECRET_LEN]);

/* The webhook-signature header value for message id, unix timestamp and body: the signature with
 * secret, then (previous not NULL: a rotation's overlap) a space and the one with previous.
 * Returns 0, or -1 (out of memory, id NULL or with a '.' that would make the signed text
 * ambiguous). */
int sign_header(const unsigned char secret[SIGN_SECRET_LEN],
                const unsigned char *previous /* SIGN_SECRET_LEN bytes or NULL */, const char *id,
                long long timestamp, const char *body, size_t body_len, char out[SIGN_HEADER_SIZE]);

#endif
