/* test_errors.c: one error space: limpet's codes and -errno never collide,
 * and every code has a description. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "wire/wire.h"

static const int codes[] = {
    LP_WIRE_EAGAIN,    LP_WIRE_ENOMEM,    LP_WIRE_EINVAL,  LP_WIRE_ELIMIT,    LP_WIRE_EPREAMBLE,
    LP_WIRE_ETOOLARGE, LP_WIRE_EHEADER,   LP_WIRE_EHANDSHAKE, LP_WIRE_EVERSION, LP_WIRE_EFORBIDDEN,
    LP_WIRE_ETIMEOUT,  LP_WIRE_ETOOMANY,  LP_WIRE_EOP,     LP_WIRE_ENOTSUP,   LP_WIRE_EFIELD,
    LP_WIRE_ETEXT,     LP_WIRE_ENOSESSION, LP_WIRE_EBUSY,  LP_WIRE_EINTERNAL, LP_EDETACHED,
    LP_EEOF,           LP_EINTERRUPTED,
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static void codes_are_below_every_errno(void **state)
{
    for (size_t i = 0; i < NCODES; i++) {
        assert_true(codes[i] <= LP_ERR_BASE);
        assert_true(codes[i] < -4095); /* Linux's MAX_ERRNO */
        for (size_t j = i + 1; j < NCODES; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
}

static void every_code_is_described(void **state)
{
    for (size_t i = 0; i < NCODES; i++)
        assert_string_not_equal(lp_wire_strerror(codes[i]), "unknown error");
}

static void errno_values_read_as_errno(void **state)
{
    /* -EINTR was once also LP_WIRE_ELIMIT */
    assert_string_equal(lp_wire_strerror(-EINTR), strerrordesc_np(EINTR));
    assert_string_equal(lp_wire_strerror(-EPIPE), strerrordesc_np(EPIPE));
    assert_null(lp_wire_err_code(-EINTR));
    assert_null(lp_wire_err_code(-ETIMEDOUT));
    assert_false(lp_wire_err_is_fatal(-EINTR));
    assert_string_equal(lp_wire_strerror(LP_ERR_BASE - 9999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codes_are_below_every_errno),
        cmocka_unit_test(every_code_is_described),
        cmocka_unit_test(errno_values_read_as_errno),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
