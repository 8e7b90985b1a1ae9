/* buf.h: a growable byte buffer with a hard maximum size.
 *
 * Bytes are appended at the end and consumed from the front. Every length is
 * treated as hostile: no operation can make the buffer hold more than its
 * maximum, and no size computation can overflow. Functions return 0 or a
 * negative LP_WIRE_E* code (wire.h). */
#ifndef LP_WIRE_BUF_H
#define LP_WIRE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct lp_buf lp_buf_t;

/* A new empty buffer that will never hold more than max bytes; the caller
 * owns it (lp_buf_free). NULL when out of memory. */
lp_buf_t *lp_buf_new(size_t max);
/* Frees b and its bytes; NULL is accepted. */
void lp_buf_free(lp_buf_t *b);

/* Bytes held and not yet consumed. */
size_t lp_buf_len(const lp_buf_t *b);
/* The maximum given at creation or by lp_buf_set_max. */
size_t lp_buf_max(const lp_buf_t *b);
/* Changes the maximum: LP_WIRE_ELIMIT if the bytes held exceed it. */
int lp_buf_set_max(lp_buf_t *b, size_t max);
/* The first unconsumed byte; valid until the next call that changes b. */
const uint8_t *lp_buf_data(const lp_buf_t *b);
/* The same, writable: for a producer that patches what it wrote (a frame's
 * length once its payload has grown). */
uint8_t *lp_buf_mut(lp_buf_t *b);

/* Makes room for len more bytes and points *dst at it, without changing
 * the length: write there, then lp_buf_commit. LP_WIRE_ELIMIT when the
 * maximum would be exceeded, LP_WIRE_ENOMEM when allocation fails. */
int lp_buf_reserve(lp_buf_t *b, size_t len, uint8_t **dst);
/* Appends len bytes already written into reserved space; LP_WIRE_EINVAL if
 * more than was reserved. */
int lp_buf_commit(lp_buf_t *b, size_t len);
/* Appends len bytes from p. */
int lp_buf_put(lp_buf_t *b, const void *p, size_t len);
/* Appends p[0..len) as UTF-8 that JSON can hold: each byte that starts no
 * valid sequence (a program's binary output, a character cut at an offset)
 * becomes U+FFFD, as Python's errors="replace" does (utf8.c). */
int lp_buf_put_utf8(lp_buf_t *b, const void *p, size_t len);
/* Appends v as 4 bytes, big-endian. */
int lp_buf_put_u32(lp_buf_t *b, uint32_t v);
/* Reads the big-endian u32 at offset off without consuming;
 * LP_WIRE_EAGAIN when fewer than off + 4 bytes are held. */
int lp_buf_peek_u32(const lp_buf_t *b, size_t off, uint32_t *v);
/* Drops len bytes from the front; LP_WIRE_EINVAL if fewer are held. */
int lp_buf_consume(lp_buf_t *b, size_t len);
/* Drops bytes from the end until len are held (undoing appends);
 * LP_WIRE_EINVAL if fewer than len are held. */
int lp_buf_truncate(lp_buf_t *b, size_t len);
/* Drops everything held. */
void lp_buf_reset(lp_buf_t *b);

#endif
