/* CSS Syntax Level 3 tokenizer over raw bytes (css_tok.h). Section numbers below are those of
 * https://www.w3.org/TR/css-syntax-3/. No recursion, no allocation: one switch per token and
 * loops over bytes, so the cost is linear in the input whatever it holds. */
#include "core/proxy/css_tok.h"

/* The byte at i, or -1 past the end: the spec's "EOF code point" as a value. */
static int at(const struct css_lexer *lx, size_t i)
{
    return i < lx->n ? (unsigned char)lx->s[i] : -1;
}

/* Character classes, one table lookup per byte in the hot loops (names, whitespace). NUL stands
 * for U+FFFD (4.2 preprocessing) and every byte >= 0x80 for a non-ASCII code point: both are
 * "ident-start code points" (4.2). */
enum { C_WS = 1, C_NL = 2, C_DIGIT = 4, C_HEX = 8, C_START = 16, C_NAME = 32 };
#define CL(c)                                                                                      \
    (((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || (c) == '\f' ? C_WS : 0) |         \
     ((c) == '\n' || (c) == '\r' || (c) == '\f' ? C_NL : 0) |                                      \
     ((c) >= '0' && (c) <= '9' ? C_DIGIT | C_HEX | C_NAME : 0) |                                   \
     (((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F') ? C_HEX : 0) |                      \
     (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || (c) == '_' || (c) >= 0x80 ||     \
              (c) == 0                                                                             \
          ? C_START | C_NAME                                                                       \
          : 0) |                                                                                   \
     ((c) == '-' ? C_NAME : 0))
#define R4(b)  CL(b), CL((b) + 1), CL((b) + 2), CL((b) + 3)
#define R16(b) R4(b), R4((b) + 4), R4((b) + 8), R4((b) + 12)
#define R64(b) R16(b), R16((b) + 16), R16((b) + 32), R16((b) + 48)
static const unsigned char cls[256] = {R64(0), R64(64), R64(128), R64(192)};

/* Class bits of the byte at i, none past the end. */
static unsigned cl(const struct css_lexer *lx, size_t i)
{
    return i < lx->n ? cls[(unsigned char)lx->s[i]] : 0;
}

static bool is_newline(int c)
{
    return c >= 0 && (cls[c] & C_NL);
}

static bool is_ws(int c)
{
    return c >= 0 && (cls[c] & C_WS);
}

static bool is_digit(int c)
{
    return c >= 0 && (cls[c] & C_DIGIT);
}

static bool is_hex(int c)
{
    return c >= 0 && (cls[c] & C_HEX);
}

static bool is_name_start(int c)
{
    return c >= 0 && (cls[c] & C_START);
}

static bool is_name(int c)
{
    return c >= 0 && (cls[c] & C_NAME);
}

/* 4.3.8: a backslash not followed by a newline (end of input included, as the spec says). */
static bool valid_escape(const struct css_lexer *lx, size_t i)
{
    return at(lx, i) == '\\' && !is_newline(at(lx, i + 1));
}

/* 4.3.9 */
static bool starts_ident(const struct css_lexer *lx, size_t i)
{
    int c = at(lx, i);
    if (c == '-') {
        int d = at(lx, i + 1);
        return is_name_start(d) || d == '-' || valid_escape(lx, i + 1);
    }
    if (c == '\\')
        return valid_escape(lx, i);
    return c >= 0 && is_name_start(c);
}

/* 4.3.10 */
static bool starts_number(const struct css_lexer *lx, size_t i)
{
    int c = at(lx, i);
    if (c == '+' || c == '-') {
        int d = at(lx, i + 1);
        return is_digit(d) || (d == '.' && is_digit(at(lx, i + 2)));
    }
    if (c == '.')
        return is_digit(at(lx, i + 1));
    return is_digit(c);
}

/* One newline, CR LF counting as one (4.2). */
static size_t skip_newline(const struct css_lexer *lx, size_t i)
{
    return at(lx, i) == '\r' && at(lx, i + 1) == '\n' ? i + 2 : i + 1;
}

size_t css_tok_escape(const char *s, size_t n, size_t i, unsigned long *cp)
{
    struct css_lexer lx = {s, n, 0};
    i++; /* the backslash */
    int c = at(&lx, i);
    if (c < 0) {
        *cp = 0xfffd;
        return i;
    }
    if (!is_hex(c)) {
        *cp = (unsigned long)c;
        return i + 1;
    }
    unsigned long v = 0;
    for (int k = 0; k < 6 && is_hex(at(&lx, i)); k++, i++) {
        int h = at(&lx, i);
        v = v * 16 + (unsigned long)(is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
    }
    if (is_ws(at(&lx, i)))
        i = skip_newline(&lx, i);
    *cp = (v == 0 || (v >= 0xd800 && v <= 0xdfff) || v > 0x10ffff) ? 0xfffd : v;
    return i;
}

/* 4.3.11: the longest run of name code points and escapes from i; returns its end. */
static size_t consume_name(const struct css_lexer *lx, size_t i)
{
    unsigned long cp;
    for (;;) {
        while (cl(lx, i) & C_NAME)
            i++;
        if (!valid_escape(lx, i))
            return i;
        i = css_tok_escape(lx->s, lx->n, i, &cp);
    }
}

/* 4.3.12 */
static size_t consume_number(const struct css_lexer *lx, size_t i)
{
    if (at(lx, i) == '+' || at(lx, i) == '-')
        i++;
    while (is_digit(at(lx, i)))
        i++;
    if (at(lx, i) == '.' && is_digit(at(lx, i + 1)))
        for (i++; is_digit(at(lx, i));)
            i++;
    int e = at(lx, i);
    if (e == 'e' || e == 'E') {
        int d = at(lx, i + 1);
        if (is_digit(d) || ((d == '+' || d == '-') && is_digit(at(lx, i + 2))))
            for (i += 2; is_digit(at(lx, i));)
                i++;
    }
    return i;
}

/* 4.3.3 */
static enum css_tok_kind consume_numeric(struct css_lexer *lx, struct css_tok *t)
{
    size_t i = consume_number(lx, lx->pos);
    enum css_tok_kind k = CSS_TOK_NUMBER;
    if (starts_ident(lx, i)) {
        i = consume_name(lx, i);
        k = CSS_TOK_DIMENSION;
    } else if (at(lx, i) == '%') {
        i++;
        k = CSS_TOK_PERCENTAGE;
    }
    lx->pos = i;
    return t->kind = k;
}

/* 4.3.5: from the opening quote. */
static enum css_tok_kind consume_string(struct css_lexer *lx, struct css_tok *t)
{
    int quote = at(lx, lx->pos);
    size_t i = lx->pos + 1;
    unsigned long cp;
    for (;;) {
        int c = at(lx, i);
        if (c == quote) {
            t->flags = CSS_TOKF_CLOSED;
            i++;
            break;
        }
        if (c < 0)
            break;
        if (is_newline(c)) {
            lx->pos = i;
            return t->kind = CSS_TOK_BAD_STRING;
        }
        if (c != '\\')
            i++;
        else if (at(lx, i + 1) < 0)
            i++;
        else if (is_newline(at(lx, i + 1)))
            i = skip_newline(lx, i + 1);
        else
            i = css_tok_escape(lx->s, lx->n, i, &cp);
    }
    lx->pos = i;
    return t->kind = CSS_TOK_STRING;
}

/* 4.3.14: the rest of a bad url, up to and including ")" (escapes skipped as units). */
static size_t bad_url_remnants(const struct css_lexer *lx, size_t i)
{
    unsigned long cp;
    for (;;) {
        int c = at(lx, i);
        if (c < 0)
            return i;
        if (c == ')')
            return i + 1;
        i = valid_escape(lx, i) ? css_tok_escape(lx->s, lx->n, i, &cp) : i + 1;
    }
}

/* 4.3.6: from just after "url(", unquoted. NUL is U+FFFD there (printable). */
static enum css_tok_kind consume_url(struct css_lexer *lx, struct css_tok *t, size_t i)
{
    unsigned long cp;
    while (is_ws(at(lx, i)))
        i++;
    for (;;) {
        int c = at(lx, i);
        if (c < 0)
            break;
        if (c == ')') {
            t->flags = CSS_TOKF_CLOSED;
            i++;
            break;
        }
        if (is_ws(c)) {
            while (is_ws(at(lx, i)))
                i++;
            if (at(lx, i) == ')' || at(lx, i) < 0)
                continue;
            lx->pos = bad_url_remnants(lx, i);
            return t->kind = CSS_TOK_BAD_URL;
        }
        bool nonprint = (c >= 1 && c <= 8) || c == 0x0b || (c >= 0x0e && c <= 0x1f) || c == 0x7f;
        if (c == '"' || c == '\'' || c == '(' || nonprint || (c == '\\' && !valid_escape(lx, i))) {
            lx->pos = bad_url_remnants(lx, i);
            return t->kind = CSS_TOK_BAD_URL;
        }
        i = c == '\\' ? css_tok_escape(lx->s, lx->n, i, &cp) : i + 1;
    }
    lx->pos = i;
    return t->kind = CSS_TOK_URL;
}

/* 4.3.4. A quoted url( is a function token ending at "("; the whitespace before the quote comes
 * next as its own token (the spec folds it into the function token: the same bytes). */
static enum css_tok_kind consume_ident_like(struct css_lexer *lx, struct css_tok *t)
{
    size_t start = lx->pos, i = consume_name(lx, lx->pos);
    if (at(lx, i) != '(') {
        lx->pos = i;
        return t->kind = CSS_TOK_IDENT;
    }
    i++;
    if (css_tok_name_is(lx->s, start, i - 1, "url")) {
        size_t j = i;
        while (is_ws(at(lx, j)))
            j++;
        if (at(lx, j) != '"' && at(lx, j) != '\'')
            return consume_url(lx, t, i);
    }
    lx->pos = i;
    return t->kind = CSS_TOK_FUNCTION;
}

static enum css_tok_kind single(struct css_lexer *lx, struct css_tok *t, enum css_tok_kind k)
{
    lx->pos++;
    return t->kind = k;
}

/* Comments, whitespace and the tokens that start with punctuation (4.3.1). */
static enum css_tok_kind consume_punct(struct css_lexer *lx, struct css_tok *t, int c)
{
    size_t i = lx->pos;
    switch (c) {
    case '/':
        if (at(lx, i + 1) != '*')
            return single(lx, t, CSS_TOK_DELIM);
        for (i += 2; i < lx->n && !(lx->s[i] == '*' && at(lx, i + 1) == '/');)
            i++;
        lx->pos = i < lx->n ? i + 2 : lx->n;
        return t->kind = CSS_TOK_COMMENT;
    case '#':
        if (at(lx, i + 1) >= 0 && (is_name(at(lx, i + 1)) || valid_escape(lx, i + 1))) {
            lx->pos = consume_name(lx, i + 1);
            return t->kind = CSS_TOK_HASH;
        }
        return single(lx, t, CSS_TOK_DELIM);
    case '+':
    case '.':
        return starts_number(lx, i) ? consume_numeric(lx, t) : single(lx, t, CSS_TOK_DELIM);
    case '-':
        if (starts_number(lx, i))
            return consume_numeric(lx, t);
        if (at(lx, i + 1) == '-' && at(lx, i + 2) == '>') {
            lx->pos = i + 3;
            return t->kind = CSS_TOK_CDC;
        }
        return starts_ident(lx, i) ? consume_ident_like(lx, t) : single(lx, t, CSS_TOK_DELIM);
    case '<':
        if (at(lx, i + 1) == '!' && at(lx, i + 2) == '-' && at(lx, i + 3) == '-') {
            lx->pos = i + 4;
            return t->kind = CSS_TOK_CDO;
        }
        return single(lx, t, CSS_TOK_DELIM);
    case '@':
        if (starts_ident(lx, i + 1)) {
            lx->pos = consume_name(lx, i + 1);
            return t->kind = CSS_TOK_AT_KEYWORD;
        }
        return single(lx, t, CSS_TOK_DELIM);
    case '\\':
        return valid_escape(lx, i) ? consume_ident_like(lx, t) : single(lx, t, CSS_TOK_DELIM);
    case '"':
    case '\'':
        return consume_string(lx, t);
    case '(':
        return single(lx, t, CSS_TOK_LPAREN);
    case ')':
        return single(lx, t, CSS_TOK_RPAREN);
    case ',':
        return single(lx, t, CSS_TOK_COMMA);
    case ':':
        return single(lx, t, CSS_TOK_COLON);
    case ';':
        return single(lx, t, CSS_TOK_SEMICOLON);
    case '[':
        return single(lx, t, CSS_TOK_LBRACKET);
    case ']':
        return single(lx, t, CSS_TOK_RBRACKET);
    case '{':
        return single(lx, t, CSS_TOK_LBRACE);
    case '}':
        return single(lx, t, CSS_TOK_RBRACE);
    default:
        return single(lx, t, CSS_TOK_DELIM);
    }
}

void css_lex_init(struct css_lexer *lx, const char *s, size_t n)
{
    lx->s = s;
    lx->n = n;
    lx->pos = 0;
}

/* The tokens of one punctuation byte. */
static const unsigned char single_kind[256] = {
    ['('] = CSS_TOK_LPAREN,   [')'] = CSS_TOK_RPAREN,    [','] = CSS_TOK_COMMA,
    [':'] = CSS_TOK_COLON,    [';'] = CSS_TOK_SEMICOLON, ['['] = CSS_TOK_LBRACKET,
    [']'] = CSS_TOK_RBRACKET, ['{'] = CSS_TOK_LBRACE,    ['}'] = CSS_TOK_RBRACE,
};

/* The common ident and function tokens without escapes, in the caller's frame (they are most of
 * a stylesheet's tokens); anything else goes to consume_ident_like. */
static enum css_tok_kind fast_ident(struct css_lexer *lx, struct css_tok *t)
{
    const unsigned char *s = (const unsigned char *)lx->s;
    size_t i = lx->pos + 1, n = lx->n;
    if (s[lx->pos] == 'u' || s[lx->pos] == 'U')
        return consume_ident_like(lx, t); /* maybe url( */
    while (i < n && (cls[s[i]] & C_NAME))
        i++;
    if (i < n && s[i] == '\\')
        return consume_ident_like(lx, t);
    if (i < n && s[i] == '(') {
        lx->pos = i + 1;
        return t->kind = CSS_TOK_FUNCTION;
    }
    lx->pos = i;
    return t->kind = CSS_TOK_IDENT;
}

enum css_tok_kind css_lex_next(struct css_lexer *lx, struct css_tok *t)
{
    size_t i = lx->pos;
    enum css_tok_kind k;
    t->start = i;
    t->flags = 0;
    if (i >= lx->n) {
        t->end = i;
        return t->kind = CSS_TOK_EOF;
    }
    unsigned char c = (unsigned char)lx->s[i];
    unsigned cc = cls[c];
    if (cc & C_START && c != '\\') {
        k = fast_ident(lx, t);
    } else if (single_kind[c]) {
        lx->pos = i + 1;
        k = t->kind = (enum css_tok_kind)single_kind[c];
    } else if (cc & C_WS) {
        const unsigned char *s = (const unsigned char *)lx->s;
        for (i++; i < lx->n && (cls[s[i]] & C_WS);)
            i++;
        lx->pos = i;
        k = t->kind = CSS_TOK_WS;
    } else if (cc & C_DIGIT) {
        k = consume_numeric(lx, t);
    } else {
        k = consume_punct(lx, t, c);
    }
    t->end = lx->pos;
    return k;
}

bool css_tok_name_is(const char *s, size_t start, size_t end, const char *lit)
{
    size_t i = start;
    for (; *lit; lit++) {
        if (i >= end)
            return false;
        unsigned long cp = (unsigned char)s[i];
        if (cp == '\\')
            i = css_tok_escape(s, end, i, &cp);
        else
            i++;
        if (cp >= 'A' && cp <= 'Z')
            cp |= 0x20;
        if (cp != (unsigned char)*lit)
            return false;
    }
    return i == end;
}
