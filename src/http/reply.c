/* reply.c: JSON answers and docs/http.md's errors, the one place headers
 * are added to a response. */
#include "http/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/buf.h"
#include "wire/wire.h"

enum MHD_Result lp_http_reply(lp_http_req_t *rq, struct MHD_Connection *c, unsigned status,
                              struct MHD_Response *r)
{
    enum MHD_Result ret;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    rq->status = status;
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result lp_http_reply_json(lp_http_req_t *rq, struct MHD_Connection *c, unsigned status,
                                   json_t *body)
{
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12)) : NULL;
    struct MHD_Response *r;

    json_decref(body);
    if (text == NULL)
        return MHD_NO;
    /* A newline ends it, for a person reading curl's output. */
    {
        size_t n = strlen(text);
        char *t = realloc(text, n + 2);

        if (t == NULL) {
            free(text);
            return MHD_NO;
        }
        text = t;
        memcpy(text + n, "\n", 2);
    }
    r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, LP_HTTP_JSON_TYPE);
    return lp_http_reply(rq, c, status, r);
}

enum MHD_Result lp_http_reply_error(lp_http_req_t *rq, struct MHD_Connection *c, unsigned status,
                                    const char *code, const char *fmt, ...)
{
    char msg[LP_SERVE_MSG_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return lp_http_reply_json(rq, c, status,
                              json_pack("{s{ssss}}", "error", "code", code, "message", msg));
}

enum MHD_Result lp_http_reply_serve(lp_http_req_t *rq, struct MHD_Connection *c, int err,
                                    const char *env, const char *msg)
{
    bool said = msg != NULL && msg[0] != '\0';

    switch (err) {
    case LP_WIRE_EFIELD:
        return lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request", "%s",
                                   said ? msg : "a bad argument");
    case -ENOENT:
        return lp_http_reply_error(rq, c, MHD_HTTP_NOT_FOUND, "no-such-env",
                                   "no environment named '%s'", env);
    case -EEXIST:
        return lp_http_reply_error(rq, c, MHD_HTTP_CONFLICT, "env-exists",
                                   "an environment named '%s' exists", env);
    case -EPIPE:
        return lp_http_reply_error(rq, c, MHD_HTTP_GONE, "env-dead",
                                   "the environment '%s' died%s%s: POST /api/envs/%s/restart "
                                   "starts it again", env, said ? ": " : "", said ? msg : "", env);
    case -EAGAIN:
        return lp_http_reply_error(rq, c, MHD_HTTP_TOO_MANY_REQUESTS, "too-many-runs", "%s",
                                   said ? msg : "the environment's queue of runs is full");
    case -ESHUTDOWN:
        return lp_http_reply_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
                                   "the server is draining: no new runs");
    case -ECHILD:
        return lp_http_reply_error(rq, c, MHD_HTTP_BAD_GATEWAY, "env-start-failed", "%s",
                                   said ? msg : "the environment could not be started");
    default:
        return lp_http_reply_error(rq, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "%s%s%s",
                                   said ? msg : "", said ? ": " : "", lp_wire_strerror(err));
    }
}

json_t *lp_http_body_object(lp_http_req_t *rq, struct MHD_Connection *c, enum MHD_Result *ret)
{
    json_error_t e;
    json_t *v;

    if (rq->len == 0)
        return json_object();
    v = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &e);
    if (v == NULL) {
        *ret = lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request",
                                   "the body is not JSON: %s (at byte %d)", e.text, e.position);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        *ret = lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request",
                                   "the body must be a JSON object");
        return NULL;
    }
    return v;
}

json_t *lp_http_text(const char *data, size_t len)
{
    lp_buf_t *b;
    json_t *s = json_stringn(data, len);

    if (s != NULL || (b = lp_buf_new(len * 3 + 16)) == NULL)
        return s;
    if (lp_buf_put_utf8(b, data, len) == 0)
        s = json_stringn_nocheck((const char *)lp_buf_data(b), lp_buf_len(b));
    lp_buf_free(b);
    return s;
}
