/* What a stylesheet's URLs become (core/proxy/proxy_rewrite.h). */
#include "core/proxy/proxy_rewrite.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct rewrite_ctx {
    const char *base;
    const unsigned char *key; /* NULL: absolute only */
    const char *cap;
    int depth;
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

/* "../" * depth + "<kind>/<target>/<ref>" for an absolute URL. */
static char *signed_path(const struct rewrite_ctx *x, const char *kind, const char *abs)
{
    char target[PROXY_TARGET_B64_MAX + 1], ref[PROXY_MAC_CHARS + 1];
    if (proxy_target_encode(abs, target, sizeof(target)) < 0 ||
        proxy_ref_make(x->key, x->cap, kind, target, ref) != 0)
        return NULL;
    size_t cap = (size_t)x->depth * 3 + strlen(kind) + strlen(target) + sizeof(ref) + 3;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (int i = 0; i < x->depth; i++) {
        memcpy(out + o, "../", 3);
        o += 3;
    }
    snprintf(out + o, cap - o, "%s/%s/%s", kind, target, ref);
    return out;
}

static int on_url(void *arg, enum css_url_kind kind, const char *url, size_t len,
                  char **replacement)
{
    const struct rewrite_ctx *x = arg;
    *replacement = NULL;
    /* The cache keeps stylesheets with absolute URLs (written by libcurl): signing them needs no
     * second parse, which was most of a stylesheet hit's cost (docs/benchmarks.md). */
    int absolute = x->key != NULL && len <= PROXY_URL_MAX &&
                   ((len > 7 && memcmp(url, "http://", 7) == 0) ||
                    (len > 8 && memcmp(url, "https://", 8) == 0));
    char *abs = absolute ? strndup(url, len) : proxy_resolve_url(x->base, url, len);
    if (abs == NULL || x->key == NULL) {
        *replacement = abs;
        return 0;
    }
    /* Only a non-NULL answer that failed is an error: an unusable URL is kept as it was. */
    *replacement = signed_path(x, kind == CSS_URL_IMPORT ? "css" : "asset", abs);
    free(abs);
    return 0;
}

int proxy_rewrite_absolute(const char *css, size_t len, const char *base, struct css_buf *out)
{
    struct rewrite_ctx x = {base, NULL, NULL, 0};
    return css_rewrite(css, len, on_url, &x, out);
}

int proxy_rewrite_signed(const char *css, size_t len, const char *base,
                         const unsigned char key[PROXY_KEY_LEN], const char *cap, int depth,
                         struct css_buf *out)
{
    struct rewrite_ctx x = {base, key, cap, depth};
    return css_rewrite(css, len, on_url, &x, out);
}
