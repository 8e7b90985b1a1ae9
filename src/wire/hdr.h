/* hdr.h: the one header builder. A frame header's JSON text written
 * straight into a caller's buffer, key by key, with no JSON tree: the
 * replies every request gets (out, value, done) are most of the server's
 * work per request (docs/performance.md), and a tree per reply cost a
 * third of it. Strings are escaped as JSON; a structured field (a
 * completion's matches, describe's tables) goes in through jansson.
 *
 *     lp_hdr_t h;
 *     lp_hdr_begin(&h, buf, sizeof(buf), "done");
 *     lp_hdr_int(&h, "re", 7);
 *     lp_hdr_str(&h, "status", "ok");
 *     if ((r = lp_hdr_end(&h, &len)) != 0) ...
 *
 * Errors stick: the first failure is what lp_hdr_end returns. */
#ifndef LP_WIRE_HDR_H
#define LP_WIRE_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef struct lp_hdr {
    char *buf;    /* the caller's; holds the text so far, not NUL-terminated */
    size_t cap;   /* its size */
    size_t len;   /* bytes written */
    int err;      /* the first failure, or 0 */
} lp_hdr_t;

/* Starts {"op":"<op>" in buf (op: one of ours, plain ASCII). */
void lp_hdr_begin(lp_hdr_t *h, char *buf, size_t cap, const char *op);
/* Adds "key":v. Keys are ours: plain ASCII, never escaped. */
void lp_hdr_int(lp_hdr_t *h, const char *key, int64_t v);
/* Adds "key":"v", v escaped as JSON; v must be UTF-8 without NUL
 * (LP_WIRE_ETEXT otherwise). */
void lp_hdr_str(lp_hdr_t *h, const char *key, const char *v);
void lp_hdr_bool(lp_hdr_t *h, const char *key, bool v);
/* Adds "key":<v as compact JSON>; v borrowed. */
void lp_hdr_json(lp_hdr_t *h, const char *key, const json_t *v);
/* Closes the object: 0 and *len the header's bytes; LP_WIRE_ETOOLARGE when
 * it did not fit in the buffer; LP_WIRE_ETEXT for a bad string;
 * LP_WIRE_EHEADER for a structured field jansson refused. */
int lp_hdr_end(lp_hdr_t *h, size_t *len);

#endif
