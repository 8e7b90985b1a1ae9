/* test_buf.c: the bounded buffer (src/wire/buf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/buf.h"
#include "wire/wire.h"

static void put_and_consume(void **state)
{
    lp_buf_t *b = lp_buf_new(16);

    assert_int_equal(lp_buf_len(b), 0);
    assert_int_equal(lp_buf_put(b, "hello", 5), 0);
    assert_int_equal(lp_buf_len(b), 5);
    assert_memory_equal(lp_buf_data(b), "hello", 5);
    assert_int_equal(lp_buf_consume(b, 2), 0);
    assert_memory_equal(lp_buf_data(b), "llo", 3);
    assert_int_equal(lp_buf_consume(b, 4), LP_WIRE_EINVAL);
    assert_int_equal(lp_buf_len(b), 3);
    assert_int_equal(lp_buf_consume(b, 3), 0);
    assert_int_equal(lp_buf_len(b), 0);
    lp_buf_free(b);
}

static void max_is_never_exceeded(void **state)
{
    lp_buf_t *b = lp_buf_new(8);
    uint8_t *dst;

    assert_int_equal(lp_buf_put(b, "12345678", 8), 0);
    assert_int_equal(lp_buf_put(b, "9", 1), LP_WIRE_ELIMIT);
    assert_int_equal(lp_buf_len(b), 8);
    assert_int_equal(lp_buf_reserve(b, SIZE_MAX, &dst), LP_WIRE_ELIMIT);
    assert_int_equal(lp_buf_consume(b, 4), 0);
    assert_int_equal(lp_buf_put(b, "abcd", 4), 0); /* consumed room is reused */
    assert_memory_equal(lp_buf_data(b), "5678abcd", 8);
    lp_buf_free(b);
}

static void reserve_overflow_sizes(void **state)
{
    lp_buf_t *b = lp_buf_new(SIZE_MAX);
    uint8_t *dst;

    assert_int_equal(lp_buf_put(b, "x", 1), 0);
    /* len + 1 would wrap around: refused, not allocated */
    assert_int_equal(lp_buf_reserve(b, SIZE_MAX, &dst), LP_WIRE_ELIMIT);
    assert_int_equal(lp_buf_len(b), 1);
    lp_buf_free(b);
}

static void reserve_then_commit(void **state)
{
    lp_buf_t *b = lp_buf_new(1024);
    uint8_t *dst;

    assert_int_equal(lp_buf_reserve(b, 100, &dst), 0);
    memcpy(dst, "abc", 3);
    assert_int_equal(lp_buf_len(b), 0);
    assert_int_equal(lp_buf_commit(b, 101), LP_WIRE_EINVAL);
    assert_int_equal(lp_buf_commit(b, 3), 0);
    assert_int_equal(lp_buf_len(b), 3);
    assert_int_equal(lp_buf_commit(b, 1), LP_WIRE_EINVAL); /* reservation used up */
    lp_buf_free(b);
}

static void grows_across_many_puts(void **state)
{
    lp_buf_t *b = lp_buf_new(1u << 20);
    uint8_t block[1000];

    for (size_t i = 0; i < sizeof(block); i++)
        block[i] = (uint8_t)i;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lp_buf_put(b, block, sizeof(block)), 0);
    assert_int_equal(lp_buf_len(b), 1000000);
    for (int i = 0; i < 1000; i++) {
        assert_memory_equal(lp_buf_data(b), block, sizeof(block));
        assert_int_equal(lp_buf_consume(b, sizeof(block)), 0);
    }
    lp_buf_free(b);
}

static void u32_big_endian(void **state)
{
    lp_buf_t *b = lp_buf_new(64);
    uint32_t v;

    assert_int_equal(lp_buf_put_u32(b, 0x01020304u), 0);
    assert_memory_equal(lp_buf_data(b), "\x01\x02\x03\x04", 4);
    assert_int_equal(lp_buf_peek_u32(b, 0, &v), 0);
    assert_int_equal(v, 0x01020304u);
    assert_int_equal(lp_buf_peek_u32(b, 1, &v), LP_WIRE_EAGAIN);
    assert_int_equal(lp_buf_peek_u32(b, SIZE_MAX, &v), LP_WIRE_EAGAIN);
    assert_int_equal(lp_buf_put_u32(b, 0xFFFFFFFFu), 0);
    assert_int_equal(lp_buf_peek_u32(b, 4, &v), 0);
    assert_int_equal(v, 0xFFFFFFFFu);
    lp_buf_free(b);
}

static void truncate_undoes_appends(void **state)
{
    lp_buf_t *b = lp_buf_new(64);

    assert_int_equal(lp_buf_put(b, "abcdef", 6), 0);
    assert_int_equal(lp_buf_consume(b, 2), 0);
    assert_int_equal(lp_buf_put(b, "XYZ", 3), 0);
    assert_int_equal(lp_buf_truncate(b, 4), 0);
    assert_int_equal(lp_buf_len(b), 4);
    assert_memory_equal(lp_buf_data(b), "cdef", 4);
    assert_int_equal(lp_buf_truncate(b, 5), LP_WIRE_EINVAL);
    assert_int_equal(lp_buf_truncate(b, 0), 0);
    assert_int_equal(lp_buf_len(b), 0);
    lp_buf_free(b);
}

static void set_max(void **state)
{
    lp_buf_t *b = lp_buf_new(4);

    assert_int_equal(lp_buf_put(b, "abcd", 4), 0);
    assert_int_equal(lp_buf_set_max(b, 3), LP_WIRE_ELIMIT);
    assert_int_equal(lp_buf_max(b), 4);
    assert_int_equal(lp_buf_set_max(b, 100), 0);
    assert_int_equal(lp_buf_put(b, "efgh", 4), 0);
    lp_buf_reset(b);
    assert_int_equal(lp_buf_len(b), 0);
    lp_buf_free(b);
    lp_buf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_and_consume),
        cmocka_unit_test(max_is_never_exceeded),
        cmocka_unit_test(reserve_overflow_sizes),
        cmocka_unit_test(reserve_then_commit),
        cmocka_unit_test(grows_across_many_puts),
        cmocka_unit_test(u32_big_endian),
        cmocka_unit_test(truncate_undoes_appends),
        cmocka_unit_test(set_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
