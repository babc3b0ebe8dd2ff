#include "core/base/ids.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
static const char lower32[] = "abcdefghijklmnopqrstuvwxyz234567";

int ids_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ids_new_at(const char *prefix, uint64_t ms, char *out, size_t out_size)
{
    size_t plen = strlen(prefix);
    if (plen > 12 || out_size < plen + 1 + IDS_BODY_LEN + 1)
        return -1;
    unsigned char rnd[10];
    if (ids_random(rnd, sizeof(rnd)) != 0)
        return -1;
    memcpy(out, prefix, plen);
    out[plen] = '_';
    char *b = out + plen + 1;
    /* 48-bit timestamp in 10 chars (50 bits, top 2 zero). */
    for (int i = 9; i >= 0; i--) {
        b[i] = crockford[ms & 31];
        ms >>= 5;
    }
    /* 80 random bits in 16 chars. */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++)
        hi = (hi << 8) | rnd[i];
    for (int i = 5; i < 10; i++)
        lo = (lo << 8) | rnd[i];
    for (int i = 7; i >= 0; i--) {
        b[10 + i] = crockford[hi & 31];
        hi >>= 5;
        b[18 + i] = crockford[lo & 31];
        lo >>= 5;
    }
    b[IDS_BODY_LEN] = '\0';
    return 0;
}

int ids_new(const char *prefix, char *out, size_t out_size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    return ids_new_at(prefix, ms, out, out_size);
}

int ids_valid(const char *prefix, const char *s)
{
    if (s == NULL || prefix == NULL)
        return 0;
    size_t plen = strlen(prefix);
    if (strncmp(s, prefix, plen) != 0 || s[plen] != '_')
        return 0;
    const char *b = s + plen + 1;
    size_t n = 0;
    for (; b[n] != '\0'; n++) {
        if (n >= IDS_BODY_LEN || strchr(crockford, b[n]) == NULL)
            return 0;
    }
    /* The first char carries only 3 bits of the 48-bit time: anything above '7' overflows. */
    return n == IDS_BODY_LEN && b[0] <= '7';
}

int ids_secret(const char *prefix, char *out, size_t out_size)
{
    size_t plen = strlen(prefix);
    if (out_size < plen + IDS_SECRET_LEN + 1)
        return -1;
    unsigned char rnd[IDS_SECRET_LEN];
    if (ids_random(rnd, sizeof(rnd)) != 0)
        return -1;
    memcpy(out, prefix, plen);
    /* 52 chars of 5 bits each = 260 bits from 52 random bytes; uniform since 256 % 32 == 0. */
    for (size_t i = 0; i < IDS_SECRET_LEN; i++)
        out[plen + i] = lower32[rnd[i] & 31];
    out[plen + IDS_SECRET_LEN] = '\0';
    return 0;
}

int ids_join_code_with(ids_random_fn rnd, char out[7])
{
    /* Rejection sampling avoids modulo bias: accept values below the largest multiple of 10^6. */
    const uint32_t limit = (UINT32_MAX / 1000000u) * 1000000u;
    uint32_t v;
    do {
        if (rnd(&v, sizeof(v)) != 0)
            return -1;
    } while (v >= limit);
    v %= 1000000u;
    for (int i = 5; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
    out[6] = '\0';
    return 0;
}

int ids_join_code(char out[7])
{
    return ids_join_code_with(ids_random, out);
}
