/* test_jupyter_text.c: code point <-> byte offsets (Jupyter's cursors are
 * code points, limpet's UTF-8 bytes) and the stream decoder that turns
 * `out` bytes into JSON text (src/jupyter/text.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jupyter/text.h"

#define U(s) ((const uint8_t *)(s))

/* "aé世😀b": 1 + 2 + 3 + 4 + 1 bytes, 5 code points */
static const char mixed[] = "a\xc3\xa9\xe4\xb8\x96\xf0\x9f\x98\x80"
                            "b";

static void cp_to_byte(void **state)
{
    static const size_t want[] = {0, 1, 3, 6, 10, 11};
    size_t len = sizeof(mixed) - 1;

    for (size_t cp = 0; cp < 6; cp++)
        assert_int_equal(lp_jtext_cp_to_byte(U(mixed), len, cp), want[cp]);
    /* past the end is the end */
    assert_int_equal(lp_jtext_cp_to_byte(U(mixed), len, 6), len);
    assert_int_equal(lp_jtext_cp_to_byte(U(mixed), len, SIZE_MAX), len);
    assert_int_equal(lp_jtext_cp_to_byte(U(""), 0, 3), 0);
    /* an invalid byte is one code point; so is a cut sequence's lead */
    assert_int_equal(lp_jtext_cp_to_byte(U("\xff" "a"), 2, 1), 1);
    assert_int_equal(lp_jtext_cp_to_byte(U("\xe4\xb8" "a"), 3, 1), 1);
    assert_int_equal(lp_jtext_cp_to_byte(U("\xe4\xb8" "a"), 3, 2), 2);
    /* an emoji is one code point, not two UTF-16 units (spec 5.2+) */
    assert_int_equal(lp_jtext_cp_to_byte(U("\xf0\x9f\x98\x80" "x"), 5, 1), 4);
}

static void byte_to_cp(void **state)
{
    static const size_t off[] = {0, 1, 3, 6, 10, 11};
    size_t len = sizeof(mixed) - 1;

    for (size_t cp = 0; cp < 6; cp++)
        assert_int_equal(lp_jtext_byte_to_cp(U(mixed), len, off[cp]), cp);
    /* inside é, inside 世, inside the emoji (each position) */
    assert_int_equal(lp_jtext_byte_to_cp(U(mixed), len, 2), SIZE_MAX);
    assert_int_equal(lp_jtext_byte_to_cp(U(mixed), len, 4), SIZE_MAX);
    assert_int_equal(lp_jtext_byte_to_cp(U(mixed), len, 5), SIZE_MAX);
    for (size_t o = 7; o < 10; o++)
        assert_int_equal(lp_jtext_byte_to_cp(U(mixed), len, o), SIZE_MAX);
    /* past the end */
    assert_int_equal(lp_jtext_byte_to_cp(U(mixed), len, len + 1), SIZE_MAX);
    assert_int_equal(lp_jtext_byte_to_cp(U(""), 0, 0), 0);
    /* invalid bytes count one each, as in cp_to_byte: the two agree */
    assert_int_equal(lp_jtext_byte_to_cp(U("\xff\xfe" "a"), 3, 2), 2);
    for (size_t cp = 0; cp <= 5; cp++)
        assert_int_equal(lp_jtext_byte_to_cp(U(mixed), len, lp_jtext_cp_to_byte(U(mixed), len, cp)),
                         cp);
}

/* Feeds the chunks in order (flush on the last) and checks the text. */
static void stream(const char *const *chunks, const size_t *lens, size_t n, const char *want,
                   size_t want_len)
{
    lp_jstream_t d = {0};
    char all[256];
    size_t at = 0;

    for (size_t i = 0; i < n; i++) {
        char *out;
        size_t len;

        assert_int_equal(lp_jstream_decode(&d, U(chunks[i]), lens[i], i + 1 == n, &out, &len), 0);
        assert_int_equal(out[len], '\0');
        assert_true(at + len < sizeof(all));
        memcpy(all + at, out, len);
        at += len;
        free(out);
    }
    assert_int_equal(d.n_held, 0);
    assert_int_equal(at, want_len);
    assert_memory_equal(all, want, want_len);
}

static void stream_split(void **state)
{
    size_t len = sizeof(mixed) - 1;

    /* every way of cutting the text in two, and in three */
    for (size_t a = 0; a <= len; a++) {
        const char *c2[] = {mixed, mixed + a};
        const size_t l2[] = {a, len - a};

        stream(c2, l2, 2, mixed, len);
        for (size_t b = a; b <= len; b++) {
            const char *c3[] = {mixed, mixed + a, mixed + b};
            const size_t l3[] = {a, b - a, len - b};

            stream(c3, l3, 3, mixed, len);
        }
    }
}

static void stream_held(void **state)
{
    lp_jstream_t d = {0};
    char *out;
    size_t len;

    /* the first three bytes of the emoji: nothing out, three held */
    assert_int_equal(lp_jstream_decode(&d, U("\xf0\x9f\x98"), 3, 0, &out, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    assert_int_equal(d.n_held, 3);
    free(out);
    assert_int_equal(lp_jstream_decode(&d, U("\x80!"), 2, 0, &out, &len), 0);
    assert_string_equal(out, "\xf0\x9f\x98\x80!");
    assert_int_equal(d.n_held, 0);
    free(out);
    /* a cut sequence that the next chunk does not complete: U+FFFD each */
    assert_int_equal(lp_jstream_decode(&d, U("x\xe4\xb8"), 3, 0, &out, &len), 0);
    assert_string_equal(out, "x");
    free(out);
    assert_int_equal(lp_jstream_decode(&d, U("y"), 1, 0, &out, &len), 0);
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbdy");
    free(out);
    /* flush gives up what is held */
    assert_int_equal(lp_jstream_decode(&d, U("\xc3"), 1, 0, &out, &len), 0);
    assert_int_equal(d.n_held, 1);
    free(out);
    assert_int_equal(lp_jstream_decode(&d, NULL, 0, 1, &out, &len), 0);
    assert_string_equal(out, "\xef\xbf\xbd");
    assert_int_equal(d.n_held, 0);
    free(out);
}

static void stream_invalid(void **state)
{
    lp_jstream_t d = {0};
    char *out;
    size_t len;

    /* bytes that start nothing, an overlong, a surrogate, above U+10FFFF;
     * none is held, even at the end of a chunk */
    assert_int_equal(lp_jstream_decode(&d, U("a\xff" "b\xc0\xaf" "c\xed\xa0\x80" "d\xf5"), 12, 0,
                                       &out, &len), 0);
    assert_string_equal(out, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd"
                             "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "d\xef\xbf\xbd");
    assert_int_equal(d.n_held, 0);
    free(out);
    /* a lead whose second byte is out of range is not held (E0 80) */
    assert_int_equal(lp_jstream_decode(&d, U("\xe0\x80"), 2, 0, &out, &len), 0);
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd");
    assert_int_equal(d.n_held, 0);
    free(out);
    /* a NUL byte passes (JSON escapes it); the length says where text ends */
    assert_int_equal(lp_jstream_decode(&d, U("a\0b"), 3, 0, &out, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "a\0b", 4);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cp_to_byte),   cmocka_unit_test(byte_to_cp),
        cmocka_unit_test(stream_split), cmocka_unit_test(stream_held),
        cmocka_unit_test(stream_invalid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
