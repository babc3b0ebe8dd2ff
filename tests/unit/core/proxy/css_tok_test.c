/* core/proxy/css_tok.c: the CSS Syntax Level 3 tokenizer (section 4), on the spec's own edge
 * cases. Each input is tokenized from an exact-size heap copy so that AddressSanitizer catches
 * any read past its end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/proxy/css_tok.h"

#define MAXT 64

struct toks {
    size_t count;
    struct css_tok t[MAXT];
};

/* Tokenizes in[0, n) and checks what holds for every input: tokens are contiguous, cover the
 * input exactly and each one is non-empty. */
static void lex(const char *in, size_t n, struct toks *out)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, in, n);
    struct css_lexer lx;
    css_lex_init(&lx, p, n);
    size_t at = 0;
    out->count = 0;
    for (;;) {
        struct css_tok t;
        if (css_lex_next(&lx, &t) == CSS_TOK_EOF) {
            assert_int_equal(t.start, n);
            break;
        }
        assert_int_equal(t.start, at);
        assert_true(t.end > t.start);
        at = t.end;
        if (out->count < MAXT)
            out->t[out->count++] = t;
    }
    assert_int_equal(at, n);
    free(p);
}

#define LEX(lit, toks) lex(lit, sizeof(lit) - 1, toks)

/* Asserts the kinds and the end offsets of the tokens, given as kind, end, kind, end, ..., -1. */
static void expect(const struct toks *ts, ...)
{
    va_list ap;
    va_start(ap, ts);
    size_t i = 0;
    for (int k; (k = va_arg(ap, int)) >= 0; i++) {
        size_t end = va_arg(ap, size_t);
        assert_true(i < ts->count);
        if ((int)ts->t[i].kind != k || ts->t[i].end != end)
            fail_msg("token %zu: kind %d end %zu, expected kind %d end %zu", i, (int)ts->t[i].kind,
                     ts->t[i].end, k, end);
    }
    va_end(ap);
    assert_int_equal(i, ts->count);
}

#define E(kind, end) (int)(kind), (size_t)(end)

static void test_punctuation_kinds(void **state)
{
    (void)state;
    struct toks ts;
    LEX("(),:;[]{}", &ts);
    expect(&ts, E(CSS_TOK_LPAREN, 1), E(CSS_TOK_RPAREN, 2), E(CSS_TOK_COMMA, 3),
           E(CSS_TOK_COLON, 4), E(CSS_TOK_SEMICOLON, 5), E(CSS_TOK_LBRACKET, 6),
           E(CSS_TOK_RBRACKET, 7), E(CSS_TOK_LBRACE, 8), E(CSS_TOK_RBRACE, 9), -1);
    LEX("<!-- --> < ! @ #", &ts);
    expect(&ts, E(CSS_TOK_CDO, 4), E(CSS_TOK_WS, 5), E(CSS_TOK_CDC, 8), E(CSS_TOK_WS, 9),
           E(CSS_TOK_DELIM, 10), E(CSS_TOK_WS, 11), E(CSS_TOK_DELIM, 12), E(CSS_TOK_WS, 13),
           E(CSS_TOK_DELIM, 14), E(CSS_TOK_WS, 15), E(CSS_TOK_DELIM, 16), -1);
}

static void test_whitespace_runs_include_cr_and_ff(void **state)
{
    (void)state;
    struct toks ts;
    LEX(" \t\r\n\f a", &ts);
    expect(&ts, E(CSS_TOK_WS, 6), E(CSS_TOK_IDENT, 7), -1);
}

static void test_comments_and_unclosed_comment(void **state)
{
    (void)state;
    struct toks ts;
    LEX("/* a */b/**/", &ts);
    expect(&ts, E(CSS_TOK_COMMENT, 7), E(CSS_TOK_IDENT, 8), E(CSS_TOK_COMMENT, 12), -1);
    LEX("a/* never closed *", &ts);
    expect(&ts, E(CSS_TOK_IDENT, 1), E(CSS_TOK_COMMENT, 18), -1);
    LEX("/*/", &ts); /* the opening star is not the closing one */
    expect(&ts, E(CSS_TOK_COMMENT, 3), -1);
    LEX("a/b", &ts);
    expect(&ts, E(CSS_TOK_IDENT, 1), E(CSS_TOK_DELIM, 2), E(CSS_TOK_IDENT, 3), -1);
}

static void test_idents_with_escapes(void **state)
{
    (void)state;
    struct toks ts;
    LEX("\\41 b c", &ts); /* the hex escape eats one space: "Ab" is one ident */
    expect(&ts, E(CSS_TOK_IDENT, 5), E(CSS_TOK_WS, 6), E(CSS_TOK_IDENT, 7), -1);
    LEX("a\\:hover", &ts);
    expect(&ts, E(CSS_TOK_IDENT, 8), -1);
    LEX("\\31 23\\\r\nx", &ts); /* a backslash before a newline is no escape */
    expect(&ts, E(CSS_TOK_IDENT, 6), E(CSS_TOK_DELIM, 7), E(CSS_TOK_WS, 9), E(CSS_TOK_IDENT, 10),
           -1);
    LEX("--custom -x -1x -", &ts);
    expect(&ts, E(CSS_TOK_IDENT, 8), E(CSS_TOK_WS, 9), E(CSS_TOK_IDENT, 11), E(CSS_TOK_WS, 12),
           E(CSS_TOK_DIMENSION, 15), E(CSS_TOK_WS, 16), E(CSS_TOK_DELIM, 17), -1);
    LEX("--", &ts);
    expect(&ts, E(CSS_TOK_IDENT, 2), -1);
}

static void test_backslash_at_end_of_input_is_an_ident(void **state)
{
    (void)state;
    struct toks ts;
    LEX("a\\", &ts); /* 4.3.8: a backslash before EOF is a valid escape (of U+FFFD) */
    expect(&ts, E(CSS_TOK_IDENT, 2), -1);
    LEX("\\", &ts);
    expect(&ts, E(CSS_TOK_IDENT, 1), -1);
    LEX("\"a\\", &ts); /* inside a string: nothing, and the string ends at EOF */
    expect(&ts, E(CSS_TOK_STRING, 3), -1);
    assert_int_equal(ts.t[0].flags & CSS_TOKF_CLOSED, 0);
}

static void test_strings_escapes_and_bad_string(void **state)
{
    (void)state;
    struct toks ts;
    LEX("'a\\'b' \"c\\\nd\"", &ts);
    expect(&ts, E(CSS_TOK_STRING, 6), E(CSS_TOK_WS, 7), E(CSS_TOK_STRING, 13), -1);
    assert_true(ts.t[0].flags & CSS_TOKF_CLOSED);
    LEX("\"abc\ndef\"", &ts); /* the newline ends a bad string and is not part of it */
    expect(&ts, E(CSS_TOK_BAD_STRING, 4), E(CSS_TOK_WS, 5), E(CSS_TOK_IDENT, 8),
           E(CSS_TOK_STRING, 9), -1);
    assert_int_equal(ts.t[3].flags & CSS_TOKF_CLOSED, 0);
    LEX("'a\r\n", &ts);
    expect(&ts, E(CSS_TOK_BAD_STRING, 2), E(CSS_TOK_WS, 4), -1);
    LEX("\"\\\r\n\"", &ts); /* CR LF after a backslash is one line continuation */
    expect(&ts, E(CSS_TOK_STRING, 5), -1);
}

static void test_hash_and_at_keyword(void **state)
{
    (void)state;
    struct toks ts;
    LEX("#a1 #1 #\\31 @media @-x @1 @", &ts);
    expect(&ts, E(CSS_TOK_HASH, 3), E(CSS_TOK_WS, 4), E(CSS_TOK_HASH, 6), E(CSS_TOK_WS, 7),
           E(CSS_TOK_HASH, 12), E(CSS_TOK_AT_KEYWORD, 18), E(CSS_TOK_WS, 19),
           E(CSS_TOK_AT_KEYWORD, 22), E(CSS_TOK_WS, 23), E(CSS_TOK_DELIM, 24),
           E(CSS_TOK_NUMBER, 25), E(CSS_TOK_WS, 26), E(CSS_TOK_DELIM, 27), -1);
}

static void test_numbers_percentages_dimensions(void **state)
{
    (void)state;
    struct toks ts;
    LEX("+.5e-3", &ts);
    expect(&ts, E(CSS_TOK_NUMBER, 6), -1);
    LEX("1.5em 50% -2 1e3px 10e 1.", &ts);
    expect(&ts, E(CSS_TOK_DIMENSION, 5), E(CSS_TOK_WS, 6), E(CSS_TOK_PERCENTAGE, 9),
           E(CSS_TOK_WS, 10), E(CSS_TOK_NUMBER, 12), E(CSS_TOK_WS, 13), E(CSS_TOK_DIMENSION, 18),
           E(CSS_TOK_WS, 19), E(CSS_TOK_DIMENSION, 22), E(CSS_TOK_WS, 23), E(CSS_TOK_NUMBER, 24),
           E(CSS_TOK_DELIM, 25), -1);
    LEX("+a .b 1e+ 1e+2", &ts);
    expect(&ts, E(CSS_TOK_DELIM, 1), E(CSS_TOK_IDENT, 2), E(CSS_TOK_WS, 3), E(CSS_TOK_DELIM, 4),
           E(CSS_TOK_IDENT, 5), E(CSS_TOK_WS, 6), E(CSS_TOK_DIMENSION, 8), E(CSS_TOK_DELIM, 9),
           E(CSS_TOK_WS, 10), E(CSS_TOK_NUMBER, 14), -1);
}

static void test_url_tokens_and_bad_urls(void **state)
{
    (void)state;
    struct toks ts;
    LEX("url( a.png ) URL(b\\)c)", &ts);
    expect(&ts, E(CSS_TOK_URL, 12), E(CSS_TOK_WS, 13), E(CSS_TOK_URL, 22), -1);
    assert_true(ts.t[0].flags & CSS_TOKF_CLOSED);
    LEX("url(a b) x", &ts); /* whitespace inside: bad url up to the ")" */
    expect(&ts, E(CSS_TOK_BAD_URL, 8), E(CSS_TOK_WS, 9), E(CSS_TOK_IDENT, 10), -1);
    LEX("url(a\"b) url(a(b) url(a\x01) url(\\\n)", &ts);
    expect(&ts, E(CSS_TOK_BAD_URL, 8), E(CSS_TOK_WS, 9), E(CSS_TOK_BAD_URL, 17), E(CSS_TOK_WS, 18),
           E(CSS_TOK_BAD_URL, 25), E(CSS_TOK_WS, 26), E(CSS_TOK_BAD_URL, 33), -1);
    LEX("url(a\\) b)", &ts); /* an escaped ")" does not end the remnants of a bad url */
    expect(&ts, E(CSS_TOK_BAD_URL, 10), -1);
    LEX("url(abc", &ts);
    expect(&ts, E(CSS_TOK_URL, 7), -1);
    assert_int_equal(ts.t[0].flags & CSS_TOKF_CLOSED, 0);
}

static void test_quoted_url_is_a_function(void **state)
{
    (void)state;
    struct toks ts;
    LEX("url(\"a\") url(  'b' ) u\\72l(\"c\")", &ts);
    expect(&ts, E(CSS_TOK_FUNCTION, 4), E(CSS_TOK_STRING, 7), E(CSS_TOK_RPAREN, 8),
           E(CSS_TOK_WS, 9), E(CSS_TOK_FUNCTION, 13), E(CSS_TOK_WS, 15), E(CSS_TOK_STRING, 18),
           E(CSS_TOK_WS, 19), E(CSS_TOK_RPAREN, 20), E(CSS_TOK_WS, 21), E(CSS_TOK_FUNCTION, 27),
           E(CSS_TOK_STRING, 30), E(CSS_TOK_RPAREN, 31), -1);
    LEX("rgb(1)", &ts);
    expect(&ts, E(CSS_TOK_FUNCTION, 4), E(CSS_TOK_NUMBER, 5), E(CSS_TOK_RPAREN, 6), -1);
}

static void test_nul_and_invalid_utf8_are_ident_code_points(void **state)
{
    (void)state;
    struct toks ts;
    LEX("a\0b c\xff\xfe\xc3 \xc3\xa9t\xc3\xa9{", &ts);
    expect(&ts, E(CSS_TOK_IDENT, 3), E(CSS_TOK_WS, 4), E(CSS_TOK_IDENT, 8), E(CSS_TOK_WS, 9),
           E(CSS_TOK_IDENT, 14), E(CSS_TOK_LBRACE, 15), -1);
    LEX("url(\0)", &ts); /* NUL is U+FFFD there, printable: not a bad url */
    expect(&ts, E(CSS_TOK_URL, 6), -1);
}

static void test_name_is_decodes_escapes_case_insensitively(void **state)
{
    (void)state;
    const char *s = "h\\over";
    assert_true(css_tok_name_is(s, 0, strlen(s), "hover"));
    s = "HOVER";
    assert_true(css_tok_name_is(s, 0, strlen(s), "hover"));
    s = "\\68 over";
    assert_true(css_tok_name_is(s, 0, strlen(s), "hover"));
    s = "\\000068over";
    assert_true(css_tok_name_is(s, 0, strlen(s), "hover"));
    s = "hovers";
    assert_false(css_tok_name_is(s, 0, strlen(s), "hover"));
    s = "hove";
    assert_false(css_tok_name_is(s, 0, strlen(s), "hover"));
    s = "\\0";
    assert_false(css_tok_name_is(s, 0, strlen(s), "\x01"));
}

static void test_escape_code_points(void **state)
{
    (void)state;
    unsigned long cp;
    const char *s = "\\0 ";
    assert_int_equal(css_tok_escape(s, 3, 0, &cp), 3);
    assert_int_equal(cp, 0xfffd);
    s = "\\d800";
    assert_int_equal(css_tok_escape(s, 5, 0, &cp), 5);
    assert_int_equal(cp, 0xfffd);
    s = "\\110000";
    assert_int_equal(css_tok_escape(s, 7, 0, &cp), 7);
    assert_int_equal(cp, 0xfffd);
    s = "\\1F600x"; /* at most six hex digits, then no whitespace to eat */
    assert_int_equal(css_tok_escape(s, 7, 0, &cp), 6);
    assert_int_equal(cp, 0x1f600);
    s = "\\10FFFF7";
    assert_int_equal(css_tok_escape(s, 8, 0, &cp), 7);
    assert_int_equal(cp, 0x10ffff);
    s = "\\";
    assert_int_equal(css_tok_escape(s, 1, 0, &cp), 1);
    assert_int_equal(cp, 0xfffd);
}

/* Every byte value after every prefix: the tokenizer must cover the input exactly (checked by
 * lex()) and never read past its end (ASan). */
static void test_every_byte_in_every_context_is_covered(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"",        "\\",     "url(", "url( a", "\"", "#",
                                           "@",       "-",      "+.",   "1e",     "/*", "<!-",
                                           "u\\72l(", "url(\\", "'\\",  "--"};
    char buf[16];
    struct toks ts;
    for (size_t p = 0; p < sizeof prefixes / sizeof *prefixes; p++) {
        size_t pl = strlen(prefixes[p]);
        memcpy(buf, prefixes[p], pl);
        for (int b = 0; b < 256; b++) {
            buf[pl] = (char)b;
            lex(buf, pl + 1, &ts);
            buf[pl + 1] = 'x';
            lex(buf, pl + 2, &ts);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_punctuation_kinds),
        cmocka_unit_test(test_whitespace_runs_include_cr_and_ff),
        cmocka_unit_test(test_comments_and_unclosed_comment),
        cmocka_unit_test(test_idents_with_escapes),
        cmocka_unit_test(test_backslash_at_end_of_input_is_an_ident),
        cmocka_unit_test(test_strings_escapes_and_bad_string),
        cmocka_unit_test(test_hash_and_at_keyword),
        cmocka_unit_test(test_numbers_percentages_dimensions),
        cmocka_unit_test(test_url_tokens_and_bad_urls),
        cmocka_unit_test(test_quoted_url_is_a_function),
        cmocka_unit_test(test_nul_and_invalid_utf8_are_ident_code_points),
        cmocka_unit_test(test_name_is_decodes_escapes_case_insensitively),
        cmocka_unit_test(test_escape_code_points),
        cmocka_unit_test(test_every_byte_in_every_context_is_covered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
