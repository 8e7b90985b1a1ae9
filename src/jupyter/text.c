/* text.c: code point <-> UTF-8 byte offsets (Jupyter's cursors are code
 * points) and the stream decoder for `out` bytes (docs/jupyter.md
 * section 3). An invalid byte is one code point, as it becomes one U+FFFD. */
#include "jupyter/text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/buf.h"
#include "wire/wire.h"

/* The bytes of the code point at s: a valid sequence, or one invalid byte. */
static size_t step(const uint8_t *s, size_t len)
{
    size_t n = lp_utf8_seq(s, len);

    return n > 0 ? n : 1;
}

size_t lp_jtext_cp_to_byte(const uint8_t *s, size_t len, size_t cp)
{
    size_t i = 0;

    for (; cp > 0 && i < len; cp--)
        i += step(s + i, len - i);
    return i;
}

size_t lp_jtext_byte_to_cp(const uint8_t *s, size_t len, size_t off)
{
    size_t i = 0, cp = 0;

    if (off > len)
        return SIZE_MAX;
    for (; i < off; cp++)
        i += step(s + i, len - i);
    return i == off ? cp : SIZE_MAX;
}

/* How many bytes at the end of s[len] start a character the next chunk
 * completes (0-3). A lead byte is never inside a complete sequence, so the
 * longest such tail is the one to keep. */
static size_t partial_tail(const uint8_t *s, size_t len)
{
    for (size_t k = len < 3 ? len : 3; k > 0; k--)
        if (lp_utf8_partial(s + len - k, k))
            return k;
    return 0;
}

int lp_jstream_decode(lp_jstream_t *d, const uint8_t *in, size_t len, int flush, char **out,
                      size_t *out_len)
{
    size_t total = d->n_held + len, keep;
    uint8_t *all = malloc(total > 0 ? total : 1);
    lp_buf_t *b = lp_buf_new(total * 3 + 1); /* all U+FFFD at worst */
    int rc = -1;

    *out = NULL;
    *out_len = 0;
    if (all == NULL || b == NULL)
        goto done;
    memcpy(all, d->held, d->n_held);
    if (len > 0)
        memcpy(all + d->n_held, in, len);
    keep = flush ? 0 : partial_tail(all, total);
    /* each byte that starts no valid sequence becomes U+FFFD */
    if (lp_buf_put_utf8(b, all, total - keep) != 0 || lp_buf_put(b, "", 1) != 0)
        goto done;
    *out_len = lp_buf_len(b) - 1;
    if ((*out = malloc(lp_buf_len(b))) == NULL)
        goto done;
    memcpy(*out, lp_buf_data(b), lp_buf_len(b));
    memcpy(d->held, all + total - keep, keep);
    d->n_held = keep;
    rc = 0;
done:
    free(all);
    lp_buf_free(b);
    return rc;
}
