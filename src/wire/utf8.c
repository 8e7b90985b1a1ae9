/* utf8.c: strict UTF-8 validation for payloads that must be text. */
#include "wire.h"
#include "buf.h"

/* Length of the sequence led by byte c, or 0 for a byte that cannot lead. */
static unsigned seq_len(uint8_t c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF)
        return 3;
    if (c >= 0xF0 && c <= 0xF4)
        return 4;
    return 0;
}

/* The allowed range of the second byte after lead c (RFC 3629, table 3-7):
 * this is what rules out overlongs, surrogates and values over U+10FFFF. */
static void second_range(uint8_t c, uint8_t *lo, uint8_t *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c == 0xE0)
        *lo = 0xA0;
    else if (c == 0xED)
        *hi = 0x9F;
    else if (c == 0xF0)
        *lo = 0x90;
    else if (c == 0xF4)
        *hi = 0x8F;
}

size_t lp_utf8_seq(const uint8_t *s, size_t len)
{
    unsigned n = len > 0 ? seq_len(s[0]) : 0;
    uint8_t lo, hi;

    if (n == 0 || len < n)
        return 0;
    if (n > 1) {
        second_range(s[0], &lo, &hi);
        if (s[1] < lo || s[1] > hi)
            return 0;
        for (unsigned k = 2; k < n; k++)
            if ((s[k] & 0xC0) != 0x80)
                return 0;
    }
    return n;
}

bool lp_utf8_partial(const uint8_t *s, size_t len)
{
    unsigned n = len > 0 ? seq_len(s[0]) : 0;
    uint8_t lo, hi;

    if (len >= n) /* n == 0 too: no lead byte */
        return false;
    second_range(s[0], &lo, &hi);
    if (len > 1 && (s[1] < lo || s[1] > hi))
        return false;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xC0) != 0x80)
            return false;
    return true;
}

size_t lp_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    /* s[max] starts the first character left out, unless it continues one */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

int lp_utf8_check_text(const uint8_t *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = lp_utf8_seq(s + i, len - i);

        if (n == 0 || s[i] == 0)
            return LP_WIRE_ETEXT;
        i += n;
    }
    return 0;
}

int lp_buf_put_utf8(lp_buf_t *b, const void *p, size_t len)
{
    const uint8_t *s = p;
    size_t i = 0, n;
    int rc = 0;

    while (i < len && rc == 0) {
        size_t run = i;

        while (run < len && (n = lp_utf8_seq(s + run, len - run)) > 0)
            run += n;
        rc = lp_buf_put(b, s + i, run - i);
        if (run < len && rc == 0) {
            rc = lp_buf_put(b, "\xef\xbf\xbd", 3);
            run++;
        }
        i = run;
    }
    return rc;
}
