/* fuzz_hdr.c: libFuzzer target for the one header builder (wire/hdr.h).
 *
 * The input's bytes up to its first NUL are a string value. Properties:
 * valid text (UTF-8, no NUL) always builds, and the frame made of it
 * decodes back, through the decoder every peer uses, to the same string
 * and integer; anything else is refused as LP_WIRE_ETEXT, never written. */
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"
#include "wire/hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const lp_limits_t lim = {LP_WIRE_HEADER_MAX, LP_WIRE_PAYLOAD_DEFAULT};
    size_t n = strnlen((const char *)data, size), cap = 6 * n + 64, hlen;
    char *s = malloc(n + 1), *buf = malloc(cap);
    int64_t re = (int64_t)(size * 2654435761u) - (1LL << 31);
    lp_buf_t *b = lp_buf_new(SIZE_MAX);
    lp_frame_t f = {0};
    lp_hdr_t h;
    int r;

    if (s == NULL || buf == NULL || b == NULL)
        abort();
    memcpy(s, data, n);
    s[n] = 0;
    lp_hdr_begin(&h, buf, cap, "value");
    lp_hdr_int(&h, "re", re);
    lp_hdr_str(&h, "type", s);
    r = lp_hdr_end(&h, &hlen);
    if (lp_utf8_check_text((const uint8_t *)s, n) != 0) {
        if (r != LP_WIRE_ETEXT)
            abort(); /* invalid text must never be written */
    } else if (hlen > LP_WIRE_HEADER_MAX) {
        if (r != 0)
            abort();
    } else {
        if (r != 0 || lp_frame_put(b, buf, hlen, data, size, &lim) != 0 ||
            lp_frame_decode(b, &lim, &f) != 0 || lp_buf_len(b) != 0 ||
            strcmp(json_string_value(json_object_get(f.header, "type")), s) != 0 ||
            json_integer_value(json_object_get(f.header, "re")) != re ||
            f.payload_len != size || (size > 0 && memcmp(f.payload, data, size) != 0))
            abort();
    }
    lp_frame_clear(&f);
    lp_buf_free(b);
    free(buf);
    free(s);
    return 0;
}
