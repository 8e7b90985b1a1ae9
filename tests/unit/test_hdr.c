/* test_hdr.c: the one header builder: what it writes parses back as the
 * same JSON, strings of every kind survive, and every failure is said. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/frame.h"
#include "wire/hdr.h"

/* Ends h and parses what it wrote; the caller frees the result. */
static json_t *parse(lp_hdr_t *h)
{
    size_t len = 0;
    json_t *v;

    assert_int_equal(lp_hdr_end(h, &len), 0);
    v = json_loadb(h->buf, len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(v);
    assert_int_equal(lp_header_check(v), 0);
    return v;
}

static void fields_parse_back(void **state)
{
    char buf[256];
    lp_hdr_t h;
    json_t *v;

    lp_hdr_begin(&h, buf, sizeof(buf), "done");
    lp_hdr_int(&h, "re", 9007199254740991LL);
    lp_hdr_int(&h, "neg", -5);
    lp_hdr_int(&h, "zero", 0);
    lp_hdr_int(&h, "min", INT64_MIN);
    lp_hdr_str(&h, "status", "ok");
    lp_hdr_bool(&h, "echo", false);
    v = parse(&h);
    assert_string_equal(json_string_value(json_object_get(v, "op")), "done");
    assert_int_equal(json_integer_value(json_object_get(v, "re")), 9007199254740991LL);
    assert_int_equal(json_integer_value(json_object_get(v, "neg")), -5);
    assert_int_equal(json_integer_value(json_object_get(v, "zero")), 0);
    assert_true(json_integer_value(json_object_get(v, "min")) == INT64_MIN);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "ok");
    assert_true(json_is_false(json_object_get(v, "echo")));
    assert_int_equal(json_object_size(v), 7);
    json_decref(v);
}

static void every_string_survives(void **state)
{
    static const char *const cases[] = {
        "", "plain", "quote\" back\\slash", "new\nline\ttab\rcr", "\x01\x1f\x7f",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d", "</script>", "\\u0041",
    };
    char buf[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lp_hdr_t h;
        json_t *v;

        lp_hdr_begin(&h, buf, sizeof(buf), "value");
        lp_hdr_str(&h, "type", cases[i]);
        v = parse(&h);
        assert_string_equal(json_string_value(json_object_get(v, "type")), cases[i]);
        json_decref(v);
    }
}

static void structured_fields_go_through_jansson(void **state)
{
    char buf[256];
    json_t *m = json_pack("[s,s,{s:i}]", "a", "b\"", "n", 3), *v;
    lp_hdr_t h;

    lp_hdr_begin(&h, buf, sizeof(buf), "done");
    lp_hdr_json(&h, "matches", m);
    v = parse(&h);
    assert_true(json_equal(json_object_get(v, "matches"), m));
    json_decref(v);
    json_decref(m);
}

static void failures_are_said(void **state)
{
    char buf[32];
    size_t len = 123;
    json_t *real = json_real(1.5);
    lp_hdr_t h;

    lp_hdr_begin(&h, buf, sizeof(buf), "value");
    lp_hdr_str(&h, "type", "a string that is far too long for 32 bytes");
    assert_int_equal(lp_hdr_end(&h, &len), LP_WIRE_ETOOLARGE);
    assert_int_equal(len, 123); /* untouched */

    lp_hdr_begin(&h, buf, sizeof(buf), "value");
    lp_hdr_str(&h, "type", "\xc3(");           /* not UTF-8 */
    assert_int_equal(lp_hdr_end(&h, &len), LP_WIRE_ETEXT);

    lp_hdr_begin(&h, buf, sizeof(buf), "value");
    lp_hdr_json(&h, "x", real);                  /* reals break the header rules */
    assert_int_equal(lp_hdr_end(&h, &len), LP_WIRE_EHEADER);

    lp_hdr_begin(&h, buf, 10, "value");          /* errors stick: the first one is said */
    lp_hdr_str(&h, "type", "\xff");
    lp_hdr_int(&h, "re", 1);
    assert_int_equal(lp_hdr_end(&h, &len), LP_WIRE_ETOOLARGE);
    json_decref(real);
}

static void exactly_full_fits(void **state)
{
    char buf[64];
    size_t len;
    lp_hdr_t h;

    lp_hdr_begin(&h, buf, sizeof(buf), "ping");
    assert_int_equal(lp_hdr_end(&h, &len), 0);
    assert_int_equal(len, strlen("{\"op\":\"ping\"}"));
    lp_hdr_begin(&h, buf, len, "ping");          /* not one byte to spare */
    assert_int_equal(lp_hdr_end(&h, &len), 0);
    lp_hdr_begin(&h, buf, len - 1, "ping");
    assert_int_equal(lp_hdr_end(&h, &len), LP_WIRE_ETOOLARGE);
}

static void prefix_is_big_endian(void **state)
{
    uint8_t p[LP_WIRE_PREFIX_LEN];
    static const uint8_t want[] = {0x01, 0x02, 0x03, 0x04, 0xff, 0x00, 0x00, 0x01};

    lp_frame_prefix(p, 0x01020304u, 0xff000001u);
    assert_memory_equal(p, want, sizeof(want));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_parse_back),
        cmocka_unit_test(every_string_survives),
        cmocka_unit_test(structured_fields_go_through_jansson),
        cmocka_unit_test(failures_are_said),
        cmocka_unit_test(exactly_full_fits),
        cmocka_unit_test(prefix_is_big_endian),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
