/* The CSS rewriter's scan ahead of one construct (css_internal.h: css_rw_scan): where an at-rule's
 * prelude, a qualified rule's selector list or a declaration ends, and what the rewriter must read
 * again (a url, a :hover). The byte-level fast paths (fast_value, fast_prelude) answer the common
 * cases and hand anything unusual to the token-by-token scan; builds with CSS_REWRITE_CROSSCHECK
 * (the sanitizer build and the fuzzer) run both and abort when they disagree. Uses the rewriter's
 * stack (struct rw) above the open blocks as scratch for brackets. Threading: no state; runs on
 * the thread of the css_rewrite call that owns the struct rw. */
#include "core/proxy/css_internal.h"
#include "core/proxy/css_tok.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Bytes a declaration's value skips without tokenizing, and name bytes (4.2: letters, digits,
 * "-", "_", NUL and non-ASCII), which decide whether a "u" may start a url token. */
enum { B_SPECIAL = 1, B_NAME = 2 };
#define BC(c)                                                                                      \
    (((c) == ';' || (c) == '{' || (c) == '}' || (c) == '(' || (c) == ')' || (c) == '[' ||          \
              (c) == ']' || (c) == '"' || (c) == '\'' || (c) == '/' || (c) == '\\' ||              \
              (c) == 'u' || (c) == 'U' || (c) == ':' || (c) == '<' || (c) == '>'                   \
          ? B_SPECIAL                                                                              \
          : 0) |                                                                                   \
     (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9') ||    \
              (c) == '-' || (c) == '_' || (c) == 0 || (c) >= 0x80                                  \
          ? B_NAME                                                                                 \
          : 0))
#define BC4(b)  BC(b), BC((b) + 1), BC((b) + 2), BC((b) + 3)
#define BC16(b) BC4(b), BC4((b) + 4), BC4((b) + 8), BC4((b) + 12)
#define BC64(b) BC16(b), BC16((b) + 16), BC16((b) + 32), BC16((b) + 48)
static const unsigned char byte_class[256] = {BC64(0), BC64(64), BC64(128), BC64(192)};

/* A quoted string from its quote at i, as the tokenizer ends it (4.3.5): after the closing
 * quote, before a newline, or at the end. A backslash and a newline (CR LF too) continue the
 * line; a hex escape takes one whitespace after it, a newline included. */
static size_t skip_string(const unsigned char *in, size_t n, size_t i)
{
    unsigned char q = in[i++];
    unsigned long cp;
    while (i < n && in[i] != q) {
        if (in[i] == '\n' || in[i] == '\r' || in[i] == '\f')
            return i;
        if (in[i] != '\\' || i + 1 == n)
            i++;
        else if (in[i + 1] == '\r' && i + 2 < n && in[i + 2] == '\n')
            i += 3;
        else if (isxdigit(in[i + 1]))
            i = css_tok_escape((const char *)in, n, i, &cp);
        else
            i += 2;
    }
    return i < n ? i + 1 : n;
}

/* Past a comment that starts at i (to its end, or to n when unclosed), or past a lone slash. */
static size_t skip_slash(const unsigned char *in, size_t n, size_t i)
{
    if (i + 1 < n && in[i + 1] == '*') {
        const unsigned char *e = memmem(in + i + 2, n - i - 2, "*/", 2);
        return e ? (size_t)(e - in) + 2 : n;
    }
    return i + 1;
}

/* The rest of a declaration's value from i, byte by byte instead of token by token: most of a
 * stylesheet's bytes are values, and all a value needs is where it ends (";" or "}" outside
 * brackets, strings, comments and url tokens) and whether it holds a url. Returns 1 with *s
 * filled, 0 when the tokenizer must decide (a backslash outside strings, which may spell
 * url( or hide a ";", or a {} block outside a custom property, which may make this a nested
 * rule), -1 when out of memory. */
static int fast_value(struct rw *w, size_t i, size_t base, bool custom, struct scan *s)
{
    const unsigned char *in = (const unsigned char *)w->in;
    size_t n = w->n, d = base;
    bool has_url = false;
    struct css_tok t;
    while (i < n) {
        unsigned char c = in[i];
        if (!(byte_class[c] & B_SPECIAL)) {
            i++;
            continue;
        }
        switch (c) {
        case ';':
        case '}':
            if (d == base) {
                *s = (struct scan){.stop = STOP_END,
                                   .decl = true,
                                   .has_url = has_url,
                                   .end = c == ';' ? i + 1 : i};
                return 1;
            }
            d -= c == '}' && w->stack[d - 1] == CSS_TOK_LBRACE;
            i++;
            break;
        case '{':
            if (d == base && !custom)
                return 0; /* a custom property's value may hold {} blocks */
            /* fall through */
        case '(':
        case '[':
            if (css_rw_push_at(w, d++,
                               c == '{'   ? CSS_TOK_LBRACE
                               : c == '(' ? CSS_TOK_LPAREN
                                          : CSS_TOK_LBRACKET) < 0)
                return -1;
            i++;
            break;
        case ')':
        case ']':
            d -= d > base && w->stack[d - 1] == (c == ')' ? CSS_TOK_LPAREN : CSS_TOK_LBRACKET);
            i++;
            break;
        case '"':
        case '\'':
            i = skip_string(in, n, i);
            break;
        case '/':
            i = skip_slash(in, n, i);
            break;
        case '\\':
            return 0;
        case ':':
        case '<':
        case '>': /* special to fast_prelude only */
            i++;
            break;
        default: /* "u" or "U": url( when it starts an ident */
            if (n - i < 4 ||
                (i > 0 && ((byte_class[in[i - 1]] & B_NAME) || in[i - 1] == '#' ||
                           in[i - 1] == '@')) || /* the rest of a name, a hash, an at-keyword */
                (in[i + 1] | 0x20) != 'r' ||
                (in[i + 2] | 0x20) != 'l' || in[i + 3] != '(') {
                i++;
                break;
            }
            struct css_lexer lx = {w->in, n, i};
            css_lex_next(&lx, &t); /* a url token, a bad url or url( before a string */
            has_url = has_url || t.kind != CSS_TOK_BAD_URL;
            if (t.kind == CSS_TOK_FUNCTION && css_rw_push_at(w, d++, CSS_TOK_LPAREN) < 0)
                return -1;
            i = t.end;
            break;
        }
    }
    *s = (struct scan){.stop = STOP_END, .decl = true, .has_url = has_url, .end = n};
    return 1;
}

/* Whether the colon at in[i] starts ":hover" as the tokenizer would see it: the ident hover
 * (any case), not the start of a longer name or of a function. */
static bool hover_at(const unsigned char *in, size_t n, size_t i)
{
    if (i + 6 >= n)
        return false;
    for (int k = 0; k < 5; k++) /* ASCII letters only: "| 0x20" folds case and nothing else */
        if ((in[i + 1 + k] | 0x20) != (unsigned char)"hover"[k])
            return false;
    unsigned char next = in[i + 6];
    return !(byte_class[next] & B_NAME) && next != '(' && next != '\\';
}

/* A selector list from i to its "{", byte by byte like fast_value. Returns 1 with *s filled,
 * 0 when the tokenizer must decide (anything that makes the list invalid or unusual: a
 * backslash, a bad string, a url, ";", "}" or unmatched brackets outside strings, a comment
 * right after a colon or before the "{", CDO/CDC), -1 when out of memory. */
static int fast_prelude(struct rw *w, size_t i, size_t base, struct scan *s)
{
    const unsigned char *in = (const unsigned char *)w->in;
    size_t n = w->n, d = base, start = i;
    bool hover = false;
    while (i < n) {
        unsigned char c = in[i];
        if (!(byte_class[c] & B_SPECIAL)) {
            i++;
            continue;
        }
        switch (c) {
        case '{': {
            if (d != base || i == start)
                return 0;
            size_t e = i;
            while (e > 0 && strchr(" \t\n\r\f", in[e - 1]) && in[e - 1])
                e--;
            if (e >= 2 && in[e - 1] == '/' && in[e - 2] == '*')
                return 0;
            *s = (struct scan){
                .stop = STOP_BLOCK, .maybe_hover = hover, .end = i + 1, .last_sig = e};
            return 1;
        }
        case '(':
        case '[':
            if (css_rw_push_at(w, d++, c == '(' ? CSS_TOK_LPAREN : CSS_TOK_LBRACKET) < 0)
                return -1;
            i++;
            break;
        case ')':
        case ']':
            if (d == base || w->stack[d - 1] != (c == ')' ? CSS_TOK_LPAREN : CSS_TOK_LBRACKET))
                return 0;
            d--;
            i++;
            break;
        case '"':
        case '\'':
            i = skip_string(in, n, i);
            if (i < n && strchr("\n\r\f", in[i]) && in[i])
                return 0; /* a bad string */
            break;
        case '/':
            i = skip_slash(in, n, i);
            break;
        case ':':
            if (i + 1 < n && in[i + 1] == '/')
                return 0;
            hover = hover || hover_at(in, n, i);
            i++;
            break;
        case '>':
            if (i >= 2 && in[i - 1] == '-' && in[i - 2] == '-')
                return 0;
            i++;
            break;
        case 'u':
        case 'U':
            if (n - i >= 4 && !(i > 0 && (byte_class[in[i - 1]] & B_NAME)) &&
                (in[i + 1] | 0x20) == 'r' && (in[i + 2] | 0x20) == 'l' && in[i + 3] == '(')
                return 0;
            i++;
            break;
        default: /* ";" "}" "\\" "<" */
            return 0;
        }
    }
    return 0;
}

/* The token-by-token scan's state: the result under construction plus what the next token's
 * meaning depends on. */
struct scan_state {
    struct css_lexer lx;
    size_t base, d; /* the stack's depth when the construct began, and now */
    enum { DS_NAME, DS_VALUE, DS_NONE } ds; /* `name : value` so far */
    bool custom, value_seen, nested, top_rule;
    enum css_tok_kind prev; /* the last token but comments */
    struct scan r;
};

/* Moves the bracket stack for a token: opens push, a matching closer pops, another is stray. */
static int scan_brackets(struct rw *w, struct scan_state *st, enum css_tok_kind k)
{
    unsigned char open = k == CSS_TOK_FUNCTION ? CSS_TOK_LPAREN : 0, close = 0;
    if (k == CSS_TOK_LPAREN || k == CSS_TOK_LBRACKET || k == CSS_TOK_LBRACE)
        open = (unsigned char)k;
    else if (k == CSS_TOK_RPAREN || k == CSS_TOK_RBRACKET || k == CSS_TOK_RBRACE)
        close = k == CSS_TOK_RPAREN     ? CSS_TOK_LPAREN
                : k == CSS_TOK_RBRACKET ? CSS_TOK_LBRACKET
                                        : CSS_TOK_LBRACE;
    if (open && css_rw_push_at(w, st->d++, open) < 0)
        return -1;
    if (close && st->d > st->base && w->stack[st->d - 1] == close)
        st->d--;
    else if (close)
        st->r.bad = true;
    return 0;
}

/* One significant token: returns 1 when it ends the construct (st->r.end and stop set), 0 to go
 * on, -1 when out of memory. */
static int scan_token(struct rw *w, struct scan_state *st, const struct css_tok *t)
{
    struct scan *r = &st->r;
    bool base = st->d == st->base;
    switch (t->kind) {
    case CSS_TOK_EOF:
        r->end = t->start;
        return 1;
    case CSS_TOK_IDENT:
        if (st->prev == CSS_TOK_COLON && t->end - t->start >= 5 &&
            css_tok_name_is(w->in, t->start, t->end, "hover"))
            r->maybe_hover = true;
        break;
    case CSS_TOK_FUNCTION:
        r->has_url = r->has_url || css_rw_is_url_function(w, t);
        break;
    case CSS_TOK_URL:
        r->has_url = true;
        break;
    case CSS_TOK_LBRACE:
        if (base && !(st->custom && st->ds == DS_VALUE)) {
            r->end = t->end;
            r->stop = st->ds == DS_VALUE && !st->value_seen ? STOP_OPAQUE : STOP_BLOCK;
            return 1;
        }
        r->bad = true; /* a {} block inside a prelude */
        break;
    case CSS_TOK_RBRACE:
        if (base && st->nested) {
            r->end = t->start;
            return 1;
        }
        r->bad = true;
        break;
    case CSS_TOK_SEMICOLON:
        if (base && !st->top_rule) {
            r->end = t->end;
            return 1;
        }
        r->bad = true;
        break;
    case CSS_TOK_BAD_STRING:
    case CSS_TOK_BAD_URL:
    case CSS_TOK_CDO:
    case CSS_TOK_CDC:
        r->bad = true;
        break;
    case CSS_TOK_DELIM: /* a lone "\" would escape what an insertion puts after it */
        r->bad = r->bad || w->in[t->start] == '\\';
        break;
    default:
        break;
    }
    return scan_brackets(w, st, t->kind);
}

/* The token-by-token scan from *first. When the construct turns out to be a declaration, the
 * rest of its value goes to fast_value; *fast_used says whether that answered (then *s is its
 * answer), except in the fuzzer's CSS_REWRITE_CROSSCHECK build, which scans on and compares. */
static int scan_tokens(struct rw *w, const struct css_tok *first, enum scan_mode mode,
                       struct scan *s)
{
    struct css_tok t = *first;
    struct scan_state st = {.lx = w->lx, .base = w->depth, .d = w->depth, .prev = CSS_TOK_WS};
    st.ds = mode == SCAN_CONSTRUCT && t.kind == CSS_TOK_IDENT ? DS_NAME : DS_NONE;
    st.custom = st.ds == DS_NAME && t.end - t.start >= 2 && !memcmp(w->in + t.start, "--", 2);
    st.nested = mode != SCAN_TOP_RULE && (mode != SCAN_AT || w->depth > 0);
    st.top_rule = mode == SCAN_TOP_RULE;
    struct scan fast;
    int r = 0, have_fast = 0;
    for (;; css_lex_next(&st.lx, &t)) {
        if (t.kind == CSS_TOK_WS || t.kind == CSS_TOK_COMMENT) {
            st.prev = t.kind == CSS_TOK_WS ? t.kind : st.prev;
            continue;
        }
        if ((r = scan_token(w, &st, &t)) != 0)
            break;
        if (st.ds == DS_VALUE) {
            st.value_seen = true;
        } else if (st.ds == DS_NAME && t.start != first->start) {
            st.ds = t.kind == CSS_TOK_COLON ? DS_VALUE : DS_NONE;
            if (st.ds == DS_VALUE &&
                (have_fast = fast_value(w, st.lx.pos, st.d, st.custom, &fast)) < 0)
                return -1;
#ifndef CSS_REWRITE_CROSSCHECK
            if (have_fast) {
                *s = fast;
                return 0;
            }
#endif
        }
        st.prev = t.kind;
        st.r.last_sig = t.end;
    }
    if (r < 0)
        return -1;
    st.r.decl = st.r.stop == STOP_END && st.ds == DS_VALUE;
#ifdef CSS_REWRITE_CROSSCHECK
    if (have_fast &&
        (fast.end != st.r.end || fast.stop != st.r.stop || fast.has_url != st.r.has_url))
        abort();
#endif
    *s = st.r;
    return 0;
}

/* Scans from token *first (already consumed from w->lx) to the construct's end. Leaves w->lx
 * alone. A selector list goes to fast_prelude first; whatever it declines, the tokens decide. */
int css_rw_scan(struct rw *w, const struct css_tok *first, enum scan_mode mode, struct scan *s)
{
    struct scan fast;
    int have_fast = 0;
    bool name_first = mode == SCAN_CONSTRUCT && first->kind == CSS_TOK_IDENT;
    if (!name_first && mode != SCAN_AT &&
        (have_fast = fast_prelude(w, first->start, w->depth, &fast)) < 0)
        return -1;
#ifndef CSS_REWRITE_CROSSCHECK
    if (have_fast) {
        *s = fast;
        return 0;
    }
#endif
    if (scan_tokens(w, first, mode, s) < 0)
        return -1;
#ifdef CSS_REWRITE_CROSSCHECK /* the fuzzer's build: the fast path must agree with the tokens */
    if (have_fast && (s->stop != fast.stop || s->end != fast.end || s->bad ||
                      s->maybe_hover != fast.maybe_hover || s->last_sig != fast.last_sig))
        abort();
#endif
    return 0;
}
