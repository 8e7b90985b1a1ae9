/* frame.h: the preamble and length-prefixed frames (docs/protocol.md 2-3).
 *
 * Decoders peek, then consume: on any return other than 0 the input buffer
 * is unchanged. LP_WIRE_EAGAIN means more bytes are needed; any protocol
 * error means the peer must be answered and dropped. */
#ifndef LP_WIRE_FRAME_H
#define LP_WIRE_FRAME_H

#include "buf.h"
#include "wire.h"

/* The most a receiver accepts in one frame. */
typedef struct lp_limits {
    uint32_t header_max;  /* bytes of JSON header */
    uint32_t payload_max; /* bytes of payload */
} lp_limits_t;

/* What a server accepts before the handshake. */
#define LP_LIMITS_HELLO {LP_WIRE_HELLO_HEADER_MAX, LP_WIRE_HELLO_PAYLOAD_MAX}
/* What a peer accepts after the handshake unless it announced otherwise. */
#define LP_LIMITS_DEFAULT {LP_WIRE_HEADER_MAX, LP_WIRE_PAYLOAD_DEFAULT}

/* A decoded frame; lp_frame_clear frees what it owns. */
typedef struct lp_frame {
    json_t *header;      /* owned reference to the header object */
    uint8_t *payload;    /* owned copy of the payload; NULL when empty */
    size_t payload_len;  /* bytes in payload */
} lp_frame_t;

/* A frame seen in place: the payload points into the input buffer and is
 * valid until that buffer changes. */
typedef struct lp_frame_view {
    json_t *header;           /* owned reference to the header object */
    const uint8_t *payload;   /* borrowed from the buffer */
    size_t payload_len;       /* bytes in payload */
    size_t frame_len;         /* bytes to consume: prefix + header + payload */
} lp_frame_view_t;

/* Appends the 8-byte preamble to out. */
int lp_preamble_encode(lp_buf_t *out);
/* Consumes the preamble from in: 0, LP_WIRE_EAGAIN while the bytes held are
 * a proper prefix of it, LP_WIRE_EPREAMBLE as soon as one byte differs. */
int lp_preamble_decode(lp_buf_t *in);

/* Checks the prefix and header of the frame at the front of in and parses
 * the header, without consuming anything: 0 and *v filled; LP_WIRE_EAGAIN;
 * LP_WIRE_ETOOLARGE (decided from the 8-byte prefix alone); LP_WIRE_EHEADER;
 * LP_WIRE_ENOMEM. On 0 the caller owns v->header. */
int lp_frame_peek(const lp_buf_t *in, const lp_limits_t *lim, lp_frame_view_t *v);
/* lp_frame_peek, then copies the payload into *f and consumes the frame.
 * On 0 the caller owns f's contents (lp_frame_clear). */
int lp_frame_decode(lp_buf_t *in, const lp_limits_t *lim, lp_frame_t *f);
/* Frees what f owns and zeroes it; NULL is accepted. */
void lp_frame_clear(lp_frame_t *f);

/* Appends one frame: header as compact JSON, then len bytes of payload.
 * LP_WIRE_ETOOLARGE when the header or payload exceeds lim (the peer's
 * limits); LP_WIRE_EHEADER when header breaks the header rules. On failure
 * out is unchanged. */
int lp_frame_encode(lp_buf_t *out, const json_t *header, const void *payload, size_t len,
                    const lp_limits_t *lim);

/* Appends one frame whose header text is ready (from lp_hdr: valid JSON
 * under the header rules): prefix, header, payload. LP_WIRE_ETOOLARGE
 * over lim. On failure out is unchanged. */
int lp_frame_put(lp_buf_t *out, const char *header, size_t hlen, const void *payload, size_t len,
                 const lp_limits_t *lim);

/* The header rules of docs/protocol.md section 3 that JSON parsing alone
 * does not enforce: an object, integers only. 0 or LP_WIRE_EHEADER. */
int lp_header_check(const json_t *h);
/* The same rules for a value nested inside a header (one level down). */
int lp_header_check_value(const json_t *v);

/* The one prefix writer: the 8 bytes before a header of hlen bytes and a
 * payload of plen (big-endian lengths, docs/protocol.md section 2). */
void lp_frame_prefix(uint8_t out[LP_WIRE_PREFIX_LEN], uint32_t hlen, uint32_t plen);

#endif
