#include "core/base/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <string.h>

void crypto_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int crypto_hex_decode(const char *hex, unsigned char *out, size_t out_size)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > out_size)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return (int)(n / 2);
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
                       unsigned char out[32])
{
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, out, &mac_len) == NULL || mac_len != 32)
        return -1;
    return 0;
}

int crypto_hmac_hex(const void *key, size_t key_len, const void *msg, size_t msg_len,
                    char out[CRYPTO_HEX_SHA256])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, msg, msg_len, mac, &mac_len) == NULL || mac_len != 32)
        return -1;
    crypto_hex_encode(mac, 32, out);
    return 0;
}

int crypto_sha256_hex(const void *msg, size_t msg_len, char out[CRYPTO_HEX_SHA256])
{
    unsigned char md[32];
    if (EVP_Digest(msg, msg_len, md, NULL, EVP_sha256(), NULL) != 1)
        return -1;
    crypto_hex_encode(md, 32, out);
    return 0;
}

int crypto_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int crypto_seal(const unsigned char key[32], const void *in, size_t len, const void *aad,
                size_t aad_len, unsigned char *out, size_t out_size)
{
    int n = 0, rc = -1;
    if (len > (size_t)INT32_MAX - CRYPTO_SEAL_OVERHEAD || out_size < len + CRYPTO_SEAL_OVERHEAD ||
        aad_len > INT32_MAX)
        return -1;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || RAND_bytes(out, 12) != 1 ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) != 1)
        goto done;
    if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto done;
    if (EVP_EncryptUpdate(ctx, out + 12, &n, in, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, out + 12 + n, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + len) != 1)
        goto done;
    rc = (int)(len + CRYPTO_SEAL_OVERHEAD);
done:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int crypto_open(const unsigned char key[32], const unsigned char *in, size_t len, const void *aad,
                size_t aad_len, unsigned char *out, size_t out_size)
{
    int n = 0, rc = -1;
    if (len < CRYPTO_SEAL_OVERHEAD || len > INT32_MAX || aad_len > INT32_MAX ||
        out_size < len - CRYPTO_SEAL_OVERHEAD)
        return -1;
    size_t clen = len - CRYPTO_SEAL_OVERHEAD;
    unsigned char tag[16];
    memcpy(tag, in + 12 + clen, 16);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in) != 1)
        goto done;
    if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto done;
    if (EVP_DecryptUpdate(ctx, out, &n, in + 12, (int)clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + n, &n) != 1) {
        OPENSSL_cleanse(out, clen);
        goto done;
    }
    rc = (int)clen;
done:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}
