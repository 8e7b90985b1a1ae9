/* errors.c: names and descriptions of the wire return codes. */
#include <stddef.h>
#include <string.h>

#include "wire.h"

struct err_name {
    int err;             /* LP_WIRE_E* */
    const char *code;    /* on the wire; NULL for local-only codes */
    const char *text;    /* for people */
    bool fatal;          /* closes the connection even after the handshake */
};

static const struct err_name err_names[] = {
    {LP_WIRE_OK, NULL, "success", false},
    {LP_WIRE_EAGAIN, NULL, "incomplete input", false},
    {LP_WIRE_ENOMEM, NULL, "out of memory", false},
    {LP_WIRE_EINVAL, NULL, "invalid argument", false},
    {LP_WIRE_ELIMIT, NULL, "buffer limit reached", false},
    {LP_WIRE_EPREAMBLE, "bad-preamble", "not a limpet protocol peer", true},
    {LP_WIRE_ETOOLARGE, "frame-too-large", "frame larger than the limit", true},
    {LP_WIRE_EHEADER, "bad-header", "frame header is not a valid JSON object", true},
    {LP_WIRE_EHANDSHAKE, "handshake-required", "the first frame must be hello", true},
    {LP_WIRE_EVERSION, "bad-version", "no common protocol version", true},
    {LP_WIRE_EFORBIDDEN, "forbidden", "access refused", true},
    {LP_WIRE_ETIMEOUT, "timeout", "handshake not completed in time", true},
    {LP_WIRE_ETOOMANY, "too-many", "limit reached", false},
    {LP_WIRE_EOP, "unknown-op", "unknown operation", false},
    {LP_WIRE_ENOTSUP, "not-supported", "operation not offered by this peer", false},
    {LP_WIRE_EFIELD, "bad-field", "missing or invalid field", false},
    {LP_WIRE_ETEXT, "bad-text", "text is not valid UTF-8 or contains NUL", false},
    {LP_WIRE_ENOSESSION, "no-session", "no such session", false},
    {LP_WIRE_EBUSY, "busy", "session is busy evaluating", false},
    {LP_WIRE_EINTERNAL, "internal", "internal error", false},
    {LP_EDETACHED, NULL, "the evaluation went on as a job", false},
    {LP_EEOF, NULL, "end of input", false},
    {LP_EINTERRUPTED, NULL, "interrupted", false},
};

#define N_ERR_NAMES (sizeof(err_names) / sizeof(err_names[0]))

static const struct err_name *find(int err)
{
    for (size_t i = 0; i < N_ERR_NAMES; i++)
        if (err_names[i].err == err)
            return &err_names[i];
    return NULL;
}

const char *lp_wire_err_code(int err)
{
    const struct err_name *e = find(err);

    return e != NULL ? e->code : NULL;
}

int lp_wire_err_from_code(const char *code)
{
    for (size_t i = 0; i < N_ERR_NAMES; i++)
        if (err_names[i].code != NULL && strcmp(err_names[i].code, code) == 0)
            return err_names[i].err;
    return 0;
}

const char *lp_wire_strerror(int err)
{
    const struct err_name *e = find(err);

    if (e == NULL && err < 0 && err > -4096) {
        const char *d = strerrordesc_np(-err); /* static, unlike strerror's buffer */

        return d != NULL ? d : "unknown error";
    }
    return e != NULL ? e->text : "unknown error";
}

bool lp_wire_err_is_fatal(int err)
{
    const struct err_name *e = find(err);

    return e != NULL && e->fatal;
}
