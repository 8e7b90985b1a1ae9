/* text.c: plain-text mode, for `nc -U SOCKET` and socat: a thin adapter
 * that turns each line into an interactive eval on one session, and the
 * session's output, values and tracebacks into plain text, with >>> and
 * ... prompts. The same sessions and engine as the framed protocol. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "session/internal.h"

#define CTRL_C 0x03 /* a line holding only this interrupts (socat sends it raw) */

/* Writes s to the client. */
static void say(lp_conn_t *c, const char *s)
{
    lp_conn_send_raw(c, s, strlen(s));
}

/* The length of the first line in c->in, newline included, or 0 when no
 * whole line is there yet. */
static size_t line_len(lp_conn_t *c)
{
    const uint8_t *nl = memchr(lp_buf_data(c->in), '\n', lp_buf_len(c->in));

    return nl != NULL ? (size_t)(nl - lp_buf_data(c->in)) + 1 : 0;
}

/* The line at the front of c->in without its line ending; consumed. The
 * caller frees the returned string (NUL-terminated; *len excludes it). */
static char *take_line(lp_conn_t *c, size_t n, size_t *len)
{
    char *line = malloc(n + 1);
    size_t k = n;

    if (line == NULL)
        return NULL;
    memcpy(line, lp_buf_data(c->in), n);
    lp_buf_consume(c->in, n);
    while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r'))
        k--;
    line[k] = 0;
    *len = k;
    return line;
}

static bool is_ctrl_c(const char *line, size_t len)
{
    return len == 1 && line[0] == CTRL_C;
}

int lp_text_watch_serve(lp_conn_t *c, void *tls)
{
    size_t n;

    /* While code runs, only two kinds of line matter now: the answer to an
     * input(), and Ctrl+C. Other lines wait their turn (type-ahead). */
    while ((n = line_len(c)) > 0) {
        lp_session_t *s = c->running;
        const uint8_t *p = lp_buf_data(c->in);

        if (s == NULL)
            return 0;
        if (n <= 3 && p[0] == CTRL_C) {
            lp_buf_consume(c->in, n);
            lp_session_interrupt(s, -1, c, tls);
        } else if (lp_session_give_input(s, p, n, false) == 0) {
            lp_buf_consume(c->in, n);
        } else {
            return 0;
        }
    }
    return lp_buf_len(c->in) > LP_TEXT_LINE_MAX ? LP_WIRE_ETOOLARGE : 0;
}

/* The identity's string field key, or "?". */
static const char *ident(lp_conn_t *c, const char *key)
{
    const char *v = json_string_value(json_object_get(c->srv->identity, key));

    return v != NULL ? v : "?";
}

/* The banner: where you are and how to leave. */
static void banner(lp_conn_t *c)
{
    char line[512];

    snprintf(line, sizeof(line),
             "limpet %s: Python %s, pid %" JSON_INTEGER_FORMAT " (%s); plain-text mode, "
             "exit() or Ctrl+D to leave\n",
             ident(c, "limpet"), ident(c, "python"),
             json_integer_value(json_object_get(c->srv->identity, "pid")), ident(c, "name"));
    say(c, line);
}

/* Runs one line: 1 to go on, 0 when the session ended, LP_EDETACHED
 * when its eval became a job (this thread must leave c alone). */
static int run_line(lp_conn_t *c, lp_session_t *s, const char *line, size_t len)
{
    lp_engine_t *e = &c->srv->engine;
    lp_eval_req_t req = {line, len, LP_MODE_SINGLE, "<limpet>"};
    int status;

    if (is_ctrl_c(line, len)) {
        if (lp_conn_enter(c) == 0)
            e->reset(e->ctx, c->tls, s->data);
        say(c, "KeyboardInterrupt\n>>> ");
        return 1;
    }
    if (lp_session_begin(s, 0) != 0)
        return 1;
    status = lp_conn_run_eval(c, s, &req);
    if (status == LP_EDETACHED)
        return status;
    lp_session_end(s);
    lp_session_reply_done(s, 0, lp_eval_status_name(status), -1); /* the sink says the prompt */
    lp_session_answer_interrupts(s, c);
    return status == LP_EVAL_CLOSED ? 0 : 1;
}

/* Reads more bytes; false at end of input, or when a peer still to show
 * the token runs out of time. */
static bool fill(lp_conn_t *c)
{
    return lp_conn_fill(c, c->preauth ? lp_conn_wait_budget(c, -1) : -1) == 0;
}

/* A peer the kernel could not vouch for types the token first. */
static bool ask_token(lp_conn_t *c)
{
    size_t n, len;
    char *line;
    int r;

    say(c, "token: ");
    while ((n = line_len(c)) == 0)
        if (lp_buf_len(c->in) > LP_WIRE_TOKEN_MAX + 2 || !fill(c))
            return false;
    if ((line = take_line(c, n, &len)) == NULL)
        return false;
    r = lp_conn_admit(c, line);
    free(line);
    if (r != 0)
        say(c, r == LP_WIRE_ETOOMANY ? "limpet: too many connections\n"
                                     : "limpet: forbidden: wrong token\n");
    return r == 0;
}

void lp_text_serve(lp_conn_t *c)
{
    lp_session_t *s;

    lp_buf_set_max(c->in, LP_TEXT_LINE_MAX + 4096);
    if (!c->authed && !ask_token(c))
        return;
    if (lp_conn_open_session(c, NULL, &s) != 0) {
        say(c, "limpet: cannot open a session\n");
        return;
    }
    banner(c);
    say(c, ">>> ");
}

int lp_text_loop(lp_conn_t *c)
{
    lp_session_t *s = c->sessions;
    bool dropping = false;
    int go = s != NULL;

    while (go == 1 && !c->peer_gone) {
        size_t n = line_len(c), len;
        char *line;

        if (n == 0) {
            if (lp_buf_len(c->in) >= LP_TEXT_LINE_MAX) {
                /* too long: drop it all, up to its end */
                lp_buf_reset(c->in);
                if (!dropping)
                    say(c, "limpet: line too long (over 65536 bytes), dropped\n");
                dropping = true;
            }
            if (!fill(c))
                break;
            continue;
        }
        if ((line = take_line(c, n, &len)) == NULL)
            break;
        if (dropping) {
            dropping = false;
            say(c, ">>> ");
        } else {
            go = run_line(c, s, line, len);
        }
        free(line);
    }
    return go == LP_EDETACHED ? go : 0;
}
