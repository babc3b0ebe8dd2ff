/* The CSS rewriter's :hover copies (css_internal.h: css_rw_rewrite_hover): a selector list is
 * split into selectors, and each selector holding :hover gains a copy with each :hover written
 * .\:hover, unless the list or an earlier copy holds it already (a hash table of this list's
 * selectors and copies keeps that linear). Threading: no state; runs on the thread of the
 * css_rewrite call that owns the struct rw. */
#include "core/proxy/css_internal.h"
#include "core/proxy/css_tok.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Splits the selector list in[ps, pe) (balanced, no bad tokens) into w->segs, each with its
 * :hover pseudo-classes in w->hovs: a colon not after another colon, then the ident hover, not
 * inside an attribute selector's brackets. Returns the number of :hover found, or -1. */
static long find_hovers(struct rw *w, size_t ps, size_t pe)
{
    struct css_lexer lx = {w->in, w->n, ps};
    struct css_tok t;
    uint64_t brackets = 0; /* bit i: level i+1 is "[" (a selector list nests far less than 64) */
    unsigned level = 0, in_attr = 0;
    enum css_tok_kind prev = CSS_TOK_WS, prev2 = CSS_TOK_WS;
    size_t colon = 0;
    long found = 0;
    w->nsegs = w->nhovs = 0;
    struct seg cur = {0, 0, 0, 0, 0, 0};
    bool empty = true;
    while (css_lex_next(&lx, &t) != CSS_TOK_EOF && t.start < pe) {
        enum css_tok_kind k = t.kind;
        if (k == CSS_TOK_COMMENT)
            continue;
        if (k != CSS_TOK_WS && !(k == CSS_TOK_COMMA && level == 0)) {
            if (empty)
                cur.start = t.start, cur.hov = w->nhovs, empty = false;
            cur.end = t.end;
        }
        if (k == CSS_TOK_COLON)
            colon = t.start;
        if (k == CSS_TOK_IDENT && prev == CSS_TOK_COLON && prev2 != CSS_TOK_COLON && !in_attr &&
            css_tok_name_is(w->in, t.start, t.end, "hover")) {
            if (css_rw_grow((void **)&w->hovs, &w->hovs_cap, w->nhovs, sizeof *w->hovs) < 0)
                return -1;
            w->hovs[w->nhovs++] = (struct hov){colon, t.end};
            cur.nhov++;
            found++;
        }
        if (k == CSS_TOK_LPAREN || k == CSS_TOK_FUNCTION || k == CSS_TOK_LBRACKET) {
            if (level == 64)
                return 0; /* deeper than any real selector: left as it is */
            brackets |= (uint64_t)(k == CSS_TOK_LBRACKET) << level++;
            in_attr += k == CSS_TOK_LBRACKET;
        } else if ((k == CSS_TOK_RPAREN || k == CSS_TOK_RBRACKET) && level > 0) {
            in_attr -= (unsigned)((brackets >> --level) & 1);
            brackets &= ~((uint64_t)1 << level);
        }
        if ((k == CSS_TOK_COMMA && level == 0) || lx.pos >= pe) {
            if (!empty) {
                if (css_rw_grow((void **)&w->segs, &w->segs_cap, w->nsegs, sizeof *w->segs) < 0)
                    return -1;
                w->segs[w->nsegs++] = cur;
            }
            cur = (struct seg){0, 0, 0, 0, 0, 0};
            empty = true;
        }
        prev2 = prev;
        prev = k;
    }
    return found;
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

/* The bytes of table entry e: entry 2j is segment j's trimmed selector, 2j + 1 its copy. */
static const char *entry_bytes(const struct rw *w, size_t e, size_t *len)
{
    const struct seg *x = &w->segs[e / 2];
    *len = e % 2 ? x->copy_len : x->end - x->start;
    return e % 2 ? w->out->data + x->copy : w->in + x->start;
}

/* Looks p[0, n) up in the open-addressing table of selectors and copies of this list (w->tab,
 * entries + 1, 0 empty); inserts entry e when it is not there. Returns whether it was. Keeps a
 * list of thousands of selectors linear where comparing each copy with each selector would not
 * be. */
static bool seen_or_add(struct rw *w, const char *p, size_t n, size_t e)
{
    size_t mask = w->tab_mask, len;
    for (size_t k = (size_t)hash_bytes(p, n) & mask;; k = (k + 1) & mask) {
        if (!w->tab[k]) {
            w->tab[k] = e + 1;
            return false;
        }
        const char *q = entry_bytes(w, w->tab[k] - 1, &len);
        if (same(p, n, q, len))
            return true;
    }
}

static bool hex_digit(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* 1 when p[0, n) ends with a hex escape: a backslash (not itself escaped) and 1 to 6 hex digits.
 * The tokenizer takes one whitespace after such an escape as part of it, so a copy that ends with
 * one would be read, by the next rewrite, together with the whitespace that follows it in the
 * output: a selector that no copy equals, copied again (rewriting twice must change nothing). */
static bool ends_in_hex_escape(const char *p, size_t n)
{
    size_t d = 0, b = 0;
    while (d < n && d < 6 && hex_digit((unsigned char)p[n - 1 - d]))
        d++;
    while (d > 0 && b < n - d && p[n - d - 1 - b] == '\\')
        b++;
    return b % 2 == 1;
}

/* Appends the copy of segment i (each :hover written .\:hover) unless the list, or a copy made
 * before, already holds it. */
static int add_copy(struct rw *w, size_t i)
{
    struct css_buf *o = w->out;
    struct seg *sg = &w->segs[i];
    size_t mark = o->len, at = sg->start;
    if (css_rw_buf_add(o, w->sep_open, strlen(w->sep_open)) < 0)
        return -1;
    size_t cs = o->len;
    for (size_t h = sg->hov; h < sg->hov + sg->nhov; h++) {
        if (css_rw_buf_add(o, w->in + at, w->hovs[h].start - at) < 0 ||
            css_rw_buf_add(o, ".\\:hover", 8) < 0)
            return -1;
        at = w->hovs[h].end;
    }
    if (css_rw_buf_add(o, w->in + at, sg->end - at) < 0)
        return -1;
    /* The escape's own terminator, which a next rewrite reads as part of the selector. */
    if (ends_in_hex_escape(o->data + cs, o->len - cs) && css_rw_buf_add(o, " ", 1) < 0)
        return -1;
    sg->copy = cs;
    sg->copy_len = o->len - cs;
    if (seen_or_add(w, o->data + cs, sg->copy_len, 2 * i + 1)) {
        o->len = mark;
        sg->copy_len = 0;
        return 0;
    }
    return css_rw_buf_add(o, w->sep_close, strlen(w->sep_close));
}

/* The selector list in[ps, last_sig): the copies go right after its last token. */
int css_rw_rewrite_hover(struct rw *w, size_t ps, size_t last_sig)
{
    long found = find_hovers(w, ps, last_sig);
    if (found <= 0)
        return (int)found;
    if (css_rw_emit_until(w, last_sig) < 0)
        return -1;
    size_t cap = 16;
    while (cap < 4 * w->nsegs) /* room for every selector and copy, at most half full */
        cap *= 2;
    if (cap > w->tab_cap) {
        free(w->tab);
        if (!(w->tab = malloc(cap * sizeof *w->tab)))
            return -1;
        w->tab_cap = cap;
    }
    w->tab_mask = cap - 1; /* only this list's part is cleared: many small lists stay cheap */
    memset(w->tab, 0, cap * sizeof *w->tab);
    for (size_t i = 0; i < w->nsegs; i++)
        seen_or_add(w, w->in + w->segs[i].start, w->segs[i].end - w->segs[i].start, 2 * i);
    for (size_t i = 0; i < w->nsegs; i++)
        if (w->segs[i].nhov && add_copy(w, i) < 0)
            return -1;
    return 0;
}
