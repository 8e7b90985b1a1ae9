/* test_ops.c: the operation table and frame checks (src/wire/ops.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/ops.h"

/* Checks the header given as JSON text, arriving at a server. */
static int check_c2s(const char *json, const char *payload, const char **field)
{
    json_error_t e;
    json_t *h = json_loads(json, 0, &e);
    const lp_op_spec_t *spec;
    int r;

    assert_non_null(h);
    r = lp_msg_check(h, (const uint8_t *)payload, payload ? strlen(payload) : 0, LP_DIR_C2S, 0,
                     &spec, field);
    if (r == 0)
        assert_string_equal(spec->name, json_string_value(json_object_get(h, "op")));
    json_decref(h);
    return r;
}

static void table_is_consistent(void **state)
{
    for (int op = LP_OP_UNKNOWN + 1; op < LP_OP__COUNT; op++) {
        const lp_op_spec_t *s = lp_op_spec((lp_op_t)op);

        assert_non_null(s);
        assert_non_null(s->name);
        assert_int_equal(s->op, op);
        assert_ptr_equal(lp_op_lookup(s->name), s);
        assert_non_null(s->fields);
        assert_non_null(s->summary);
        assert_true(s->dirs != 0);
    }
    assert_null(lp_op_spec(LP_OP_UNKNOWN));
    assert_null(lp_op_spec(LP_OP__COUNT));
    assert_null(lp_op_lookup("frobnicate"));
}

static void valid_requests(void **state)
{
    const char *f;

    assert_int_equal(check_c2s("{\"op\":\"ping\",\"id\":0}", NULL, &f), 0);
    assert_int_equal(check_c2s("{\"op\":\"clone\",\"id\":1}", NULL, &f), 0);
    assert_int_equal(check_c2s("{\"op\":\"clone\",\"id\":1,\"env\":\"my-env_1.2\"}", NULL, &f), 0);
    assert_int_equal(check_c2s("{\"op\":\"eval\",\"id\":9007199254740991,\"session\":\"s1\"}",
                               "x = 1", &f), 0);
    assert_int_equal(check_c2s("{\"op\":\"complete\",\"id\":3,\"session\":\"1\",\"text\":\"os.pa\","
                               "\"cursor\":5}", NULL, &f), 0);
    assert_int_equal(check_c2s("{\"op\":\"stdin\",\"id\":4,\"session\":\"1\",\"eof\":true}",
                               "line\n", &f), 0);
    assert_int_equal(check_c2s("{\"op\":\"hello\",\"id\":0,\"protocol\":[1,2],\"client\":\"t\"}",
                               NULL, &f), 0);
}

static void unknown_operation(void **state)
{
    const char *f;

    assert_int_equal(check_c2s("{\"op\":\"frobnicate\",\"id\":1}", NULL, &f), LP_WIRE_EOP);
    assert_int_equal(check_c2s("{\"id\":1}", NULL, &f), LP_WIRE_EOP);
    assert_int_equal(check_c2s("{\"op\":null,\"id\":1}", NULL, &f), LP_WIRE_EOP);
    assert_int_equal(check_c2s("{\"op\":\"PING\",\"id\":1}", NULL, &f), LP_WIRE_EOP);
    /* a server never receives output */
    assert_int_equal(check_c2s("{\"op\":\"out\",\"session\":\"1\",\"stream\":\"stdout\"}", "x",
                               &f), LP_WIRE_EOP);
}

static void reserved_operation(void **state)
{
    const char *f;
    const lp_op_spec_t *spec;
    json_t *h = json_pack("{s:s,s:i,s:s}", "op", "env-create", "id", 1, "env", "x");

    assert_int_equal(check_c2s("{\"op\":\"call\",\"id\":1}", "pickle", &f), LP_WIRE_ENOTSUP);
    assert_int_equal(check_c2s("{\"op\":\"env-list\",\"id\":1}", NULL, &f), LP_WIRE_ENOTSUP);
    /* with the capability offered, the same frame is checked normally */
    assert_int_equal(lp_msg_check(h, NULL, 0, LP_DIR_C2S, LP_CAP_ENV, &spec, &f), 0);
    json_decref(h);
}

/* check and inspect (capabilities check, inspect: limpet kernel's) */
static void kernel_operations(void **state)
{
    const char *f = NULL;
    const lp_op_spec_t *spec;
    json_t *chk = json_pack("{s:s,s:i,s:s}", "op", "check", "id", 1, "session", "1");
    json_t *ins = json_pack("{s:s,s:i,s:s,s:s,s:i,s:i}", "op", "inspect", "id", 2, "session",
                            "1", "text", "len(", "cursor", 3, "detail", 1);
    const uint8_t bad[] = {'i', 'f', 0xff};

    assert_int_equal(lp_cap_bit("cell"), 0x40u);
    assert_int_equal(lp_cap_bit("check"), 0x80u);
    assert_int_equal(lp_cap_bit("inspect"), 0x100u);
    assert_int_equal(lp_msg_check(chk, (const uint8_t *)"if x:", 5, LP_DIR_C2S, 0, &spec, &f),
                     LP_WIRE_ENOTSUP);
    assert_int_equal(lp_msg_check(chk, (const uint8_t *)"if x:", 5, LP_DIR_C2S, LP_CAP_CHECK,
                                  &spec, &f), 0);
    assert_int_equal(spec->op, LP_OP_CHECK);
    assert_int_equal(lp_msg_check(chk, bad, sizeof(bad), LP_DIR_C2S, LP_CAP_CHECK, &spec, &f),
                     LP_WIRE_ETEXT);
    assert_int_equal(lp_msg_check(ins, NULL, 0, LP_DIR_C2S, LP_CAP_CHECK, &spec, &f),
                     LP_WIRE_ENOTSUP);
    assert_int_equal(lp_msg_check(ins, NULL, 0, LP_DIR_C2S, LP_CAP_INSPECT, &spec, &f), 0);
    assert_int_equal(spec->op, LP_OP_INSPECT);
    json_object_set_new(ins, "detail", json_integer(2));
    assert_int_equal(lp_msg_check(ins, NULL, 0, LP_DIR_C2S, LP_CAP_INSPECT, &spec, &f),
                     LP_WIRE_EFIELD);
    assert_string_equal(f, "detail");
    json_object_del(ins, "detail");
    json_object_del(ins, "text");
    assert_int_equal(lp_msg_check(ins, NULL, 0, LP_DIR_C2S, LP_CAP_INSPECT, &spec, &f),
                     LP_WIRE_EFIELD);
    assert_string_equal(f, "text");
    json_decref(chk);
    json_decref(ins);
}

static void missing_field(void **state)
{
    const char *f;

    assert_int_equal(check_c2s("{\"op\":\"ping\"}", NULL, &f), LP_WIRE_EFIELD);
    assert_string_equal(f, "id");
    assert_int_equal(check_c2s("{\"op\":\"eval\",\"id\":1}", "1", &f), LP_WIRE_EFIELD);
    assert_string_equal(f, "session");
    assert_int_equal(check_c2s("{\"op\":\"complete\",\"id\":1,\"session\":\"1\"}", NULL, &f),
                     LP_WIRE_EFIELD);
    assert_string_equal(f, "text");
    assert_int_equal(check_c2s("{\"op\":\"hello\",\"id\":0,\"client\":\"t\"}", NULL, &f),
                     LP_WIRE_EFIELD);
    assert_string_equal(f, "protocol");
}

static void mistyped_field(void **state)
{
    const char *f;

    assert_int_equal(check_c2s("{\"op\":\"ping\",\"id\":\"1\"}", NULL, &f), LP_WIRE_EFIELD);
    assert_string_equal(f, "id");
    assert_int_equal(check_c2s("{\"op\":\"ping\",\"id\":-1}", NULL, &f), LP_WIRE_EFIELD);
    assert_int_equal(check_c2s("{\"op\":\"ping\",\"id\":9007199254740992}", NULL, &f),
                     LP_WIRE_EFIELD);
    assert_int_equal(check_c2s("{\"op\":\"close\",\"id\":1,\"session\":1}", NULL, &f),
                     LP_WIRE_EFIELD);
    assert_string_equal(f, "session");
    assert_int_equal(check_c2s("{\"op\":\"close\",\"id\":1,\"session\":\"\"}", NULL, &f),
                     LP_WIRE_EFIELD);
    assert_int_equal(check_c2s("{\"op\":\"close\",\"id\":1,\"session\":\"a\\u00e9\"}", NULL, &f),
                     LP_WIRE_EFIELD);
    assert_int_equal(check_c2s("{\"op\":\"clone\",\"id\":1,\"env\":\"a/b\"}", NULL, &f),
                     LP_WIRE_EFIELD);
    assert_string_equal(f, "env");
    assert_int_equal(check_c2s("{\"op\":\"eval\",\"id\":1,\"session\":\"1\",\"interactive\":\"y\"}",
                               "1", &f), LP_WIRE_EFIELD);
    assert_string_equal(f, "interactive");
    assert_int_equal(check_c2s("{\"op\":\"hello\",\"id\":0,\"protocol\":[0],\"client\":\"t\"}",
                               NULL, &f), LP_WIRE_EFIELD);
    assert_int_equal(check_c2s("{\"op\":\"hello\",\"id\":0,\"protocol\":[1],\"client\":\"t\","
                               "\"max_payload\":1}", NULL, &f), LP_WIRE_EFIELD);
    assert_string_equal(f, "max_payload");
}

static void payload_where_none_is_allowed(void **state)
{
    const char *f;

    assert_int_equal(check_c2s("{\"op\":\"close\",\"id\":1,\"session\":\"1\"}", "x", &f),
                     LP_WIRE_EFIELD);
    assert_string_equal(f, "payload");
}

static void invalid_text_payload(void **state)
{
    const char *f;

    assert_int_equal(check_c2s("{\"op\":\"eval\",\"id\":1,\"session\":\"1\"}", "\xff", &f),
                     LP_WIRE_ETEXT);
    assert_int_equal(check_c2s("{\"op\":\"stdin\",\"id\":1,\"session\":\"1\"}", "\xed\xa0\x80",
                               &f), LP_WIRE_ETEXT);
    /* ping's payload is bytes: anything goes */
    assert_int_equal(check_c2s("{\"op\":\"ping\",\"id\":1}", "\xff\xfe", &f), 0);
}

static void replies_at_a_client(void **state)
{
    const char *f;
    const lp_op_spec_t *spec;
    json_t *out = json_pack("{s:s,s:s,s:s}", "op", "out", "session", "1", "stream", "stderr");
    json_t *bad = json_pack("{s:s,s:s,s:s}", "op", "out", "session", "1", "stream", "stdin");
    json_t *done = json_pack("{s:s,s:s}", "op", "done", "status", "ok");

    assert_int_equal(lp_msg_check(out, (const uint8_t *)"x", 1, LP_DIR_S2C, 0, &spec, &f), 0);
    assert_int_equal(lp_msg_check(bad, NULL, 0, LP_DIR_S2C, 0, &spec, &f), LP_WIRE_EFIELD);
    assert_string_equal(f, "stream");
    assert_int_equal(lp_msg_check(done, NULL, 0, LP_DIR_S2C, 0, &spec, &f), LP_WIRE_EFIELD);
    assert_string_equal(f, "re"); /* done always answers a request */
    json_decref(out);
    json_decref(bad);
    json_decref(done);
}

static void get_id(void **state)
{
    json_t *h = json_pack("{s:i,s:s}", "id", 5, "re", "x");
    int64_t id = -1;

    assert_int_equal(lp_msg_get_id(h, "id", &id), 0);
    assert_int_equal(id, 5);
    assert_int_equal(lp_msg_get_id(h, "re", &id), LP_WIRE_EFIELD);
    assert_int_equal(lp_msg_get_id(h, "nope", &id), LP_WIRE_EFIELD);
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_is_consistent),
        cmocka_unit_test(valid_requests),
        cmocka_unit_test(unknown_operation),
        cmocka_unit_test(reserved_operation),
        cmocka_unit_test(kernel_operations),
        cmocka_unit_test(missing_field),
        cmocka_unit_test(mistyped_field),
        cmocka_unit_test(payload_where_none_is_allowed),
        cmocka_unit_test(invalid_text_payload),
        cmocka_unit_test(replies_at_a_client),
        cmocka_unit_test(get_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
