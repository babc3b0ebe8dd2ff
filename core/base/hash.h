/* FNV-1a, 64 bits: the hash of every in-memory table keyed by a string (session and tenant ids,
 * rate-limit keys). Not for anything an attacker must not collide on purpose: tables that hash
 * attacker-chosen keys bound their chains or their size. Header-only; no state. */
#ifndef COBROWSE_CORE_BASE_HASH_H
#define COBROWSE_CORE_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_OFFSET 1469598103934665603ull
#define HASH_FNV1A_PRIME  1099511628211ull

/* FNV-1a of n bytes, continuing from h (start with HASH_FNV1A_OFFSET). */
static inline uint64_t hash_fnv1a_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * HASH_FNV1A_PRIME;
    return h;
}

/* FNV-1a of a NUL-terminated string. */
static inline uint64_t hash_fnv1a(const char *s)
{
    uint64_t h = HASH_FNV1A_OFFSET;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * HASH_FNV1A_PRIME;
    return h;
}

#endif
