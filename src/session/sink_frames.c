/* sink_frames.c: a session's events as frames of docs/protocol.md, their
 * headers written by the one header builder (wire/hdr.h), never through a
 * JSON tree: these are the replies every request gets. */
#include <stdlib.h>
#include <string.h>

#include "session/internal.h"
#include "session/sink.h"

#define SMALL_HEADER 512 /* every header but one with a very long name or prompt */

static const char *const op_names[] = {
    [LP_EV_OUT] = "out",     [LP_EV_VALUE] = "value", [LP_EV_EXCEPTION] = "exception",
    [LP_EV_PAGE] = "page",   [LP_EV_INPUT] = "input", [LP_EV_DONE] = "done",
};

/* The header of ev for session sid, into buf. */
static int build(char *buf, size_t cap, const char *sid, const lp_event_t *ev, size_t *len)
{
    lp_hdr_t h;

    lp_hdr_begin(&h, buf, cap, op_names[ev->kind]);
    if (ev->re >= 0)
        lp_hdr_int(&h, "re", ev->re);
    lp_hdr_str(&h, "session", sid);
    switch (ev->kind) {
    case LP_EV_VALUE:
        if (ev->name != NULL)
            lp_hdr_str(&h, "type", ev->name);
        break;
    case LP_EV_EXCEPTION:
        lp_hdr_str(&h, "type", ev->name != NULL ? ev->name : "Exception");
        if (ev->message != NULL)
            lp_hdr_str(&h, "message", ev->message);
        break;
    case LP_EV_INPUT:
        lp_hdr_str(&h, "prompt", ev->name != NULL ? ev->name : "");
        lp_hdr_bool(&h, "echo", ev->echo);
        break;
    case LP_EV_DONE:
        lp_hdr_str(&h, "status", ev->name);
        if (strcmp(ev->name, "detached") == 0)
            lp_hdr_int(&h, "job", ev->job);
        break;
    case LP_EV_OUT: /* coalesced by outq.c, never here */
    case LP_EV_PAGE:
        break;
    }
    return lp_hdr_end(&h, len);
}

static int put(lp_outq_t *q, const char *sid, const lp_event_t *ev)
{
    char small[SMALL_HEADER], *big;
    const void *payload = ev->kind == LP_EV_INPUT || ev->kind == LP_EV_DONE ? NULL : ev->data;
    size_t plen = payload != NULL ? ev->len : 0, hlen;
    int r;

    if (ev->kind == LP_EV_OUT)
        return lp_outq_append(q, sid, (int)ev->stream, ev->re, ev->data, ev->len);
    if (plen > LP_WIRE_PAYLOAD_DEFAULT)
        return LP_WIRE_ETOOLARGE;
    if ((r = build(small, sizeof(small), sid, ev, &hlen)) == 0)
        return lp_outq_put_parts(q, small, hlen, payload, plen);
    if (r != LP_WIRE_ETOOLARGE || (big = malloc(LP_WIRE_HEADER_MAX)) == NULL)
        return r == LP_WIRE_ETOOLARGE ? LP_WIRE_ENOMEM : r;
    if ((r = build(big, LP_WIRE_HEADER_MAX, sid, ev, &hlen)) == 0)
        r = lp_outq_put_parts(q, big, hlen, payload, plen);
    free(big);
    return r;
}

const lp_sink_t lp_sink_frames = {"frames", true, put};
