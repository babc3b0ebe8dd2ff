/* What a stylesheet's URLs become (core/proxy/proxy_rewrite.h). */
#include "core/proxy/proxy_rewrite.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rewrite_ctx {
    const char *base;
    const unsigned char *key;
    const char *tenant;
};

static int skip_as_is(const char *url, size_t len)
{
    while (len > 0 && (*url == ' ' || *url == '\t' || *url == '\n')) {
        url++;
        len--;
    }
    return len == 0 || url[0] == '#' || (len >= 5 && strncasecmp(url, "data:", 5) == 0);
}

char *proxy_resolve_url(const char *base, const char *ref, size_t len)
{
    if (skip_as_is(ref, len) || len > PROXY_URL_MAX)
        return NULL;
    char *rel = strndup(ref, len);
    CURLU *u = curl_url();
    char *abs = NULL, *scheme = NULL, *out = NULL;
    if (rel == NULL || u == NULL || curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
        goto done;
    /* CURLU_NON_SUPPORT_SCHEME: a "javascript:" reference must parse so that it is then left
     * out by the scheme check, not resolved as a relative path. */
    if (curl_url_set(u, CURLUPART_URL, rel, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_URL, &abs, 0) != CURLUE_OK || strlen(abs) > PROXY_URL_MAX)
        goto done;
    out = strdup(abs);
done:
    curl_free(abs);
    curl_free(scheme);
    curl_url_cleanup(u);
    free(rel);
    return out;
}

/* "../<kind>/<target>.<ref>" for an absolute URL. */
static char *signed_path(const struct rewrite_ctx *x, const char *kind, const char *abs)
{
    char target[PROXY_TARGET_B64_MAX + 1], ref[PROXY_MAC_CHARS + 1];
    if (proxy_target_encode(abs, target, sizeof(target)) < 0 ||
        proxy_ref_make(x->key, x->tenant, kind, target, ref) != 0)
        return NULL;
    size_t cap = 3 + strlen(kind) + 1 + strlen(target) + 1 + sizeof(ref);
    char *out = malloc(cap);
    if (out != NULL)
        snprintf(out, cap, "../%s/%s.%s", kind, target, ref);
    return out;
}

static int on_url(void *arg, enum css_url_kind kind, const char *url, size_t len,
                  char **replacement)
{
    const struct rewrite_ctx *x = arg;
    *replacement = NULL;
    char *abs = proxy_resolve_url(x->base, url, len);
    if (abs == NULL)
        return 0; /* not http(s), or unusable: kept as it was */
    /* NULL (out of memory, or too long once encoded) keeps the URL as it was. */
    *replacement = signed_path(x, kind == CSS_URL_IMPORT ? "css" : "asset", abs);
    free(abs);
    return 0;
}

int proxy_rewrite_signed(const char *css, size_t len, const char *base,
                         const unsigned char key[PROXY_KEY_LEN], const char *tenant,
                         struct css_buf *out)
{
    struct rewrite_ctx x = {base, key, tenant};
    return css_rewrite(css, len, on_url, &x, out);
}
