/* api/validate.c: request-body validation (error codes and dotted paths), formats, normalising. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"

static const char *const mode_values[] = {"off", "request", "granted", NULL};

static const struct vfield limit_fields[] = {
    {"concurrent_sessions", V_INT, 0, 0, 1, 1000000, VF_NONE, NULL, NULL, 0},
    {"per_minute", V_INT, 1, 0, 1, 100, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};

static const struct vfield inner_fields[] = {
    {"leaf", V_BOOL, 0, 0, 0, 0, VF_NONE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};

static const struct vfield outer_fields[] = {
    {"inner", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, inner_fields, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};

static const struct vfield fields[] = {
    {"name", V_STRING, 1, 0, 1, 200, VF_NONE, NULL, NULL, 0},
    {"note", V_STRING, 0, 1, 0, 20, VF_NONE, NULL, NULL, 0},
    {"count", V_INT, 0, 0, 1, 100, VF_NONE, NULL, NULL, 0},
    {"big", V_INT, 0, 0, 0, 9007199254740991.0, VF_NONE, NULL, NULL, 0},
    {"flag", V_BOOL, 0, 0, 0, 0, VF_NONE, NULL, NULL, 0},
    {"mode", V_ENUM, 0, 1, 0, 0, VF_NONE, mode_values, NULL, 0},
    {"limits", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, limit_fields, 0},
    {"outer", V_OBJECT, 0, 0, 0, 0, VF_NONE, NULL, outer_fields, 0},
    {"allowed_origins", V_STR_ARRAY, 0, 0, 0, 3, VF_ORIGIN, NULL, NULL, 255},
    {"selectors", V_STR_ARRAY, 0, 0, 0, 10, VF_SELECTOR, NULL, NULL, 20},
    {"modes", V_STR_ARRAY, 0, 0, 0, 4, VF_NONE, mode_values, NULL, 20},
    {"custom", V_FREE_OBJECT, 0, 0, 0, 3, VF_NONE, NULL, NULL, 0},
    {"email", V_STRING, 0, 1, 3, 320, VF_EMAIL, NULL, NULL, 0},
    {"color", V_STRING, 0, 1, 7, 7, VF_COLOR, NULL, NULL, 0},
    {"logo_url", V_STRING, 0, 1, 1, 2048, VF_HTTPS_URL, NULL, NULL, 0},
    {"origin", V_STRING, 0, 0, 1, 255, VF_ORIGIN, NULL, NULL, 0},
    {"selector", V_STRING, 0, 0, 1, 200, VF_SELECTOR, NULL, NULL, 0},
    {"at", V_STRING, 0, 0, 1, 64, VF_DATETIME, NULL, NULL, 0},
    {"scope", V_STRING, 0, 0, 1, 64, VF_SCOPE, NULL, NULL, 0},
    {NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, 0},
};

/* Parses a body the way the server does, validates it against `fields`, frees it. */
static int check(const char *body, struct verror *err)
{
    json_error_t jerr;
    json_t *obj = json_loads(body, JSON_DECODE_INT_AS_REAL, &jerr);
    if (obj == NULL)
        fail_msg("test body does not parse: %s (%s)", body, jerr.text);
    int rc = validate_object(obj, fields, err);
    json_decref(obj);
    return rc;
}

static void assert_ok(const char *body)
{
    struct verror err;
    if (check(body, &err) != 0)
        fail_msg("expected %s to pass, got %s at \"%s\": %s", body, err.code, err.field,
                 err.detail);
}

static void assert_err(const char *body, const char *code, const char *field)
{
    struct verror err;
    if (check(body, &err) != -1)
        fail_msg("expected %s to fail with %s at %s, but it passed", body, code, field);
    assert_int_equal(err.status, 422);
    assert_non_null(err.code);
    if (strcmp(err.code, code) != 0 || strcmp(err.field, field) != 0)
        fail_msg("%s: expected %s at \"%s\", got %s at \"%s\"", body, code, field, err.code,
                 err.field);
    assert_true(strlen(err.detail) > 0);
}

#define INVALID(body, field) assert_err(body, "invalid_field", field)

/* Builds {"name":"x", "<key>": "<value>"} with a string value. */
static void assert_string_field(const char *key, const char *value, int ok)
{
    json_t *obj = json_pack("{s:s, s:s}", "name", "x", key, value);
    assert_non_null(obj);
    struct verror err;
    int rc = validate_object(obj, fields, &err);
    json_decref(obj);
    if (ok && rc != 0)
        fail_msg("expected %s=\"%s\" to pass, got %s: %s", key, value, err.code, err.detail);
    if (!ok && rc == 0)
        fail_msg("expected %s=\"%s\" to be rejected", key, value);
    if (!ok) {
        assert_string_equal(err.code, "invalid_field");
        assert_string_equal(err.field, key);
    }
}

static void test_minimal_valid_body_passes(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"Acme\"}");
    assert_ok("{\"name\":\"Acme\",\"count\":5,\"flag\":true,\"mode\":\"off\","
              "\"limits\":{\"per_minute\":10,\"concurrent_sessions\":3},"
              "\"outer\":{\"inner\":{\"leaf\":false}},"
              "\"allowed_origins\":[\"https://a.example\",\"http://localhost:3000\"],"
              "\"custom\":{\"plan\":\"gold\",\"seats\":5,\"vip\":true}}");
}

static void test_string_array_with_values_accepts_only_them(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"x\",\"modes\":[]}");
    assert_ok("{\"name\":\"x\",\"modes\":[\"off\",\"granted\"]}");
    INVALID("{\"name\":\"x\",\"modes\":[\"off\",\"loud\"]}", "modes.1");
    INVALID("{\"name\":\"x\",\"modes\":[\"Off\"]}", "modes.0");
    INVALID("{\"name\":\"x\",\"modes\":[\"off\",\"off \"]}", "modes.1");
}

static void test_non_object_body_is_invalid(void **state)
{
    (void)state;
    struct verror err;
    json_t *arr = json_array();
    assert_int_equal(validate_object(arr, fields, &err), -1);
    assert_string_equal(err.code, "invalid_field");
    assert_int_equal(err.status, 422);
    json_decref(arr);
}

static void test_unknown_top_level_field_is_reported_by_name(void **state)
{
    (void)state;
    assert_err("{\"name\":\"x\",\"nmae\":\"y\"}", "unknown_field", "nmae");
}

static void test_unknown_nested_field_has_dotted_path(void **state)
{
    (void)state;
    assert_err("{\"name\":\"x\",\"limits\":{\"per_minute\":1,\"bogus\":1}}", "unknown_field",
               "limits.bogus");
    assert_err("{\"name\":\"x\",\"outer\":{\"inner\":{\"leaf\":true,\"deep\":1}}}", "unknown_field",
               "outer.inner.deep");
}

static void test_missing_required_field_is_reported(void **state)
{
    (void)state;
    assert_err("{}", "missing_field", "name");
    assert_err("{\"count\":3}", "missing_field", "name");
}

static void test_missing_required_nested_field_has_dotted_path(void **state)
{
    (void)state;
    assert_err("{\"name\":\"x\",\"limits\":{}}", "missing_field", "limits.per_minute");
    assert_ok("{\"name\":\"x\",\"limits\":{\"per_minute\":1}}");
}

static void test_wrong_types_are_invalid(void **state)
{
    (void)state;
    INVALID("{\"name\":5}", "name");
    INVALID("{\"name\":[\"x\"]}", "name");
    INVALID("{\"name\":\"x\",\"count\":\"5\"}", "count");
    INVALID("{\"name\":\"x\",\"count\":true}", "count");
    INVALID("{\"name\":\"x\",\"flag\":1}", "flag");
    INVALID("{\"name\":\"x\",\"flag\":\"true\"}", "flag");
    INVALID("{\"name\":\"x\",\"limits\":[]}", "limits");
    INVALID("{\"name\":\"x\",\"limits\":\"a\"}", "limits");
    INVALID("{\"name\":\"x\",\"allowed_origins\":\"https://a.example\"}", "allowed_origins");
    INVALID("{\"name\":\"x\",\"allowed_origins\":[5]}", "allowed_origins.0");
    INVALID("{\"name\":\"x\",\"custom\":[]}", "custom");
    INVALID("{\"name\":\"x\",\"limits\":{\"per_minute\":\"1\"}}", "limits.per_minute");
}

static void test_null_for_non_nullable_field_is_invalid(void **state)
{
    (void)state;
    INVALID("{\"name\":null}", "name");
    INVALID("{\"name\":\"x\",\"count\":null}", "count");
    INVALID("{\"name\":\"x\",\"limits\":null}", "limits");
}

static void test_null_for_nullable_field_is_accepted(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"x\",\"note\":null}");
    assert_ok("{\"name\":\"x\",\"mode\":null,\"email\":null,\"color\":null,\"logo_url\":null}");
}

static void test_int_accepts_integral_values_in_range(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"x\",\"count\":1}");
    assert_ok("{\"name\":\"x\",\"count\":100}");
    assert_ok("{\"name\":\"x\",\"count\":3.0}");
    assert_ok("{\"name\":\"x\",\"count\":1e2}");
    assert_ok("{\"name\":\"x\",\"big\":9007199254740991}");
}

static void test_int_rejects_fraction(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"count\":1.5}", "count");
    INVALID("{\"name\":\"x\",\"count\":99.999}", "count");
}

static void test_int_rejects_below_min(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"count\":-1}", "count");
    INVALID("{\"name\":\"x\",\"count\":0}", "count");
}

static void test_int_rejects_above_max(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"count\":101}", "count");
    INVALID("{\"name\":\"x\",\"count\":1e300}", "count");
    INVALID("{\"name\":\"x\",\"count\":-1e300}", "count");
}

static void test_int_rejects_huge_integers_beyond_int64(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"count\":9223372036854775808}", "count"); /* 2^63 */
    INVALID("{\"name\":\"x\",\"big\":9223372036854775808}", "big");
    INVALID("{\"name\":\"x\",\"big\":18446744073709551616}", "big"); /* 2^64 */
    INVALID("{\"name\":\"x\",\"big\":-9223372036854775809}", "big");
    INVALID("{\"name\":\"x\",\"big\":9007199254740993}", "big"); /* max + 2 */
}

static void test_int_error_in_nested_object_has_dotted_path(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"limits\":{\"per_minute\":1,\"concurrent_sessions\":0}}",
            "limits.concurrent_sessions");
    INVALID("{\"name\":\"x\",\"limits\":{\"per_minute\":1.5}}", "limits.per_minute");
}

static void test_string_length_is_counted_in_code_points(void **state)
{
    (void)state;
    /* 200 x U+00E9 is 400 bytes but 200 characters: fits max 200 */
    char e_acute[2 * 201 + 1];
    for (int i = 0; i < 201; i++)
        memcpy(e_acute + 2 * i, "\xc3\xa9", 2);
    e_acute[2 * 200] = '\0';
    assert_string_field("name", e_acute, 1);
    e_acute[2 * 200] = '\xc3'; /* 201 characters */
    e_acute[2 * 201] = '\0';
    assert_string_field("name", e_acute, 0);
    /* 4-byte characters count once too */
    char emoji[4 * 200 + 1];
    for (int i = 0; i < 200; i++)
        memcpy(emoji + 4 * i, "\xf0\x9f\x98\x80", 4);
    emoji[4 * 200] = '\0';
    assert_string_field("name", emoji, 1);
}

static void test_string_length_bounds_in_ascii(void **state)
{
    (void)state;
    char s[202];
    memset(s, 'a', 201);
    s[200] = '\0';
    assert_string_field("name", s, 1);
    s[200] = 'a';
    s[201] = '\0';
    assert_string_field("name", s, 0);
    assert_string_field("name", "", 0);          /* min 1 */
    assert_ok("{\"name\":\"x\",\"note\":\"\"}"); /* min 0 */
}

static void test_string_with_embedded_nul_is_invalid(void **state)
{
    (void)state;
    json_t *obj = json_object();
    json_object_set_new(obj, "name", json_stringn("a\0b", 3));
    struct verror err;
    assert_int_equal(validate_object(obj, fields, &err), -1);
    assert_string_equal(err.code, "invalid_field");
    assert_string_equal(err.field, "name");
    json_decref(obj);
}

static void test_enum_accepts_listed_values_only(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"x\",\"mode\":\"off\"}");
    assert_ok("{\"name\":\"x\",\"mode\":\"granted\"}");
    INVALID("{\"name\":\"x\",\"mode\":\"on\"}", "mode");
    INVALID("{\"name\":\"x\",\"mode\":\"OFF\"}", "mode");
    INVALID("{\"name\":\"x\",\"mode\":\"\"}", "mode");
    INVALID("{\"name\":\"x\",\"mode\":1}", "mode");
    struct verror err;
    assert_int_equal(check("{\"name\":\"x\",\"mode\":\"on\"}", &err), -1);
    assert_non_null(strstr(err.detail, "off, request, granted"));
}

static void test_origin_format_accepts_scheme_host_port(void **state)
{
    (void)state;
    assert_int_equal(validate_origin("https://a.example"), 1);
    assert_int_equal(validate_origin("http://localhost:3000"), 1);
    assert_int_equal(validate_origin("https://www.example.com:443"), 1);
    assert_int_equal(validate_origin("https://a-b.example:65535"), 1);
    assert_string_field("origin", "https://a.example", 1);
}

static void test_origin_format_rejects_path_scheme_empty_host_bad_port(void **state)
{
    (void)state;
    assert_int_equal(validate_origin("https://a.example/path"), 0);
    assert_int_equal(validate_origin("https://a.example/"), 0);
    assert_int_equal(validate_origin("ftp://x"), 0);
    assert_int_equal(validate_origin("https://"), 0);
    assert_int_equal(validate_origin("https://a:99999"), 0);
    assert_int_equal(validate_origin("https://a:65536"), 0);
    assert_int_equal(validate_origin("https://a:0"), 0);
    assert_int_equal(validate_origin("https://a:"), 0);
    assert_int_equal(validate_origin("https://a:80x"), 0);
    assert_int_equal(validate_origin("https://a.example?q=1"), 0);
    assert_int_equal(validate_origin("https://user@a.example"), 0);
    assert_int_equal(validate_origin("https://.example"), 0);
    assert_int_equal(validate_origin("a.example"), 0);
    assert_int_equal(validate_origin(""), 0);
    assert_string_field("origin", "https://a.example/path", 0);
}

static void test_email_format(void **state)
{
    (void)state;
    assert_int_equal(validate_email("a@b.co"), 1);
    assert_int_equal(validate_email("first.last+tag@sub.example.com"), 1);
    assert_int_equal(validate_email("no-at.example.com"), 0);
    assert_int_equal(validate_email("@example.com"), 0);
    assert_int_equal(validate_email("a@@example.com"), 0);
    assert_int_equal(validate_email("a@b@example.com"), 0);
    assert_int_equal(validate_email("a@example"), 0);
    assert_int_equal(validate_email("a@.com"), 0);
    assert_int_equal(validate_email("a@example."), 0);
    assert_int_equal(validate_email("a b@example.com"), 0);
    assert_int_equal(validate_email("<a@example.com>"), 0);
    assert_string_field("email", "a@b.co", 1);
    assert_string_field("email", "nope", 0);
}

static void test_color_format_is_hash_and_six_hex_digits(void **state)
{
    (void)state;
    assert_string_field("color", "#1a2b3c", 1);
    assert_string_field("color", "#ABCDEF", 1);
    assert_string_field("color", "#12345g", 0);
    assert_string_field("color", "1a2b3c0", 0);
    assert_string_field("color", "#1a2b3", 0);
    assert_string_field("color", "#1a2b3c4", 0);
    assert_string_field("color", "red", 0);
}

static void test_https_url_format(void **state)
{
    (void)state;
    assert_int_equal(validate_https_url("https://cdn.example.com/logo.png"), 1);
    assert_int_equal(validate_https_url("https://cdn.example.com/a?b=c#d"), 1);
    assert_int_equal(validate_https_url("http://localhost:8080/logo.png"), 1);
    assert_int_equal(validate_https_url("http://127.0.0.1/logo.png"), 1);
    assert_int_equal(validate_https_url("http://cdn.example.com/logo.png"), 0);
    assert_int_equal(validate_https_url("javascript:alert(1)"), 0);
    assert_int_equal(validate_https_url("data:image/png;base64,AAAA"), 0);
    assert_int_equal(validate_https_url("https://"), 0);
    assert_int_equal(validate_https_url("https:///path"), 0);
    assert_int_equal(validate_https_url("https://a.example/x y"), 0);
    assert_int_equal(validate_https_url("https://a.example/\"onerror=\""), 0);
    assert_int_equal(validate_https_url("https://a.example/<script>"), 0);
    assert_int_equal(validate_https_url("//a.example/logo.png"), 0);
    assert_string_field("logo_url", "https://cdn.example.com/logo.png", 1);
    assert_string_field("logo_url", "http://cdn.example.com/logo.png", 0);
}

static void test_selector_format_rejects_css_block_characters(void **state)
{
    (void)state;
    assert_string_field("selector", "input[type=password], .secret > span", 1);
    assert_string_field("selector", "a{color:red}", 0);
    assert_string_field("selector", "a}", 0);
    assert_string_field("selector", "a;b", 0);
}

static void test_datetime_and_scope_formats(void **state)
{
    (void)state;
    assert_string_field("at", "2026-11-25T10:00:00Z", 1);
    assert_string_field("at", "2026-11-25", 0);
    assert_string_field("scope", "sessions:write", 1);
    assert_string_field("scope", "agent_tokens:write", 1);
    assert_string_field("scope", "sessions:admin", 0);
}

static void test_array_accepts_up_to_max_items(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"x\",\"allowed_origins\":[]}");
    assert_ok("{\"name\":\"x\",\"allowed_origins\":[\"https://a.example\",\"https://b.example\","
              "\"https://c.example\"]}");
}

static void test_array_rejects_more_than_max_items(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"allowed_origins\":[\"https://a.example\",\"https://b.example\","
            "\"https://c.example\",\"https://d.example\"]}",
            "allowed_origins");
}

static void test_array_item_errors_carry_the_item_index(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"allowed_origins\":[\"https://a.example\",\"https://b.example\","
            "\"https://c.example/path\"]}",
            "allowed_origins.2");
    INVALID("{\"name\":\"x\",\"allowed_origins\":[\"ftp://a\"]}", "allowed_origins.0");
    INVALID("{\"name\":\"x\",\"allowed_origins\":[\"https://a.example\",\"\"]}",
            "allowed_origins.1");
    INVALID("{\"name\":\"x\",\"allowed_origins\":[null]}", "allowed_origins.0");
    INVALID("{\"name\":\"x\",\"selectors\":[\".ok\",\"bad{\"]}", "selectors.1");
}

static void test_array_item_length_limit(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"x\",\"selectors\":[\"12345678901234567890\"]}");
    INVALID("{\"name\":\"x\",\"selectors\":[\"123456789012345678901\"]}", "selectors.0");
}

static void test_free_object_accepts_scalar_values(void **state)
{
    (void)state;
    assert_ok("{\"name\":\"x\",\"custom\":{}}");
    assert_ok("{\"name\":\"x\",\"custom\":{\"a\":\"s\",\"b\":1.5,\"c\":false}}");
    assert_ok("{\"name\":\"x\",\"custom\":{\"a\":null,\"b\":-3,\"c\":true}}");
}

static void test_free_object_rejects_more_than_max_keys(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"custom\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4}}", "custom");
}

static void test_free_object_rejects_nested_values(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"custom\":{\"a\":1,\"nested\":{\"b\":2}}}", "custom.nested");
    INVALID("{\"name\":\"x\",\"custom\":{\"list\":[1,2]}}", "custom.list");
}

static void test_free_object_limits_value_size_and_key_length(void **state)
{
    (void)state;
    INVALID("{\"name\":\"x\",\"custom\":{\"n\":1e16}}", "custom.n");
    INVALID("{\"name\":\"x\",\"custom\":{\"\":1}}", "custom.");

    json_t *obj = json_pack("{s:s}", "name", "x");
    json_t *custom = json_object();
    json_object_set_new(obj, "custom", custom);
    char *long_value = malloc(1002);
    memset(long_value, 'v', 1001);
    long_value[1001] = '\0';
    char key[102];
    memset(key, 'k', 101);
    key[101] = '\0';
    struct verror err;

    long_value[1000] = '\0'; /* 1000 chars: ok */
    json_object_set_new(custom, "v", json_string(long_value));
    assert_int_equal(validate_object(obj, fields, &err), 0);
    long_value[1000] = 'v'; /* 1001 chars: too long */
    json_object_set_new(custom, "v", json_string(long_value));
    assert_int_equal(validate_object(obj, fields, &err), -1);
    assert_string_equal(err.field, "custom.v");
    json_object_del(custom, "v");

    key[100] = '\0'; /* 100-char key: ok */
    json_object_set_new(custom, key, json_true());
    assert_int_equal(validate_object(obj, fields, &err), 0);
    json_object_del(custom, key);
    key[100] = 'k'; /* 101-char key: too long */
    json_object_set_new(custom, key, json_true());
    assert_int_equal(validate_object(obj, fields, &err), -1);
    assert_string_equal(err.code, "invalid_field");

    free(long_value);
    json_decref(obj);
}

static void test_normalize_turns_integral_reals_into_integers(void **state)
{
    (void)state;
    json_t *in = json_loads("{\"a\":3.0,\"b\":1.5,\"c\":[2,\"s\",{\"d\":-7}],\"e\":true,\"f\":null,"
                            "\"g\":1e300}",
                            JSON_DECODE_INT_AS_REAL, NULL);
    assert_non_null(in);
    assert_true(json_is_real(json_object_get(in, "a")));
    json_t *out = validate_normalize(in);
    assert_non_null(out);

    json_t *a = json_object_get(out, "a");
    assert_true(json_is_integer(a));
    assert_int_equal(json_integer_value(a), 3);
    json_t *b = json_object_get(out, "b");
    assert_true(json_is_real(b));
    assert_true(json_real_value(b) == 1.5);
    json_t *c = json_object_get(out, "c");
    assert_true(json_is_integer(json_array_get(c, 0)));
    assert_string_equal(json_string_value(json_array_get(c, 1)), "s");
    json_t *d = json_object_get(json_array_get(c, 2), "d");
    assert_true(json_is_integer(d));
    assert_int_equal(json_integer_value(d), -7);
    assert_true(json_is_true(json_object_get(out, "e")));
    assert_true(json_is_null(json_object_get(out, "f")));
    assert_true(json_is_real(json_object_get(out, "g"))); /* too big to be an exact integer */

    char *dump = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(strstr(dump, "\"a\":3,"));
    free(dump);

    /* the input is left untouched */
    assert_true(json_is_real(json_object_get(in, "a")));
    json_decref(out);
    json_decref(in);
}

static void test_utf8_length_counts_code_points(void **state)
{
    (void)state;
    assert_int_equal(validate_utf8_length(""), 0);
    assert_int_equal(validate_utf8_length("abc"), 3);
    assert_int_equal(validate_utf8_length("caf\xc3\xa9"), 4);
    assert_int_equal(validate_utf8_length("\xe2\x82\xac\xf0\x9f\x98\x80"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_valid_body_passes),
        cmocka_unit_test(test_non_object_body_is_invalid),
        cmocka_unit_test(test_unknown_top_level_field_is_reported_by_name),
        cmocka_unit_test(test_unknown_nested_field_has_dotted_path),
        cmocka_unit_test(test_missing_required_field_is_reported),
        cmocka_unit_test(test_missing_required_nested_field_has_dotted_path),
        cmocka_unit_test(test_wrong_types_are_invalid),
        cmocka_unit_test(test_null_for_non_nullable_field_is_invalid),
        cmocka_unit_test(test_null_for_nullable_field_is_accepted),
        cmocka_unit_test(test_int_accepts_integral_values_in_range),
        cmocka_unit_test(test_int_rejects_fraction),
        cmocka_unit_test(test_int_rejects_below_min),
        cmocka_unit_test(test_int_rejects_above_max),
        cmocka_unit_test(test_int_rejects_huge_integers_beyond_int64),
        cmocka_unit_test(test_int_error_in_nested_object_has_dotted_path),
        cmocka_unit_test(test_string_length_is_counted_in_code_points),
        cmocka_unit_test(test_string_length_bounds_in_ascii),
        cmocka_unit_test(test_string_with_embedded_nul_is_invalid),
        cmocka_unit_test(test_enum_accepts_listed_values_only),
        cmocka_unit_test(test_origin_format_accepts_scheme_host_port),
        cmocka_unit_test(test_origin_format_rejects_path_scheme_empty_host_bad_port),
        cmocka_unit_test(test_email_format),
        cmocka_unit_test(test_color_format_is_hash_and_six_hex_digits),
        cmocka_unit_test(test_https_url_format),
        cmocka_unit_test(test_selector_format_rejects_css_block_characters),
        cmocka_unit_test(test_datetime_and_scope_formats),
        cmocka_unit_test(test_array_accepts_up_to_max_items),
        cmocka_unit_test(test_array_rejects_more_than_max_items),
        cmocka_unit_test(test_array_item_errors_carry_the_item_index),
        cmocka_unit_test(test_array_item_length_limit),
        cmocka_unit_test(test_free_object_accepts_scalar_values),
        cmocka_unit_test(test_free_object_rejects_more_than_max_keys),
        cmocka_unit_test(test_free_object_rejects_nested_values),
        cmocka_unit_test(test_free_object_limits_value_size_and_key_length),
        cmocka_unit_test(test_normalize_turns_integral_reals_into_integers),
        cmocka_unit_test(test_utf8_length_counts_code_points),
        cmocka_unit_test(test_string_array_with_values_accepts_only_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
