/* The proxy's side of stylesheet rewriting (css.h does the tokenizing): what each url() and
 * @import of a stylesheet becomes.
 *
 *   proxy_rewrite_absolute: every URL resolved against the sheet's own (final) URL; the form the
 *     cache keeps, so that an entry no longer depends on where it came from;
 *   proxy_rewrite_signed: every http(s) URL (resolved against base) written as the relative URL of
 *     its ref-signed proxy URL for the requesting cap: kind css for @import, asset otherwise.
 *     Relative ("../asset/<target>/<ref>"), so it also works under a public URL with a path.
 * data: URLs, fragment-only references and other schemes are left as they are.
 * Threading: no state; any thread. The caller owns out (css_buf_free) on success and failure.
 */
#ifndef COBROWSE_CORE_PROXY_PROXY_REWRITE_H
#define COBROWSE_CORE_PROXY_PROXY_REWRITE_H

#include <stddef.h>

#include "core/proxy/css.h"
#include "core/proxy/proxy_sign.h"

/* Returns 0 or -1. */
int proxy_rewrite_absolute(const char *css, size_t len, const char *base, struct css_buf *out);

/* depth: path segments after "/v1/proxy/<cap>/" in the stylesheet's own proxy URL minus one (1
 * without a ref, 2 with one). Returns 0 or -1. */
int proxy_rewrite_signed(const char *css, size_t len, const char *base,
                         const unsigned char key[PROXY_KEY_LEN], const char *cap, int depth,
                         struct css_buf *out);

/* The absolute form of ref resolved against base when it is http(s), malloc'd; else NULL. */
char *proxy_resolve_url(const char *base, const char *ref, size_t len);

#endif
