/* Console users' passwords (core/base/passwd.h). */
#include "core/base/passwd.h"

#include <argon2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/base/ids.h"

#define T_COST   2
#define M_COST   19456 /* KiB */
#define LANES    1
#define SALT_LEN 16
#define HASH_LEN 32

static enum passwd_result check_len(size_t len)
{
    if (len < PASSWD_MIN_LEN)
        return PASSWD_TOO_SHORT;
    return len > PASSWD_MAX_LEN ? PASSWD_TOO_LONG : PASSWD_OK;
}

enum passwd_result passwd_hash(const char *password, size_t len, char *out, size_t out_size)
{
    enum passwd_result r = check_len(len);
    if (r != PASSWD_OK)
        return r;
    unsigned char salt[SALT_LEN];
    if (out_size < PASSWD_ENCODED_MAX || ids_random(salt, sizeof(salt)) != 0)
        return PASSWD_ERROR;
    int rc = argon2id_hash_encoded(T_COST, M_COST, LANES, password, len, salt, sizeof(salt),
                                   HASH_LEN, out, out_size);
    return rc == ARGON2_OK ? PASSWD_OK : PASSWD_ERROR;
}

int passwd_verify(const char *encoded, const char *password, size_t len)
{
    if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0 || len > PASSWD_MAX_LEN)
        return 0;
    return argon2id_verify(encoded, password, len) == ARGON2_OK;
}

int passwd_verify_unknown(const char *password, size_t len)
{
    /* The hash of a random password nobody knows, with today's parameters. */
    static const char dummy[] = "$argon2id$v=19$m=19456,t=2,p=1$"
                                "c29tZXNhbHRzb21lc2FsdA$"
                                "Xb6uyQ7c3rDHxGSvlbL9n0aZcYkm1pkTf3O3i2J3tAc";
    int rc = argon2id_verify(dummy, password, len > PASSWD_MAX_LEN ? PASSWD_MAX_LEN : len);
    return rc == ARGON2_VERIFY_MISMATCH ? 0 : -1; /* anything else: it did not do the work */
}

int passwd_needs_rehash(const char *encoded)
{
    unsigned m = 0, t = 0, p = 0;
    if (encoded == NULL || sscanf(encoded, "$argon2id$v=19$m=%u,t=%u,p=%u$", &m, &t, &p) != 3)
        return 1;
    return m < M_COST || t < T_COST || p < LANES;
}
