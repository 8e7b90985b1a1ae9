/* outq.c: a session's queued bytes for its transport, with the framed
 * sink's coalescing of out frames (internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/internal.h"

static const char *const stream_names[] = {"stdout", "stderr"};

/* What a queued frame may hold: the codec's own ceilings (the receiver's
 * limits were applied when the event was made). */
static const lp_limits_t lim = {LP_WIRE_HEADER_MAX, LP_WIRE_PAYLOAD_CEILING};

/* Makes sure q has its buffer: 0 or LP_WIRE_ENOMEM. */
static int ready(lp_outq_t *q)
{
    if (q->buf == NULL && (q->buf = lp_buf_new(LP_OUTQ_MAX)) == NULL)
        return LP_WIRE_ENOMEM;
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
    if ((r = lp_hdr_end(&b, &n)) != 0 || (r = ready(q)) != 0)
        return r;
    q->last = lp_buf_len(q->buf);
    if ((r = lp_frame_put(q->buf, h, n, NULL, 0, &lim)) != 0)
        return r;
    q->last_stream = stream;
    q->last_re = re;
    return 0;
}

int lp_outq_append(lp_outq_t *q, const char *session, int stream, int64_t re, const void *data,
                   size_t len)
{
    while (len > 0) {
        uint32_t plen = q->last_stream >= 0 ? get_u32(lp_buf_mut(q->buf) + q->last + 4) : 0;
        uint8_t *frame;
        size_t n;
        int r;

        if (q->last_stream != stream || q->last_re != re ||
            plen >= LP_WIRE_CHUNK) {
            if ((r = start_frame(q, session, stream, re)) != 0)
                return r;
            plen = 0;
        }
        n = len < LP_WIRE_CHUNK - plen ? len : LP_WIRE_CHUNK - plen;
        if ((r = lp_buf_put(q->buf, data, n)) != 0)
            return r;
        frame = lp_buf_mut(q->buf) + q->last; /* the bytes may have moved */
        lp_frame_prefix(frame, get_u32(frame), plen + (uint32_t)n);
        data = (const uint8_t *)data + n;
        len -= n;
    }
    return 0;
}

int lp_outq_put(lp_outq_t *q, const void *data, size_t len)
{
    int r = ready(q);

    if (r == 0)
        r = lp_buf_put(q->buf, data, len);
    q->last_stream = -1; /* the next output starts a frame of its own */
    return r;
}

int lp_outq_put_frame(lp_outq_t *q, const void *frame, size_t len)
{
    return lp_outq_put(q, frame, len);
}

int lp_outq_put_parts(lp_outq_t *q, const char *header, size_t hlen, const void *payload,
                      size_t plen)
{
    int r = ready(q);

    if (r == 0)
        r = lp_frame_put(q->buf, header, hlen, payload, plen, &lim);
    q->last_stream = -1; /* the next output starts a frame of its own */
    return r;
}

size_t lp_outq_len(const lp_outq_t *q) { return q->buf != NULL ? lp_buf_len(q->buf) : 0; }

const uint8_t *lp_outq_data(const lp_outq_t *q)
{
    return q->buf != NULL ? lp_buf_data(q->buf) : NULL;
}

void lp_outq_init(lp_outq_t *q)
{
    memset(q, 0, sizeof(*q));
    q->last_stream = -1;
    q->last_re = -1;
}

void lp_outq_clear(lp_outq_t *q)
{
    lp_buf_free(q->buf);
    lp_outq_init(q);
}
