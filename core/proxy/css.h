/* CSS rewriting for the stylesheet proxy (docs/proxy.md, "Rewriting").
 *
 * A tokenizer that follows CSS Syntax Level 3 (https://www.w3.org/TR/css-syntax-3/, section 4)
 * and a rewriter on top of it that changes exactly two things and copies every other byte as it
 * came:
 *   - every selector (of a style rule at any depth: inside @media, @supports, @layer, @container,
 *     @document, @scope and nested style rules) that contains the pseudo-class :hover (any case,
 *     escapes decoded, also inside :is() :where() :not() :has()) gains, at the end of its
 *     selector list, a copy with each :hover written as the class `.\:hover` (rrweb's convention:
 *     the viewer's replayer sets the class ":hover" on hovered elements), unless that copy is
 *     already in the list (so that rewriting twice changes nothing);
 *   - every url(...) token, url("...") function and @import target goes through the caller's
 *     css_url_fn, and when it returns a replacement, is written as url("<replacement>") with the
 *     replacement escaped for a CSS string.
 * Malformed CSS (unclosed blocks, strings, comments, bad urls) passes through best effort: the
 * output is still every input byte plus the additions, and the function never reads past n.
 * Threading: no state; any thread. Memory: the caller owns `out` (css_buf_free).
 */
#ifndef COBROWSE_CORE_PROXY_CSS_H
#define COBROWSE_CORE_PROXY_CSS_H

#include <stddef.h>

struct css_buf {
    char *data; /* NUL-terminated when len > 0; malloc'd */
    size_t len;
    size_t cap;
};

void css_buf_free(struct css_buf *b);

enum css_url_kind {
    CSS_URL_IMPORT, /* @import "x" or @import url(x): a stylesheet */
    CSS_URL_ASSET,  /* any other url(): an image or a font */
};

/* Called for each URL, with its value decoded (escapes resolved, quotes and whitespace removed,
 * not NUL-terminated: url[0..len)). Sets *replacement to a malloc'd NUL-terminated URL to write
 * instead (the rewriter frees it), or leaves it NULL to keep the original bytes (for example
 * data: URLs or "#fragment" references). Returns 0, or -1 to abort the rewrite. */
typedef int (*css_url_fn)(void *arg, enum css_url_kind kind, const char *url, size_t len,
                          char **replacement);

/* Appends the rewritten in[0..n) to out. fn may be NULL (hover rewriting only). Returns 0, or -1
 * when out of memory or fn failed (out then holds a partial result the caller discards). */
int css_rewrite(const char *in, size_t n, css_url_fn fn, void *arg, struct css_buf *out);

/* css_rewrite with each added selector written open + copy + close instead of ", " + copy: the
 * seam that lets a test or the fuzzer find the additions and check that removing them gives back
 * the input byte for byte. */
int css_rewrite_marked(const char *in, size_t n, css_url_fn fn, void *arg, const char *open,
                       const char *close, struct css_buf *out);

#endif
