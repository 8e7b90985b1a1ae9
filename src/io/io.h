/* io.h: framed streams over any file descriptor (socket, pipe,
 * socketpair): the one read loop, the one clock, the one thread spawner.
 * Pure C: no Python; JSON only through src/wire's frames. Functions return
 * 0 or a negative code of the one error space (wire/wire.h): -errno, or
 * LP_WIRE_E* for what the codec says about the bytes. */
#ifndef LP_IO_H
#define LP_IO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"

#define LP_IO_READ_CHUNK (64u << 10) /* the least one read asks for: most frames are small */

/* reader.c */

/* A framed reader: one fd, one bounded input buffer. Neither is owned:
 * the caller opens and closes both. */
typedef struct lp_reader {
    int fd;      /* where the bytes come from: any fd read(2) works on */
    lp_buf_t *in; /* bytes read, not yet consumed; its max bounds a frame */
    bool raw;    /* plain text, not frames: no prefix to look at */
} lp_reader_t;

/* Reads once: at least what the frame at the front of in still needs
 * (peeked from its 8-byte prefix; a preamble at the front is looked past),
 * at least LP_IO_READ_CHUNK, never beyond in's max. Waits up to timeout_ms
 * for the fd to be readable (-1 forever: one blocking read, no poll; 0 not
 * at all); EINTR is retried. A raw reader reads text: no prefix is peeked.
 * 0 when bytes were added; -ETIMEDOUT; -ECONNRESET at end of input (or a
 * reset); LP_WIRE_ELIMIT when the frame at the front cannot fit in in's
 * max (decided from its prefix, before reading it); another negative errno. */
int lp_reader_fill(lp_reader_t *r, int timeout_ms);

/* The next whole frame, decoded (lp_frame_decode) into *f, filling as
 * needed until timeout_ms passes: a deadline over the whole call, not per
 * read (-1 forever, 0: only what is already buffered or readable now).
 * 0 (the caller owns f's contents: lp_frame_clear); -ETIMEDOUT;
 * -ECONNRESET (end of input, even mid-frame); the decoder's protocol error
 * (LP_WIRE_ETOOLARGE, LP_WIRE_EHEADER); LP_WIRE_ENOMEM; another -errno. */
int lp_reader_next(lp_reader_t *r, const lp_limits_t *lim, lp_frame_t *f, int timeout_ms);

/* A frame's routing fields, borrowed from its parsed header: valid while
 * the header is. Absent strings are NULL, an absent re is -1. */
typedef struct lp_route {
    const char *op;      /* "out", "done", ... */
    const char *to;      /* the context a broker forwards it to */
    const char *session; /* the session it belongs to */
    int64_t re;          /* the request it answers */
} lp_route_t;

/* Fills *rt from a parsed header (a frame's or a view's); never fails. */
void lp_route_get(const json_t *header, lp_route_t *rt);

/* Peeks the whole frame at the front of r->in without copying its payload
 * and without reading: 0 with *v filled (the caller owns v->header; the
 * payload is borrowed until r->in changes) and *rt borrowed from it;
 * LP_WIRE_EAGAIN when the frame is not all in yet; a protocol error as
 * lp_frame_peek says. Nothing is consumed: lp_reader_drop does that. */
int lp_reader_peek(lp_reader_t *r, const lp_limits_t *lim, lp_frame_view_t *v, lp_route_t *rt);
/* Consumes the frame v was peeked from and releases v->header. */
void lp_reader_drop(lp_reader_t *r, lp_frame_view_t *v);

/* clock.c */

#define LP_CLOCK_NEVER UINT64_MAX /* a deadline that never comes */

/* Milliseconds on a monotonic clock (CLOCK_MONOTONIC_COARSE: a few ms of
 * resolution, for timeouts, never for measuring). */
uint64_t lp_clock_ms(void);
/* Microseconds on the precise monotonic clock: for measuring durations. */
uint64_t lp_clock_us(void);
/* Milliseconds since the epoch (the wall clock): for records people read. */
uint64_t lp_clock_wall_ms(void);
/* The deadline timeout_ms from now; LP_CLOCK_NEVER for timeout_ms < 0. */
uint64_t lp_clock_deadline(int timeout_ms);
/* Milliseconds left until deadline (a lp_clock_ms value): 0 once it has
 * passed, at most INT_MAX, -1 for LP_CLOCK_NEVER (as poll(2) takes it). */
int lp_clock_left_ms(uint64_t deadline);
/* Initializes cv to measure its timed waits on the monotonic clock (a
 * change of the wall clock must not end or stretch a wait). 0 or -errno. */
int lp_clock_cond_init(pthread_cond_t *cv);
/* Waits on cv (initialized by lp_clock_cond_init; mu held) until it is
 * signalled or deadline (a lp_clock_ms value, LP_CLOCK_NEVER: no end)
 * passes: 0, or -ETIMEDOUT once the deadline has passed. Spurious wake-ups
 * return 0: callers loop on their condition. */
int lp_clock_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline);

/* thread.c */

/* Starts fn(arg) on a new thread with stack_size bytes of stack (0: the
 * default; raised to PTHREAD_STACK_MIN). t NULL: the thread is detached;
 * else *t is set for pthread_join. 0 or -errno (fn is then never called). */
int lp_thread_spawn(pthread_t *t, void *(*fn)(void *), void *arg, size_t stack_size);

/* dirs.c */

/* mkdir -p path, each directory it makes with mode (umask applies); path
 * is restored. 0 or -errno. */
int lp_io_make_dirs(char *path, unsigned mode);

/* writer.h: the write side, the one bounded output queue */
#include "io/writer.h"

#endif
