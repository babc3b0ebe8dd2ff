/* api/static/static.c: the pure parts of serving the browser files (path mapping, content types,
 * Accept-Encoding, If-None-Match, origins fit for a CSP header) and loading a web root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/static/static.h"

static enum static_kind map(const char *path, char *file, char *tenant)
{
    return static_map(path, file, 256, tenant, 64);
}

static void test_map_names_the_documented_files(void **state)
{
    (void)state;
    char file[256], tenant[64];
    assert_int_equal(map("/sdk/v1/cobrowse.js", file, tenant), STATIC_SDK);
    assert_string_equal(file, "sdk/v1/cobrowse.js");
    assert_int_equal(map("/assets/viewer-AB12.js", file, tenant), STATIC_ASSET);
    assert_string_equal(file, "assets/viewer-AB12.js");
    assert_int_equal(map("/viewer/ten_01JBX3K6P2M9Q4R7S8T0V1W2Y3", file, tenant), STATIC_VIEWER);
    assert_string_equal(file, "viewer/index.html");
    assert_string_equal(tenant, "ten_01JBX3K6P2M9Q4R7S8T0V1W2Y3");
    assert_int_equal(map("/demo/console/", file, tenant), STATIC_CONSOLE);
    assert_string_equal(file, "demo/console/index.html");
    assert_int_equal(map("/demo/console", file, tenant), STATIC_CONSOLE_REDIRECT);
}

static void test_map_refuses_traversal_and_odd_paths(void **state)
{
    (void)state;
    char file[256], tenant[64];
    const char *bad[] = {
        "/assets/../viewer/index.html",
        "/assets/..",
        "/assets/./x.js",
        "/assets//x.js",
        "/assets/",
        "/assets",
        "/assets/a/",
        "/assets/a\\..\\b",
        "/assets/a\x01",
        "/viewer/",
        "/viewer/ten_x/extra",
        "/viewer/..",
        "/sdk/v1/cobrowse.js/",
        "/sdk/v1/../v1/cobrowse.js",
        "/sdk/v2/cobrowse.js",
        "/demo/site/",
        "/demo/console/index.html",
        "/v1/tenants",
        "",
        "assets/x.js",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (map(bad[i], file, tenant) != STATIC_NONE)
            fail_msg("mapped %s", bad[i]);
    assert_int_equal(static_map(NULL, file, 256, tenant, 64), STATIC_NONE);
}

static void test_map_refuses_what_does_not_fit_the_buffers(void **state)
{
    (void)state;
    char file[16], tenant[8];
    assert_int_equal(
        static_map("/assets/a-very-long-name.js", file, sizeof(file), tenant, sizeof(tenant)),
        STATIC_NONE);
    assert_int_equal(
        static_map("/viewer/ten_0123456789", file, sizeof(file), tenant, sizeof(tenant)),
        STATIC_NONE);
}

static void test_mime_by_extension(void **state)
{
    (void)state;
    assert_string_equal(static_mime("viewer/index.html"), "text/html; charset=utf-8");
    assert_string_equal(static_mime("sdk/v1/cobrowse.js"), "text/javascript; charset=utf-8");
    assert_string_equal(static_mime("assets/a.CSS"), "text/css; charset=utf-8");
    assert_string_equal(static_mime("a.json"), "application/json");
    assert_string_equal(static_mime("a.js.map"), "application/json");
    assert_string_equal(static_mime("logo.svg"), "image/svg+xml");
    assert_string_equal(static_mime("logo.png"), "image/png");
    assert_string_equal(static_mime("f.woff2"), "font/woff2");
    assert_string_equal(static_mime("favicon.ico"), "image/x-icon");
    assert_string_equal(static_mime("robots.txt"), "text/plain; charset=utf-8");
    assert_string_equal(static_mime("noext"), "application/octet-stream");
    assert_string_equal(static_mime("dir.js/noext"), "application/octet-stream");
    assert_string_equal(static_mime(".hidden"), "application/octet-stream");
    assert_string_equal(static_mime("a.exe"), "application/octet-stream");
}

static void test_accept_encoding_gzip(void **state)
{
    (void)state;
    assert_true(static_accepts_gzip("gzip"));
    assert_true(static_accepts_gzip("gzip, deflate, br"));
    assert_true(static_accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    assert_true(static_accepts_gzip("deflate, x-gzip"));
    assert_true(static_accepts_gzip("*"));
    assert_true(static_accepts_gzip("br, *;q=0.1"));
    assert_false(static_accepts_gzip(NULL));
    assert_false(static_accepts_gzip(""));
    assert_false(static_accepts_gzip("identity"));
    assert_false(static_accepts_gzip("br, deflate"));
    assert_false(static_accepts_gzip("gzip;q=0"));
    assert_false(static_accepts_gzip("gzip;q=0.000"));
    assert_false(static_accepts_gzip("*, gzip;q=0"));
    assert_false(static_accepts_gzip("*;q=0"));
    assert_false(static_accepts_gzip("gzipper"));
    assert_false(static_accepts_gzip("gzip;q=abc"));
}

static void test_if_none_match(void **state)
{
    (void)state;
    const char *etag = "\"0123456789abcdef\"";
    assert_true(static_etag_match("\"0123456789abcdef\"", etag));
    assert_true(static_etag_match("W/\"0123456789abcdef\"", etag));
    assert_true(static_etag_match("\"x\", \"0123456789abcdef\"", etag));
    assert_true(static_etag_match(" * ", etag));
    assert_false(static_etag_match("\"0123456789abcdee\"", etag));
    assert_false(static_etag_match("0123456789abcdef", etag));
    assert_false(static_etag_match("", etag));
    assert_false(static_etag_match(NULL, etag));
    assert_false(static_etag_match("\"0123456789abcdef\"x", etag));
}

static void test_origins_fit_for_a_csp_header(void **state)
{
    (void)state;
    assert_true(static_origin_safe("https://shop.example"));
    assert_true(static_origin_safe("http://localhost:3000"));
    assert_true(static_origin_safe("https://[::1]:8443"));
    assert_true(static_origin_safe("ws://127.0.0.1:8081"));
    assert_false(static_origin_safe(NULL));
    assert_false(static_origin_safe(""));
    assert_false(static_origin_safe("https://"));
    assert_false(static_origin_safe("shop.example"));
    assert_false(static_origin_safe("javascript:alert(1)"));
    assert_false(static_origin_safe("https://a.example; script-src *"));
    assert_false(static_origin_safe("https://a.example b.example"));
    assert_false(static_origin_safe("https://a.example'"));
    assert_false(static_origin_safe("https://a.example\""));
    assert_false(static_origin_safe("https://a.example,https://b.example"));
    assert_false(static_origin_safe("https://a.example\r\nX-Evil: 1"));
    assert_false(static_origin_safe("https://a.example/path"));
    assert_false(static_origin_safe("https://*.example"));
    char long_origin[600];
    memset(long_origin, 'a', sizeof(long_origin) - 1);
    memcpy(long_origin, "https://", 8);
    long_origin[sizeof(long_origin) - 1] = '\0';
    assert_false(static_origin_safe(long_origin));
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_counts_files_and_folds_gz_variants(void **state)
{
    (void)state;
    char dir[] = "/tmp/static_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[600];
    snprintf(sub, sizeof(sub), "%s/assets", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(dir, "assets/a.js", "console.log(1)");
    write_file(dir, "assets/a.js.gz", "not really gzip");
    write_file(dir, "assets/lonely.gz", "x");
    write_file(dir, ".hidden", "x");
    struct static_site *s = static_load(dir);
    assert_non_null(s);
    assert_int_equal(static_count(s), 2); /* a.js (with its .gz) and lonely.gz */
    static_free(s);

    struct static_site *empty = static_load(NULL);
    assert_non_null(empty);
    assert_int_equal(static_count(empty), 0);
    static_free(empty);

    char out[256];
    assert_int_equal(static_resolve_root(dir, out, sizeof(out)), 0);
    assert_string_equal(out, dir);
    assert_int_equal(static_resolve_root("/nonexistent/web/root", out, sizeof(out)), -1);

    char cmd[700];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_names_the_documented_files),
        cmocka_unit_test(test_map_refuses_traversal_and_odd_paths),
        cmocka_unit_test(test_map_refuses_what_does_not_fit_the_buffers),
        cmocka_unit_test(test_mime_by_extension),
        cmocka_unit_test(test_accept_encoding_gzip),
        cmocka_unit_test(test_if_none_match),
        cmocka_unit_test(test_origins_fit_for_a_csp_header),
        cmocka_unit_test(test_load_counts_files_and_folds_gz_variants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
