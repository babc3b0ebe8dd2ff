#include "core/base/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
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
