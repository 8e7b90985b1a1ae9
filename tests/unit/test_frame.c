/* test_frame.c: preamble and frame codec (src/wire/frame.c), with each
 * malformed case of docs/protocol.md by name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/frame.h"

static const lp_limits_t lim = LP_LIMITS_DEFAULT;
static const lp_limits_t hello_lim = LP_LIMITS_HELLO;

/* A buffer holding a frame with the given lengths and raw header bytes. */
static lp_buf_t *raw_frame(uint32_t hlen, uint32_t plen, const char *header, size_t n)
{
    lp_buf_t *b = lp_buf_new(1u << 20);

    assert_int_equal(lp_buf_put_u32(b, hlen), 0);
    assert_int_equal(lp_buf_put_u32(b, plen), 0);
    assert_int_equal(lp_buf_put(b, header, n), 0);
    return b;
}
#define RAW(h, p, lit) raw_frame(h, p, lit, sizeof(lit) - 1)
/* A frame whose header is exactly the literal. */
#define HDR(lit) RAW(sizeof(lit) - 1, 0, lit)

/* Decoding b fails with want, and b is left exactly as it was. */
static void assert_decode_fails(lp_buf_t *b, const lp_limits_t *l, int want)
{
    size_t len = lp_buf_len(b);
    uint8_t copy[256];
    lp_frame_t f = {0};

    memcpy(copy, lp_buf_data(b), len < sizeof(copy) ? len : sizeof(copy));
    assert_int_equal(lp_frame_decode(b, l, &f), want);
    assert_int_equal(lp_buf_len(b), len);
    assert_memory_equal(lp_buf_data(b), copy, len < sizeof(copy) ? len : sizeof(copy));
    assert_null(f.header);
    lp_buf_free(b);
}

static void encode_then_decode(void **state)
{
    lp_buf_t *b = lp_buf_new(1u << 20);
    json_t *h = json_pack("{s:s,s:i,s:s}", "op", "eval", "id", 7, "session", "1");
    lp_frame_t f = {0};

    assert_int_equal(lp_frame_encode(b, h, "1+1", 3, &lim), 0);
    assert_int_equal(lp_frame_decode(b, &lim, &f), 0);
    assert_true(json_equal(f.header, h));
    assert_int_equal(f.payload_len, 3);
    assert_memory_equal(f.payload, "1+1", 3);
    assert_int_equal(lp_buf_len(b), 0);
    lp_frame_clear(&f);
    lp_frame_clear(&f); /* clearing twice is harmless */
    json_decref(h);
    lp_buf_free(b);
}

static void exact_bytes_of_ping(void **state)
{
    /* docs/protocol.md section 3 gives these 28 bytes. */
    static const uint8_t want[] = "\x00\x00\x00\x14\x00\x00\x00\x00{\"op\":\"ping\",\"id\":1}";
    lp_buf_t *b = lp_buf_new(1024);
    json_t *h = json_pack("{s:s,s:i}", "op", "ping", "id", 1);

    assert_int_equal(lp_frame_encode(b, h, NULL, 0, &lim), 0);
    assert_int_equal(lp_buf_len(b), 28);
    assert_memory_equal(lp_buf_data(b), want, 28);
    json_decref(h);
    lp_buf_free(b);
}

static void byte_by_byte_feeding(void **state)
{
    lp_buf_t *whole = lp_buf_new(1u << 20), *in = lp_buf_new(1u << 20);
    json_t *h = json_pack("{s:s,s:i}", "op", "ping", "id", 3);
    lp_frame_t f = {0};
    size_t n;

    assert_int_equal(lp_frame_encode(whole, h, "payload", 7, &lim), 0);
    n = lp_buf_len(whole);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lp_frame_decode(in, &lim, &f), LP_WIRE_EAGAIN);
        assert_int_equal(lp_buf_len(in), i); /* nothing consumed while incomplete */
        assert_int_equal(lp_buf_put(in, lp_buf_data(whole) + i, 1), 0);
    }
    assert_int_equal(lp_frame_decode(in, &lim, &f), 0);
    assert_true(json_equal(f.header, h));
    lp_frame_clear(&f);
    json_decref(h);
    lp_buf_free(whole);
    lp_buf_free(in);
}

static void truncated_frame(void **state)
{
    assert_decode_fails(RAW(20, 0, "{\"op\":\"pi"), &lim, LP_WIRE_EAGAIN);
    assert_decode_fails(RAW(2, 5, "{}ab"), &lim, LP_WIRE_EAGAIN);
    assert_decode_fails(raw_frame(2, 0, "", 0), &lim, LP_WIRE_EAGAIN);
}

static void length_over_the_limit(void **state)
{
    assert_decode_fails(RAW(LP_WIRE_HEADER_MAX + 1, 0, "{}"), &lim, LP_WIRE_ETOOLARGE);
    assert_decode_fails(RAW(2, LP_WIRE_PAYLOAD_DEFAULT + 1, "{}"), &lim, LP_WIRE_ETOOLARGE);
    assert_decode_fails(RAW(LP_WIRE_HELLO_HEADER_MAX + 1, 0, "{}"), &hello_lim,
                        LP_WIRE_ETOOLARGE);
    assert_decode_fails(RAW(2, 1, "{}x"), &hello_lim, LP_WIRE_ETOOLARGE);
}

static void over_the_limit_is_decided_from_the_prefix(void **state)
{
    /* Only 8 bytes held: no need to wait for a gigabyte to refuse it. */
    assert_decode_fails(raw_frame(0x40000000u, 0, "", 0), &lim, LP_WIRE_ETOOLARGE);
}

static void negative_length(void **state)
{
    /* A signed encoder's -1 is 0xFFFFFFFF: larger than any limit. */
    assert_decode_fails(RAW(0xFFFFFFFFu, 0, "{}"), &lim, LP_WIRE_ETOOLARGE);
    assert_decode_fails(RAW(2, 0x80000000u, "{}"), &lim, LP_WIRE_ETOOLARGE);
}

static void non_number_length(void **state)
{
    /* "12\n" typed as a length is 0x31320A.. : a number, and too large. */
    lp_buf_t *b = lp_buf_new(64);

    assert_int_equal(lp_buf_put(b, "1234\n{}\n", 8), 0);
    assert_decode_fails(b, &lim, LP_WIRE_ETOOLARGE);
}

static void header_too_short(void **state)
{
    assert_decode_fails(raw_frame(0, 0, "", 0), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(RAW(1, 0, "{"), &lim, LP_WIRE_EHEADER);
}

static void header_not_valid_json(void **state)
{
    assert_decode_fails(HDR("{op:}"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("{}x"), &lim, LP_WIRE_EHEADER);
}

static void header_not_an_object(void **state)
{
    assert_decode_fails(HDR("[]"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("null"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("42"), &lim, LP_WIRE_EHEADER);
}

static void header_invalid_utf8(void **state)
{
    assert_decode_fails(HDR("{\"\xff\":1}"), &lim, LP_WIRE_EHEADER);
}

static void header_nul_bytes(void **state)
{
    assert_decode_fails(HDR("{\"a\":\"\0\"}"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("{\"a\":\"\\u0000\"}"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("{}\0"), &lim, LP_WIRE_EHEADER);
    /* jansson alone would read these as {"a":1} and {"a":true} */
    assert_decode_fails(HDR("{\"a\":1\0}"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("{\"a\":true\0}"), &lim, LP_WIRE_EHEADER);
}

static void header_numbers(void **state)
{
    assert_decode_fails(HDR("{\"a\":1.5}"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("{\"a\":1e2}"), &lim, LP_WIRE_EHEADER);
    assert_decode_fails(HDR("{\"a\":99999999999999999999}"), &lim, LP_WIRE_EHEADER);
}

static void header_duplicate_key(void **state)
{
    assert_decode_fails(HDR("{\"a\":1,\"a\":2}"), &lim, LP_WIRE_EHEADER);
}

static void encode_refuses_what_decode_refuses(void **state)
{
    lp_buf_t *b = lp_buf_new(1u << 20);
    json_t *real = json_pack("{s:f}", "x", 1.5);
    json_t *nul = json_object();
    json_t *arr = json_array();
    json_t *ok = json_pack("{s:s}", "op", "ping");
    static char big[LP_WIRE_HEADER_MAX];

    json_object_set_new(nul, "x", json_stringn("a\0b", 3));
    assert_int_equal(lp_frame_encode(b, real, NULL, 0, &lim), LP_WIRE_EHEADER);
    assert_int_equal(lp_frame_encode(b, nul, NULL, 0, &lim), LP_WIRE_EHEADER);
    assert_int_equal(lp_frame_encode(b, arr, NULL, 0, &lim), LP_WIRE_EHEADER);
    assert_int_equal(lp_frame_encode(b, NULL, NULL, 0, &lim), LP_WIRE_EHEADER);
    assert_int_equal(lp_frame_encode(b, ok, big, sizeof(big), &hello_lim), LP_WIRE_ETOOLARGE);
    assert_int_equal(lp_frame_encode(b, ok, NULL, 5, &lim), LP_WIRE_EINVAL);
    memset(big, 'a', sizeof(big) - 1);
    json_object_set_new(ok, "x", json_string(big));
    assert_int_equal(lp_frame_encode(b, ok, NULL, 0, &lim), LP_WIRE_ETOOLARGE);
    assert_int_equal(lp_buf_len(b), 0); /* nothing written by any failure */
    json_decref(real);
    json_decref(nul);
    json_decref(arr);
    json_decref(ok);
    lp_buf_free(b);
}

static void encode_respects_buffer_max(void **state)
{
    lp_buf_t *b = lp_buf_new(20);
    json_t *h = json_pack("{s:s,s:i}", "op", "ping", "id", 1);

    assert_int_equal(lp_frame_encode(b, h, NULL, 0, &lim), LP_WIRE_ELIMIT);
    assert_int_equal(lp_buf_len(b), 0);
    json_decref(h);
    lp_buf_free(b);
}

static void peek_leaves_frame_in_place(void **state)
{
    lp_buf_t *b = lp_buf_new(1024);
    json_t *h = json_pack("{s:s,s:i}", "op", "ping", "id", 1);
    lp_frame_view_t v;

    assert_int_equal(lp_frame_encode(b, h, "xyz", 3, &lim), 0);
    assert_int_equal(lp_frame_peek(b, &lim, &v), 0);
    assert_int_equal(v.frame_len, lp_buf_len(b));
    assert_memory_equal(v.payload, "xyz", 3);
    json_decref(v.header);
    assert_int_equal(lp_buf_consume(b, v.frame_len), 0);
    json_decref(h);
    lp_buf_free(b);
}

static void preamble(void **state)
{
    lp_buf_t *b = lp_buf_new(64);

    assert_int_equal(lp_preamble_decode(b), LP_WIRE_EAGAIN);
    assert_int_equal(lp_buf_put(b, "\0lim", 4), 0);
    assert_int_equal(lp_preamble_decode(b), LP_WIRE_EAGAIN);
    assert_int_equal(lp_buf_len(b), 4);
    assert_int_equal(lp_buf_put(b, "pet\nX", 5), 0);
    assert_int_equal(lp_preamble_decode(b), 0);
    assert_int_equal(lp_buf_len(b), 1);
    lp_buf_reset(b);
    assert_int_equal(lp_preamble_encode(b), 0);
    assert_memory_equal(lp_buf_data(b), "\0limpet\n", 8);
    lp_buf_free(b);
}

static void bad_magic(void **state)
{
    lp_buf_t *b = lp_buf_new(64);

    assert_int_equal(lp_buf_put(b, "\0LIMPET\n", 8), 0);
    assert_int_equal(lp_preamble_decode(b), LP_WIRE_EPREAMBLE);
    assert_int_equal(lp_buf_len(b), 8);
    lp_buf_reset(b);
    /* Refused at the first wrong byte, without waiting for all eight. */
    assert_int_equal(lp_buf_put(b, "\0x", 2), 0);
    assert_int_equal(lp_preamble_decode(b), LP_WIRE_EPREAMBLE);
    lp_buf_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_then_decode),
        cmocka_unit_test(exact_bytes_of_ping),
        cmocka_unit_test(byte_by_byte_feeding),
        cmocka_unit_test(truncated_frame),
        cmocka_unit_test(length_over_the_limit),
        cmocka_unit_test(over_the_limit_is_decided_from_the_prefix),
        cmocka_unit_test(negative_length),
        cmocka_unit_test(non_number_length),
        cmocka_unit_test(header_too_short),
        cmocka_unit_test(header_not_valid_json),
        cmocka_unit_test(header_not_an_object),
        cmocka_unit_test(header_invalid_utf8),
        cmocka_unit_test(header_nul_bytes),
        cmocka_unit_test(header_numbers),
        cmocka_unit_test(header_duplicate_key),
        cmocka_unit_test(encode_refuses_what_decode_refuses),
        cmocka_unit_test(encode_respects_buffer_max),
        cmocka_unit_test(peek_leaves_frame_in_place),
        cmocka_unit_test(preamble),
        cmocka_unit_test(bad_magic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
