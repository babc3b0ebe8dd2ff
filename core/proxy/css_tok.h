/* The CSS tokenizer of the stylesheet proxy: CSS Syntax Level 3, section 4 ("Tokenization"),
 * https://www.w3.org/TR/css-syntax-3/#tokenization, over raw bytes.
 *
 * It returns each token's kind and byte range in the input and never allocates. The spec's
 * preprocessing is applied on the fly rather than to a copy: CR, FF and CR LF count as a newline,
 * NUL and every byte >= 0x80 (UTF-8, valid or not) count as non-ASCII code points (so as ident
 * code points). Comments, which the spec drops, are returned as CSS_TOK_COMMENT tokens so that a
 * caller can copy every byte. Unicode-range tokens are not produced (`U+0-7F` comes out as the
 * ident, number and dimension tokens a selector or a declaration would see).
 * Threading: no state besides the caller's struct css_lexer; any thread.
 */
#ifndef COBROWSE_CORE_PROXY_CSS_TOK_H
#define COBROWSE_CORE_PROXY_CSS_TOK_H

#include <stdbool.h>
#include <stddef.h>

enum css_tok_kind {
    CSS_TOK_EOF,
    CSS_TOK_WS,
    CSS_TOK_COMMENT, /* `/ *...* /`, or unclosed to the end of the input */
    CSS_TOK_IDENT,
    CSS_TOK_FUNCTION, /* name and "(" */
    CSS_TOK_AT_KEYWORD,
    CSS_TOK_HASH,
    CSS_TOK_STRING,     /* quotes included; flags CSS_TOKF_CLOSED when the closing quote came */
    CSS_TOK_BAD_STRING, /* ended by a newline, which is not part of it */
    CSS_TOK_URL,        /* url(...) unquoted; CSS_TOKF_CLOSED when ")" ended it */
    CSS_TOK_BAD_URL,
    CSS_TOK_DELIM,
    CSS_TOK_NUMBER,
    CSS_TOK_PERCENTAGE,
    CSS_TOK_DIMENSION,
    CSS_TOK_CDO, /* <!-- */
    CSS_TOK_CDC, /* --> */
    CSS_TOK_COLON,
    CSS_TOK_SEMICOLON,
    CSS_TOK_COMMA,
    CSS_TOK_LBRACKET,
    CSS_TOK_RBRACKET,
    CSS_TOK_LPAREN,
    CSS_TOK_RPAREN,
    CSS_TOK_LBRACE,
    CSS_TOK_RBRACE,
};

#define CSS_TOKF_CLOSED 1u

struct css_tok {
    enum css_tok_kind kind;
    unsigned flags;
    size_t start, end; /* bytes [start, end) of the input */
};

struct css_lexer {
    const char *s;
    size_t n, pos;
};

void css_lex_init(struct css_lexer *lx, const char *s, size_t n);

/* Consumes the next token into *t. At the end of the input, returns CSS_TOK_EOF (start == end
 * == n) as often as called. Every call with pos < n consumes at least one byte. */
enum css_tok_kind css_lex_next(struct css_lexer *lx, struct css_tok *t);

/* Whether the ident-like name in s[start, end) (an ident, or the name part of a function,
 * at-keyword or hash token, escapes included) decodes to lit, ASCII case-insensitively. lit is
 * lowercase ASCII. */
bool css_tok_name_is(const char *s, size_t start, size_t end, const char *lit);

/* Decodes one escape whose backslash is at s[i] (i < n, a valid escape or a backslash at the end
 * of the input): writes the code point to *cp (U+FFFD for zero, surrogates, values above
 * U+10FFFF and the end of input; for a non-hex escape of a byte >= 0x80, that byte) and returns
 * the index just past the escape (a hex escape's single trailing whitespace included). */
size_t css_tok_escape(const char *s, size_t n, size_t i, unsigned long *cp);

#endif
