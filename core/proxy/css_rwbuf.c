/* The rewriter's output buffer and block stack (css_internal.h): the helpers css_rewrite.c,
 * css_scan.c and css_hover.c all write through. A leaf: it calls none of them, so the three
 * files depend on it and not on each other for these. Threading: no state; any thread. */
#include "core/proxy/css.h"
#include "core/proxy/css_internal.h"
#include "core/proxy/css_tok.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void css_buf_free(struct css_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int css_rw_buf_reserve(struct css_buf *b, size_t extra)
{
    if (b->cap - b->len > extra)
        return 0; /* one byte more stays free for the terminating NUL */
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int css_rw_buf_add(struct css_buf *b, const char *s, size_t len)
{
    if (css_rw_buf_reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    return 0;
}

int css_rw_emit_until(struct rw *w, size_t p)
{
    if (p <= w->copied)
        return 0;
    int r = css_rw_buf_add(w->out, w->in + w->copied, p - w->copied);
    w->copied = p;
    return r;
}

/* Grows an array of elem-sized items so that index `need` fits. */
int css_rw_grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c <= need)
        c *= 2;
    void *p = realloc(*arr, c * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = c;
    return 0;
}

int css_rw_push_at(struct rw *w, size_t d, unsigned char f)
{
    if (css_rw_grow((void **)&w->stack, &w->stack_cap, d, 1) < 0)
        return -1;
    w->stack[d] = f;
    return 0;
}

bool css_rw_is_url_function(const struct rw *w, const struct css_tok *t)
{
    if (t->kind != CSS_TOK_FUNCTION || t->end - t->start < 4)
        return false;
    char c = w->in[t->start]; /* most functions are not url(: skip the decoding for them */
    return (c == 'u' || c == 'U' || c == '\\') &&
           css_tok_name_is(w->in, t->start, t->end - 1, "url");
}
