/* core/base/frame.h against the frame vectors shared with the browser's protocol module
 * (tests/vectors/frames.json, also read by web/protocol/frame.test.ts): both sides must agree on
 * every byte of the 16-byte header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/crypto.h"
#include "core/base/frame.h"

#ifndef FRAME_VECTORS
#error "FRAME_VECTORS (path of tests/vectors/frames.json) must be defined by CMakeLists.txt"
#endif

static json_t *vectors;

static int load(void **state)
{
    (void)state;
    json_error_t err;
    vectors = json_load_file(FRAME_VECTORS, 0, &err);
    if (vectors == NULL)
        fprintf(stderr, "%s: %s (line %d)\n", FRAME_VECTORS, err.text, err.line);
    return vectors == NULL ? -1 : 0;
}

static int unload(void **state)
{
    (void)state;
    json_decref(vectors);
    return 0;
}

/* Decodes the vector's "hex" into buf; returns its length. */
static size_t unhex(json_t *v, unsigned char *buf, size_t size)
{
    const char *hex = json_string_value(json_object_get(v, "hex"));
    assert_non_null(hex);
    int n = crypto_hex_decode(hex, buf, size);
    assert_true(n >= 0);
    return (size_t)n;
}

static void test_every_valid_vector_parses_to_its_fields(void **state)
{
    (void)state;
    json_t *valid = json_object_get(vectors, "valid");
    assert_true(json_array_size(valid) > 0);
    size_t i;
    json_t *v;
    json_array_foreach(valid, i, v)
    {
        unsigned char buf[256];
        size_t len = unhex(v, buf, sizeof(buf));
        struct frame_header h;
        assert_int_equal(frame_parse(buf, len, &h), 0);
        assert_int_equal(h.version, FRAME_VERSION);
        assert_int_equal(h.kind, json_integer_value(json_object_get(v, "kind")));
        assert_int_equal(h.flags, json_integer_value(json_object_get(v, "flags")));
        assert_true(h.seq == (uint64_t)json_integer_value(json_object_get(v, "seq")));
    }
}

static void test_every_valid_vector_is_written_byte_for_byte(void **state)
{
    (void)state;
    json_t *valid = json_object_get(vectors, "valid");
    size_t i;
    json_t *v;
    json_array_foreach(valid, i, v)
    {
        unsigned char want[256], got[FRAME_HEADER_LEN];
        size_t len = unhex(v, want, sizeof(want));
        assert_true(len >= FRAME_HEADER_LEN);
        frame_write(got, (uint8_t)json_integer_value(json_object_get(v, "kind")),
                    (uint16_t)json_integer_value(json_object_get(v, "flags")),
                    (uint64_t)json_integer_value(json_object_get(v, "seq")));
        assert_memory_equal(got, want, FRAME_HEADER_LEN);
        /* The payload is whatever follows the header. */
        const char *payload = json_string_value(json_object_get(v, "payload_hex"));
        assert_non_null(payload);
        assert_int_equal(len - FRAME_HEADER_LEN, strlen(payload) / 2);
    }
}

static void test_every_invalid_vector_is_rejected(void **state)
{
    (void)state;
    json_t *invalid = json_object_get(vectors, "invalid");
    assert_true(json_array_size(invalid) > 0);
    size_t i;
    json_t *v;
    json_array_foreach(invalid, i, v)
    {
        unsigned char buf[256];
        size_t len = unhex(v, buf, sizeof(buf));
        struct frame_header h;
        if (frame_parse(buf, len, &h) != -1)
            fail_msg("accepted an invalid frame: %s", json_string_value(json_object_get(v, "why")));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_valid_vector_parses_to_its_fields),
        cmocka_unit_test(test_every_valid_vector_is_written_byte_for_byte),
        cmocka_unit_test(test_every_invalid_vector_is_rejected),
    };
    return cmocka_run_group_tests(tests, load, unload);
}
