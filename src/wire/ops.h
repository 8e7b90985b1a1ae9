/* ops.h: the operations of protocol version 1 (docs/protocol.md 6-8) as a
 * table, and the check of a decoded frame against it. The table also drives
 * `describe` and the client's help. */
#ifndef LP_WIRE_OPS_H
#define LP_WIRE_OPS_H

#include "wire.h"

typedef enum lp_op {
    LP_OP_UNKNOWN = 0,
    /* core, version 1 */
    LP_OP_HELLO, LP_OP_CLONE, LP_OP_CLOSE, LP_OP_EVAL, LP_OP_STDIN, LP_OP_INTERRUPT,
    LP_OP_COMPLETE, LP_OP_DESCRIBE, LP_OP_PING,
    LP_OP_OUT, LP_OP_VALUE, LP_OP_EXCEPTION, LP_OP_INPUT, LP_OP_DONE, LP_OP_ERROR, LP_OP_BYE,
    LP_OP_PAGE, /* capability page */
    LP_OP_CHECK,   /* capability check */
    LP_OP_INSPECT, /* capability inspect */
    /* reserved: kernel server */
    LP_OP_ENV_CREATE, LP_OP_ENV_LIST, LP_OP_ENV_INFO, LP_OP_ENV_DELETE,
    /* reserved: execution contexts */
    LP_OP_CALL, LP_OP_RESULT, LP_OP_REF_RELEASE, LP_OP_CHANNEL_OPEN, LP_OP_CHANNEL_DATA,
    LP_OP_CHANNEL_CLOSE, LP_OP_MODULE_GET, LP_OP_LOG,
    LP_OP__COUNT
} lp_op_t;

/* Which way a frame travels; a receiver checks frames against its side. */
#define LP_DIR_C2S 1u /* client to server: what a server receives */
#define LP_DIR_S2C 2u /* server to client: what a client receives */

/* Capabilities (docs/protocol.md 5), as bits. Core ops need none. */
#define LP_CAP_ENV 0x01u
#define LP_CAP_CALL 0x02u
#define LP_CAP_CHANNEL 0x04u
#define LP_CAP_MODULE 0x08u
#define LP_CAP_LOG 0x10u
#define LP_CAP_PAGE 0x20u /* the client shows long text (help()) in its pager */
#define LP_CAP_CELL 0x40u    /* eval takes mode: cell, single, exec */
#define LP_CAP_CHECK 0x80u   /* check: is this code complete, by the REPL's rules */
#define LP_CAP_INSPECT 0x100u /* inspect: help text of the name at a cursor */
/* The capabilities a server lists in its welcome only when the client
 * offered them too (docs/protocol.md 5): what a client did not ask for
 * does not change what it gets. */
#define LP_CAPS_NEGOTIATED (LP_CAP_CELL | LP_CAP_CHECK | LP_CAP_INSPECT)

/* inspect's text: the whole cell a front end holds, within one header */
#define LP_INSPECT_TEXT_MAX 60000

/* The LP_CAP_* bit of a capability's name; 0 for a name we do not know. */
unsigned lp_cap_bit(const char *name);
/* The names of the LP_CAP_* bits in caps, as a new JSON array (NULL: ENOMEM). */
json_t *lp_cap_names(unsigned caps);

typedef enum lp_ftype {
    LP_FT_ID,      /* integer 0 .. LP_WIRE_ID_MAX */
    LP_FT_INT,     /* integer min .. max */
    LP_FT_BOOL,    /* true or false */
    LP_FT_STR,     /* string of min .. max bytes */
    LP_FT_SESSION, /* 1 .. LP_WIRE_SESSION_ID_MAX printable ASCII bytes */
    LP_FT_NAME,    /* environment name: 1 .. 64 of [A-Za-z0-9_.-] */
    LP_FT_STREAM,  /* "stdout" or "stderr" */
    LP_FT_INTS,    /* array of min .. max integers, each 1 .. 65535 */
    LP_FT_IDS,     /* array of min .. max integers, each 0 .. LP_WIRE_ID_MAX */
    LP_FT_STRS,    /* array of min .. max strings of 1 .. 256 bytes */
    LP_FT_OBJECT,  /* any object */
} lp_ftype_t;

typedef struct lp_field {
    const char *name;  /* NULL ends a field list */
    lp_ftype_t type;   /* what the value must be */
    bool required;     /* missing is an error */
    int64_t min, max;  /* ranges as lp_ftype_t says */
} lp_field_t;

typedef enum lp_payload {
    LP_PL_NONE,  /* a payload is an error */
    LP_PL_BYTES, /* any bytes */
    LP_PL_TEXT,  /* UTF-8 without NUL */
} lp_payload_t;

typedef enum lp_kind {
    LP_KIND_REQUEST, /* carries id, answered by a final reply */
    LP_KIND_REPLY,   /* carries re */
    LP_KIND_EITHER,  /* re optional: a reply, or a notice without one */
} lp_kind_t;

typedef struct lp_op_spec {
    const char *name;          /* on the wire */
    lp_op_t op;                /* enum value */
    unsigned dirs;             /* LP_DIR_* bits it may travel */
    lp_kind_t kind;            /* request, reply or either */
    unsigned cap;              /* LP_CAP_* it needs; 0 for core */
    lp_payload_t payload;      /* what its payload may be */
    const lp_field_t *fields;  /* op-specific fields, NULL-terminated */
    const char *summary;       /* one line for describe and help */
} lp_op_spec_t;

/* The spec of the op named name, or NULL; static storage. */
const lp_op_spec_t *lp_op_lookup(const char *name);
/* The spec of op, or NULL for LP_OP_UNKNOWN; static storage. */
const lp_op_spec_t *lp_op_spec(lp_op_t op);

/* Checks a decoded frame arriving in direction dir, with the capabilities
 * caps offered on this connection. Returns 0 and sets *spec; or
 * LP_WIRE_EOP (missing, unknown, or wrong direction), LP_WIRE_ENOTSUP,
 * LP_WIRE_EFIELD (and *bad_field names the field, static or borrowed from
 * the header, "payload" for a payload where none may be), LP_WIRE_ETEXT. */
int lp_msg_check(const json_t *header, const uint8_t *payload, size_t len, unsigned dir,
                 unsigned caps, const lp_op_spec_t **spec, const char **bad_field);

/* Reads the request id (key "id") or reply id (key "re") of header into
 * *id: 0, or LP_WIRE_EFIELD when missing or out of range. */
int lp_msg_get_id(const json_t *header, const char *key, int64_t *id);

#endif
