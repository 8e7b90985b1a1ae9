/* msg.h: building the headers limpet sends most often. */
#ifndef LP_WIRE_MSG_H
#define LP_WIRE_MSG_H

#include "frame.h"

#define LP_MSG_ERROR_HEADER_MAX 4096u /* an error header: our messages are one short line */

/* A new header object {"op": op}; the caller owns it. NULL on ENOMEM. */
json_t *lp_msg_new(const char *op);
/* Sets key to a new integer / string / bool in h: 0 or LP_WIRE_ENOMEM. */
int lp_msg_set_int(json_t *h, const char *key, int64_t v);
int lp_msg_set_str(json_t *h, const char *key, const char *v);
int lp_msg_set_bool(json_t *h, const char *key, bool v);

/* A new error header for protocol error err (fields as lp_msg_error_encode
 * says); the caller owns it. NULL on ENOMEM or when err is not a protocol
 * error. */
json_t *lp_msg_error_new(int err, const int64_t *re, const char *message, const char *field);
/* Appends an error frame for protocol error err (LP_WIRE_E*): code and
 * message (lowercase, one line); re when non-NULL; field when non-NULL;
 * "supported" versions for LP_WIRE_EVERSION. lim: the receiver's limits. */
int lp_msg_error_encode(lp_buf_t *out, int err, const int64_t *re, const char *message,
                        const char *field, const lp_limits_t *lim);

#endif
