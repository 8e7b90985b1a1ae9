/* reader.c: the one read loop for framed streams (io.h). read(2) and
 * poll(2), never recv: the fd may be a pipe. */
#include "io/io.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

/* The length, prefix included, of the frame at the front of in (looking
 * past a preamble there), or 0 while its 8-byte prefix is not all in. */
static size_t front_frame_len(const lp_buf_t *in)
{
    size_t off = 0;
    uint32_t hlen, plen;

    if (lp_buf_len(in) >= LP_WIRE_PREAMBLE_LEN &&
        memcmp(lp_buf_data(in), LP_WIRE_PREAMBLE, LP_WIRE_PREAMBLE_LEN) == 0)
        off = LP_WIRE_PREAMBLE_LEN;
    if (lp_buf_peek_u32(in, off, &hlen) != 0 || lp_buf_peek_u32(in, off + 4, &plen) != 0)
        return 0;
    /* each length is below 2^32: the sum cannot overflow a 64-bit size_t */
    return off + LP_WIRE_PREFIX_LEN + (size_t)hlen + plen;
}

/* Waits until fd is readable (or at its end, or in error: read says
 * which) or deadline passes: 0, -ETIMEDOUT, or -errno. */
static int wait_readable(int fd, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    for (;;) {
        int n = poll(&p, 1, lp_clock_left_ms(deadline));

        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int lp_reader_fill(lp_reader_t *r, int timeout_ms)
{
    uint64_t deadline = lp_clock_deadline(timeout_ms);
    size_t len = lp_buf_len(r->in), max = lp_buf_max(r->in);
    size_t total = r->raw ? 0 : front_frame_len(r->in);
    size_t want = LP_IO_READ_CHUNK;
    uint8_t *dst;
    ssize_t n;
    int e;

    if (total > max)
        return LP_WIRE_ELIMIT; /* refused from the prefix: never read, never allocated */
    if (total > len && total - len > want)
        want = total - len; /* the rest of a large frame in one read when it is there */
    if (want > max - len)
        want = max - len;
    if (want == 0)
        return LP_WIRE_ELIMIT; /* full: the caller must consume first */
    for (bool poll_first = timeout_ms >= 0;; poll_first = true) {
        /* forever: straight into read, one system call a request */
        if ((poll_first && (e = wait_readable(r->fd, deadline)) != 0) ||
            (e = lp_buf_reserve(r->in, want, &dst)) != 0)
            return e;
        n = read(r->fd, dst, want);
        if (n > 0)
            return lp_buf_commit(r->in, (size_t)n);
        if (n == 0)
            return -ECONNRESET;
        /* EINTR: a signal is not the end of a read; EAGAIN: a non-blocking
         * fd polled readable and then was not (another reader took it) */
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
    }
}

int lp_reader_next(lp_reader_t *r, const lp_limits_t *lim, lp_frame_t *f, int timeout_ms)
{
    uint64_t deadline = lp_clock_deadline(timeout_ms);
    int e;

    while ((e = lp_frame_decode(r->in, lim, f)) == LP_WIRE_EAGAIN)
        if ((e = lp_reader_fill(r, lp_clock_left_ms(deadline))) != 0)
            return e;
    return e;
}

void lp_route_get(const json_t *header, lp_route_t *rt)
{
    const json_t *re = json_object_get(header, "re");

    rt->op = json_string_value(json_object_get(header, "op"));
    rt->to = json_string_value(json_object_get(header, "to"));
    rt->session = json_string_value(json_object_get(header, "session"));
    rt->re = json_is_integer(re) ? (int64_t)json_integer_value(re) : -1;
}

int lp_reader_peek(lp_reader_t *r, const lp_limits_t *lim, lp_frame_view_t *v, lp_route_t *rt)
{
    int e = lp_frame_peek(r->in, lim, v);

    if (e == 0 && rt != NULL)
        lp_route_get(v->header, rt);
    return e;
}

void lp_reader_drop(lp_reader_t *r, lp_frame_view_t *v)
{
    lp_buf_consume(r->in, v->frame_len);
    json_decref(v->header);
    v->header = NULL;
}
