/* unhex.h: hex from a vectors file into bytes, for the unit tests that
 * read one (include after cmocka.h). */
#ifndef LP_TEST_UNHEX_H
#define LP_TEST_UNHEX_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The bytes of hex (an even number of digits) in a new buffer; caller frees. */
static inline uint8_t *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *p = malloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        unsigned v;

        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        p[i] = (uint8_t)v;
    }
    *len = n;
    return p;
}

#endif
