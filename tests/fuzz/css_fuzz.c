/* libFuzzer target for core/proxy/css_tok.c and css_rewrite.c (scripts/fuzz.sh builds and runs
 * it). Besides the sanitizers' findings it checks, for every input:
 *   - the tokens are contiguous, non-empty and cover the input exactly;
 *   - removing the rewriter's additions (made visible with css_rewrite_marked) gives back the
 *     input byte for byte, and each addition holds the class form .\:hover;
 *   - rewriting the output again changes nothing (with no URL callback: one that rewrites URLs
 *     rewrites them again on a second pass, by design);
 *   - a callback that replaces every other URL, and one that fails, neither crash nor leak;
 *   - (built with CSS_REWRITE_CROSSCHECK) the rewriter's byte-level fast paths agree with its
 *     token-by-token scan. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/proxy/css.h"
#include "core/proxy/css_tok.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "css_fuzz: check failed: %s (line %d)\n", #cond, __LINE__);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_tokens(const char *s, size_t n)
{
    struct css_lexer lx;
    struct css_tok t;
    size_t at = 0;
    css_lex_init(&lx, s, n);
    while (css_lex_next(&lx, &t) != CSS_TOK_EOF) {
        CHECK(t.start == at && t.end > t.start && t.end <= n);
        at = t.end;
    }
    CHECK(at == n && t.start == n && t.end == n);
}

/* Markers absent from the input, or NULL when it holds every candidate. */
static const char *pick_marker(const char *s, size_t n, int which)
{
    static const char *const open[] = {"\x01<", "\x02<", "\x7f<", "\x03\x04<"};
    static const char *const close[] = {">\x01", ">\x02", ">\x7f", ">\x03\x04"};
    for (size_t i = 0; i < sizeof open / sizeof *open; i++)
        if (!memmem(s, n, open[i], strlen(open[i])) && !memmem(s, n, close[i], strlen(close[i])))
            return which ? close[i] : open[i];
    return NULL;
}

static void check_additions_only(const char *s, size_t n)
{
    const char *open = pick_marker(s, n, 0), *close = pick_marker(s, n, 1);
    if (!open)
        return;
    size_t ol = strlen(open), cl = strlen(close);
    struct css_buf out = {0};
    CHECK(css_rewrite_marked(s, n, NULL, NULL, open, close, &out) == 0);
    size_t j = 0;
    for (size_t i = 0; i < out.len;) {
        if (out.len - i >= ol && !memcmp(out.data + i, open, ol)) {
            const char *end = memmem(out.data + i + ol, out.len - i - ol, close, cl);
            CHECK(end != NULL);
            size_t e = (size_t)(end - out.data);
            CHECK(memmem(out.data + i, e - i, ".\\:hover", 8) != NULL);
            i = e + cl;
        } else {
            CHECK(j < n && out.data[i] == s[j]);
            i++, j++;
        }
    }
    CHECK(j == n);
    css_buf_free(&out);
}

static void check_idempotent(const char *s, size_t n)
{
    struct css_buf once = {0}, twice = {0};
    CHECK(css_rewrite(s, n, NULL, NULL, &once) == 0);
    CHECK(once.len >= n);
    CHECK(css_rewrite(once.data, once.len, NULL, NULL, &twice) == 0);
    CHECK(twice.len == once.len && memcmp(once.data, twice.data, once.len) == 0);
    css_buf_free(&once);
    css_buf_free(&twice);
}

struct urls {
    unsigned seen, fail_at;
};

static int every_other(void *arg, enum css_url_kind kind, const char *url, size_t len, char **r)
{
    struct urls *u = arg;
    CHECK(kind == CSS_URL_IMPORT || kind == CSS_URL_ASSET);
    CHECK(len == 0 || url != NULL);
    if (++u->seen == u->fail_at)
        return -1;
    if (u->seen % 2 == 0)
        return 0;
    char *p = malloc(len + 4);
    CHECK(p != NULL);
    memcpy(p, "p/", 2);
    for (size_t i = 0; i < len; i++)
        p[2 + i] = url[i] ? url[i] : '0'; /* a replacement is a C string */
    p[len + 2] = '"';
    p[len + 3] = '\0';
    *r = p;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    const char *s = (const char *)data;
    check_tokens(s, n);
    check_additions_only(s, n);
    check_idempotent(s, n);
    struct urls u = {0, 0};
    struct css_buf out = {0};
    CHECK(css_rewrite(s, n, every_other, &u, &out) == 0);
    CHECK(out.len == 0 || out.data[out.len] == '\0');
    css_buf_free(&out);
    if (u.seen > 0) {
        struct urls f = {0, (unsigned)(n % u.seen) + 1};
        CHECK(css_rewrite(s, n, every_other, &f, &out) == -1);
        css_buf_free(&out);
    }
    return 0;
}
