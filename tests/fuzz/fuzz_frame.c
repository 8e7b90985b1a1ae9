/* fuzz_frame.c: libFuzzer target for the frame decoder and op checks.
 *
 * Properties checked beyond "no crash, no leak": a failed decode consumes
 * nothing; every decoded frame re-encodes and decodes back to an equal
 * header and payload. */
#include <stdlib.h>
#include <string.h>

#include "wire/frame.h"
#include "wire/ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const lp_frame_t *f)
{
    const lp_limits_t lim = {LP_WIRE_HEADER_MAX * 2, LP_WIRE_PAYLOAD_CEILING};
    lp_buf_t *b = lp_buf_new(SIZE_MAX);
    lp_frame_t g = {0};

    if (lp_frame_encode(b, f->header, f->payload, f->payload_len, &lim) != 0)
        abort(); /* whatever decodes must encode */
    if (lp_frame_decode(b, &lim, &g) != 0 || !json_equal(f->header, g.header) ||
        g.payload_len != f->payload_len ||
        (f->payload_len > 0 && memcmp(f->payload, g.payload, f->payload_len) != 0) ||
        lp_buf_len(b) != 0)
        abort();
    lp_frame_clear(&g);
    lp_buf_free(b);
}

static void decode_all(const uint8_t *data, size_t size, const lp_limits_t *lim, unsigned dir)
{
    lp_buf_t *in = lp_buf_new(size);
    const lp_op_spec_t *spec;
    const char *field;
    int r;

    if (in == NULL || lp_buf_put(in, data, size) != 0)
        abort();
    for (;;) {
        lp_frame_t f = {0};
        size_t before = lp_buf_len(in);

        if ((r = lp_frame_decode(in, lim, &f)) != 0) {
            if (lp_buf_len(in) != before || f.header != NULL)
                abort();
            break;
        }
        lp_msg_check(f.header, f.payload, f.payload_len, dir, LP_CAP_ENV | LP_CAP_CALL, &spec,
                     &field);
        round_trip(&f);
        lp_frame_clear(&f);
    }
    lp_buf_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const lp_limits_t def = LP_LIMITS_DEFAULT, hello = LP_LIMITS_HELLO;

    decode_all(data, size, &def, LP_DIR_C2S);
    decode_all(data, size, &hello, LP_DIR_S2C);
    return 0;
}
