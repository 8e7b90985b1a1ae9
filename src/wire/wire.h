/* wire.h: the limpet wire protocol (docs/protocol.md) as a pure C codec.
 *
 * No Python, no I/O, no global mutable state. Every function returns 0 on
 * success or a negative LP_WIRE_E* code; decoders peek, then consume, so a
 * failed decode leaves its input buffer exactly as it was. */
#ifndef LP_WIRE_H
#define LP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Limits: docs/protocol.md section 4 gives the reason for each value. */
#define LP_WIRE_VERSION 1
#define LP_WIRE_PREAMBLE "\0limpet\n"
#define LP_WIRE_PREAMBLE_LEN 8u
#define LP_WIRE_PREFIX_LEN 8u
#define LP_WIRE_HEADER_MIN 2u                   /* "{}" */
#define LP_WIRE_HELLO_HEADER_MAX 4096u          /* before the handshake */
#define LP_WIRE_HELLO_PAYLOAD_MAX 0u            /* before the handshake */
#define LP_WIRE_HEADER_MAX 65536u
#define LP_WIRE_PAYLOAD_DEFAULT (16u << 20)
#define LP_WIRE_PAYLOAD_MIN (64u << 10)
#define LP_WIRE_PAYLOAD_CEILING (1u << 30)
#define LP_WIRE_CHUNK (64u << 10)
#define LP_WIRE_SESSION_ID_MAX 64u
#define LP_WIRE_ID_MAX 9007199254740991LL       /* 2^53 - 1 */
#define LP_WIRE_CLIENT_NAME_MAX 128u
#define LP_WIRE_TOKEN_MAX 256u
#define LP_WIRE_VERSIONS_MAX 16u
#define LP_WIRE_TEXT_SKIP_MAX 4096u             /* text a client skips before a late preamble */
#define LP_WIRE_HEADER_DEPTH_MAX 32             /* containers nested inside the header object */

/* Return codes: one error space for every layer (docs/architecture.md).
 * 0 is success; -1 .. -4095 are -errno values (Linux's MAX_ERRNO is 4095);
 * limpet's own codes are below LP_ERR_BASE, so the two never collide (once
 * LP_WIRE_ELIMIT was -4, which is also -EINTR). LP_WIRE_EAGAIN means
 * "incomplete, wait for more bytes"; the codes from LP_WIRE_EPREAMBLE on
 * are protocol errors with a code string on the wire (lp_wire_err_code);
 * the LP_E* codes after them are local outcomes that never go on the wire. */
#define LP_ERR_BASE (-10000)
enum {
    LP_WIRE_OK = 0,
    LP_WIRE_EAGAIN = LP_ERR_BASE - 1,      /* need more bytes; nothing consumed */
    LP_WIRE_ENOMEM = LP_ERR_BASE - 2,      /* allocation failed */
    LP_WIRE_EINVAL = LP_ERR_BASE - 3,      /* the caller passed a bad argument */
    LP_WIRE_ELIMIT = LP_ERR_BASE - 4,      /* a buffer would grow past its maximum */
    LP_WIRE_EPREAMBLE = LP_ERR_BASE - 10,  /* "bad-preamble" */
    LP_WIRE_ETOOLARGE = LP_ERR_BASE - 11,  /* "frame-too-large" */
    LP_WIRE_EHEADER = LP_ERR_BASE - 12,    /* "bad-header" */
    LP_WIRE_EHANDSHAKE = LP_ERR_BASE - 13, /* "handshake-required" */
    LP_WIRE_EVERSION = LP_ERR_BASE - 14,   /* "bad-version" */
    LP_WIRE_EFORBIDDEN = LP_ERR_BASE - 15, /* "forbidden" */
    LP_WIRE_ETIMEOUT = LP_ERR_BASE - 16,   /* "timeout" */
    LP_WIRE_ETOOMANY = LP_ERR_BASE - 17,   /* "too-many" */
    LP_WIRE_EOP = LP_ERR_BASE - 18,        /* "unknown-op" */
    LP_WIRE_ENOTSUP = LP_ERR_BASE - 19,    /* "not-supported" */
    LP_WIRE_EFIELD = LP_ERR_BASE - 20,     /* "bad-field" */
    LP_WIRE_ETEXT = LP_ERR_BASE - 21,      /* "bad-text" */
    LP_WIRE_ENOSESSION = LP_ERR_BASE - 22, /* "no-session" */
    LP_WIRE_EBUSY = LP_ERR_BASE - 23,      /* "busy" */
    LP_WIRE_EINTERNAL = LP_ERR_BASE - 24,  /* "internal" */
    LP_EDETACHED = LP_ERR_BASE - 100,      /* an eval became a job; its thread must let go */
    LP_EEOF = LP_ERR_BASE - 101,           /* input() got end of input */
    LP_EINTERRUPTED = LP_ERR_BASE - 102,   /* a wait was interrupted (Ctrl+C) */
};

/* errors.c */

/* The wire code string of a protocol error ("bad-header"), or NULL when
 * err is not a protocol error. The string is static. */
const char *lp_wire_err_code(int err);
/* The protocol error for a wire code string, or 0 when unknown. */
int lp_wire_err_from_code(const char *code);
/* A short lowercase description of any return code, limpet's or -errno;
 * static string. */
const char *lp_wire_strerror(int err);
/* True when a protocol error closes the connection even after the handshake. */
bool lp_wire_err_is_fatal(int err);

/* utf8.c */

/* 0 when s[0..len) is valid UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF) without any NUL byte, else LP_WIRE_ETEXT. */
int lp_utf8_check_text(const uint8_t *s, size_t len);
/* The bytes of the valid UTF-8 sequence s starts with (1-4; a NUL is one),
 * or 0 when s[0..len) does not start with one (or len is 0). */
size_t lp_utf8_seq(const uint8_t *s, size_t len);
/* True when s[0..len) is the start of a valid sequence that needs more
 * bytes (a character cut at the end of a chunk). */
bool lp_utf8_partial(const uint8_t *s, size_t len);
/* The length of the longest prefix of the UTF-8 text s[0..len) that is at
 * most max bytes and does not end inside a character. */
size_t lp_utf8_cut(const char *s, size_t len, size_t max);

#endif
