/* sink_text.c: a session's events as plain text, for nc and socat: output
 * as it is, a value's repr on a line, a traceback, and the prompt that
 * follows an eval (">>> ", or "... " when more input is needed). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "session/internal.h"
#include "session/sink.h"

/* The prompt after an eval that ended with status, or NULL for none. */
static const char *prompt_after(const lp_event_t *ev, char *buf, size_t size)
{
    if (strcmp(ev->name, "closed") == 0)
        return NULL;
    if (strcmp(ev->name, "more") == 0)
        return "... ";
    if (strcmp(ev->name, "detached") == 0) {
        snprintf(buf, size, "\nlimpet: it did not stop; it goes on as job %" PRId64
                 " (see jobs())\n>>> ", ev->job);
        return buf;
    }
    return ">>> ";
}

static int put(lp_outq_t *q, const char *sid, const lp_event_t *ev)
{
    char line[160];
    const char *p;
    int r;

    (void)sid;
    switch (ev->kind) {
    case LP_EV_OUT:
    case LP_EV_EXCEPTION:
        return lp_outq_put(q, ev->data, ev->len);
    case LP_EV_VALUE:
        if ((r = lp_outq_put(q, ev->data, ev->len)) != 0)
            return r;
        return lp_outq_put(q, "\n", 1);
    case LP_EV_DONE:
        p = prompt_after(ev, line, sizeof(line));
        return p != NULL ? lp_outq_put(q, p, strlen(p)) : 0;
    case LP_EV_PAGE:  /* never sent here: .pages is false */
    case LP_EV_INPUT: /* input() printed its prompt already, as output */
        return 0;
    }
    return LP_WIRE_EINVAL;
}

const lp_sink_t lp_sink_text = {"text", false, put};
