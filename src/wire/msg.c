/* msg.c: header builders (msg.h). */
#include "msg.h"

#include "hdr.h"

int lp_msg_set_int(json_t *h, const char *key, int64_t v)
{
    return json_object_set_new(h, key, json_integer(v)) == 0 ? 0 : LP_WIRE_ENOMEM;
}

int lp_msg_error_encode(lp_buf_t *out, int err, const int64_t *re, const char *message,
                        const char *field, const lp_limits_t *lim)
{
    const char *code = lp_wire_err_code(err);
    char buf[LP_MSG_ERROR_HEADER_MAX];
    json_t *supported = NULL;
    lp_hdr_t h;
    size_t hlen;
    int r;

    if (code == NULL)
        return LP_WIRE_EINVAL;
    lp_hdr_begin(&h, buf, sizeof(buf), "error");
    if (re != NULL)
        lp_hdr_int(&h, "re", *re);
    lp_hdr_str(&h, "code", code);
    lp_hdr_str(&h, "message", message != NULL ? message : lp_wire_strerror(err));
    if (field != NULL)
        lp_hdr_str(&h, "field", field);
    if (err == LP_WIRE_EVERSION) {
        if ((supported = json_pack("[i]", LP_WIRE_VERSION)) == NULL)
            return LP_WIRE_ENOMEM;
        lp_hdr_json(&h, "supported", supported);
        json_decref(supported);
    }
    if ((r = lp_hdr_end(&h, &hlen)) != 0)
        return r;
    return lp_frame_put(out, buf, hlen, NULL, 0, lim);
}
