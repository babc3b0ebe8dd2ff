/* What crosses the files of the CSS rewriter (css.h), private to core/proxy/css_*.c:
 * css_rewrite.c (the walk over blocks, URLs, the entry points), css_scan.c (the scan ahead of a
 * construct) and css_hover.c (the :hover copies of a selector list).
 * Threading: a struct rw lives for one css_rewrite call, on that call's thread; nothing here has
 * other state. Memory: struct rw's arrays (stack, segs, hovs, tab) and tmp are the rewriter's,
 * freed by css_rewrite_marked; out is the caller's. */
#ifndef COBROWSE_CORE_PROXY_CSS_INTERNAL_H
#define COBROWSE_CORE_PROXY_CSS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/proxy/css.h"
#include "core/proxy/css_tok.h"

struct seg { /* one selector of a list: trimmed bytes and its :hover occurrences */
    size_t start, end, hov, nhov, copy, copy_len;
};

struct hov {
    size_t start, end; /* from the colon to the end of "hover" */
};

struct rw {
    const char *in;
    size_t n, copied; /* in[0, copied) is already in out */
    struct css_lexer lx;
    css_url_fn fn;
    void *arg;
    struct css_buf *out;
    const char *sep_open, *sep_close;
    unsigned char *stack; /* open blocks, then scratch for the scan ahead */
    size_t depth, stack_cap;
    struct css_buf tmp; /* a decoded URL */
    struct seg *segs;
    size_t nsegs, segs_cap;
    struct hov *hovs;
    size_t nhovs, hovs_cap;
    size_t *tab; /* the selectors of a list being rewritten, by hash (seen_or_add) */
    size_t tab_cap, tab_mask;
};
enum scan_mode {
    SCAN_AT,        /* an at-rule's prelude: to ";" or "{" (or "}" when nested) */
    SCAN_TOP_RULE,  /* a qualified rule at the top level: to "{" */
    SCAN_CONSTRUCT, /* inside a block: a declaration or a nested rule */
};

enum scan_stop {
    STOP_END,    /* ";" (consumed), "}" (not consumed) or the end of the input */
    STOP_BLOCK,  /* "{" of the construct's block (consumed) */
    STOP_OPAQUE, /* `name: {`: a declaration whose whole value is a block, or an invalid rule */
};

struct scan {
    enum scan_stop stop;
    bool decl;        /* STOP_END of `name: value` */
    bool has_url;     /* a url token or url( function anywhere */
    bool maybe_hover; /* a colon then an ident spelled hover */
    bool bad;         /* a token no valid selector list holds */
    size_t end;       /* where the lexer goes on */
    size_t last_sig;  /* end of the last token before the stop other than whitespace/comments */
};

/* ---- css_rwbuf.c (a leaf) ---- */

/* Makes room for extra more bytes (and the NUL) in b. Returns 0, or -1 when out of memory. */
int css_rw_buf_reserve(struct css_buf *b, size_t extra);

/* Appends s[0, len) to b. Returns 0, or -1 when out of memory. */
int css_rw_buf_add(struct css_buf *b, const char *s, size_t len);

/* Copies the input's bytes from w->copied up to p into w->out. Returns 0 or -1. */
int css_rw_emit_until(struct rw *w, size_t p);

/* Grows an array of elem-sized items so that index `need` fits. Returns 0 or -1. */
int css_rw_grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Sets w->stack[d] to f, growing the stack. Returns 0 or -1. */
int css_rw_push_at(struct rw *w, size_t d, unsigned char f);

/* Whether t is the function token url( (any case, escapes decoded). */
bool css_rw_is_url_function(const struct rw *w, const struct css_tok *t);

/* ---- css_scan.c ---- */

/* Scans from token *first (already consumed from w->lx) to the construct's end into *s. Leaves
 * w->lx and w->depth alone (the stack above w->depth is scratch). Returns 0, or -1 when out of
 * memory. */
int css_rw_scan(struct rw *w, const struct css_tok *first, enum scan_mode mode, struct scan *s);

/* ---- css_hover.c ---- */

/* The selector list in[ps, last_sig) (balanced, no bad tokens): when it holds :hover, copies the
 * input up to last_sig into w->out and appends the copies there. Returns 0, or -1 when out of
 * memory. */
int css_rw_rewrite_hover(struct rw *w, size_t ps, size_t last_sig);

#endif
