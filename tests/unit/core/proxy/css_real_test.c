/* core/proxy/css_rewrite.c over real stylesheets shipped by packages: Bootstrap 5.3.3 (readable
 * and minified) and Font Awesome 6.5.2 from npm (installed into the build by
 * tests/fixtures/css/install.sh, a ctest fixture), and Debian's documentation stylesheets when
 * this machine has them. For each:
 *   - removing the additions gives back the input byte for byte;
 *   - every :hover in the input got its class copy: counted by an independent simple scan;
 *   - rewriting twice gives what rewriting once gave;
 *   - a URL callback sees the font and image URLs, and its replacements are written.
 * The rewritten files and a manifest go to <dir>/out/ for tests/fixtures/css/check.mjs, which
 * parses them with postcss. Usage: test_core_proxy_css_real <dir of install.sh> */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/proxy/css.h"

static const char *dir;

struct sheet {
    const char *path; /* relative to dir unless absolute */
    const char *name;
    int required;
    int min_urls;
};

static const struct sheet sheets[] = {
    {"node_modules/bootstrap/dist/css/bootstrap.css", "bootstrap", 1, 1},
    {"node_modules/bootstrap/dist/css/bootstrap.min.css", "bootstrap.min", 1, 1},
    {"node_modules/@fortawesome/fontawesome-free/css/all.css", "fontawesome-all", 1, 10},
    /* Debian: from libulfius-dev (scripts/lib.sh installs it) and from nodejs */
    {"/usr/share/doc/libulfius-dev/html/doxygen.css", "debian-doxygen", 0, 0},
    {"/usr/share/doc/nodejs/api/assets/style.css", "debian-nodejs", 0, 0},
};

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    char *p = NULL;
    if (fstat(fileno(f), &st) == 0 && (p = malloc((size_t)st.st_size + 1)) &&
        fread(p, 1, (size_t)st.st_size, f) == (size_t)st.st_size) {
        *n = (size_t)st.st_size;
        p[*n] = '\0';
    } else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* The independent count: ":hover" outside comments and strings, not after another colon, not
 * followed by a name character or "(". Real stylesheets spell it plainly. */
static size_t count_hover(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
            const char *e = strstr(s + i + 2, "*/");
            i = e ? (size_t)(e - s) + 1 : n;
        } else if (s[i] == '"' || s[i] == '\'') {
            char q = s[i];
            for (i++; i < n && s[i] != q; i++)
                i += s[i] == '\\';
        } else if (s[i] == ':' && n - i >= 6 && !memcmp(s + i, ":hover", 6) &&
                   (i == 0 || s[i - 1] != ':')) {
            char next = i + 6 < n ? s[i + 6] : ' ';
            c += !(isalnum((unsigned char)next) || next == '-' || next == '_' || next == '(' ||
                   next == '\\' || (unsigned char)next >= 0x80);
        }
    }
    return c;
}

static size_t count_str(const char *s, size_t n, const char *what)
{
    size_t c = 0, l = strlen(what);
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), what, l)); p += l)
        c++;
    return c;
}

static size_t strip_marked(const struct css_buf *out, char *kept, size_t *additions)
{
    size_t k = 0;
    *additions = 0;
    for (size_t i = 0; i < out->len;) {
        if (out->len - i >= 2 && !memcmp(out->data + i, "\x01<", 2)) {
            const char *end = memmem(out->data + i, out->len - i, ">\x01", 2);
            assert_non_null(end);
            i = (size_t)(end - out->data) + 2;
            ++*additions;
        } else {
            kept[k++] = out->data[i++];
        }
    }
    return k;
}

static int fixed_url(void *arg, enum css_url_kind kind, const char *url, size_t len, char **r)
{
    (void)kind;
    (void)url;
    (void)len;
    ++*(int *)arg;
    *r = strdup("/v1/proxy/cap/asset/x");
    return *r ? 0 : -1;
}

static void check_sheet(const struct sheet *sh, FILE *manifest)
{
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", sh->path[0] == '/' ? "" : dir,
             sh->path[0] == '/' ? "" : "/", sh->path);
    size_t n;
    char *in = read_file(path, &n);
    if (!in) {
        if (sh->required)
            fail_msg("%s: missing (did tests/fixtures/css/install.sh run?)", path);
        print_message("skipped %s: not on this machine\n", path);
        return;
    }
    struct css_buf marked = {0}, once = {0}, twice = {0}, urls = {0};
    assert_int_equal(css_rewrite_marked(in, n, NULL, NULL, "\x01<", ">\x01", &marked), 0);
    char *kept = malloc(marked.len + 1);
    size_t additions, k = strip_marked(&marked, kept, &additions);
    if (k != n || memcmp(kept, in, n) != 0)
        fail_msg("%s: removing the additions does not give the input back", sh->name);

    assert_int_equal(css_rewrite(in, n, NULL, NULL, &once), 0);
    size_t hovers = count_hover(in, n);
    size_t added = count_str(once.data, once.len, ".\\:hover") - count_str(in, n, ".\\:hover");
    if (added != hovers)
        fail_msg("%s: %zu :hover in the input, %zu class forms added", sh->name, hovers, added);
    assert_int_equal(css_rewrite(once.data, once.len, NULL, NULL, &twice), 0);
    assert_int_equal(twice.len, once.len);
    assert_memory_equal(twice.data, once.data, once.len);

    int calls = 0;
    assert_int_equal(css_rewrite(in, n, fixed_url, &calls, &urls), 0);
    assert_true(calls >= sh->min_urls);
    assert_int_equal(count_str(urls.data, urls.len, "url(\"/v1/proxy/cap/asset/x\")"), calls);

    char outp[4096];
    snprintf(outp, sizeof outp, "%s/out/%s.css", dir, sh->name);
    FILE *f = fopen(outp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(once.data, 1, once.len, f), once.len);
    fclose(f);
    fprintf(manifest, "%s\t%s\n", path, outp);
    print_message("%s: %zu bytes, %zu selector copies for %zu :hover, %d URLs\n", sh->name, n,
                  additions, hovers, calls);
    free(kept);
    free(in);
    css_buf_free(&marked);
    css_buf_free(&once);
    css_buf_free(&twice);
    css_buf_free(&urls);
}

static void test_real_stylesheets(void **state)
{
    (void)state;
    char p[4096];
    snprintf(p, sizeof p, "%s/out", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/out/manifest.tsv", dir);
    FILE *manifest = fopen(p, "w");
    assert_non_null(manifest);
    for (size_t i = 0; i < sizeof sheets / sizeof *sheets; i++)
        check_sheet(&sheets[i], manifest);
    fclose(manifest);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (where tests/fixtures/css/install.sh installed)\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_stylesheets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
