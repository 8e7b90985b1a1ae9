/* frame_echo.c: a far side in C for bench/broker_rtt.py: reads frames on
 * stdin and answers each with {"op":"done","re":<its id>} and the same
 * payload on stdout, with the one reader and the one frame writer. No
 * handshake: the caller under test starts right at the frames. */
#include <stdio.h>
#include <unistd.h>

#include "io/io.h"

int main(void)
{
    const lp_limits_t lim = {65536, 64u << 20};
    lp_buf_t *in = lp_buf_new(LP_WIRE_PREFIX_LEN + 65536 + (64u << 20)), *out = lp_buf_new(SIZE_MAX);
    lp_reader_t r = {.fd = 0, .in = in};
    lp_frame_t f = {0};
    char h[64];

    if (in == NULL || out == NULL)
        return 1;
    while (lp_reader_next(&r, &lim, &f, -1) == 0) {
        long long id = (long long)json_integer_value(json_object_get(f.header, "id"));
        int n = snprintf(h, sizeof(h), "{\"op\":\"done\",\"re\":%lld}", id);

        if (lp_frame_put(out, h, (size_t)n, f.payload, f.payload_len, &lim) != 0)
            return 1;
        for (size_t off = 0; off < lp_buf_len(out);) {
            ssize_t k = write(1, lp_buf_data(out) + off, lp_buf_len(out) - off);

            if (k <= 0)
                return 1;
            off += (size_t)k;
        }
        lp_buf_reset(out);
        lp_frame_clear(&f);
    }
    return 0;
}
