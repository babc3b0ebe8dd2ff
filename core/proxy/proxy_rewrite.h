/* The proxy's side of stylesheet rewriting (css.h does the tokenizing): what each url() and
 * @import of a stylesheet becomes.
 *
 * proxy_rewrite_signed writes every http(s) URL (resolved against base, the sheet's own final
 * URL) as the relative URL of its ref-signed proxy URL, kind css for @import, asset otherwise:
 * "../<kind>/<target>.<ref>". The ref is the tenant's (proxy_sign.h) and the path relative (the
 * sheet's own proxy URL is /v1/proxy/<cap>/css/<target>[.<ref>], always at that depth), so the
 * result does not depend on the agent who asked: it is rewritten once, when fetched, and cached
 * and served as it is. It also works under a public URL with a path.
 * data: URLs, fragment-only references and other schemes are left as they are.
 * Threading: no state; any thread. The caller owns out (css_buf_free) on success and failure.
 */
#ifndef COBROWSE_CORE_PROXY_PROXY_REWRITE_H
#define COBROWSE_CORE_PROXY_PROXY_REWRITE_H

#include <stddef.h>

#include "core/proxy/css.h"
#include "core/proxy/proxy_sign.h"

/* Returns 0 or -1. */
int proxy_rewrite_signed(const char *css, size_t len, const char *base,
                         const unsigned char key[PROXY_KEY_LEN], const char *tenant,
                         struct css_buf *out);

/* The absolute form of ref resolved against base when it is http(s), malloc'd; else NULL. */
char *proxy_resolve_url(const char *base, const char *ref, size_t len);

#endif
