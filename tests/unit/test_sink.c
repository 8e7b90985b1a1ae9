/* test_sink.c: a session's events through its two sinks (src/session/
 * sink_frames.c, sink_text.c) into its output queue (outq.c): the framed
 * sink's bytes decoded back with the codec, header field by field; the
 * text sink's bytes compared whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <stdlib.h>

#include "session/internal.h"
#include "session/sink.h"

#define SID "s7"

static const lp_limits_t lim = LP_LIMITS_DEFAULT;

/* The queue's frames, decoded. */
struct frames {
    lp_frame_t f[16]; /* in order */
    size_t n;         /* how many */
};

/* Decodes every frame of q into *fs: the queue must hold whole frames and
 * nothing else. */
static void decode_all(const lp_outq_t *q, struct frames *fs)
{
    lp_buf_t *b = lp_buf_new(SIZE_MAX);

    memset(fs, 0, sizeof(*fs));
    assert_non_null(b);
    assert_int_equal(lp_buf_put(b, lp_outq_data(q), lp_outq_len(q)), 0);
    while (lp_buf_len(b) > 0) {
        assert_true(fs->n < sizeof(fs->f) / sizeof(fs->f[0]));
        assert_int_equal(lp_frame_decode(b, &lim, &fs->f[fs->n]), 0);
        fs->n++;
    }
    lp_buf_free(b);
}

static void frames_clear(struct frames *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        lp_frame_clear(&fs->f[i]);
    fs->n = 0;
}

/* The header's string field key, or NULL. */
static const char *str(const lp_frame_t *f, const char *key)
{
    return json_string_value(json_object_get(f->header, key));
}

/* Checks the fields every frame of a session has: op, session, and re when
 * re >= 0 (else no re at all); nkeys: how many keys the header has in all. */
static void assert_head(const lp_frame_t *f, const char *op, int64_t re, size_t nkeys)
{
    json_t *jre = json_object_get(f->header, "re");

    assert_string_equal(str(f, "op"), op);
    assert_string_equal(str(f, "session"), SID);
    if (re >= 0) {
        assert_true(json_is_integer(jre));
        assert_int_equal(json_integer_value(jre), re);
    } else {
        assert_null(jre);
    }
    assert_int_equal(json_object_size(f->header), nkeys);
}

static void assert_payload(const lp_frame_t *f, const void *data, size_t len)
{
    assert_int_equal(f->payload_len, len);
    if (len > 0)
        assert_memory_equal(f->payload, data, len);
}

/* Puts ev through sink into a fresh queue, decodes it into *fs. */
static void one_event(const lp_sink_t *sink, const lp_event_t *ev, struct frames *fs)
{
    lp_outq_t q;

    lp_outq_init(&q);
    assert_int_equal(sink->put(&q, SID, ev), 0);
    decode_all(&q, fs);
    lp_outq_clear(&q);
}

/* --- the framed sink, event by event ------------------------------------ */

static void frames_out(void **state)
{
    lp_event_t ev = {.kind = LP_EV_OUT, .re = 3, .stream = LP_STDERR, .data = "oops\n", .len = 5};
    struct frames fs;

    (void)state;
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "out", 3, 4);
    assert_string_equal(str(&fs.f[0], "stream"), "stderr");
    assert_payload(&fs.f[0], "oops\n", 5);
    frames_clear(&fs);
    /* output between evals: no re */
    ev = (lp_event_t){.kind = LP_EV_OUT, .re = -1, .stream = LP_STDOUT, .data = "bg", .len = 2};
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "out", -1, 3);
    assert_string_equal(str(&fs.f[0], "stream"), "stdout");
    assert_payload(&fs.f[0], "bg", 2);
    frames_clear(&fs);
}

static void frames_value_plain_type(void **state)
{
    lp_event_t ev = {.kind = LP_EV_VALUE, .re = 12, .name = "int", .data = "42", .len = 2};
    struct frames fs;

    (void)state;
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "value", 12, 4);
    assert_string_equal(str(&fs.f[0], "type"), "int");
    assert_payload(&fs.f[0], "42", 2);
    frames_clear(&fs);
}

/* Type names a class can have: each must come back exactly. */
static void frames_value_type_needs_escaping(void **state)
{
    static const char *const types[] = {
        "we\"ird",
        "back\\slash",
        "new\nline\ttab\x01",
        "\xc3\x9c" "n" "\xc3\xaf" "c" "\xc3\xb8" "d" "\xc3\xa9", /* Ünïcødé: no escape needed */
        "\"\xe2\x9c\x93\\\n\xf0\x9f\x90\x8d\"",       /* quote, ✓, backslash, newline, 🐍 */
        "",
    };
    char long_type[1000];

    (void)state;
    memset(long_type, 'T', sizeof(long_type) - 1);
    long_type[sizeof(long_type) - 1] = 0;
    for (size_t i = 0; i <= sizeof(types) / sizeof(types[0]); i++) {
        const char *t = i < sizeof(types) / sizeof(types[0]) ? types[i] : long_type;
        lp_event_t ev = {.kind = LP_EV_VALUE, .re = 1, .name = t, .data = "x", .len = 1};
        struct frames fs;

        one_event(&lp_sink_frames, &ev, &fs);
        assert_int_equal(fs.n, 1);
        assert_head(&fs.f[0], "value", 1, 4);
        assert_string_equal(str(&fs.f[0], "type"), t);
        assert_payload(&fs.f[0], "x", 1);
        frames_clear(&fs);
    }
}

/* A name that is not UTF-8 is refused, or made decodable: a sink never
 * leaves bytes in the queue that the client must drop the server for. */
static void frames_value_type_not_utf8(void **state)
{
    lp_event_t ev = {.kind = LP_EV_VALUE, .re = 1, .name = "bad\xff", .data = "x", .len = 1};
    lp_outq_t q;
    int r;

    (void)state;
    lp_outq_init(&q);
    r = lp_sink_frames.put(&q, SID, &ev);
    if (r == 0) {
        struct frames fs;

        decode_all(&q, &fs);
        assert_int_equal(fs.n, 1);
        frames_clear(&fs);
    } else {
        assert_int_equal(lp_outq_len(&q), 0);
    }
    lp_outq_clear(&q);
}

static void frames_value_without_type(void **state)
{
    lp_event_t ev = {.kind = LP_EV_VALUE, .re = 2, .data = "None?", .len = 5};
    struct frames fs;

    (void)state;
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "value", 2, 3);
    assert_payload(&fs.f[0], "None?", 5);
    frames_clear(&fs);
}

static void frames_exception(void **state)
{
    const char *tb = "Traceback (most recent call last):\n  ...\nZeroDivisionError: division by zero\n";
    lp_event_t ev = {.kind = LP_EV_EXCEPTION, .re = 4, .name = "ZeroDivisionError", .data = tb,
                     .len = strlen(tb)};
    struct frames fs;

    (void)state;
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "exception", 4, 4);
    assert_string_equal(str(&fs.f[0], "type"), "ZeroDivisionError");
    assert_payload(&fs.f[0], tb, strlen(tb));
    frames_clear(&fs);
    /* no name: "Exception" */
    ev.name = NULL;
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "exception", 4, 4);
    assert_string_equal(str(&fs.f[0], "type"), "Exception");
    frames_clear(&fs);
}

static void frames_page(void **state)
{
    const char *text = "Help on int object:\n\nclass int(object)\n";
    lp_event_t ev = {.kind = LP_EV_PAGE, .re = 5, .data = text, .len = strlen(text)};
    struct frames fs;

    (void)state;
    assert_true(lp_sink_frames.pages);
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "page", 5, 3);
    assert_payload(&fs.f[0], text, strlen(text));
    frames_clear(&fs);
}

static void frames_input(void **state)
{
    lp_event_t ev = {.kind = LP_EV_INPUT, .re = 6, .name = "Name \"\xc3\xa9\"? ", .echo = true};
    struct frames fs;

    (void)state;
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "input", 6, 5);
    assert_string_equal(str(&fs.f[0], "prompt"), "Name \"\xc3\xa9\"? ");
    assert_true(json_is_true(json_object_get(fs.f[0].header, "echo")));
    assert_payload(&fs.f[0], NULL, 0);
    frames_clear(&fs);
    /* a password: no echo; no prompt: "" */
    ev = (lp_event_t){.kind = LP_EV_INPUT, .re = 6, .name = NULL, .echo = false};
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "input", 6, 5);
    assert_string_equal(str(&fs.f[0], "prompt"), "");
    assert_true(json_is_false(json_object_get(fs.f[0].header, "echo")));
    frames_clear(&fs);
}

static void frames_done(void **state)
{
    static const char *const statuses[] = {"ok", "more", "exception", "interrupted", "closed"};
    struct frames fs;

    (void)state;
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        lp_event_t ev = {.kind = LP_EV_DONE, .re = 8, .name = statuses[i], .job = 99};

        one_event(&lp_sink_frames, &ev, &fs);
        assert_int_equal(fs.n, 1);
        assert_head(&fs.f[0], "done", 8, 4); /* no job */
        assert_string_equal(str(&fs.f[0], "status"), statuses[i]);
        assert_payload(&fs.f[0], NULL, 0);
        frames_clear(&fs);
    }
}

static void frames_done_detached_names_its_job(void **state)
{
    lp_event_t ev = {.kind = LP_EV_DONE, .re = 9, .name = "detached", .job = 1234567890123};
    struct frames fs;

    (void)state;
    one_event(&lp_sink_frames, &ev, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "done", 9, 5);
    assert_string_equal(str(&fs.f[0], "status"), "detached");
    assert_int_equal(json_integer_value(json_object_get(fs.f[0].header, "job")), 1234567890123);
    frames_clear(&fs);
}

/* --- out frames coalesce ------------------------------------------------- */

static void put_out(lp_outq_t *q, lp_stream_t stream, int64_t re, const void *data, size_t len)
{
    lp_event_t ev = {.kind = LP_EV_OUT, .re = re, .stream = stream, .data = data, .len = len};

    assert_int_equal(lp_sink_frames.put(q, SID, &ev), 0);
}

static void out_same_stream_and_re_coalesce(void **state)
{
    lp_outq_t q;
    struct frames fs;

    (void)state;
    lp_outq_init(&q);
    put_out(&q, LP_STDOUT, 1, "hello, ", 7);
    put_out(&q, LP_STDOUT, 1, "world", 5);
    put_out(&q, LP_STDOUT, 1, "!\n", 2);
    decode_all(&q, &fs);
    assert_int_equal(fs.n, 1);
    assert_head(&fs.f[0], "out", 1, 4);
    assert_payload(&fs.f[0], "hello, world!\n", 14);
    frames_clear(&fs);
    lp_outq_clear(&q);
}

static void out_new_frame_for_new_stream_or_re(void **state)
{
    lp_outq_t q;
    struct frames fs;

    (void)state;
    lp_outq_init(&q);
    put_out(&q, LP_STDOUT, 1, "a", 1);
    put_out(&q, LP_STDERR, 1, "b", 1); /* another stream */
    put_out(&q, LP_STDERR, 2, "c", 1); /* another re */
    put_out(&q, LP_STDERR, -1, "d", 1); /* none */
    put_out(&q, LP_STDOUT, -1, "e", 1);
    put_out(&q, LP_STDOUT, -1, "f", 1); /* coalesces with e */
    decode_all(&q, &fs);
    assert_int_equal(fs.n, 5);
    assert_head(&fs.f[0], "out", 1, 4);
    assert_string_equal(str(&fs.f[0], "stream"), "stdout");
    assert_payload(&fs.f[0], "a", 1);
    assert_head(&fs.f[1], "out", 1, 4);
    assert_string_equal(str(&fs.f[1], "stream"), "stderr");
    assert_payload(&fs.f[1], "b", 1);
    assert_head(&fs.f[2], "out", 2, 4);
    assert_string_equal(str(&fs.f[2], "stream"), "stderr");
    assert_payload(&fs.f[2], "c", 1);
    assert_head(&fs.f[3], "out", -1, 3);
    assert_string_equal(str(&fs.f[3], "stream"), "stderr");
    assert_payload(&fs.f[3], "d", 1);
    assert_head(&fs.f[4], "out", -1, 3);
    assert_string_equal(str(&fs.f[4], "stream"), "stdout");
    assert_payload(&fs.f[4], "ef", 2);
    frames_clear(&fs);
    lp_outq_clear(&q);
}

/* Output after a value (or any other frame) never grows a frame before it. */
static void out_after_another_frame_starts_anew(void **state)
{
    lp_event_t value = {.kind = LP_EV_VALUE, .re = 1, .name = "str", .data = "'v'", .len = 3};
    lp_outq_t q;
    struct frames fs;

    (void)state;
    lp_outq_init(&q);
    put_out(&q, LP_STDOUT, 1, "before", 6);
    assert_int_equal(lp_sink_frames.put(&q, SID, &value), 0);
    put_out(&q, LP_STDOUT, 1, "after", 5);
    decode_all(&q, &fs);
    assert_int_equal(fs.n, 3);
    assert_head(&fs.f[0], "out", 1, 4);
    assert_payload(&fs.f[0], "before", 6);
    assert_head(&fs.f[1], "value", 1, 4);
    assert_payload(&fs.f[1], "'v'", 3);
    assert_head(&fs.f[2], "out", 1, 4);
    assert_payload(&fs.f[2], "after", 5);
    frames_clear(&fs);
    lp_outq_clear(&q);
}

static void out_passing_the_chunk_starts_a_frame(void **state)
{
    char *a = malloc(LP_WIRE_CHUNK);
    lp_outq_t q;
    struct frames fs;

    (void)state;
    memset(a, 'a', LP_WIRE_CHUNK);
    lp_outq_init(&q);
    put_out(&q, LP_STDOUT, 1, a, LP_WIRE_CHUNK - 10);
    put_out(&q, LP_STDOUT, 1, "0123456789ABCDEFGHIJ", 20);
    decode_all(&q, &fs);
    assert_int_equal(fs.n, 2);
    assert_head(&fs.f[0], "out", 1, 4);
    assert_int_equal(fs.f[0].payload_len, LP_WIRE_CHUNK);
    assert_memory_equal(fs.f[0].payload, a, LP_WIRE_CHUNK - 10);
    assert_memory_equal(fs.f[0].payload + LP_WIRE_CHUNK - 10, "0123456789", 10);
    assert_head(&fs.f[1], "out", 1, 4);
    assert_payload(&fs.f[1], "ABCDEFGHIJ", 10);
    frames_clear(&fs);
    /* a full frame is not grown: the next byte starts one */
    lp_outq_clear(&q);
    put_out(&q, LP_STDOUT, 1, a, LP_WIRE_CHUNK);
    put_out(&q, LP_STDOUT, 1, "z", 1);
    decode_all(&q, &fs);
    assert_int_equal(fs.n, 2);
    assert_int_equal(fs.f[0].payload_len, LP_WIRE_CHUNK);
    assert_payload(&fs.f[1], "z", 1);
    frames_clear(&fs);
    lp_outq_clear(&q);
    free(a);
}

static void out_large_split_in_chunks(void **state)
{
    size_t n = 200u << 10, off = 0;
    uint8_t *big = malloc(n);
    lp_outq_t q;
    struct frames fs;

    (void)state;
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 7 + i / 251);
    lp_outq_init(&q);
    put_out(&q, LP_STDOUT, 3, big, n);
    decode_all(&q, &fs);
    assert_int_equal(fs.n, (n + LP_WIRE_CHUNK - 1) / LP_WIRE_CHUNK); /* 4 */
    for (size_t i = 0; i < fs.n; i++) {
        assert_head(&fs.f[i], "out", 3, 4);
        assert_string_equal(str(&fs.f[i], "stream"), "stdout");
        assert_true(fs.f[i].payload_len <= LP_WIRE_CHUNK);
        assert_true(fs.f[i].payload_len > 0);
        assert_memory_equal(fs.f[i].payload, big + off, fs.f[i].payload_len);
        off += fs.f[i].payload_len;
    }
    assert_int_equal(off, n);
    frames_clear(&fs);
    lp_outq_clear(&q);
    free(big);
}

/* A whole eval's replies, in order, as a client reads them. */
static void frames_an_eval_in_order(void **state)
{
    const lp_event_t evs[] = {
        {.kind = LP_EV_OUT, .re = 1, .stream = LP_STDOUT, .data = "a", .len = 1},
        {.kind = LP_EV_OUT, .re = 1, .stream = LP_STDOUT, .data = "b", .len = 1},
        {.kind = LP_EV_INPUT, .re = 1, .name = "? ", .echo = true},
        {.kind = LP_EV_OUT, .re = 1, .stream = LP_STDOUT, .data = "c", .len = 1},
        {.kind = LP_EV_VALUE, .re = 1, .name = "int", .data = "3", .len = 1},
        {.kind = LP_EV_DONE, .re = 1, .name = "ok"},
    };
    static const char *const ops[] = {"out", "input", "out", "value", "done"};
    lp_outq_t q;
    struct frames fs;

    (void)state;
    lp_outq_init(&q);
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        assert_int_equal(lp_sink_frames.put(&q, SID, &evs[i]), 0);
    decode_all(&q, &fs);
    assert_int_equal(fs.n, 5);
    for (size_t i = 0; i < fs.n; i++)
        assert_string_equal(str(&fs.f[i], "op"), ops[i]);
    assert_payload(&fs.f[0], "ab", 2);
    assert_payload(&fs.f[2], "c", 1);
    frames_clear(&fs);
    lp_outq_clear(&q);
}

/* --- the text sink -------------------------------------------------------- */

/* Puts ev through the text sink into a fresh queue: its bytes must be
 * exactly want. */
static void assert_text(const lp_event_t *ev, const char *want)
{
    lp_outq_t q;

    lp_outq_init(&q);
    assert_int_equal(lp_sink_text.put(&q, SID, ev), 0);
    assert_int_equal(lp_outq_len(&q), strlen(want));
    if (lp_outq_len(&q) > 0)
        assert_memory_equal(lp_outq_data(&q), want, lp_outq_len(&q));
    lp_outq_clear(&q);
}

static void text_events(void **state)
{
    const lp_event_t out = {.kind = LP_EV_OUT, .re = 1, .stream = LP_STDOUT, .data = "hi\n",
                            .len = 3};
    const lp_event_t err = {.kind = LP_EV_OUT, .re = 1, .stream = LP_STDERR, .data = "warn",
                            .len = 4};
    const lp_event_t value = {.kind = LP_EV_VALUE, .re = 1, .name = "int", .data = "42", .len = 2};
    const lp_event_t exc = {.kind = LP_EV_EXCEPTION, .re = 1, .name = "KeyError",
                            .data = "KeyError: 'k'\n", .len = 14};
    const lp_event_t page = {.kind = LP_EV_PAGE, .re = 1, .data = "help", .len = 4};
    const lp_event_t input = {.kind = LP_EV_INPUT, .re = 1, .name = "? ", .echo = true};

    (void)state;
    assert_false(lp_sink_text.pages);
    assert_text(&out, "hi\n");
    assert_text(&err, "warn");
    assert_text(&value, "42\n");
    assert_text(&exc, "KeyError: 'k'\n");
    assert_text(&page, "");  /* never sent: help() prints instead */
    assert_text(&input, ""); /* input() printed its prompt, as output */
}

static void text_prompt_after_done(void **state)
{
    lp_event_t done = {.kind = LP_EV_DONE, .re = 1, .job = 17};

    (void)state;
    done.name = "ok";
    assert_text(&done, ">>> ");
    done.name = "exception";
    assert_text(&done, ">>> ");
    done.name = "interrupted";
    assert_text(&done, ">>> ");
    done.name = "more";
    assert_text(&done, "... ");
    done.name = "closed";
    assert_text(&done, "");
    done.name = "detached";
    assert_text(&done, "\nlimpet: it did not stop; it goes on as job 17 (see jobs())\n>>> ");
}

/* Text never frames: a whole eval is its bytes, one after another. */
static void text_an_eval_in_order(void **state)
{
    const lp_event_t evs[] = {
        {.kind = LP_EV_OUT, .re = 1, .stream = LP_STDOUT, .data = "a", .len = 1},
        {.kind = LP_EV_OUT, .re = 1, .stream = LP_STDERR, .data = "b", .len = 1},
        {.kind = LP_EV_VALUE, .re = 1, .name = "int", .data = "3", .len = 1},
        {.kind = LP_EV_DONE, .re = 1, .name = "ok"},
    };
    const char *want = "ab3\n>>> ";
    lp_outq_t q;

    (void)state;
    lp_outq_init(&q);
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        assert_int_equal(lp_sink_text.put(&q, SID, &evs[i]), 0);
    assert_int_equal(lp_outq_len(&q), strlen(want));
    assert_memory_equal(lp_outq_data(&q), want, lp_outq_len(&q));
    lp_outq_clear(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_out),
        cmocka_unit_test(frames_value_plain_type),
        cmocka_unit_test(frames_value_type_needs_escaping),
        cmocka_unit_test(frames_value_type_not_utf8),
        cmocka_unit_test(frames_value_without_type),
        cmocka_unit_test(frames_exception),
        cmocka_unit_test(frames_page),
        cmocka_unit_test(frames_input),
        cmocka_unit_test(frames_done),
        cmocka_unit_test(frames_done_detached_names_its_job),
        cmocka_unit_test(out_same_stream_and_re_coalesce),
        cmocka_unit_test(out_new_frame_for_new_stream_or_re),
        cmocka_unit_test(out_after_another_frame_starts_anew),
        cmocka_unit_test(out_passing_the_chunk_starts_a_frame),
        cmocka_unit_test(out_large_split_in_chunks),
        cmocka_unit_test(frames_an_eval_in_order),
        cmocka_unit_test(text_events),
        cmocka_unit_test(text_prompt_after_done),
        cmocka_unit_test(text_an_eval_in_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
