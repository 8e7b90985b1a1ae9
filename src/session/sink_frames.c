/* sink_frames.c: a session's events as frames of docs/protocol.md. The
 * replies every eval gets (out, value with a plain type name, done) have
 * their headers formatted here directly, not through a JSON tree: they
 * are most of the server's work per request (docs/performance.md). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "session/internal.h"
#include "session/sink.h"
#include "wire/msg.h"

#define LP_VALUE_TYPE_MAX 256 /* the value frame's type field (docs/protocol.md 6) */

/* True when str can go between JSON quotes as it is (no quote, backslash
 * or control character) and within max bytes. */
static bool plain_json_string(const char *str, size_t max)
{
    size_t n = 0;

    for (; str[n] != 0; n++)
        if (n >= max || str[n] == '"' || str[n] == '\\' || (unsigned char)str[n] < 0x20)
            return false;
    return n > 0;
}

/* Appends the frame of header h (consumed; NULL: out of memory) and
 * payload. */
static int put_json(lp_outq_t *q, json_t *h, const void *payload, size_t len)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_buf_t *b = lp_buf_new(SIZE_MAX);
    int r = h == NULL || b == NULL ? LP_WIRE_ENOMEM : lp_frame_encode(b, h, payload, len, &lim);

    if (r == 0)
        r = lp_outq_put_frame(q, lp_buf_data(b), lp_buf_len(b));
    json_decref(h);
    lp_buf_free(b);
    return r;
}

/* Appends a frame {"op", "re", "session"} plus key = value (a string)
 * when key is not NULL, then the payload. */
static int put_tree(lp_outq_t *q, const char *op, const char *sid, int64_t re, const char *key,
                    const char *value, const void *payload, size_t len)
{
    json_t *h = lp_msg_new(op);

    if (h != NULL && ((re >= 0 && lp_msg_set_int(h, "re", re) != 0) ||
                      lp_msg_set_str(h, "session", sid) != 0 ||
                      (key != NULL && lp_msg_set_str(h, key, value) != 0))) {
        json_decref(h);
        h = NULL;
    }
    return put_json(q, h, payload, len);
}

/* A value: its header formatted directly when the type name allows. */
static int put_value(lp_outq_t *q, const char *sid, const lp_event_t *ev)
{
    const char *type = ev->name;

    if (type != NULL && plain_json_string(type, LP_VALUE_TYPE_MAX) &&
        ev->len <= LP_WIRE_PAYLOAD_DEFAULT) {
        char h[LP_VALUE_TYPE_MAX + 160];
        int n = snprintf(h, sizeof(h),
                         "{\"op\":\"value\",\"re\":%" PRId64 ",\"session\":\"%s\",\"type\":\"%s\"}",
                         ev->re, sid, type);

        if (n > 0 && (size_t)n < sizeof(h))
            return lp_outq_put_parts(q, h, (size_t)n, ev->data, ev->len);
    }
    return put_tree(q, "value", sid, ev->re, type != NULL ? "type" : NULL, type, ev->data,
                    ev->len);
}

/* The end of an eval; a detached one names its job. */
static int put_done(lp_outq_t *q, const char *sid, const lp_event_t *ev)
{
    char h[256];
    int n = strcmp(ev->name, "detached") == 0
                ? snprintf(h, sizeof(h), "{\"op\":\"done\",\"re\":%" PRId64 ",\"session\":\"%s\","
                           "\"status\":\"detached\",\"job\":%" PRId64 "}", ev->re, sid, ev->job)
                : snprintf(h, sizeof(h), "{\"op\":\"done\",\"re\":%" PRId64 ",\"session\":\"%s\","
                           "\"status\":\"%s\"}", ev->re, sid, ev->name);

    /* session ids are ours (printable ASCII, no quotes), statuses our names */
    if (n < 0 || (size_t)n >= sizeof(h))
        return LP_WIRE_EINTERNAL;
    return lp_outq_put_parts(q, h, (size_t)n, NULL, 0);
}

/* input(): the prompt and whether to echo travel in the header. */
static int put_input(lp_outq_t *q, const char *sid, const lp_event_t *ev)
{
    return put_json(q, json_pack("{s:s,s:I,s:s,s:s,s:b}", "op", "input", "re",
                                 (json_int_t)ev->re, "session", sid, "prompt",
                                 ev->name != NULL ? ev->name : "", "echo", ev->echo),
                    NULL, 0);
}

static int put(lp_outq_t *q, const char *sid, const lp_event_t *ev)
{
    switch (ev->kind) {
    case LP_EV_OUT:
        return lp_outq_append(q, sid, (int)ev->stream, ev->re, ev->data, ev->len);
    case LP_EV_VALUE:
        return put_value(q, sid, ev);
    case LP_EV_EXCEPTION:
        return put_tree(q, "exception", sid, ev->re, "type",
                        ev->name != NULL ? ev->name : "Exception", ev->data, ev->len);
    case LP_EV_PAGE:
        return put_tree(q, "page", sid, ev->re, NULL, NULL, ev->data, ev->len);
    case LP_EV_INPUT:
        return put_input(q, sid, ev);
    case LP_EV_DONE:
        return put_done(q, sid, ev);
    }
    return LP_WIRE_EINVAL;
}

const lp_sink_t lp_sink_frames = {"frames", true, put};
