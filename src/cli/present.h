/* present.h: the one frame presenter of the limpet command. `limpet exec`
 * and `limpet connect` show what the server sends the same way (output,
 * values, tracebacks, pages) through one table over the protocol's ops, and
 * learn from a code, not from a strcmp chain of their own, which frames
 * they must act on (input(), a final reply, bye). */
#ifndef LP_CLI_PRESENT_H
#define LP_CLI_PRESENT_H

#include <stdbool.h>
#include <stddef.h>

#include "io/io.h"

/* What a frame asks of the caller, once lp_present has shown it. */
typedef enum lp_shown {
    LP_SHOWN_NOTHING = 0, /* shown (output), or nothing to show: nothing to do */
    LP_SHOWN_INPUT,       /* input(): the eval waits for a line (prompt, echo) */
    LP_SHOWN_DONE,        /* done: the final reply to request rt.re (status) */
    LP_SHOWN_ERROR,       /* error: the final reply to request rt.re, or a notice (re -1) */
    LP_SHOWN_BYE,         /* the server leaves (message) */
} lp_shown_t;

/* Where a front end's output goes. */
typedef struct lp_presenter {
    void (*write)(void *ctx, int fd, const void *p, size_t n); /* to STDOUT_FILENO or
                                                                   STDERR_FILENO */
    void (*page)(void *ctx, const void *p, size_t n);          /* long text; NULL: written
                                                                   to stdout */
    void *ctx;                                                 /* for both */
    bool colour;                                               /* tracebacks in red */
} lp_presenter_t;

/* Shows f when it is output (out, value with its newline, exception,
 * page); fills *rt with its routing fields (borrowed from f) and returns
 * what the caller must act on. f's payload may be grown. */
lp_shown_t lp_present(const lp_presenter_t *p, lp_frame_t *f, lp_route_t *rt);
/* Shows an error frame's message: "limpet: <message>" on stderr. */
void lp_present_error(const lp_presenter_t *p, const json_t *h);

#endif
