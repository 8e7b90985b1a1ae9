/* outq.c: a session's queued bytes for its transport, with the framed
 * sink's coalescing of out frames (internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/internal.h"

static const char *const stream_names[] = {"stdout", "stderr"};

/* Makes room for n more bytes. */
static int reserve(lp_outq_t *q, size_t n)
{
    size_t cap = q->cap ? q->cap : 4096;
    uint8_t *p;

    if (n > SIZE_MAX / 2 - q->len)
        return LP_WIRE_ENOMEM;
    while (cap - q->len < n)
        cap *= 2;
    if (cap == q->cap)
        return 0;
    if ((p = realloc(q->data, cap)) == NULL)
        return LP_WIRE_ENOMEM;
    q->data = p;
    q->cap = cap;
    return 0;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Starts a new out frame with an empty payload. */
static int start_frame(lp_outq_t *q, const char *session, int stream, int64_t re)
{
    char h[160];
    size_t n;
    lp_hdr_t b;
    int r;

    lp_hdr_begin(&b, h, sizeof(h), "out");
    if (re >= 0)
        lp_hdr_int(&b, "re", re);
    lp_hdr_str(&b, "session", session);
    lp_hdr_str(&b, "stream", stream_names[stream]);
    if ((r = lp_hdr_end(&b, &n)) != 0 || (r = reserve(q, LP_WIRE_PREFIX_LEN + n)) != 0)
        return r;
    q->last = q->len;
    lp_frame_prefix(q->data + q->len, (uint32_t)n, 0);
    memcpy(q->data + q->len + LP_WIRE_PREFIX_LEN, h, n);
    q->len += LP_WIRE_PREFIX_LEN + n;
    q->last_stream = stream;
    q->last_re = re;
    return 0;
}

int lp_outq_append(lp_outq_t *q, const char *session, int stream, int64_t re, const void *data,
                   size_t len)
{
    while (len > 0) {
        uint32_t plen = q->last_stream >= 0 ? get_u32(q->data + q->last + 4) : 0;
        size_t n;
        int r;

        if (q->last_stream != stream || q->last_re != re ||
            plen >= LP_WIRE_CHUNK) {
            if ((r = start_frame(q, session, stream, re)) != 0)
                return r;
            plen = 0;
        }
        n = len < LP_WIRE_CHUNK - plen ? len : LP_WIRE_CHUNK - plen;
        if ((r = reserve(q, n)) != 0)
            return r;
        memcpy(q->data + q->len, data, n);
        q->len += n;
        lp_frame_prefix(q->data + q->last, get_u32(q->data + q->last), plen + (uint32_t)n);
        data = (const uint8_t *)data + n;
        len -= n;
    }
    return 0;
}

int lp_outq_put(lp_outq_t *q, const void *data, size_t len)
{
    int r = reserve(q, len);

    if (r != 0)
        return r;
    if (len > 0)
        memcpy(q->data + q->len, data, len);
    q->len += len;
    q->last_stream = -1; /* the next output starts a frame of its own */
    return 0;
}

int lp_outq_put_frame(lp_outq_t *q, const void *frame, size_t len)
{
    return lp_outq_put(q, frame, len);
}

int lp_outq_put_parts(lp_outq_t *q, const char *header, size_t hlen, const void *payload,
                      size_t plen)
{
    int r = reserve(q, LP_WIRE_PREFIX_LEN + hlen + plen);

    if (r != 0)
        return r;
    lp_frame_prefix(q->data + q->len, (uint32_t)hlen, (uint32_t)plen);
    memcpy(q->data + q->len + LP_WIRE_PREFIX_LEN, header, hlen);
    if (plen > 0)
        memcpy(q->data + q->len + LP_WIRE_PREFIX_LEN + hlen, payload, plen);
    q->len += LP_WIRE_PREFIX_LEN + hlen + plen;
    q->last_stream = -1; /* the next output starts a frame of its own */
    return 0;
}

void lp_outq_init(lp_outq_t *q)
{
    memset(q, 0, sizeof(*q));
    q->last_stream = -1;
    q->last_re = -1;
}

void lp_outq_clear(lp_outq_t *q)
{
    free(q->data);
    lp_outq_init(q);
}
