/* Passwords of console users (docs/console.md): Argon2id (libargon2, RFC 9106) in the PHC string
 * format ("$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>"), so the parameters travel with each
 * hash and can be raised later (passwd_needs_rehash). A 16-byte salt from getrandom per hash.
 * Parameters: 19 MiB, 2 passes, 1 lane (OWASP's minimum for Argon2id): about 20-40 ms a hash
 * on this project's machines. Thread-safe; no state. */
#ifndef COBROWSE_CORE_BASE_PASSWD_H
#define COBROWSE_CORE_BASE_PASSWD_H

#include <stddef.h>

#define PASSWD_MIN_LEN     10   /* bytes; a shorter password is refused */
#define PASSWD_MAX_LEN     1024 /* bytes; more is refused (hashing cost is per byte too) */
#define PASSWD_ENCODED_MAX 128  /* an encoded hash with these parameters fits */

enum passwd_result { PASSWD_OK = 0, PASSWD_TOO_SHORT, PASSWD_TOO_LONG, PASSWD_ERROR };

/* Hashes a password (len bytes, any bytes but NUL) into out (PASSWD_ENCODED_MAX bytes).
 * PASSWD_OK, a refusal of its length, or PASSWD_ERROR (no randomness, no memory). */
enum passwd_result passwd_hash(const char *password, size_t len, char *out, size_t out_size);
/* 1 when password matches the encoded hash, else 0 (a malformed hash included). Constant time
 * in the password. */
int passwd_verify(const char *encoded, const char *password, size_t len);
/* As passwd_verify against a fixed hash of these parameters: 0, after the same work, so a
 * sign-in for an unknown account costs the time of one for a known account (-1 if that hash
 * could not be checked in full: a bug, which the unit test catches). */
int passwd_verify_unknown(const char *password, size_t len);
/* 1 when encoded was made with weaker parameters than today's (rehash at the next sign-in). */
int passwd_needs_rehash(const char *encoded);

#endif
