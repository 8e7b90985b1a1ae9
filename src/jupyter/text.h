/* text.h: Jupyter counts cursor positions in Unicode code points (5.2+);
 * limpet in UTF-8 bytes. And a stream's bytes become JSON text: a UTF-8
 * sequence split across two chunks is kept for the next one. */
#ifndef LP_JUPYTER_TEXT_H
#define LP_JUPYTER_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* The byte offset of code point cp in s[len] (len when past the end).
 * s need not be valid: an invalid byte counts as one code point. */
size_t lp_jtext_cp_to_byte(const uint8_t *s, size_t len, size_t cp);
/* The code points in the first off bytes of s; SIZE_MAX when off is past
 * len or inside a character. */
size_t lp_jtext_byte_to_cp(const uint8_t *s, size_t len, size_t off);

/* A stream decoder: bytes in, valid UTF-8 out (invalid bytes as U+FFFD),
 * an incomplete sequence at the end of a chunk held for the next. */
typedef struct lp_jstream {
    uint8_t held[4];
    size_t n_held;
} lp_jstream_t;

/* Decodes in[len] after what d holds into a new NUL-terminated buffer
 * (*out, *out_len; malloc'd): 0, or -1 on ENOMEM. With flush, nothing is
 * held back (an incomplete tail becomes U+FFFD). */
int lp_jstream_decode(lp_jstream_t *d, const uint8_t *in, size_t len, int flush, char **out,
                      size_t *out_len);

#endif
