/* The proxy's capabilities, refs and targets (core/proxy/proxy_sign.h). */
#include "core/proxy/proxy_sign.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/b64url.h"
#include "core/base/crypto.h"
#include "core/base/ids.h"

int proxy_key_derive(const unsigned char *secret, size_t secret_len,
                     unsigned char key[PROXY_KEY_LEN])
{
    static const char label[] = "cobrowse proxy key v1";
    return crypto_hmac_sha256(secret, secret_len, label, sizeof(label) - 1, key);
}

/* The first 16 bytes of HMAC(key, msg) in base64url. */
static int mac16(const unsigned char key[PROXY_KEY_LEN], const char *msg, size_t len,
                 char out[PROXY_MAC_CHARS + 1])
{
    unsigned char mac[32];
    if (crypto_hmac_sha256(key, PROXY_KEY_LEN, msg, len, mac) != 0)
        return -1;
    b64url_encode(mac, 16, out);
    return 0;
}

static int cap_mac(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *session,
                   long long exp, char out[PROXY_MAC_CHARS + 1])
{
    char msg[160];
    int n = snprintf(msg, sizeof(msg), "cap\n%s\n%s\n%lld", tenant, session, exp);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -1;
    return mac16(key, msg, (size_t)n, out);
}

int proxy_cap_make(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *session,
                   int64_t exp, char *out, size_t size)
{
    char mac[PROXY_MAC_CHARS + 1];
    if (!ids_valid("ten", tenant) || !ids_valid("ses", session) || exp <= 0 ||
        cap_mac(key, tenant, session, (long long)exp, mac) != 0)
        return -1;
    int n = snprintf(out, size, "%s.%s.%lld.%s", tenant, session, (long long)exp, mac);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* Splits "a.b.c.d" into exactly four non-empty parts (copied into bounded buffers). */
static int cap_split(const char *cap, char parts[4][48])
{
    const char *p = cap;
    for (int i = 0; i < 4; i++) {
        size_t n = i < 3 ? strcspn(p, ".") : strlen(p);
        if (n == 0 || n >= 48 || (i < 3 && p[n] != '.'))
            return -1;
        memcpy(parts[i], p, n);
        parts[i][n] = '\0';
        p += n + (i < 3);
    }
    return 0;
}

/* Decimal, 1 to 12 digits, no sign or leading zero: one spelling per value. */
static int parse_exp(const char *s, long long *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 12 || s[0] == '0')
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int proxy_cap_verify(const unsigned char key[PROXY_KEY_LEN], const char *cap, int64_t now,
                     struct proxy_cap *out)
{
    char parts[4][48], mac[PROXY_MAC_CHARS + 1];
    long long exp = 0;
    unsigned char raw[16];
    if (cap == NULL || strlen(cap) >= PROXY_CAP_MAX || cap_split(cap, parts) != 0 ||
        !ids_valid("ten", parts[0]) || !ids_valid("ses", parts[1]) ||
        parse_exp(parts[2], &exp) != 0 || strlen(parts[3]) != PROXY_MAC_CHARS ||
        b64url_decode(parts[3], PROXY_MAC_CHARS, raw, sizeof(raw)) != 16)
        return PROXY_SIGN_MALFORMED;
    if (cap_mac(key, parts[0], parts[1], exp, mac) != 0 ||
        !crypto_equal(mac, parts[3], PROXY_MAC_CHARS))
        return PROXY_SIGN_BAD_MAC;
    if (exp <= now)
        return PROXY_SIGN_EXPIRED;
    snprintf(out->tenant, sizeof(out->tenant), "%s", parts[0]);
    snprintf(out->session, sizeof(out->session), "%s", parts[1]);
    out->exp = exp;
    return PROXY_SIGN_OK;
}

static int ref_mac(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *kind,
                   const char *target, char out[PROXY_MAC_CHARS + 1])
{
    size_t cl = strlen(tenant), kl = strlen(kind), tl = strlen(target);
    if (cl >= PROXY_CAP_MAX || kl > 8 || tl > PROXY_TARGET_B64_MAX)
        return -1;
    char msg[4 + PROXY_CAP_MAX + 1 + 8 + 1 + PROXY_TARGET_B64_MAX + 1];
    int n = snprintf(msg, sizeof(msg), "ref\n%s\n%s\n%s", tenant, kind, target);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return -1;
    return mac16(key, msg, (size_t)n, out);
}

int proxy_ref_make(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *kind,
                   const char *target, char out[PROXY_MAC_CHARS + 1])
{
    return ref_mac(key, tenant, kind, target, out);
}

int proxy_ref_verify(const unsigned char key[PROXY_KEY_LEN], const char *tenant, const char *kind,
                     const char *target, const char *ref)
{
    unsigned char raw[16];
    char mac[PROXY_MAC_CHARS + 1];
    if (ref == NULL || strlen(ref) != PROXY_MAC_CHARS ||
        b64url_decode(ref, PROXY_MAC_CHARS, raw, sizeof(raw)) != 16)
        return PROXY_SIGN_MALFORMED;
    if (ref_mac(key, tenant, kind, target, mac) != 0)
        return PROXY_SIGN_MALFORMED;
    return crypto_equal(mac, ref, PROXY_MAC_CHARS) ? PROXY_SIGN_OK : PROXY_SIGN_BAD_MAC;
}

enum proxy_kind proxy_kind_parse(const char *s)
{
    if (s != NULL && strcmp(s, "css") == 0)
        return PROXY_KIND_CSS;
    if (s != NULL && strcmp(s, "asset") == 0)
        return PROXY_KIND_ASSET;
    return PROXY_KIND_NONE;
}

const char *proxy_kind_str(enum proxy_kind k)
{
    return k == PROXY_KIND_CSS ? "css" : k == PROXY_KIND_ASSET ? "asset" : "none";
}

int proxy_target_encode(const char *url, char *out, size_t size)
{
    size_t n = strlen(url);
    if (n > PROXY_URL_MAX || size < n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0) + 1)
        return -1;
    return (int)b64url_encode((const unsigned char *)url, n, out);
}

/* An absolute http(s) URL with a host and no user or password, as libcurl parses it. */
static int url_is_http(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL;
    int ok = u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
             (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '\0' &&
             curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_NO_USER &&
             curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_NO_PASSWORD;
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return ok;
}

int proxy_target_decode(const char *b64, char *url, size_t size)
{
    size_t n = b64 != NULL ? strlen(b64) : 0;
    if (n == 0 || n > PROXY_TARGET_B64_MAX || size <= PROXY_URL_MAX)
        return PROXY_SIGN_MALFORMED;
    int len = b64url_decode(b64, n, (unsigned char *)url, size - 1);
    if (len < 0 || len > PROXY_URL_MAX)
        return PROXY_SIGN_MALFORMED;
    url[len] = '\0';
    for (int i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f)
            return PROXY_SIGN_NOT_HTTP; /* NUL, controls, spaces: never a URL we fetch */
    /* Scheme checked on the text too: libcurl would guess one for "example.com/x". */
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return PROXY_SIGN_NOT_HTTP;
    return url_is_http(url) ? PROXY_SIGN_OK : PROXY_SIGN_NOT_HTTP;
}

int proxy_origin_of(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto done;
    /* CURLUPART_PORT without CURLU_DEFAULT_PORT: only a port the URL spells out. */
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
        ((strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
         (strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0))) {
        curl_free(port);
        port = NULL;
    }
    int n = snprintf(out, size, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    if (n > 0 && (size_t)n < size) {
        for (char *c = out; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        rc = 0;
    }
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}
