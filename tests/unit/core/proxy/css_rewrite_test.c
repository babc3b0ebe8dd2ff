/* core/proxy/css_rewrite.c: :hover copies in every context that holds selectors and in none
 * that does not, url() and @import rewriting, byte-for-byte preservation of everything else,
 * idempotence, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/proxy/css.h"

/* Rewrites in[0, n) from an exact-size heap copy (ASan sees any over-read); returns the output,
 * which the caller frees. */
static char *rewrite_n(const char *in, size_t n, css_url_fn fn, void *arg)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, in, n);
    struct css_buf out = {0};
    assert_int_equal(css_rewrite(p, n, fn, arg, &out), 0);
    free(p);
    if (!out.data)
        return strdup("");
    assert_int_equal(strlen(out.data), out.len); /* NUL-terminated (no NUL in these inputs) */
    return out.data;
}

static char *rewrite(const char *in)
{
    return rewrite_n(in, strlen(in), NULL, NULL);
}

/* Asserts the hover rewrite of in, and that rewriting the result again changes nothing. */
static void expect_hover(const char *in, const char *want)
{
    char *got = rewrite(in);
    if (strcmp(got, want) != 0)
        fail_msg("rewrite of\n  %s\ngave\n  %s\nexpected\n  %s", in, got, want);
    char *again = rewrite(got);
    if (strcmp(again, got) != 0)
        fail_msg("not idempotent:\n  %s\nthen\n  %s", got, again);
    free(again);
    free(got);
}

static void expect_same(const char *in)
{
    expect_hover(in, in);
}

static void test_top_level_hover_gets_class_copy(void **state)
{
    (void)state;
    expect_hover("a:hover{color:red}", "a:hover, a.\\:hover{color:red}");
    expect_hover("a:hover {x:y}", "a:hover, a.\\:hover {x:y}");
    expect_hover(".btn:hover:not(.x) > b\n{}",
                 ".btn:hover:not(.x) > b, .btn.\\:hover:not(.x) > b\n{}");
    expect_hover("a:hover b:hover{}", "a:hover b:hover, a.\\:hover b.\\:hover{}");
    expect_hover("a:hover/* c */{}", "a:hover, a.\\:hover/* c */{}");
}

static void test_selector_list_copies_appended_in_order(void **state)
{
    (void)state;
    expect_hover("a, b:hover .c, d, e:hover{}",
                 "a, b:hover .c, d, e:hover, b.\\:hover .c, e.\\:hover{}");
    expect_hover("a:hover,\n  b:focus,\n  c:hover {}",
                 "a:hover,\n  b:focus,\n  c:hover, a.\\:hover, c.\\:hover {}");
    /* commas inside functional pseudo-classes do not split the list */
    expect_hover(":is(a:hover, b), c{}", ":is(a:hover, b), c, :is(a.\\:hover, b){}");
}

static void test_functional_pseudo_classes(void **state)
{
    (void)state;
    expect_hover(":not(:hover){}", ":not(:hover), :not(.\\:hover){}");
    expect_hover("p:where(.x:hover){}", "p:where(.x:hover), p:where(.x.\\:hover){}");
    expect_hover("ul:has(> li:hover){}", "ul:has(> li:hover), ul:has(> li.\\:hover){}");
    expect_hover("li:nth-child(2n of :hover){}",
                 "li:nth-child(2n of :hover), li:nth-child(2n of .\\:hover){}");
    expect_hover("::part(x):hover{}", "::part(x):hover, ::part(x).\\:hover{}");
}

static void test_escaped_and_uppercase_hover(void **state)
{
    (void)state;
    expect_hover("a:h\\over{}", "a:h\\over, a.\\:hover{}");
    expect_hover("a:HOVER{}", "a:HOVER, a.\\:hover{}");
    expect_hover("a:\\68 over{}", "a:\\68 over, a.\\:hover{}");
    expect_hover("a:/**/hover{}", "a:/**/hover, a.\\:hover{}"); /* comments are not tokens */
    /* A copy that ends with a hex escape gets the escape's terminating space: the next rewrite
     * reads the escape with the whitespace after it (found by the fuzzer: ":HOVER \\d, {"). */
    expect_hover("a:hover \\d, b {}", "a:hover \\d, b, a.\\:hover \\d  {}");
    expect_hover(":HOVER \\d, {", ":HOVER \\d,, .\\:hover \\d  {");
    expect_hover("a:hover \\d {}", "a:hover \\d , a.\\:hover \\d {}");
    expect_hover("a:hover \\\\d{}", "a:hover \\\\d, a.\\:hover \\\\d{}"); /* an escaped backslash */
    expect_hover("a:hover .x\\1234567{}", "a:hover .x\\1234567, a.\\:hover .x\\1234567{}");
}

static void test_things_that_are_not_the_hover_pseudo_class(void **state)
{
    (void)state;
    expect_same("a::hover{}");
    expect_same("[data-x=\":hover\"]{}");
    expect_same("[data-x=a:hover]{}");
    expect_same("/* a:hover{} */ b{}");
    expect_same("a: hover{}");
    expect_same("a:hovered, a:hover-x, a:hover(1){}");
    expect_same("a\\:hover{}");
    expect_same("a{content:\":hover{}\"}");
    expect_hover("[x=a]:hover{}", "[x=a]:hover, [x=a].\\:hover{}");
}

static void test_conditional_group_rules(void **state)
{
    (void)state;
    expect_hover("@media (min-width: 1px) { a:hover { x: y } }",
                 "@media (min-width: 1px) { a:hover, a.\\:hover { x: y } }");
    expect_hover("@supports (display:grid){@media print{a:hover{}}}",
                 "@supports (display:grid){@media print{a:hover, a.\\:hover{}}}");
    expect_hover("@layer base{a:hover{}}", "@layer base{a:hover, a.\\:hover{}}");
    expect_hover("@layer a, b; a:hover{}", "@layer a, b; a:hover, a.\\:hover{}");
    expect_hover("@container card (width > 1px){a:hover{}}",
                 "@container card (width > 1px){a:hover, a.\\:hover{}}");
    expect_hover("@-moz-document url-prefix(){a:hover{}}",
                 "@-moz-document url-prefix(){a:hover, a.\\:hover{}}");
    expect_hover("@document domain(x){a:hover{}}", "@document domain(x){a:hover, a.\\:hover{}}");
    expect_hover("@scope (.card) to (.c){a:hover{}}",
                 "@scope (.card) to (.c){a:hover, a.\\:hover{}}");
    expect_hover("@starting-style{a:hover{}}", "@starting-style{a:hover, a.\\:hover{}}");
    expect_hover("@MEDIA x{a:hover{}}", "@MEDIA x{a:hover, a.\\:hover{}}");
}

static void test_nested_style_rules(void **state)
{
    (void)state;
    expect_hover(".a{color:red;&:hover{x:y}}", ".a{color:red;&:hover, &.\\:hover{x:y}}");
    expect_hover(".a{.b:hover &{}}", ".a{.b:hover &, .b.\\:hover &{}}");
    expect_hover(".a{@media x{&:hover{}}}", ".a{@media x{&:hover, &.\\:hover{}}}");
    expect_hover(".a{b:hover{} c:d;}", ".a{b:hover, b.\\:hover{} c:d;}");
    expect_hover(".a{:hover{}}", ".a{:hover, .\\:hover{}}");
    expect_hover(".a{.b{.c{&:hover{}}}}", ".a{.b{.c{&:hover, &.\\:hover{}}}}");
    /* declarations inside a rule are not selectors, even when they look like one */
    expect_same(".a{b:hover;c:hover}");
    expect_same(".a{--x:hover{};}"); /* a custom property's value may hold a {} block */
    expect_same(".a{b:{c:hover{}}}");
}

static void test_blocks_without_selectors(void **state)
{
    (void)state;
    expect_same("@keyframes k{from{a:b}50%{c:d}to{}}");
    expect_same("@-webkit-keyframes k{a:hover{}}");
    expect_same("@font-face{font-family:x;src:local(x)}");
    expect_same("@page :first{margin:0;@top-left{content:\"a\"}}");
    expect_same("@font-feature-values F{@swash{a:hover{}}}");
    /* after an opaque block the stylesheet goes on */
    expect_hover("@keyframes k{x:hover{}} a:hover{}",
                 "@keyframes k{x:hover{}} a:hover, a.\\:hover{}");
}

static void test_existing_copy_is_not_added_twice(void **state)
{
    (void)state;
    expect_same("a:hover, a.\\:hover{}");
    expect_same("a:hover,   a.\\:hover  {}");
    expect_same("a.\\:hover, a:hover{}");
    expect_hover("a:hover, a:hover{}", "a:hover, a:hover, a.\\:hover{}");
    expect_hover("a:HOVER, a:hover{}", "a:HOVER, a:hover, a.\\:hover{}");
}

static void test_everything_else_is_kept_byte_for_byte(void **state)
{
    (void)state;
    expect_same(".a{*zoom:1;_height:1px;color:red\\9;width:1px !important}");
    expect_same(".a{filter:progid:DXImageTransform.Microsoft.gradient(startColorstr='#80000000', "
                "endColorstr='#80000000')}");
    expect_same("<!-- a{} -->\n@charset \"utf-8\";\r\n/* x */ b { c : d }\f");
    expect_same("@namespace svg url(http://www.w3.org/2000/svg); svg|a{}");
    expect_same("caf\xc3\xa9{content:\"\xe2\x82\xac\"}");
}

/* ---- URLs ---- */

struct calls {
    int n;
    enum css_url_kind kind[8];
    char url[8][64];
    const char *replace; /* NULL: keep */
    int fail_at;         /* 1-based call that fails, 0 none */
};

static int record(void *arg, enum css_url_kind kind, const char *url, size_t len, char **repl)
{
    struct calls *c = arg;
    int i = c->n++;
    if (i < 8) {
        c->kind[i] = kind;
        snprintf(c->url[i], sizeof c->url[i], "%.*s", (int)len, url);
    }
    if (c->fail_at == c->n)
        return -1;
    if (c->replace)
        *repl = strdup(c->replace);
    return 0;
}

static char *urls(const char *in, struct calls *c)
{
    return rewrite_n(in, strlen(in), record, c);
}

static void test_url_forms_and_kinds(void **state)
{
    (void)state;
    struct calls c = {.replace = "P"};
    char *got = urls("@import \"a.css\";@import url(b.css) screen;@import url( 'c.css' );"
                     "x{background:url( d.png );src:url(\"e.woff\") format(\"woff\"),URL('f')}"
                     "@font-face{src:url(g)}@keyframes k{from{background:url(h)}}",
                     &c);
    assert_string_equal(got, "@import url(\"P\");@import url(\"P\") screen;@import url(\"P\");"
                             "x{background:url(\"P\");src:url(\"P\") format(\"woff\"),url(\"P\")}"
                             "@font-face{src:url(\"P\")}@keyframes k{from{background:url(\"P\")}}");
    assert_int_equal(c.n, 8);
    const char *want[] = {"a.css", "b.css", "c.css", "d.png", "e.woff", "f", "g", "h"};
    for (int i = 0; i < 8; i++) {
        assert_string_equal(c.url[i], want[i]);
        assert_int_equal(c.kind[i], i < 3 ? CSS_URL_IMPORT : CSS_URL_ASSET);
    }
    free(got);
}

static void test_url_values_are_decoded(void **state)
{
    (void)state;
    struct calls c = {0};
    char *got = urls("a{b:url(a\\20 b\\)c);c:url(\"q\\\"z\\\n\\41\");d:url('\\e9')}", &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.url[0], "a b)c");
    assert_string_equal(c.url[1], "q\"zA");
    assert_string_equal(c.url[2], "\xc3\xa9");
    assert_string_equal(got, "a{b:url(a\\20 b\\)c);c:url(\"q\\\"z\\\n\\41\");d:url('\\e9')}");
    free(got);
}

static void test_replacement_is_escaped_as_a_css_string(void **state)
{
    (void)state;
    struct calls c = {.replace = "a\"b\\c\nd"};
    char *got = urls("x{y:url(z)}", &c);
    assert_string_equal(got, "x{y:url(\"a\\\"b\\\\c\\a d\")}");
    free(got);
}

static void test_urls_that_are_not_resources_are_left_alone(void **state)
{
    (void)state;
    struct calls c = {.replace = "P"};
    /* a namespace name, a @document condition, a selector, bad urls, an unclosed url */
    char *got = urls("@namespace url(ns);@-moz-document url(http://x){a{}}a[b=\"url(c)\"]{}"
                     "x{y:url(a b);z:url(a\"b)}q{r:url(",
                     &c);
    assert_int_equal(c.n, 0);
    assert_string_equal(got, "@namespace url(ns);@-moz-document url(http://x){a{}}a[b=\"url(c)\"]{}"
                             "x{y:url(a b);z:url(a\"b)}q{r:url(");
    free(got);
}

static void test_callback_failure_aborts(void **state)
{
    (void)state;
    struct calls c = {.replace = "P", .fail_at = 2};
    struct css_buf out = {0};
    const char *in = "a{b:url(x)}c{d:url(y)}e{f:url(z)}";
    assert_int_equal(css_rewrite(in, strlen(in), record, &c, &out), -1);
    assert_int_equal(c.n, 2);
    css_buf_free(&out);
}

static void test_appends_to_existing_buffer(void **state)
{
    (void)state;
    struct css_buf out = {0};
    assert_int_equal(css_rewrite("a{}", 3, NULL, NULL, &out), 0);
    assert_int_equal(css_rewrite("b:hover{}", 9, NULL, NULL, &out), 0);
    assert_string_equal(out.data, "a{}b:hover, b.\\:hover{}");
    css_buf_free(&out);
    assert_null(out.data);
    assert_int_equal(css_rewrite("", 0, NULL, NULL, &out), 0);
    assert_int_equal(out.len, 0);
    css_buf_free(&out);
}

/* ---- malformed input ---- */

#define OPEN  "\x01<"
#define CLOSE ">\x01"

/* Rewrites with marked additions, checks each holds .\:hover, removes them and compares with
 * the input. */
static void check_additions_only(const char *in, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, in, n);
    struct css_buf out = {0};
    assert_int_equal(css_rewrite_marked(p, n, NULL, NULL, OPEN, CLOSE, &out), 0);
    char *kept = malloc(out.len + 1);
    size_t k = 0;
    for (size_t i = 0; i < out.len;) {
        if (out.len - i >= 2 && !memcmp(out.data + i, OPEN, 2)) {
            const char *end = memmem(out.data + i, out.len - i, CLOSE, 2);
            assert_non_null(end);
            assert_non_null(memmem(out.data + i, (size_t)(end - out.data) - i, ".\\:hover", 8));
            i = (size_t)(end - out.data) + 2;
        } else {
            kept[k++] = out.data[i++];
        }
    }
    if (k != n || memcmp(kept, in, n) != 0)
        fail_msg("bytes lost or changed rewriting %.*s", (int)n, in);
    free(kept);
    css_buf_free(&out);
    free(p);
}

static const char sample[] =
    "@charset \"utf-8\";@import url(\"x.css\") screen;/* c:hover */\n"
    "a:hover, [x=\":hover\"]:HOVER > b:is(.c:h\\over, d) {color:red;background:url( y.png )}\n"
    "@media (min-width:1px){.e:hover{--v:{a:hover};}.f{&:hover{x:url('z')} g:hover &{}}}\n"
    "@font-face{src:url(w.woff) format(\"woff\")}@keyframes k{50%{top:0}}\n"
    "h\\:hover, i::hover, j:hover{content:\"\\\"\\a\"}<!-- -->";

static void test_truncated_at_every_offset_keeps_every_byte(void **state)
{
    (void)state;
    for (size_t n = 0; n <= sizeof sample - 1; n++) {
        check_additions_only(sample, n);
        char *once = rewrite_n(sample, n, NULL, NULL);
        char *twice = rewrite_n(once, strlen(once), NULL, NULL);
        if (strcmp(once, twice) != 0)
            fail_msg("prefix %zu: not idempotent:\n%s\n%s", n, once, twice);
        free(once);
        free(twice);
    }
}

static void test_unbalanced_input_passes_through(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "a:hover{",
        "a:hover{b:hover{",
        "}}} a:hover{}",
        "a:not(:hover{}",
        "a[x{}b:hover{}",
        "\"unclosed a:hover{}",
        "/* unclosed a:hover{}",
        "a:hover{b:url(",
        "a{x:\"bad\n}b:hover{}",
        ")a:hover{}",
        "@media{{{{{a:hover{}",
        "a:hover\\\n{}",
        "a:hover;b:hover{}",
        "a\0:hover{}",
        ":hover",
        "@import",
        "@import \"a",
        ":",
        "::",
        "\\",
        "a:hover{}}}b:hover{}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n = strlen(cases[i]);
        if (i == 13)
            n = 10; /* the NUL inside */
        check_additions_only(cases[i], n);
    }
    expect_hover("a:hover{", "a:hover, a.\\:hover{");
    expect_hover("}}} a:hover{}", "}}} a:hover{}"); /* stray braces make one invalid selector */
    expect_same("a:not(:hover{}");
    expect_same("a:hover\\\n{}");
    /* rules with empty preludes are dropped by browsers; a copy inside them is harmless */
    expect_hover("@media{{{{{a:hover{}", "@media{{{{{a:hover, a.\\:hover{}");
    expect_hover("a{x:\"bad\n}b:hover{}", "a{x:\"bad\n}b:hover, b.\\:hover{}");
}

static void test_deep_nesting_does_not_recurse(void **state)
{
    (void)state;
    size_t depth = 100000, n = depth * 4 + 16;
    char *in = malloc(n);
    size_t k = 0;
    for (size_t i = 0; i < depth; i++)
        memcpy(in + k, ".a{ ", 4), k += 4; /* 100,000 nested style rules */
    memcpy(in + k, "a:hover{}", 9), k += 9;
    char *out = rewrite_n(in, k, NULL, NULL);
    assert_int_equal(strlen(out), k + strlen(", a.\\:hover"));
    free(out);
    for (size_t i = 0; i < depth; i++)
        memcpy(in + i * 4, "x:(", 3); /* 100,000 open parens in one declaration */
    out = rewrite_n(in, k, NULL, NULL);
    assert_memory_equal(out, in, k);
    free(out);
    free(in);
}

/* Inputs on which the byte-level scans once disagreed with the tokens (found by the fuzzer's
 * CSS_REWRITE_CROSSCHECK build; the sanitizer build of these tests checks the same and aborts). */
static void test_fast_scans_agree_with_tokens(void **state)
{
    (void)state;
    struct calls c = {.replace = "P"};
    static const char *const cases[] = {
        "{d:<rl(",             /* "<" taken for the "u" of url( */
        "a{e:#url(\"x\")}",    /* a hash, not url( */
        "a{e:@url(x)}",        /* an at-keyword, not url( */
        "a{d:url(a b)}",       /* a bad url is no url */
        "{ a:hover{}",         /* an empty prelude */
        "a{b:c}d:hover/**/{}", /* a comment before the block */
        /* in a string, a hex escape takes the newline after it and a backslash takes CR LF:
         * the string goes on, and the url( after it is text, not a declaration */
        "{p:\"\\9\nurl(",
        "a{b:\"\\9\n;c:url(x)}",
        "a{b:\"\\\r\n;c:url(x)}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        free(rewrite(cases[i]));
        free(urls(cases[i], &c));
    }
    assert_int_equal(c.n, 0);
}

/* 20,000 selectors in one list: every copy added once, none twice (the lookup is by hash). */
static void test_long_selector_list(void **state)
{
    (void)state;
    size_t count = 20000, cap = count * 24 + 16, k = 0;
    char *in = malloc(cap);
    for (size_t i = 0; i < count; i++)
        k += (size_t)snprintf(in + k, cap - k, "%s.c%zu:hover", i ? "," : "", i % (count / 2));
    k += (size_t)snprintf(in + k, cap - k, "{}");
    char *once = rewrite_n(in, k, NULL, NULL);
    size_t copies = 0;
    for (const char *p = once; (p = strstr(p, ".\\:hover")); p++)
        copies++;
    assert_int_equal(copies, count / 2); /* each selector twice in the list: one copy each */
    assert_memory_equal(once, in, k - 2);
    char *twice = rewrite_n(once, strlen(once), NULL, NULL);
    assert_string_equal(twice, once);
    free(twice);
    free(once);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top_level_hover_gets_class_copy),
        cmocka_unit_test(test_selector_list_copies_appended_in_order),
        cmocka_unit_test(test_functional_pseudo_classes),
        cmocka_unit_test(test_escaped_and_uppercase_hover),
        cmocka_unit_test(test_things_that_are_not_the_hover_pseudo_class),
        cmocka_unit_test(test_conditional_group_rules),
        cmocka_unit_test(test_nested_style_rules),
        cmocka_unit_test(test_blocks_without_selectors),
        cmocka_unit_test(test_existing_copy_is_not_added_twice),
        cmocka_unit_test(test_everything_else_is_kept_byte_for_byte),
        cmocka_unit_test(test_url_forms_and_kinds),
        cmocka_unit_test(test_url_values_are_decoded),
        cmocka_unit_test(test_replacement_is_escaped_as_a_css_string),
        cmocka_unit_test(test_urls_that_are_not_resources_are_left_alone),
        cmocka_unit_test(test_callback_failure_aborts),
        cmocka_unit_test(test_appends_to_existing_buffer),
        cmocka_unit_test(test_truncated_at_every_offset_keeps_every_byte),
        cmocka_unit_test(test_unbalanced_input_passes_through),
        cmocka_unit_test(test_deep_nesting_does_not_recurse),
        cmocka_unit_test(test_long_selector_list),
        cmocka_unit_test(test_fast_scans_agree_with_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
