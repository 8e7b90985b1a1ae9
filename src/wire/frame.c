/* frame.c: preamble and frame codec (frame.h). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

int lp_preamble_encode(lp_buf_t *out)
{
    return lp_buf_put(out, LP_WIRE_PREAMBLE, LP_WIRE_PREAMBLE_LEN);
}

int lp_preamble_decode(lp_buf_t *in)
{
    size_t n = lp_buf_len(in);

    if (n > LP_WIRE_PREAMBLE_LEN)
        n = LP_WIRE_PREAMBLE_LEN;
    if (n > 0 && memcmp(lp_buf_data(in), LP_WIRE_PREAMBLE, n) != 0)
        return LP_WIRE_EPREAMBLE;
    if (n < LP_WIRE_PREAMBLE_LEN)
        return LP_WIRE_EAGAIN;
    return lp_buf_consume(in, LP_WIRE_PREAMBLE_LEN);
}

/* Walks h: only objects, arrays, NUL-free strings, integers, booleans and
 * null, nested no deeper than LP_WIRE_HEADER_DEPTH_MAX. */
static int check_value(const json_t *h, int depth)
{
    const char *key;
    const json_t *v;
    size_t i;

    if (depth > LP_WIRE_HEADER_DEPTH_MAX)
        return LP_WIRE_EHEADER;
    switch (json_typeof(h)) {
    case JSON_REAL:
        return LP_WIRE_EHEADER;
    case JSON_STRING: /* jansson can hold a NUL that JSON text may not */
        return strlen(json_string_value(h)) == json_string_length(h) ? 0 : LP_WIRE_EHEADER;
    case JSON_OBJECT:
        json_object_foreach((json_t *)h, key, v)
            if (check_value(v, depth + 1) != 0)
                return LP_WIRE_EHEADER;
        return 0;
    case JSON_ARRAY:
        json_array_foreach(h, i, v)
            if (check_value(v, depth + 1) != 0)
                return LP_WIRE_EHEADER;
        return 0;
    default:
        return 0;
    }
}

int lp_header_check(const json_t *h)
{
    if (h == NULL || !json_is_object(h))
        return LP_WIRE_EHEADER;
    return check_value(h, 0);
}

int lp_header_check_value(const json_t *v)
{
    return v != NULL ? check_value(v, 1) : LP_WIRE_EHEADER;
}

void lp_frame_prefix(uint8_t out[LP_WIRE_PREFIX_LEN], uint32_t hlen, uint32_t plen)
{
    out[0] = (uint8_t)(hlen >> 24);
    out[1] = (uint8_t)(hlen >> 16);
    out[2] = (uint8_t)(hlen >> 8);
    out[3] = (uint8_t)hlen;
    out[4] = (uint8_t)(plen >> 24);
    out[5] = (uint8_t)(plen >> 16);
    out[6] = (uint8_t)(plen >> 8);
    out[7] = (uint8_t)plen;
}

int lp_frame_peek(const lp_buf_t *in, const lp_limits_t *lim, lp_frame_view_t *v)
{
    uint32_t hlen, plen;
    const uint8_t *p;
    json_error_t jerr;
    json_t *h;

    if (lp_buf_peek_u32(in, 0, &hlen) != 0 || lp_buf_peek_u32(in, 4, &plen) != 0)
        return LP_WIRE_EAGAIN;
    if (hlen > lim->header_max || plen > lim->payload_max)
        return LP_WIRE_ETOOLARGE;
    if (hlen < LP_WIRE_HEADER_MIN)
        return LP_WIRE_EHEADER;
    /* Both lengths are at most 2^32-1, so the sum fits a 64-bit size_t;
     * it is compared with what is held, never used to index first. */
    if (lp_buf_len(in) - LP_WIRE_PREFIX_LEN < (size_t)hlen + plen)
        return LP_WIRE_EAGAIN;
    p = lp_buf_data(in) + LP_WIRE_PREFIX_LEN;
    /* A raw NUL is never valid JSON, but jansson takes one after a number or
     * keyword for the end of input; refuse it before parsing. */
    if (memchr(p, 0, hlen) != NULL)
        return LP_WIRE_EHEADER;
    /* \u0000 escapes are refused too: JSON_ALLOW_NUL is not set. */
    h = json_loadb((const char *)p, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (h == NULL)
        return LP_WIRE_EHEADER;
    if (lp_header_check(h) != 0) {
        json_decref(h);
        return LP_WIRE_EHEADER;
    }
    v->header = h;
    v->payload = p + hlen;
    v->payload_len = plen;
    v->frame_len = LP_WIRE_PREFIX_LEN + (size_t)hlen + plen;
    return 0;
}

int lp_frame_decode(lp_buf_t *in, const lp_limits_t *lim, lp_frame_t *f)
{
    lp_frame_view_t v;
    uint8_t *copy = NULL;
    int r;

    if ((r = lp_frame_peek(in, lim, &v)) != 0)
        return r;
    if (v.payload_len > 0) {
        if ((copy = malloc(v.payload_len)) == NULL) {
            json_decref(v.header);
            return LP_WIRE_ENOMEM;
        }
        memcpy(copy, v.payload, v.payload_len);
    }
    f->header = v.header;
    f->payload = copy;
    f->payload_len = v.payload_len;
    return lp_buf_consume(in, v.frame_len);
}

void lp_frame_clear(lp_frame_t *f)
{
    if (f == NULL)
        return;
    json_decref(f->header);
    free(f->payload);
    memset(f, 0, sizeof(*f));
}

int lp_frame_put(lp_buf_t *out, const char *header, size_t hlen, const void *payload, size_t len,
                 const lp_limits_t *lim)
{
    size_t total;
    uint8_t *dst;
    int r;

    if (hlen > lim->header_max || len > lim->payload_max)
        return LP_WIRE_ETOOLARGE;
    if (len > 0 && payload == NULL)
        return LP_WIRE_EINVAL;
    total = LP_WIRE_PREFIX_LEN + hlen + len; /* each term is below 2^32 */
    if ((r = lp_buf_reserve(out, total, &dst)) != 0)
        return r;
    lp_frame_prefix(dst, (uint32_t)hlen, (uint32_t)len);
    memcpy(dst + LP_WIRE_PREFIX_LEN, header, hlen);
    if (len > 0)
        memcpy(dst + LP_WIRE_PREFIX_LEN + hlen, payload, len);
    return lp_buf_commit(out, total);
}

int lp_frame_encode(lp_buf_t *out, const json_t *header, const void *payload, size_t len,
                    const lp_limits_t *lim)
{
    const size_t flags = JSON_COMPACT;
    size_t hlen, total;
    uint8_t *dst;
    int r;

    if (lp_header_check(header) != 0)
        return LP_WIRE_EHEADER;
    hlen = json_dumpb(header, NULL, 0, flags);
    if (hlen == 0)
        return LP_WIRE_EHEADER;
    if (hlen > lim->header_max || len > lim->payload_max)
        return LP_WIRE_ETOOLARGE;
    if (len > 0 && payload == NULL)
        return LP_WIRE_EINVAL;
    total = LP_WIRE_PREFIX_LEN + hlen + len; /* each term is < 2^32 */
    if ((r = lp_buf_reserve(out, total, &dst)) != 0)
        return r;
    lp_frame_prefix(dst, (uint32_t)hlen, (uint32_t)len);
    if (json_dumpb(header, (char *)dst + LP_WIRE_PREFIX_LEN, hlen, flags) != hlen)
        return LP_WIRE_EINTERNAL;
    if (len > 0)
        memcpy(dst + LP_WIRE_PREFIX_LEN + hlen, payload, len);
    return lp_buf_commit(out, total);
}
