/* test_utf8.c: text payload validation (src/wire/utf8.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wire/wire.h"

static int check(const char *s, size_t n) { return lp_utf8_check_text((const uint8_t *)s, n); }
#define CHECK(lit) check(lit, sizeof(lit) - 1)

static void accepts_valid_text(void **state)
{
    assert_int_equal(CHECK(""), 0);
    assert_int_equal(CHECK("print(1)\n"), 0);
    assert_int_equal(CHECK("caf\xc3\xa9"), 0);              /* U+00E9 */
    assert_int_equal(CHECK("\xe2\x98\x83"), 0);             /* U+2603 */
    assert_int_equal(CHECK("\xf0\x9f\x98\x80"), 0);         /* U+1F600 */
    assert_int_equal(CHECK("\xef\xbf\xbf"), 0);             /* U+FFFF */
    assert_int_equal(CHECK("\xf4\x8f\xbf\xbf"), 0);         /* U+10FFFF */
    assert_int_equal(CHECK("\xed\x9f\xbf"), 0);             /* U+D7FF */
    assert_int_equal(CHECK("\xee\x80\x80"), 0);             /* U+E000 */
    assert_int_equal(CHECK("\x1b[31mred\x1b[0m"), 0);       /* ANSI is text */
}

static void refuses_nul(void **state)
{
    assert_int_equal(CHECK("a\0b"), LP_WIRE_ETEXT);
    assert_int_equal(CHECK("\0"), LP_WIRE_ETEXT);
}

static void refuses_bad_sequences(void **state)
{
    assert_int_equal(CHECK("\xff"), LP_WIRE_ETEXT);
    assert_int_equal(CHECK("\x80"), LP_WIRE_ETEXT);          /* lone continuation */
    assert_int_equal(CHECK("\xc0\xaf"), LP_WIRE_ETEXT);      /* overlong '/' */
    assert_int_equal(CHECK("\xc1\xbf"), LP_WIRE_ETEXT);      /* overlong */
    assert_int_equal(CHECK("\xe0\x80\xaf"), LP_WIRE_ETEXT);  /* overlong 3-byte */
    assert_int_equal(CHECK("\xf0\x80\x80\xaf"), LP_WIRE_ETEXT); /* overlong 4-byte */
    assert_int_equal(CHECK("\xed\xa0\x80"), LP_WIRE_ETEXT);  /* U+D800 surrogate */
    assert_int_equal(CHECK("\xed\xbf\xbf"), LP_WIRE_ETEXT);  /* U+DFFF surrogate */
    assert_int_equal(CHECK("\xf4\x90\x80\x80"), LP_WIRE_ETEXT); /* U+110000 */
    assert_int_equal(CHECK("\xf5\x80\x80\x80"), LP_WIRE_ETEXT);
    assert_int_equal(CHECK("\xc3"), LP_WIRE_ETEXT);          /* truncated */
    assert_int_equal(CHECK("\xe2\x98"), LP_WIRE_ETEXT);      /* truncated */
    assert_int_equal(CHECK("\xe2\x28\xa1"), LP_WIRE_ETEXT);  /* bad continuation */
    assert_int_equal(CHECK("\xf0\x9f\x98\x28"), LP_WIRE_ETEXT);
}

static void length_is_respected(void **state)
{
    /* The byte after len is never read: "\xc3" alone is truncated. */
    assert_int_equal(check("\xc3\xa9", 1), LP_WIRE_ETEXT);
    assert_int_equal(check("ab\xff", 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_valid_text),
        cmocka_unit_test(refuses_nul),
        cmocka_unit_test(refuses_bad_sequences),
        cmocka_unit_test(length_is_respected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
