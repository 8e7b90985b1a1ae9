/* test_vectors.c: the C codec against the shared vectors (tests/vectors/).
 * The same file is checked against the Python reference peer by
 * tests/e2e/test_vectors.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/ops.h"

#include "unhex.h"

static const char *vector_dir; /* from argv[1] */

/* Reads dir/name into a new buffer (max = its size). */
static lp_buf_t *read_file(const char *name)
{
    char path[4096];
    uint8_t chunk[4096];
    size_t n;
    lp_buf_t *b = lp_buf_new(64u << 20);
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", vector_dir, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(lp_buf_put(b, chunk, n), 0);
    fclose(f);
    return b;
}

static const char *verdict(int r, const lp_buf_t *in)
{
    if (r == LP_WIRE_EAGAIN)
        return lp_buf_len(in) > 0 ? "need-more" : "clean";
    return lp_wire_err_code(r) != NULL ? lp_wire_err_code(r) : lp_wire_strerror(r);
}

/* Checks one decoded frame against its expectation, and the op check. */
static void check_frame(const lp_frame_t *f, const json_t *want, const json_t *check)
{
    const lp_op_spec_t *spec;
    const char *field;
    size_t len;
    uint8_t *payload = unhex(json_string_value(json_object_get(want, "payload_hex")), &len);
    int r;

    assert_true(json_equal(f->header, json_object_get(want, "header")));
    assert_int_equal(f->payload_len, len);
    if (len > 0)
        assert_memory_equal(f->payload, payload, len);
    free(payload);
    if (check == NULL)
        return;
    r = lp_msg_check(f->header, f->payload, f->payload_len, LP_DIR_C2S, 0, &spec, &field);
    assert_string_equal(r == 0 ? "ok" : lp_wire_err_code(r), json_string_value(check));
}

/* Re-encodes the decoded frames and compares with the input bytes. */
static void check_canonical(const json_t *frames, const lp_buf_t *input)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_buf_t *out = lp_buf_new(64u << 20);
    const json_t *want;
    size_t i;

    json_array_foreach(frames, i, want) {
        size_t len;
        uint8_t *p = unhex(json_string_value(json_object_get(want, "payload_hex")), &len);

        assert_int_equal(lp_frame_encode(out, json_object_get(want, "header"), p, len, &lim), 0);
        free(p);
    }
    assert_int_equal(lp_buf_len(out), lp_buf_len(input));
    assert_memory_equal(lp_buf_data(out), lp_buf_data(input), lp_buf_len(input));
    lp_buf_free(out);
}

static void run_frames(const json_t *v, bool hello)
{
    const lp_limits_t lh = LP_LIMITS_HELLO, ld = LP_LIMITS_DEFAULT;
    const json_t *frames = json_object_get(v, "frames");
    const json_t *checks = json_object_get(v, "checks");
    lp_buf_t *in = read_file(json_string_value(json_object_get(v, "file")));
    lp_buf_t *copy = read_file(json_string_value(json_object_get(v, "file")));
    size_t n = 0;
    int r;

    for (;;) {
        lp_frame_t f = {0};
        size_t before = lp_buf_len(in);

        if ((r = lp_frame_decode(in, hello ? &lh : &ld, &f)) != 0) {
            assert_int_equal(lp_buf_len(in), before); /* a failed decode consumes nothing */
            break;
        }
        assert_true(n < json_array_size(frames));
        check_frame(&f, json_array_get(frames, n), json_array_get(checks, n));
        lp_frame_clear(&f);
        n++;
    }
    assert_int_equal(n, json_array_size(frames));
    assert_string_equal(verdict(r, in), json_string_value(json_object_get(v, "end")));
    if (json_is_true(json_object_get(v, "canonical")))
        check_canonical(frames, copy);
    lp_buf_free(in);
    lp_buf_free(copy);
}

static void run_server_handshake(const json_t *v)
{
    lp_buf_t *in = read_file(json_string_value(json_object_get(v, "file")));
    lp_buf_t *out = lp_buf_new(1u << 20);
    json_t *server = json_pack("{s:s,s:i}", "name", "vectors", "pid", 1);
    static const char *const caps[] = {"repl", NULL};
    const char *want = json_string_value(json_object_get(v, "end"));
    const char *field, *got;
    lp_hs_t hs = {0};
    lp_hello_t hello;
    int r = lp_hs_server_read(&hs, in, &hello, &field);

    if (r == 0) {
        assert_int_equal(lp_hs_server_accept(out, &hello, server, caps, LP_WIRE_PAYLOAD_DEFAULT,
                                             hello.want_session ? "1" : NULL), 0);
        assert_int_equal(hello.want_session,
                         json_is_true(json_object_get(v, "session")));
    } else if (r != LP_WIRE_EAGAIN) {
        assert_int_equal(lp_hs_server_refuse(out, r, &hello, NULL, field), 0);
    }
    got = r == 0 ? "ok" : r == LP_WIRE_EAGAIN ? "need-more" : lp_wire_err_code(r);
    assert_string_equal(got, want);
    if (json_object_get(v, "reply") != NULL) {
        /* The reply starts with our preamble, then one frame of that op. */
        lp_frame_t f = {0};
        const lp_limits_t lim = LP_LIMITS_DEFAULT;

        assert_int_equal(lp_preamble_decode(out), 0);
        assert_int_equal(lp_frame_decode(out, &lim, &f), 0);
        assert_string_equal(json_string_value(json_object_get(f.header, "op")),
                            json_string_value(json_object_get(v, "reply")));
        if (r != 0)
            assert_string_equal(json_string_value(json_object_get(f.header, "code")), want);
        lp_frame_clear(&f);
        assert_int_equal(lp_buf_len(out), 0);
    }
    json_decref(server);
    lp_buf_free(in);
    lp_buf_free(out);
}

static void test_vector(void **state)
{
    const json_t *v = *state;
    const char *kind = json_string_value(json_object_get(v, "kind"));

    print_message("vector %s\n", json_string_value(json_object_get(v, "name")));
    if (strcmp(kind, "frames") == 0)
        run_frames(v, false);
    else if (strcmp(kind, "hello-frames") == 0)
        run_frames(v, true);
    else if (strcmp(kind, "server-handshake") == 0)
        run_server_handshake(v);
    else
        fail_msg("unknown vector kind '%s'", kind);
}

int main(int argc, char **argv)
{
    char path[4096];
    json_error_t jerr;
    json_t *manifest, *vectors;
    struct CMUnitTest *tests;
    size_t n;
    int failed;

    if (argc < 2) {
        fprintf(stderr, "usage: test_vectors VECTOR_DIR\n");
        return 2;
    }
    vector_dir = argv[1];
    snprintf(path, sizeof(path), "%s/vectors.json", vector_dir);
    if ((manifest = json_load_file(path, 0, &jerr)) == NULL) {
        fprintf(stderr, "test_vectors: cannot read '%s': %s\n", path, jerr.text);
        return 1;
    }
    vectors = json_object_get(manifest, "vectors");
    n = json_array_size(vectors);
    tests = calloc(n, sizeof(*tests));
    for (size_t i = 0; i < n; i++) {
        tests[i].name = json_string_value(json_object_get(json_array_get(vectors, i), "name"));
        tests[i].test_func = test_vector;
        tests[i].initial_state = json_array_get(vectors, i);
    }
    failed = _cmocka_run_group_tests("vectors", tests, n, NULL, NULL);
    free(tests);
    json_decref(manifest);
    return failed;
}
