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
 * sanitizer build and the fuzzer) run both and abort when they disagree. */
#include "core/proxy/css.h"
#include "core/proxy/css_tok.h"

#include <ctype.h>
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

void css_buf_free(struct css_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(struct css_buf *b, size_t extra)
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

static int buf_add(struct css_buf *b, const char *s, size_t len)
{
    if (buf_reserve(b, len) < 0)
        return -1;
    memcpy(b->data + b->len, s, len);
    b->len += len;
    return 0;
}

static int emit_until(struct rw *w, size_t p)
{
    if (p <= w->copied)
        return 0;
    int r = buf_add(w->out, w->in + w->copied, p - w->copied);
    w->copied = p;
    return r;
}

/* Grows an array of elem-sized items so that index `need` fits. */
static int grow(void **arr, size_t *cap, size_t need, size_t elem)
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

static int push_at(struct rw *w, size_t d, unsigned char f)
{
    if (grow((void **)&w->stack, &w->stack_cap, d, 1) < 0)
        return -1;
    w->stack[d] = f;
    return 0;
}

static enum css_tok_kind next_sig(struct css_lexer *lx, struct css_tok *t)
{
    while (css_lex_next(lx, t) == CSS_TOK_WS || t->kind == CSS_TOK_COMMENT)
        ;
    return t->kind;
}

static bool is_url_function(const struct rw *w, const struct css_tok *t)
{
    if (t->kind != CSS_TOK_FUNCTION || t->end - t->start < 4)
        return false;
    char c = w->in[t->start]; /* most functions are not url(: skip the decoding for them */
    return (c == 'u' || c == 'U' || c == '\\') &&
           css_tok_name_is(w->in, t->start, t->end - 1, "url");
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
    if (buf_reserve(b, 3 * (end - start)) < 0)
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
    if (buf_reserve(b, 3 * n + 7) < 0)
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
        r = emit_until(w, rs);
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
    if (is_url_function(w, &t))
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
        else if (is_url_function(w, &t))
            r = url_function(w, &lx, &t, CSS_URL_ASSET);
    }
    return r;
}

/* ---- Scanning a construct ahead ---- */

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
            if (push_at(w, d++,
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
            if (i + 1 < n && in[i + 1] == '*') {
                const unsigned char *e = memmem(in + i + 2, n - i - 2, "*/", 2);
                i = e ? (size_t)(e - in) + 2 : n;
            } else {
                i++;
            }
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
            if (t.kind == CSS_TOK_FUNCTION && push_at(w, d++, CSS_TOK_LPAREN) < 0)
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
            if (push_at(w, d++, c == '(' ? CSS_TOK_LPAREN : CSS_TOK_LBRACKET) < 0)
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
            if (i + 1 < n && in[i + 1] == '*') {
                const unsigned char *e = memmem(in + i + 2, n - i - 2, "*/", 2);
                i = e ? (size_t)(e - in) + 2 : n;
            } else {
                i++;
            }
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
    if (open && push_at(w, st->d++, open) < 0)
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
        r->has_url = r->has_url || is_url_function(w, t);
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
static int scan(struct rw *w, const struct css_tok *first, enum scan_mode mode, struct scan *s)
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

/* ---- :hover in a selector list ---- */

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
            if (grow((void **)&w->hovs, &w->hovs_cap, w->nhovs, sizeof *w->hovs) < 0)
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
                if (grow((void **)&w->segs, &w->segs_cap, w->nsegs, sizeof *w->segs) < 0)
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

/* Appends the copy of segment i (each :hover written .\:hover) unless the list, or a copy made
 * before, already holds it. */
static int add_copy(struct rw *w, size_t i)
{
    struct css_buf *o = w->out;
    struct seg *sg = &w->segs[i];
    size_t mark = o->len, at = sg->start;
    if (buf_add(o, w->sep_open, strlen(w->sep_open)) < 0)
        return -1;
    size_t cs = o->len;
    for (size_t h = sg->hov; h < sg->hov + sg->nhov; h++) {
        if (buf_add(o, w->in + at, w->hovs[h].start - at) < 0 || buf_add(o, ".\\:hover", 8) < 0)
            return -1;
        at = w->hovs[h].end;
    }
    if (buf_add(o, w->in + at, sg->end - at) < 0)
        return -1;
    sg->copy = cs;
    sg->copy_len = o->len - cs;
    if (seen_or_add(w, o->data + cs, sg->copy_len, 2 * i + 1)) {
        o->len = mark;
        sg->copy_len = 0;
        return 0;
    }
    return buf_add(o, w->sep_close, strlen(w->sep_close));
}

/* The selector list in[ps, last_sig): the copies go right after its last token. */
static int rewrite_hover(struct rw *w, size_t ps, size_t last_sig)
{
    long found = find_hovers(w, ps, last_sig);
    if (found <= 0)
        return (int)found;
    if (emit_until(w, last_sig) < 0)
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
    if (push_at(w, w->depth, (unsigned char)f) < 0)
        return -1;
    w->depth++;
    return 0;
}

static int at_rule(struct rw *w, const struct css_tok *t)
{
    struct scan s;
    if (css_tok_name_is(w->in, t->start + 1, t->end, "import") && import_target(w) < 0)
        return -1;
    if (scan(w, t, SCAN_AT, &s) < 0)
        return -1;
    w->lx.pos = s.end;
    return s.stop == STOP_END ? 0 : push(w, at_rule_frame(w, t));
}

/* A qualified rule or (inside a block) a declaration, from its first token t. */
static int rule_or_declaration(struct rw *w, const struct css_tok *t, bool nested)
{
    struct scan s;
    if (scan(w, t, nested ? SCAN_CONSTRUCT : SCAN_TOP_RULE, &s) < 0)
        return -1;
    int r = 0;
    if (s.stop == STOP_BLOCK && s.maybe_hover && !s.bad)
        r = rewrite_hover(w, t->start, s.last_sig);
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
        if (is_url_function(w, t) && url_function(w, &w->lx, t, CSS_URL_ASSET) < 0)
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
    return emit_until(w, w->n);
}

int css_rewrite_marked(const char *in, size_t n, css_url_fn fn, void *arg, const char *open,
                       const char *close, struct css_buf *out)
{
    struct rw w = {.in = in, .n = n, .fn = fn, .arg = arg, .out = out};
    w.sep_open = open;
    w.sep_close = close;
    css_lex_init(&w.lx, in, n);
    /* Room for the input and a few additions up front: most stylesheets need no realloc. */
    int r = buf_reserve(out, n + n / 16 + 64);
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
