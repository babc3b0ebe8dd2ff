/* core/proxy/proxy_sign.c, proxy_upload.c, proxy.c: the cap and ref signatures (tampering,
 * expiry, strict base64url), targets, origins, content types and the upload store's bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/proxy/proxy.h"
#include "core/base/b64url.h"
#include "core/proxy/proxy_sign.h"
#include "core/proxy/proxy_upload.h"

#define TEN "ten_01JD3K5Q8W2X7Y9Z0ABCDEFGHJ"
#define SES "ses_01JD3K5Q8W2X7Y9Z0ABCDEFGHJ"
#define NOW 1700000000LL

static unsigned char key[PROXY_KEY_LEN];

static int setup(void **state)
{
    (void)state;
    static const unsigned char secret[32] = {1, 2, 3};
    return proxy_key_derive(secret, sizeof(secret), key);
}

static void make_cap(char *out, int64_t exp)
{
    assert_int_equal(proxy_cap_make(key, TEN, SES, exp, out, PROXY_CAP_MAX), 0);
}

static void test_cap_round_trips_and_names_its_session(void **state)
{
    (void)state;
    char cap[PROXY_CAP_MAX];
    struct proxy_cap c;
    make_cap(cap, NOW + 60);
    assert_int_equal(proxy_cap_verify(key, cap, NOW, &c), PROXY_SIGN_OK);
    assert_string_equal(c.tenant, TEN);
    assert_string_equal(c.session, SES);
    assert_int_equal(c.exp, NOW + 60);
}

static void test_cap_with_any_byte_changed_is_refused(void **state)
{
    (void)state;
    char cap[PROXY_CAP_MAX];
    struct proxy_cap c;
    make_cap(cap, NOW + 60);
    for (size_t i = 0; cap[i]; i++) {
        char t[PROXY_CAP_MAX];
        snprintf(t, sizeof(t), "%s", cap);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_int_not_equal(proxy_cap_verify(key, t, NOW, &c), PROXY_SIGN_OK);
    }
}

/* The MAC's last character carries 2 bits: changing it to another canonical one (A Q g w) still
 * decodes, so only the comparison of every character refuses it. */
static void test_cap_with_another_canonical_last_mac_char_is_refused(void **state)
{
    (void)state;
    char cap[PROXY_CAP_MAX];
    struct proxy_cap c;
    make_cap(cap, NOW + 60);
    size_t last = strlen(cap) - 1;
    const char *canon = "AQgw";
    for (int i = 0; i < 4; i++) {
        if (cap[last] == canon[i])
            continue;
        char t[PROXY_CAP_MAX];
        snprintf(t, sizeof(t), "%s", cap);
        t[last] = canon[i];
        assert_int_equal(proxy_cap_verify(key, t, NOW, &c), PROXY_SIGN_BAD_MAC);
    }
}

static void test_cap_of_another_key_is_refused(void **state)
{
    (void)state;
    unsigned char other[PROXY_KEY_LEN];
    static const unsigned char secret[32] = {9};
    char cap[PROXY_CAP_MAX];
    struct proxy_cap c;
    assert_int_equal(proxy_key_derive(secret, sizeof(secret), other), 0);
    assert_int_equal(proxy_cap_make(other, TEN, SES, NOW + 60, cap, sizeof(cap)), 0);
    assert_int_equal(proxy_cap_verify(key, cap, NOW, &c), PROXY_SIGN_BAD_MAC);
}

static void test_cap_expires_at_its_exp_by_the_wall_clock(void **state)
{
    (void)state;
    char cap[PROXY_CAP_MAX];
    struct proxy_cap c;
    make_cap(cap, NOW + 60);
    assert_int_equal(proxy_cap_verify(key, cap, NOW + 59, &c), PROXY_SIGN_OK);
    assert_int_equal(proxy_cap_verify(key, cap, NOW + 60, &c), PROXY_SIGN_EXPIRED);
}

static void test_cap_with_a_longer_exp_spelling_is_malformed(void **state)
{
    (void)state;
    char cap[PROXY_CAP_MAX], t[PROXY_CAP_MAX + 8];
    struct proxy_cap c;
    make_cap(cap, NOW + 60);
    /* Same value, another spelling ("0" prefix): one cap has one spelling. */
    const char *exp = strstr(cap, ".1700");
    assert_non_null(exp);
    snprintf(t, sizeof(t), "%.*s.0%s", (int)(exp - cap), cap, exp + 1);
    assert_int_equal(proxy_cap_verify(key, t, NOW, &c), PROXY_SIGN_MALFORMED);
    assert_int_equal(proxy_cap_verify(key, "", NOW, &c), PROXY_SIGN_MALFORMED);
    assert_int_equal(proxy_cap_verify(key, "a.b.c.d", NOW, &c), PROXY_SIGN_MALFORMED);
    assert_int_equal(proxy_cap_verify(key, NULL, NOW, &c), PROXY_SIGN_MALFORMED);
}

static void test_ref_binds_tenant_kind_and_target(void **state)
{
    (void)state;
    const char *t1 = "ten_01JD3K5Q8W2X7Y9Z0ABCDEFGHJ", *t2 = "ten_01JD3K5Q8W2X7Y9Z0ABCDEFGHK";
    char ref[PROXY_MAC_CHARS + 1];
    assert_int_equal(proxy_ref_make(key, t1, "asset", "aHR0cDovL2EvYg", ref), 0);
    assert_int_equal(proxy_ref_verify(key, t1, "asset", "aHR0cDovL2EvYg", ref), PROXY_SIGN_OK);
    assert_int_equal(proxy_ref_verify(key, t1, "css", "aHR0cDovL2EvYg", ref), PROXY_SIGN_BAD_MAC);
    assert_int_equal(proxy_ref_verify(key, t2, "asset", "aHR0cDovL2EvYg", ref), PROXY_SIGN_BAD_MAC);
    assert_int_equal(proxy_ref_verify(key, t1, "asset", "aHR0cDovL2EvYw", ref), PROXY_SIGN_BAD_MAC);
    ref[0] = ref[0] == 'A' ? 'B' : 'A';
    assert_int_equal(proxy_ref_verify(key, t1, "asset", "aHR0cDovL2EvYg", ref), PROXY_SIGN_BAD_MAC);
    assert_int_equal(proxy_ref_verify(key, t1, "asset", "aHR0cDovL2EvYg", "short"),
                     PROXY_SIGN_MALFORMED);
}

static void test_base64url_is_strict(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(b64url_decode("YQ", 2, out, sizeof(out)), 1);
    assert_int_equal(b64url_decode("YR", 2, out, sizeof(out)), -1);   /* trailing bits */
    assert_int_equal(b64url_decode("YQ==", 4, out, sizeof(out)), -1); /* padding */
    assert_int_equal(b64url_decode("Y+8", 3, out, sizeof(out)), -1);  /* not url-safe */
    assert_int_equal(b64url_decode("Y", 1, out, sizeof(out)), -1);    /* length */
    assert_int_equal(b64url_decode("YWJj", 4, out, 2), -1);           /* room */
}

static void target_of(const char *url, char *out)
{
    assert_true(proxy_target_encode(url, out, PROXY_TARGET_B64_MAX + 1) >= 0);
}

static void test_target_accepts_only_absolute_http_urls(void **state)
{
    (void)state;
    char b64[PROXY_TARGET_B64_MAX + 1], url[PROXY_URL_MAX + 1];
    const char *good[] = {"http://a.example/x.css", "https://a.example:8443/f.woff2?v=1",
                          "http://127.0.0.1:9/x"};
    const char *bad[] = {"ftp://a.example/x",
                         "javascript:alert(1)",
                         "//a.example/x",
                         "/x.css",
                         "http://user:pw@a.example/",
                         "http://a.example/a b",
                         "file:///etc/passwd",
                         "http://",
                         "a.example/x"};
    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
        target_of(good[i], b64);
        assert_int_equal(proxy_target_decode(b64, url, sizeof(url)), PROXY_SIGN_OK);
        assert_string_equal(url, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        target_of(bad[i], b64);
        assert_int_equal(proxy_target_decode(b64, url, sizeof(url)), PROXY_SIGN_NOT_HTTP);
    }
    assert_int_equal(proxy_target_decode("aHR0cDovL2EvYg==", url, sizeof(url)),
                     PROXY_SIGN_MALFORMED);
}

static void test_target_is_bounded_at_2048_bytes(void **state)
{
    (void)state;
    char long_url[PROXY_URL_MAX + 2], b64[PROXY_TARGET_B64_MAX + 8], url[PROXY_URL_MAX + 1];
    memset(long_url, 'a', sizeof(long_url) - 1);
    long_url[sizeof(long_url) - 1] = '\0';
    memcpy(long_url, "http://a.example/", 17);
    long_url[PROXY_URL_MAX] = '\0'; /* exactly 2048 */
    target_of(long_url, b64);
    assert_int_equal(proxy_target_decode(b64, url, sizeof(url)), PROXY_SIGN_OK);
    long_url[PROXY_URL_MAX] = 'a'; /* 2049 */
    assert_int_equal(proxy_target_encode(long_url, b64, sizeof(b64)), -1);
    char big[PROXY_TARGET_B64_MAX + 8];
    memset(big, 'Q', PROXY_TARGET_B64_MAX + 4);
    big[PROXY_TARGET_B64_MAX + 4] = '\0';
    assert_int_equal(proxy_target_decode(big, url, sizeof(url)), PROXY_SIGN_MALFORMED);
}

static void test_origin_is_lowercase_without_default_port(void **state)
{
    (void)state;
    char o[256];
    assert_int_equal(proxy_origin_of("HTTPS://Shop.Example:443/a.css", o, sizeof(o)), 0);
    assert_string_equal(o, "https://shop.example");
    assert_int_equal(proxy_origin_of("http://127.0.0.2:8080/x", o, sizeof(o)), 0);
    assert_string_equal(o, "http://127.0.0.2:8080");
    assert_int_equal(proxy_origin_of("http://[::1]:80/x", o, sizeof(o)), 0);
    assert_string_equal(o, "http://[::1]");
}

static void test_upload_store_replaces_and_bounds_per_session(void **state)
{
    (void)state;
    struct proxy_uploads *u = proxy_uploads_new(64u << 20);
    size_t len = 0;
    assert_int_equal(proxy_uploads_put(u, TEN, SES, "http://a/x.css", "a{}", 3, NOW), 0);
    assert_int_equal(proxy_uploads_put(u, TEN, SES, "http://a/x.css", "b{}", 3, NOW), 0);
    char *t = proxy_uploads_get(u, TEN, SES, "http://a/x.css", NOW, &len);
    assert_string_equal(t, "b{}");
    free(t);
    /* Another session of the same tenant does not see it. */
    assert_null(
        proxy_uploads_get(u, TEN, "ses_01JD3K5Q8W2X7Y9Z0ABCDEFGHK", "http://a/x.css", NOW, &len));
    for (int i = 0; i < PROXY_UPLOAD_SESSION_SHEETS + 5; i++) {
        char url[64];
        snprintf(url, sizeof(url), "http://a/%d.css", i);
        assert_int_equal(proxy_uploads_put(u, TEN, SES, url, "c{}", 3, NOW), 0);
    }
    struct proxy_uploads_stats st;
    proxy_uploads_stats(u, &st);
    assert_int_equal(st.sheets, PROXY_UPLOAD_SESSION_SHEETS);
    assert_null(proxy_uploads_get(u, TEN, SES, "http://a/0.css", NOW, &len)); /* oldest gone */
    assert_null(proxy_uploads_get(u, TEN, SES, "http://a/70.css",
                                  NOW + PROXY_UPLOAD_TTL_SECONDS + 1, &len));
    proxy_uploads_free(u);
}

static void test_upload_store_bounds_its_bytes_overall(void **state)
{
    (void)state;
    struct proxy_uploads *u = proxy_uploads_new(10000);
    static char text[4000];
    memset(text, 'x', sizeof(text));
    char ses[] = "ses_01JD3K5Q8W2X7Y9Z0ABCDEFGH0";
    for (int i = 0; i < 5; i++) {
        ses[sizeof(ses) - 2] = (char)('0' + i);
        assert_int_equal(proxy_uploads_put(u, TEN, ses, "http://a/x.css", text, sizeof(text), NOW),
                         0);
    }
    struct proxy_uploads_stats st;
    proxy_uploads_stats(u, &st);
    assert_true(st.bytes <= 10000);
    assert_int_equal(st.sheets, 2);
    assert_int_equal(proxy_uploads_put(u, TEN, ses, "http://a/y.css", text, 10001, NOW), 1);
    proxy_uploads_free(u);
}

static void test_content_types_per_kind(void **state)
{
    (void)state;
    assert_true(proxy_type_allowed(PROXY_KIND_CSS, "text/css"));
    assert_true(proxy_type_allowed(PROXY_KIND_CSS, "Text/CSS; charset=utf-8"));
    assert_false(proxy_type_allowed(PROXY_KIND_CSS, "text/html"));
    assert_false(proxy_type_allowed(PROXY_KIND_CSS, NULL));
    assert_true(proxy_type_allowed(PROXY_KIND_ASSET, "image/png"));
    assert_true(proxy_type_allowed(PROXY_KIND_ASSET, "font/woff2"));
    assert_true(proxy_type_allowed(PROXY_KIND_ASSET, "application/font-woff"));
    assert_true(proxy_type_allowed(PROXY_KIND_ASSET, "application/vnd.ms-fontobject"));
    assert_true(proxy_type_allowed(PROXY_KIND_ASSET, "application/octet-stream"));
    assert_false(proxy_type_allowed(PROXY_KIND_ASSET, "text/html"));
    assert_false(proxy_type_allowed(PROXY_KIND_ASSET, "text/javascript"));
    assert_false(proxy_type_allowed(PROXY_KIND_ASSET, "application/javascript"));
    assert_false(proxy_type_allowed(PROXY_KIND_ASSET, "image/"));
    assert_false(proxy_type_allowed(PROXY_KIND_ASSET, "text/css"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_round_trips_and_names_its_session),
        cmocka_unit_test(test_cap_with_any_byte_changed_is_refused),
        cmocka_unit_test(test_cap_with_another_canonical_last_mac_char_is_refused),
        cmocka_unit_test(test_cap_of_another_key_is_refused),
        cmocka_unit_test(test_cap_expires_at_its_exp_by_the_wall_clock),
        cmocka_unit_test(test_cap_with_a_longer_exp_spelling_is_malformed),
        cmocka_unit_test(test_ref_binds_tenant_kind_and_target),
        cmocka_unit_test(test_base64url_is_strict),
        cmocka_unit_test(test_target_accepts_only_absolute_http_urls),
        cmocka_unit_test(test_target_is_bounded_at_2048_bytes),
        cmocka_unit_test(test_origin_is_lowercase_without_default_port),
        cmocka_unit_test(test_upload_store_replaces_and_bounds_per_session),
        cmocka_unit_test(test_upload_store_bounds_its_bytes_overall),
        cmocka_unit_test(test_content_types_per_kind),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
