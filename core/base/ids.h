/* Identifiers, secrets and join codes from the kernel's CSPRNG (getrandom).
 *
 * Ids look like "ses_01JD3K5Q8W2X7Y9Z0ABCDEFGHJ": a prefix, '_', then 26 Crockford base32 chars,
 * 10 for the creation time in milliseconds and 16 for 80 random bits. They sort by creation time,
 * which is what cursor pagination relies on. Thread-safe; no state.
 */
#ifndef COBROWSE_CORE_IDS_H
#define COBROWSE_CORE_IDS_H

#include <stddef.h>
#include <stdint.h>

#define IDS_BODY_LEN   26
#define IDS_MAX_LEN    40 /* prefix (<= 12) + '_' + body + NUL */
#define IDS_SECRET_LEN 52 /* 32 random bytes in base32 */

/* Fills buf with random bytes. Returns 0, or -1 if the kernel refused (never partial). */
int ids_random(void *buf, size_t len);

/* Writes prefix_<26 chars> into out (size >= IDS_MAX_LEN). Returns 0 or -1. */
int ids_new(const char *prefix, char *out, size_t out_size);
/* Same with a given time (ms since epoch); for tests. */
int ids_new_at(const char *prefix, uint64_t ms, char *out, size_t out_size);

/* 1 if s is prefix_ followed by exactly 26 Crockford base32 chars, else 0. NULL-safe. */
int ids_valid(const char *prefix, const char *s);

/* Writes prefix + 52 lowercase base32 chars (256 bits) into out (size >= prefix + 53). */
int ids_secret(const char *prefix, char *out, size_t out_size);

/* Writes a uniformly random 6-digit code ("000000".."999999") into out (size >= 7). */
int ids_join_code(char out[7]);

/* A source of random bytes with ids_random's contract (0, or -1 and nothing usable). */
typedef int (*ids_random_fn)(void *buf, size_t len);
/* ids_join_code drawing from rnd instead of the kernel: the seam that lets a test feed chosen
 * 32-bit draws and see which ones are rejected (the modulo bias is 1 in 4295, far too small to
 * show in a random sample). Returns -1 when rnd fails. */
int ids_join_code_with(ids_random_fn rnd, char out[7]);

#endif
