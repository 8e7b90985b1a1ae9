/* sink.h: what a session's events look like to its front end. A session
 * does not know its transport or its presentation: it hands each event to
 * its sink, which appends the bytes that stand for it to the session's
 * queue. The framed protocol (sink_frames.c) and plain text for nc
 * (sink_text.c) are sinks; HTTP/SSE, Jupyter iopub and a context link are
 * the next ones, each one more file, never a flag tested elsewhere. */
#ifndef LP_SESSION_SINK_H
#define LP_SESSION_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "session/server.h"

typedef struct lp_outq lp_outq_t;

typedef enum lp_event_kind {
    LP_EV_OUT,       /* output bytes of a stream */
    LP_EV_VALUE,     /* the repr of the eval's value */
    LP_EV_EXCEPTION, /* the traceback of the eval's exception */
    LP_EV_PAGE,      /* long text for the client's pager */
    LP_EV_INPUT,     /* input() asks the client for a line */
    LP_EV_DONE,      /* the eval ended */
} lp_event_kind_t;

/* One event of a session. Strings are UTF-8, NUL-terminated. */
typedef struct lp_event {
    lp_event_kind_t kind;
    int64_t re;            /* the request it answers, or -1 (output between evals) */
    lp_stream_t stream;    /* OUT */
    const char *name;      /* VALUE, EXCEPTION: the type; DONE: the status; INPUT: the prompt */
    const void *data;      /* OUT, VALUE, EXCEPTION, PAGE: the bytes */
    size_t len;            /* their count */
    const char *message;   /* EXCEPTION: str() of the exception, or NULL */
    bool echo;             /* INPUT: false for a password */
    int64_t job;           /* DONE with status "detached": the job's id */
} lp_event_t;

typedef struct lp_sink {
    const char *name;      /* "frames", "text" */
    bool pages;            /* it can carry LP_EV_PAGE; else help() text is printed */
    /* Appends the bytes for ev, for session sid, to q: 0 or a negative code. */
    int (*put)(lp_outq_t *q, const char *sid, const lp_event_t *ev);
} lp_sink_t;

extern const lp_sink_t lp_sink_frames; /* sink_frames.c: docs/protocol.md frames */
extern const lp_sink_t lp_sink_text;   /* sink_text.c: what a person with nc reads */

#endif
