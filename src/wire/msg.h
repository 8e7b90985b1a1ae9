/* msg.h: error frames (through the one header builder, hdr.h), and the
 * one setter a caller's request tree needs (its id). */
#ifndef LP_WIRE_MSG_H
#define LP_WIRE_MSG_H

#include "frame.h"

#define LP_MSG_ERROR_HEADER_MAX 4096u /* an error header: our messages are one short line */

/* Sets key to a new integer in request tree h: 0 or LP_WIRE_ENOMEM. */
int lp_msg_set_int(json_t *h, const char *key, int64_t v);
/* Appends an error frame for protocol error err (LP_WIRE_E*): code and
 * message (lowercase, one line); re when non-NULL; field when non-NULL;
 * "supported" versions for LP_WIRE_EVERSION. lim: the receiver's limits. */
int lp_msg_error_encode(lp_buf_t *out, int err, const int64_t *re, const char *message,
                        const char *field, const lp_limits_t *lim);

#endif
