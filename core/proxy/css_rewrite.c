/* The stylesheet rewriter (css.h): one pass over css_tok's tokens with an explicit stack of open
 * blocks, no recursion. Untouched bytes are copied lazily in large runs (`copied` trails the
 * lexer), so the cost beyond tokenizing is one memcpy of the input plus the additions.
 *
 * Parsing follows CSS Syntax Level 3 section 5 (consume a stylesheet's / a block's contents)
 * closely enough to agree with browsers on what is a selector: at the top level everything that
 * is not an at-rule is a qualified rule whose prelude runs to the first "{" outside brackets;
 * inside a style rule or a conditional group rule (CSS Nesting) a construct starting with
 * `ident :` is a declaration unless a {}-block follows other value tokens (then it is a nested
 * rule: `a:hover {}`), anything else is a nested rule. Blocks whose contents hold no selectors
 * (@font-face, @keyframes, @page, unknown at-rules) are walked "opaque": brackets are matched and
 * url()s rewritten, nothing else. Each construct is scanned ahead once to find its end, and only
 * selector lists that may hold :hover, and declarations that hold a url, are read again, so
 * every byte is read at most three times. The scan ahead of a declaration's value or of an
 * ordinary selector list goes byte by byte (fast_value, fast_prelude) rather than token by
 * token, and hands anything unusual to the tokens; builds with CSS_REWRITE_CROSSCHECK (the
 * sanitizer build and the fuzzer) run both and abort when they disagree.
 *
 * This file holds the walk over blocks, the URLs and the entry points; the scan ahead (fast
 * paths included) is in css_scan.c, the :hover copies of a selector list in css_hover.c, and
 * the output buffer and block stack every part writes to in css_rwbuf.c (a leaf: it calls none of
 * them), and what crosses the files in css_internal.h. Threading: no state; any thread. */
#include "core/proxy/css.h"
#include "core/proxy/css_internal.h"
#include "core/proxy/css_tok.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum frame {
    F_TOP,     /* the stylesheet itself (never on the stack) */
    F_RULES,   /* { } of a style rule or a conditional group rule: rules and declarations */
    F_OPAQUE,  /* { } without selectors */
    F_PAREN,   /* ( or a function, inside an opaque block */
    F_BRACKET, /* [ inside an opaque block */
};
static enum css_tok_kind next_sig(struct css_lexer *lx, struct css_tok *t)
{
    while (css_lex_next(lx, t) == CSS_TOK_WS || t->kind == CSS_TOK_COMMENT)
        ;
    return t->kind;
}

/* ---- URLs ---- */

/* Writes cp as UTF-8 at d; returns the length (1 to 4). */
static size_t put_utf8(char *d, unsigned long cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | cp >> 6), d[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xe0 | cp >> 12), d[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (char)(0xf0 | cp >> 18), d[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), d[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Decodes s[start, end) (escapes, line continuations of strings, NUL as U+FFFD) into w->tmp;
 * with `trim`, unescaped whitespace at the end is dropped (a url token's value). No input byte
 * decodes to more than 3 bytes (a NUL, or "\0" as U+FFFD), so one reservation does. */
static int decode(struct rw *w, size_t start, size_t end, bool trim)
{
    struct css_buf *b = &w->tmp;
    b->len = 0;
    if (css_rw_buf_reserve(b, 3 * (end - start)) < 0)
        return -1;
    char *d = b->data;
    size_t k = 0, keep = 0;
    for (size_t i = start; i < end;) {
        unsigned char c = (unsigned char)w->in[i];
        if (c == '\\' && i + 1 < end && strchr("\n\r\f", w->in[i + 1]) && w->in[i + 1]) {
            bool crlf = w->in[i + 1] == '\r' && i + 2 < end && w->in[i + 2] == '\n';
            i += crlf ? 3 : 2; /* a string's line continuation: nothing */
        } else if (c == '\\') {
            unsigned long cp;
            unsigned char next = i + 1 < end ? (unsigned char)w->in[i + 1] : 0;
            i = css_tok_escape(w->in, end, i, &cp);
            /* "\" before a UTF-8 byte escapes that byte as it is (the rest of its sequence
             * follows raw); an escaped NUL is U+FFFD like a raw one. */
            if (next >= 0x80)
                d[k++] = (char)next;
            else
                k += put_utf8(d + k, cp ? cp : 0xfffd);
            keep = k;
        } else {
            k += c ? (d[k] = (char)c, 1) : put_utf8(d + k, 0xfffd);
            i++;
            if (!trim || !strchr(" \t\n\r\f", c) || !c)
                keep = k;
        }
    }
    b->len = keep;
    return 0;
}

/* Writes url("<s>") with s escaped for a CSS string (at most 3 bytes for one). */
static int add_url(struct css_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (css_rw_buf_reserve(b, 3 * n + 7) < 0)
        return -1;
    char *d = b->data + b->len;
    memcpy(d, "url(\"", 5), d += 5;
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            *d++ = '\\', *d++ = *s;
        else if (*s == '\n' || *s == '\r' || *s == '\f')
            *d++ = '\\', *d++ = *s == '\n' ? 'a' : *s == '\r' ? 'd' : 'c', *d++ = ' ';
        else
            *d++ = *s;
    }
    memcpy(d, "\")", 2), d += 2;
    b->len = (size_t)(d - b->data);
    return 0;
}

/* The value in[vs, ve) (a string's or a url token's, trimmed) goes through the callback; a
 * replacement takes the place of in[rs, re). */
static int url_value(struct rw *w, enum css_url_kind kind, size_t vs, size_t ve, bool trim,
                     size_t rs, size_t re)
{
    char *repl = NULL;
    int r = decode(w, vs, ve, trim);
    if (r == 0)
        r = w->fn(w->arg, kind, w->tmp.len ? w->tmp.data : "", w->tmp.len, &repl) < 0 ? -1 : 0;
    if (r == 0 && repl) {
        r = css_rw_emit_until(w, rs);
        if (r == 0)
            r = add_url(w->out, repl);
        w->copied = re;
    }
    free(repl);
    return r;
}

/* A url token (closed by ")"): its value is between the first "(" and the ")". */
static int url_token(struct rw *w, const struct css_tok *t, enum css_url_kind kind)
{
    if (!w->fn || !(t->flags & CSS_TOKF_CLOSED))
        return 0;
    const char *p = memchr(w->in + t->start, '(', t->end - t->start);
    size_t vs = (size_t)(p - w->in) + 1;
    while (vs < t->end - 1 && strchr(" \t\n\r\f", w->in[vs]))
        vs++;
    return url_value(w, kind, vs, t->end - 1, true, t->start, t->end);
}

/* url( "x" ) from its function token t: when it has that shape, rewrites it and moves lx past
 * the ")"; otherwise leaves lx alone. */
static int url_function(struct rw *w, struct css_lexer *lx, const struct css_tok *t,
                        enum css_url_kind kind)
{
    struct css_lexer peek = *lx;
    struct css_tok s, c;
    if (!w->fn || next_sig(&peek, &s) != CSS_TOK_STRING || !(s.flags & CSS_TOKF_CLOSED) ||
        next_sig(&peek, &c) != CSS_TOK_RPAREN)
        return 0;
    *lx = peek;
    return url_value(w, kind, s.start + 1, s.end - 1, false, t->start, c.end);
}

/* @import's target: the first token after the keyword. */
static int import_target(struct rw *w)
{
    struct css_lexer peek = w->lx;
    struct css_tok t;
    next_sig(&peek, &t);
    if (t.kind == CSS_TOK_URL)
        return url_token(w, &t, CSS_URL_IMPORT);
    if (css_rw_is_url_function(w, &t))
        return url_function(w, &peek, &t, CSS_URL_IMPORT);
    if (t.kind == CSS_TOK_STRING && (t.flags & CSS_TOKF_CLOSED) && w->fn)
        return url_value(w, CSS_URL_IMPORT, t.start + 1, t.end - 1, false, t.start, t.end);
    return 0;
}

/* Rewrites the url()s of in[lx.pos, end) (a declaration, balanced). */
static int urls_in_range(struct rw *w, size_t end)
{
    struct css_lexer lx = w->lx;
    struct css_tok t;
    int r = 0;
    while (r == 0 && lx.pos < end && css_lex_next(&lx, &t) != CSS_TOK_EOF) {
        if (t.kind == CSS_TOK_URL)
            r = url_token(w, &t, CSS_URL_ASSET);
        else if (css_rw_is_url_function(w, &t))
            r = url_function(w, &lx, &t, CSS_URL_ASSET);
    }
    return r;
}

/* ---- Rules and blocks ---- */

/* Which block an at-rule opens: the conditional group rules hold style rules. */
static enum frame at_rule_frame(const struct rw *w, const struct css_tok *t)
{
    static const char *const groups[] = {"media",    "supports", "layer",          "container",
                                         "document", "scope",    "starting-style", NULL};
    static const char *const vendors[] = {"-webkit-", "-moz-", "-ms-", "-o-", ""};
    size_t s = t->start + 1;
    for (size_t v = 0; v < sizeof vendors / sizeof *vendors; v++) {
        size_t vl = strlen(vendors[v]);
        if (vl && !(t->end - s > vl && !memcmp(w->in + s, vendors[v], vl)))
            continue;
        for (size_t g = 0; groups[g]; g++)
            if (css_tok_name_is(w->in, s + vl, t->end, groups[g]))
                return F_RULES;
        break;
    }
    return F_OPAQUE;
}

static int push(struct rw *w, enum frame f)
{
    if (css_rw_push_at(w, w->depth, (unsigned char)f) < 0)
        return -1;
    w->depth++;
    return 0;
}

static int at_rule(struct rw *w, const struct css_tok *t)
{
    struct scan s;
    if (css_tok_name_is(w->in, t->start + 1, t->end, "import") && import_target(w) < 0)
        return -1;
    if (css_rw_scan(w, t, SCAN_AT, &s) < 0)
        return -1;
    w->lx.pos = s.end;
    return s.stop == STOP_END ? 0 : push(w, at_rule_frame(w, t));
}

/* A qualified rule or (inside a block) a declaration, from its first token t. */
static int rule_or_declaration(struct rw *w, const struct css_tok *t, bool nested)
{
    struct scan s;
    if (css_rw_scan(w, t, nested ? SCAN_CONSTRUCT : SCAN_TOP_RULE, &s) < 0)
        return -1;
    int r = 0;
    if (s.stop == STOP_BLOCK && s.maybe_hover && !s.bad)
        r = css_rw_rewrite_hover(w, t->start, s.last_sig);
    else if (s.stop == STOP_END && s.decl && s.has_url && w->fn)
        r = urls_in_range(w, s.end);
    w->lx.pos = s.end;
    if (r < 0 || s.stop == STOP_END)
        return r;
    return push(w, s.stop == STOP_BLOCK ? F_RULES : F_OPAQUE);
}

/* One construct of the stylesheet or of a rules block. */
static int rules_step(struct rw *w, const struct css_tok *t, enum frame top)
{
    switch (t->kind) {
    case CSS_TOK_RBRACE:
        if (top == F_TOP)
            break;
        w->depth--;
        return 0;
    case CSS_TOK_SEMICOLON:
        if (top == F_TOP)
            break;
        return 0;
    case CSS_TOK_CDO:
    case CSS_TOK_CDC:
        if (top != F_TOP)
            break;
        return 0;
    case CSS_TOK_AT_KEYWORD:
        return at_rule(w, t);
    default:
        break;
    }
    return rule_or_declaration(w, t, top != F_TOP);
}

/* One token of an opaque block: brackets matched, url()s rewritten. */
static int opaque_step(struct rw *w, const struct css_tok *t, enum frame top)
{
    switch (t->kind) {
    case CSS_TOK_URL:
        return url_token(w, t, CSS_URL_ASSET);
    case CSS_TOK_FUNCTION: {
        size_t at = w->lx.pos;
        if (css_rw_is_url_function(w, t) && url_function(w, &w->lx, t, CSS_URL_ASSET) < 0)
            return -1;
        return w->lx.pos != at ? 0 : push(w, F_PAREN);
    }
    case CSS_TOK_LPAREN:
        return push(w, F_PAREN);
    case CSS_TOK_LBRACKET:
        return push(w, F_BRACKET);
    case CSS_TOK_LBRACE:
        return push(w, F_OPAQUE);
    case CSS_TOK_RPAREN:
    case CSS_TOK_RBRACKET:
    case CSS_TOK_RBRACE:
        if ((t->kind == CSS_TOK_RPAREN && top == F_PAREN) ||
            (t->kind == CSS_TOK_RBRACKET && top == F_BRACKET) ||
            (t->kind == CSS_TOK_RBRACE && top == F_OPAQUE))
            w->depth--;
        return 0;
    default:
        return 0;
    }
}

static int rewrite(struct rw *w)
{
    struct css_tok t;
    for (;;) {
        enum frame top = w->depth ? (enum frame)w->stack[w->depth - 1] : F_TOP;
        int r;
        if (top == F_TOP || top == F_RULES) {
            if (next_sig(&w->lx, &t) == CSS_TOK_EOF)
                break;
            r = rules_step(w, &t, top);
        } else {
            if (css_lex_next(&w->lx, &t) == CSS_TOK_EOF)
                break;
            r = opaque_step(w, &t, top);
        }
        if (r < 0)
            return -1;
    }
    return css_rw_emit_until(w, w->n);
}

int css_rewrite_marked(const char *in, size_t n, css_url_fn fn, void *arg, const char *open,
                       const char *close, struct css_buf *out)
{
    struct rw w = {.in = in, .n = n, .fn = fn, .arg = arg, .out = out};
    w.sep_open = open;
    w.sep_close = close;
    css_lex_init(&w.lx, in, n);
    /* Room for the input and a few additions up front: most stylesheets need no realloc. */
    int r = css_rw_buf_reserve(out, n + n / 16 + 64);
    if (r == 0)
        r = rewrite(&w);
    if (r == 0 && out->data)
        out->data[out->len] = '\0';
    free(w.stack);
    free(w.segs);
    free(w.hovs);
    free(w.tab);
    css_buf_free(&w.tmp);
    return r;
}

int css_rewrite(const char *in, size_t n, css_url_fn fn, void *arg, struct css_buf *out)
{
    return css_rewrite_marked(in, n, fn, arg, ", ", "", out);
}
