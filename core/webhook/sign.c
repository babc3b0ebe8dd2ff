/* Standard Webhooks signatures (sign.h). */
#include "core/webhook/sign.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/crypto.h"

#define WHSEC_PREFIX "whsec_"

void sign_secret_encode(const unsigned char secret[SIGN_SECRET_LEN], char out[SIGN_WHSEC_SIZE])
{
    memcpy(out, WHSEC_PREFIX, 6);
    EVP_EncodeBlock((unsigned char *)out + 6, secret, SIGN_SECRET_LEN); /* NUL-terminates */
}

int sign_secret_decode(const char *s, unsigned char out[SIGN_SECRET_LEN])
{
    unsigned char buf[SIGN_SECRET_LEN + 3];
    char again[SIGN_WHSEC_SIZE];
    if (s == NULL || strncmp(s, WHSEC_PREFIX, 6) != 0 || strlen(s) != SIGN_WHSEC_SIZE - 1)
        return -1;
    /* EVP_DecodeBlock counts padding as zero bytes (33 here) and accepts some non-canonical
     * spellings; encoding the result again and comparing leaves one spelling per secret. */
    if (EVP_DecodeBlock(buf, (const unsigned char *)s + 6, SIGN_WHSEC_SIZE - 7) !=
        SIGN_SECRET_LEN + 1)
        return -1;
    sign_secret_encode(buf, again);
    if (strcmp(again, s) != 0)
        return -1;
    memcpy(out, buf, SIGN_SECRET_LEN);
    return 0;
}

/* "v1," + base64(HMAC-SHA256(secret, msg)) into out. */
static int sign_one(const unsigned char secret[SIGN_SECRET_LEN], const char *msg, size_t len,
                    char out[SIGN_V1_SIZE])
{
    unsigned char mac[32];
    if (crypto_hmac_sha256(secret, SIGN_SECRET_LEN, msg, len, mac) != 0)
        return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, sizeof mac);
    return 0;
}

int sign_header(const unsigned char secret[SIGN_SECRET_LEN], const unsigned char *previous,
                const char *id, long long timestamp, const char *body, size_t body_len,
                char out[SIGN_HEADER_SIZE])
{
    int rc = -1;
    char head[128];
    if (id == NULL || strchr(id, '.') != NULL)
        return -1;
    int n = snprintf(head, sizeof head, "%s.%lld.", id, timestamp);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    /* The signed text is id.timestamp.body in one buffer: an event's body is a few KB. */
    char *msg = malloc((size_t)n + body_len + 1);
    if (msg == NULL)
        return -1;
    memcpy(msg, head, (size_t)n);
    if (body_len > 0)
        memcpy(msg + n, body, body_len);
    if (sign_one(secret, msg, (size_t)n + body_len, out) != 0)
        goto done;
    if (previous != NULL) {
        size_t used = strlen(out);
        out[used] = ' ';
        if (sign_one(previous, msg, (size_t)n + body_len, out + used + 1) != 0)
            goto done;
    }
    rc = 0;
done:
    free(msg);
    return rc;
}
