/* test_handshake.c: both sides of the handshake (src/wire/handshake.c) and
 * error frames (src/wire/msg.c, src/wire/errors.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/handshake.h"
#include "wire/msg.h"
#include "wire/ops.h"

static const char *const caps[] = {"repl", "input", NULL};

/* A server identity object; caller owns it. */
static json_t *identity(void)
{
    return json_pack("{s:s,s:i,s:s,s:[s]}", "name", "app", "pid", 42, "python", "3.11.2", "argv",
                     "app.py");
}

static void client_and_server_agree(void **state)
{
    lp_buf_t *c2s = lp_buf_new(1u << 20), *s2c = lp_buf_new(1u << 20);
    lp_hs_t shs = {0}, chs = {0};
    lp_hello_t hello;
    lp_welcome_t w;
    const char *field;
    json_t *server = identity();

    assert_int_equal(lp_hs_client_hello(c2s, "test/1", 0, "s3cret", true, LP_CAP_PAGE), 0);
    assert_int_equal(lp_hs_server_read(&shs, c2s, &hello, &field), 0);
    assert_int_equal(lp_buf_len(c2s), 0);
    assert_int_equal(hello.id, 0);
    assert_int_equal(hello.version, 1);
    assert_int_equal(hello.max_payload, LP_WIRE_PAYLOAD_DEFAULT);
    assert_true(hello.want_session);
    assert_string_equal(hello.client, "test/1");
    assert_string_equal(hello.token, "s3cret");
    assert_int_equal(hello.caps, LP_CAP_PAGE);
    assert_int_equal(lp_hs_server_accept(s2c, &hello, server, caps, 1u << 20, "7"), 0);
    assert_int_equal(lp_hs_client_read(&chs, s2c, &w), 0);
    assert_int_equal(w.version, 1);
    assert_int_equal(w.max_payload, 1u << 20);
    assert_string_equal(w.session, "7");
    assert_true(json_equal(w.server, server));
    assert_int_equal(json_array_size(w.caps), 2);
    lp_welcome_clear(&w);
    lp_welcome_clear(NULL);
    json_decref(server);
    lp_buf_free(c2s);
    lp_buf_free(s2c);
}

static void server_reads_byte_by_byte(void **state)
{
    lp_buf_t *whole = lp_buf_new(1u << 20), *in = lp_buf_new(1u << 20);
    lp_hs_t hs = {0};
    lp_hello_t hello;
    const char *field;
    size_t n;

    assert_int_equal(lp_hs_client_hello(whole, "t", 0, NULL, false, 0), 0);
    n = lp_buf_len(whole);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(lp_buf_put(in, lp_buf_data(whole) + i, 1), 0);
        assert_int_equal(lp_hs_server_read(&hs, in, &hello, &field),
                         i + 1 < n ? LP_WIRE_EAGAIN : 0);
    }
    assert_false(hello.want_session);
    assert_string_equal(hello.token, "");
    lp_buf_free(whole);
    lp_buf_free(in);
}

/* Runs the server on the client bytes data and returns its verdict; the
 * refusal it writes must parse at the client as that same code. */
static int refused_with(const void *data, size_t len)
{
    lp_buf_t *in = lp_buf_new(1u << 20), *out = lp_buf_new(1u << 20);
    lp_hs_t shs = {0}, chs = {0};
    lp_hello_t hello;
    lp_welcome_t w;
    const char *field;
    int r;

    assert_int_equal(lp_buf_put(in, data, len), 0);
    r = lp_hs_server_read(&shs, in, &hello, &field);
    if (r != 0 && r != LP_WIRE_EAGAIN) {
        assert_int_equal(lp_hs_server_refuse(out, r, &hello, "refused for a test", field), 0);
        assert_int_equal(lp_hs_client_read(&chs, out, &w), r);
        assert_string_equal(w.code, lp_wire_err_code(r));
        assert_string_equal(w.message, "refused for a test");
    }
    lp_buf_free(in);
    lp_buf_free(out);
    return r;
}
#define REFUSED(lit) refused_with(lit, sizeof(lit) - 1)
#define PRE "\0limpet\n"

/* The verdict on the preamble and one frame whose header is json. */
static int refused_header(const char *json)
{
    lp_buf_t *b = lp_buf_new(1u << 20);
    int r;

    assert_int_equal(lp_preamble_encode(b), 0);
    assert_int_equal(lp_buf_put_u32(b, (uint32_t)strlen(json)), 0);
    assert_int_equal(lp_buf_put_u32(b, 0), 0);
    assert_int_equal(lp_buf_put(b, json, strlen(json)), 0);
    r = refused_with(lp_buf_data(b), lp_buf_len(b));
    lp_buf_free(b);
    return r;
}

static void frame_before_the_handshake(void **state)
{
    assert_int_equal(refused_header("{\"op\":\"ping\",\"id\":1}"), LP_WIRE_EHANDSHAKE);
    assert_int_equal(refused_header("{}"), LP_WIRE_EHANDSHAKE);
    assert_int_equal(refused_header("{\"op\":\"eval\",\"id\":1,\"session\":\"1\"}"),
                     LP_WIRE_EHANDSHAKE);
}

static void bad_magic_refused(void **state)
{
    assert_int_equal(REFUSED("\0LIMPET\n"), LP_WIRE_EPREAMBLE);
}

static void bad_version_refused(void **state)
{
    static const char json[] = "{\"op\":\"hello\",\"id\":0,\"protocol\":[9],\"client\":\"t\"}";
    lp_buf_t *in = lp_buf_new(1024), *out = lp_buf_new(1u << 20);
    lp_hs_t hs = {0};
    lp_hello_t h;
    lp_frame_t f = {0};
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    const char *field;

    assert_int_equal(refused_header(json), LP_WIRE_EVERSION);
    /* The refusal says which versions we speak, and answers the hello's id. */
    assert_int_equal(lp_preamble_encode(in), 0);
    assert_int_equal(lp_buf_put_u32(in, sizeof(json) - 1), 0);
    assert_int_equal(lp_buf_put_u32(in, 0), 0);
    assert_int_equal(lp_buf_put(in, json, sizeof(json) - 1), 0);
    assert_int_equal(lp_hs_server_read(&hs, in, &h, &field), LP_WIRE_EVERSION);
    assert_int_equal(lp_hs_server_refuse(out, LP_WIRE_EVERSION, &h, NULL, NULL), 0);
    assert_int_equal(lp_preamble_decode(out), 0);
    assert_int_equal(lp_frame_decode(out, &lim, &f), 0);
    assert_int_equal(json_integer_value(json_object_get(f.header, "re")), 0);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(f.header, "supported"), 0)),
                     1);
    lp_frame_clear(&f);
    lp_buf_free(in);
    lp_buf_free(out);
}

static void bad_hello_fields_refused(void **state)
{
    assert_int_equal(refused_header("{\"op\":\"hello\",\"id\":0,\"protocol\":[1]}"),
                     LP_WIRE_EFIELD);
    assert_int_equal(refused_header("{\"op\":\"hello\",\"protocol\":[1],\"client\":\"t\"}"),
                     LP_WIRE_EFIELD);
    assert_int_equal(refused_header("{\"op\":\"hello\",\"id\":0,\"protocol\":[1],\"client\":\"\"}"),
                     LP_WIRE_EFIELD);
    assert_int_equal(REFUSED(PRE "\0\0\0\x07\0\0\0\0not json"), LP_WIRE_EHEADER);
    assert_int_equal(REFUSED(PRE "\0\0\x10\x01\0\0\0\0"), LP_WIRE_ETOOLARGE);
}

static void client_skips_text_before_preamble(void **state)
{
    lp_buf_t *s2c = lp_buf_new(1u << 20);
    lp_hs_t chs = {0};
    lp_hello_t hello = {.id = 0, .version = 1};
    lp_welcome_t w;
    json_t *server = identity();

    assert_int_equal(lp_buf_put(s2c, "limpet 0.1.0 in pid 42\n>>> ", 27), 0);
    assert_int_equal(lp_hs_server_accept(s2c, &hello, server, caps, LP_WIRE_PAYLOAD_MIN, NULL), 0);
    assert_int_equal(lp_hs_client_read(&chs, s2c, &w), 0);
    assert_string_equal(w.session, "");
    lp_welcome_clear(&w);
    json_decref(server);
    lp_buf_free(s2c);
}

static void client_gives_up_on_endless_text(void **state)
{
    lp_buf_t *s2c = lp_buf_new(1u << 20);
    lp_hs_t chs = {0};
    lp_welcome_t w;
    char text[1000];

    memset(text, 'x', sizeof(text));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lp_buf_put(s2c, text, sizeof(text)), 0);
        assert_int_equal(lp_hs_client_read(&chs, s2c, &w), LP_WIRE_EAGAIN);
    }
    assert_int_equal(lp_buf_put(s2c, text, sizeof(text)), 0);
    assert_int_equal(lp_hs_client_read(&chs, s2c, &w), LP_WIRE_EPREAMBLE);
    lp_buf_free(s2c);
}

static void client_refuses_odd_replies(void **state)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_buf_t *s2c = lp_buf_new(1u << 20);
    lp_hs_t chs = {0};
    lp_welcome_t w;
    json_t *h = json_pack("{s:s,s:i,s:s,s:i}", "op", "done", "re", 0, "status", "ok", "protocol", 2);

    assert_int_equal(lp_preamble_encode(s2c), 0);
    assert_int_equal(lp_frame_encode(s2c, h, NULL, 0, &lim), 0);
    assert_int_equal(lp_hs_client_read(&chs, s2c, &w), LP_WIRE_EFIELD);
    json_decref(h);
    lp_buf_free(s2c);
}

static void accept_checks_arguments(void **state)
{
    lp_buf_t *out = lp_buf_new(1024);
    lp_hello_t hello = {.id = -1};
    json_t *server = identity();

    assert_int_equal(lp_hs_server_accept(out, &hello, server, caps, LP_WIRE_PAYLOAD_MIN, NULL),
                     LP_WIRE_EINVAL);
    hello.id = 0;
    assert_int_equal(lp_hs_server_accept(out, &hello, NULL, caps, LP_WIRE_PAYLOAD_MIN, NULL),
                     LP_WIRE_EINVAL);
    assert_int_equal(lp_hs_server_refuse(out, LP_WIRE_EAGAIN, NULL, NULL, NULL), LP_WIRE_EINVAL);
    assert_int_equal(lp_hs_client_hello(out, NULL, 0, NULL, false, 0), LP_WIRE_EINVAL);
    assert_int_equal(lp_buf_len(out), 0);
    json_decref(server);
    lp_buf_free(out);
}

static void nothing_written_when_the_frame_does_not_fit(void **state)
{
    lp_buf_t *out = lp_buf_new(1u << 20);
    char name[LP_WIRE_HELLO_HEADER_MAX];

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = 0;
    assert_int_equal(lp_buf_put(out, "earlier", 7), 0);
    /* preamble fits, the hello does not: the preamble must not stay behind */
    assert_int_equal(lp_hs_client_hello(out, name, 0, NULL, false, 0), LP_WIRE_ETOOLARGE);
    assert_int_equal(lp_buf_len(out), 7);
    lp_buf_free(out);
}

static void error_codes_round_trip(void **state)
{
    for (int e = LP_WIRE_EPREAMBLE; e >= LP_WIRE_EINTERNAL; e--) {
        const char *code = lp_wire_err_code(e);

        assert_non_null(code);
        assert_int_equal(lp_wire_err_from_code(code), e);
        assert_string_not_equal(lp_wire_strerror(e), "unknown error");
    }
    assert_null(lp_wire_err_code(LP_WIRE_EAGAIN));
    assert_int_equal(lp_wire_err_from_code("no-such-code"), 0);
    assert_string_equal(lp_wire_strerror(12345), "unknown error");
    assert_true(lp_wire_err_is_fatal(LP_WIRE_EHEADER));
    assert_false(lp_wire_err_is_fatal(LP_WIRE_EOP));
}

static void error_frame_fields(void **state)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_buf_t *out = lp_buf_new(1024);
    lp_frame_t f = {0};
    const lp_op_spec_t *spec;
    const char *field;
    int64_t re = 12;

    assert_int_equal(lp_msg_error_encode(out, LP_WIRE_EFIELD, &re, "session must be a string",
                                         "session", &lim), 0);
    assert_int_equal(lp_msg_error_encode(out, LP_WIRE_EAGAIN, NULL, NULL, NULL, &lim),
                     LP_WIRE_EINVAL);
    assert_int_equal(lp_frame_decode(out, &lim, &f), 0);
    assert_int_equal(lp_msg_check(f.header, NULL, 0, LP_DIR_S2C, 0, &spec, &field), 0);
    assert_int_equal(spec->op, LP_OP_ERROR);
    assert_string_equal(json_string_value(json_object_get(f.header, "code")), "bad-field");
    assert_string_equal(json_string_value(json_object_get(f.header, "field")), "session");
    assert_int_equal(json_integer_value(json_object_get(f.header, "re")), 12);
    lp_frame_clear(&f);
    lp_buf_free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(client_and_server_agree),
        cmocka_unit_test(server_reads_byte_by_byte),
        cmocka_unit_test(frame_before_the_handshake),
        cmocka_unit_test(bad_magic_refused),
        cmocka_unit_test(bad_version_refused),
        cmocka_unit_test(bad_hello_fields_refused),
        cmocka_unit_test(client_skips_text_before_preamble),
        cmocka_unit_test(client_gives_up_on_endless_text),
        cmocka_unit_test(client_refuses_odd_replies),
        cmocka_unit_test(accept_checks_arguments),
        cmocka_unit_test(nothing_written_when_the_frame_does_not_fit),
        cmocka_unit_test(error_codes_round_trip),
        cmocka_unit_test(error_frame_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
