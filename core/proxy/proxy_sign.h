/* The proxy's URL signatures (docs/proxy.md, "Proxy URLs"): the capability an agent gets for one
 * session (`cap`), the proxy's own signature on a URL it wrote into a stylesheet (`ref`), and the
 * target's base64url form.
 *
 *   key  = HMAC-SHA256(platform secret, "cobrowse proxy key v1")
 *   cap  = <tenant_id>.<session_id>.<exp>.<b64url(HMAC-SHA256(key, "cap\n" tenant "\n" session
 *          "\n" exp)[0..16))>
 *   ref  = b64url(HMAC-SHA256(key, "ref\n" tenant "\n" kind "\n" target)[0..16))
 *
 * A ref is bound to the tenant, not to one cap: a stylesheet is rewritten once and cached with
 * its refs, and then served as it is to every agent of the tenant (a cache hit signs nothing).
 *
 * Verification compares MACs in constant time, checks exp against the caller's wall clock and
 * accepts only strict base64url (the alphabet, no padding, canonical trailing bits), so one
 * capability or target has exactly one spelling. Lengths are bounded before anything is hashed.
 * Threading: no state; any thread.
 */
#ifndef COBROWSE_CORE_PROXY_PROXY_SIGN_H
#define COBROWSE_CORE_PROXY_PROXY_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define PROXY_KEY_LEN        32
#define PROXY_MAC_CHARS      22   /* 16 bytes in base64url */
#define PROXY_CAP_MAX        160  /* ten_ id . ses_ id . exp . mac, with room to spare */
#define PROXY_URL_MAX        2048 /* a target URL's bytes */
#define PROXY_TARGET_B64_MAX 2731 /* base64url of PROXY_URL_MAX bytes */

enum proxy_kind { PROXY_KIND_NONE = 0, PROXY_KIND_CSS, PROXY_KIND_ASSET };

enum proxy_sign_error {
    PROXY_SIGN_OK = 0,
    PROXY_SIGN_MALFORMED = -1, /* not the shape of a cap / ref / target */
    PROXY_SIGN_BAD_MAC = -2,   /* well-formed, not ours (tampered, other key) */
    PROXY_SIGN_EXPIRED = -3,
    PROXY_SIGN_NOT_HTTP = -4, /* target: not an absolute http(s) URL, or credentials in it */
};

struct proxy_cap {
    char tenant[48];
    char session[48];
    int64_t exp;
};

/* Derives the proxy key from the platform's signing secret. Returns 0 or -1. */
int proxy_key_derive(const unsigned char *secret, size_t secret_len,
                     unsigned char key[PROXY_KEY_LEN]);

/* Writes the cap for (tenant, session, exp) into out (size >= PROXY_CAP_MAX). Returns 0 or -1
 * (ids not of their shape, exp not positive). */
int proxy_cap_make(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *session,
                   int64_t exp, char *out, size_t size);
/* Verifies a cap at wall-clock time now (seconds). Fills *out on PROXY_SIGN_OK; returns a
 * proxy_sign_error otherwise. */
int proxy_cap_verify(const unsigned char key[PROXY_KEY_LEN], const char *cap, int64_t now,
                     struct proxy_cap *out);

/* The ref of (tenant, kind, target) into out[PROXY_MAC_CHARS + 1]. Returns 0 or -1. */
int proxy_ref_make(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *kind,
                   const char *target, char out[PROXY_MAC_CHARS + 1]);
/* PROXY_SIGN_OK, PROXY_SIGN_MALFORMED or PROXY_SIGN_BAD_MAC. */
int proxy_ref_verify(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *kind,
                     const char *target, const char *ref);

/* "css" / "asset" -> the kind; anything else PROXY_KIND_NONE. */
enum proxy_kind proxy_kind_parse(const char *s);
const char *proxy_kind_str(enum proxy_kind k);

/* base64url (no padding) of url into out; returns the length written, or -1 when url is longer
 * than PROXY_URL_MAX or out (size) is too small. */
int proxy_target_encode(const char *url, char *out, size_t size);
/* Decodes a target into url (size > PROXY_URL_MAX) and checks it is an absolute http or https
 * URL with a host, without credentials or control characters. Returns PROXY_SIGN_OK,
 * PROXY_SIGN_MALFORMED (not strict base64url, too long) or PROXY_SIGN_NOT_HTTP. */
int proxy_target_decode(const char *b64, char *url, size_t size);

/* "scheme://host[:port]" of an absolute http(s) URL into out (lowercase, default port omitted).
 * Returns 0 or -1. */
int proxy_origin_of(const char *url, char *out, size_t size);

#endif
