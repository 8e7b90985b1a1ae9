/* buf.c: bounded byte buffer (buf.h). */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "wire.h"

#define LP_BUF_INITIAL 256u /* first allocation: most frames are small */

struct lp_buf {
    uint8_t *data; /* allocation; NULL until the first byte */
    size_t off;    /* start of the unconsumed bytes */
    size_t len;    /* unconsumed bytes, from off */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard limit on len */
    size_t resv;   /* bytes reserved after off + len, not yet committed */
};

lp_buf_t *lp_buf_new(size_t max)
{
    lp_buf_t *b = calloc(1, sizeof(*b));

    if (b != NULL)
        b->max = max;
    return b;
}

void lp_buf_free(lp_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    free(b);
}

size_t lp_buf_len(const lp_buf_t *b) { return b->len; }
size_t lp_buf_max(const lp_buf_t *b) { return b->max; }
const uint8_t *lp_buf_data(const lp_buf_t *b)
{
    static const uint8_t empty[1]; /* never NULL, even before the first byte */

    return b->data != NULL ? b->data + b->off : empty;
}

uint8_t *lp_buf_mut(lp_buf_t *b)
{
    return b->data != NULL ? b->data + b->off : NULL;
}

int lp_buf_set_max(lp_buf_t *b, size_t max)
{
    if (b->len > max)
        return LP_WIRE_ELIMIT;
    b->max = max;
    return 0;
}

/* Capacity to hold want bytes (want <= max): doubles, capped at max. */
static size_t grown_cap(size_t cap, size_t want, size_t max)
{
    size_t c = cap < LP_BUF_INITIAL ? LP_BUF_INITIAL : cap;

    while (c < want)
        c = c > max / 2 ? max : c * 2;
    return c;
}

int lp_buf_reserve(lp_buf_t *b, size_t len, uint8_t **dst)
{
    size_t want;
    uint8_t *p;

    if (len > b->max || b->max - len < b->len)
        return LP_WIRE_ELIMIT;
    want = b->len + len;
    if (b->off > 0 && b->cap - b->off < want) {
        /* Reclaim the consumed front before growing. */
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
    }
    if (b->cap - b->off < want) {
        size_t cap = grown_cap(b->cap, want, b->max);

        if ((p = realloc(b->data, cap)) == NULL)
            return LP_WIRE_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    b->resv = len;
    *dst = b->data + b->off + b->len;
    return 0;
}

int lp_buf_commit(lp_buf_t *b, size_t len)
{
    if (len > b->resv)
        return LP_WIRE_EINVAL;
    b->len += len;
    b->resv = 0;
    return 0;
}

int lp_buf_put(lp_buf_t *b, const void *p, size_t len)
{
    uint8_t *dst;
    int r;

    if (len == 0)
        return 0;
    if ((r = lp_buf_reserve(b, len, &dst)) != 0)
        return r;
    memcpy(dst, p, len);
    return lp_buf_commit(b, len);
}

int lp_buf_put_u32(lp_buf_t *b, uint32_t v)
{
    uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                     (uint8_t)v};

    return lp_buf_put(b, be, sizeof(be));
}

int lp_buf_peek_u32(const lp_buf_t *b, size_t off, uint32_t *v)
{
    const uint8_t *p;

    if (off > b->len || b->len - off < 4)
        return LP_WIRE_EAGAIN;
    p = b->data + b->off + off;
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return 0;
}

int lp_buf_consume(lp_buf_t *b, size_t len)
{
    if (len > b->len)
        return LP_WIRE_EINVAL;
    b->len -= len;
    b->off = b->len == 0 ? 0 : b->off + len;
    b->resv = 0;
    return 0;
}

int lp_buf_truncate(lp_buf_t *b, size_t len)
{
    if (len > b->len)
        return LP_WIRE_EINVAL;
    b->len = len;
    b->off = len == 0 ? 0 : b->off;
    b->resv = 0;
    return 0;
}

void lp_buf_reset(lp_buf_t *b)
{
    b->off = 0;
    b->len = 0;
    b->resv = 0;
}
