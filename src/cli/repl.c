/* repl.c: one interactive session with a server (repl.h). Every frame,
 * whenever it comes (during an eval, at the prompt, while input() waits),
 * goes through show(), which has the presenter (present.c) show it; the
 * loops only wait for the frame they need. */
#include "cli/repl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/term.h"
#include "wire/ops.h"

static const char *str(const json_t *h, const char *key)
{
    const char *v = json_string_value(json_object_get(h, key));

    return v != NULL ? v : "";
}

/* The presenter's output: through lineedit, which keeps the prompt whole. */
static void write_out(void *ctx, int fd, const void *p, size_t n)
{
    lp_repl_t *r = ctx;

    lp_le_show(r->le, fd, p, n);
}

static void page(void *ctx, const void *p, size_t n)
{
    lp_term_page(p, n);
}

/* A done or error frame answering re: the eval's end, the reply a
 * request() waits for, a refused answer to input(), or a notice. */
static void on_final(lp_repl_t *r, const json_t *h, int64_t re, bool error)
{
    if (re >= 0 && re == r->eval_id) {
        if (error)
            lp_present_error(&r->pr, h);
        snprintf(r->status, sizeof(r->status), "%s", error ? "error" : str(h, "status"));
        if (strcmp(r->status, "detached") == 0) {
            char line[128];
            int n = snprintf(line, sizeof(line),
                             "limpet: it did not stop; it goes on as job %" JSON_INTEGER_FORMAT
                             " (see jobs())\n",
                             json_integer_value(json_object_get(h, "job")));

            lp_le_show(r->le, STDERR_FILENO, line, (size_t)n);
        }
        r->eval_id = -1;
        r->want_input = false;
        r->wake = true;
    } else if (re >= 0 && re == r->wait_id) {
        r->reply = json_incref((json_t *)h);
        r->wait_id = -1;
        r->wake = true;
    } else if (error && re >= 0 && re == r->stdin_id && r->eval_id >= 0) {
        lp_present_error(&r->pr, h); /* the answer was refused (not UTF-8): ask again */
        r->want_input = r->wake = true;
    } else if (error) {
        lp_present_error(&r->pr, h); /* a notice, or a refusal of something we sent */
    }
}

/* Shows one frame (present.c), and notes what the waiting loops act on. */
static void show(lp_repl_t *r, lp_frame_t *f)
{
    lp_route_t rt;
    lp_shown_t shown = lp_present(&r->pr, f, &rt);

    switch (shown) {
    case LP_SHOWN_INPUT:
        if (rt.re != r->eval_id)
            break;
        free(r->input_prompt);
        r->input_prompt = strdup(str(f->header, "prompt"));
        r->input_echo = !json_is_false(json_object_get(f->header, "echo"));
        r->want_input = r->wake = true;
        break;
    case LP_SHOWN_BYE:
        snprintf(r->bye, sizeof(r->bye), "%s", str(f->header, "message"));
        r->gone = r->wake = true;
        break;
    case LP_SHOWN_DONE:
    case LP_SHOWN_ERROR:
        on_final(r, f->header, rt.re, shown == LP_SHOWN_ERROR);
        break;
    case LP_SHOWN_NOTHING:
        break;
    }
}

/* lineedit's socket hook: shows every frame that is in. */
static int on_socket(void *ctx)
{
    lp_repl_t *r = ctx;

    for (;;) {
        lp_frame_t f = {0};
        int k = lp_client_read(&r->c, &f, 0);

        if (k == -ETIMEDOUT)
            break;
        if (k != 0) {
            r->gone = true;
            return LP_LE_GONE;
        }
        show(r, &f);
        lp_frame_clear(&f);
    }
    if (r->gone)
        return LP_LE_GONE;
    if (r->wake) {
        r->wake = false;
        return LP_LE_STOP;
    }
    return 0;
}

/* Sends a request and waits up to timeout_ms for its final reply: the
 * reply's header (caller decrefs), or NULL (gone, or no answer in time). */
static json_t *request(lp_repl_t *r, json_t *h, int timeout_ms)
{
    uint64_t deadline = lp_clock_deadline(timeout_ms);
    json_t *reply;

    if ((r->wait_id = lp_client_send(&r->c, h, NULL, 0)) < 0) {
        r->gone = lp_client_is_broken(r->wait_id);
        r->wait_id = -1;
        return NULL;
    }
    while (r->reply == NULL && !r->gone) {
        int left = lp_clock_left_ms(deadline);

        if (left == 0 || lp_le_wait(r->le, left) == LP_LE_GONE)
            break;
    }
    r->wait_id = -1;
    reply = r->reply;
    r->reply = NULL;
    return reply;
}

static json_t *session_op(lp_repl_t *r, const char *op)
{
    return json_pack("{s:s,s:s}", "op", op, "session", r->c.welcome.session);
}

/* Answers the eval's input() with a line from the terminal, or passes
 * Ctrl+C on. */
static void answer_input(lp_repl_t *r)
{
    const char *line = "";
    int k;

    r->want_input = false;
    k = lp_le_input(r->le, r->input_prompt ? r->input_prompt : "", r->input_echo, &line);
    if (k == LP_LE_LINE || k == LP_LE_EOF) {
        json_t *h = session_op(r, "stdin");

        json_object_set_new(h, "eof", json_boolean(k == LP_LE_EOF));
        r->stdin_id = lp_client_send(&r->c, h, line, k == LP_LE_LINE ? strlen(line) : 0);
        if (r->stdin_id < 0 && !lp_client_is_broken(r->stdin_id)) {
            fprintf(stderr, "limpet: that line is too long for the server; type it again\n");
            r->want_input = true;
        }
        r->gone = lp_client_is_broken(r->stdin_id);
    } else if (k == LP_LE_CANCEL) {
        lp_client_send(&r->c, session_op(r, "interrupt"), NULL, 0);
    }
}

/* Sends code as interactive input; the eval is then r->eval_id. */
static void send_eval(lp_repl_t *r, const char *code, size_t len)
{
    json_t *h = session_op(r, "eval");

    json_object_set_new(h, "interactive", json_true());
    r->status[0] = 0;
    r->want_input = false;
    if ((r->eval_id = lp_client_send(&r->c, h, code, len)) < 0 &&
        !lp_client_is_broken(r->eval_id)) {
        fprintf(stderr, "limpet: that input is larger than the server takes (%" PRIu32
                        " bytes)\n", r->c.limits.payload_max);
        snprintf(r->status, sizeof(r->status), "error");
    }
    r->gone = lp_client_is_broken(r->eval_id);
    if (r->eval_id < 0)
        r->eval_id = -1;
}

/* lineedit's Enter hook: the line leaves before the terminal is set back,
 * which costs a wait for the terminal to drain its output. */
static void accept(void *ctx, const char *line, size_t len)
{
    lp_repl_t *r = ctx;

    send_eval(r, line, len);
    r->sent_early = true;
}

int lp_repl_eval(lp_repl_t *r, const char *code, size_t len)
{
    bool interrupted = false;

    if (!r->sent_early)
        send_eval(r, code, len);
    r->sent_early = false;
    while (r->status[0] == 0 && !r->gone) {
        /* every press is passed on; the server turns code stuck in a
         * blocking call into a job, so the prompt always comes back */
        int n = lp_le_take_interrupts();

        if (n > 0 && !interrupted && isatty(STDOUT_FILENO))
            lp_term_write(STDOUT_FILENO, "\n", 1); /* what follows starts after the ^C */
        interrupted = interrupted || n > 0;
        for (; n > 0; n--)
            lp_client_send(&r->c, session_op(r, "interrupt"), NULL, 0);
        if (r->want_input)
            answer_input(r);
        else if (lp_le_wait(r->le, -1) == LP_LE_GONE)
            break;
    }
    return r->gone ? -1 : 0;
}

int lp_repl_interrupt(lp_repl_t *r)
{
    json_decref(request(r, session_op(r, "interrupt"), LP_REPL_CLOSE_TIMEOUT_MS));
    return r->gone ? -1 : 0;
}

void lp_repl_close(lp_repl_t *r)
{
    json_t *reply = request(r, session_op(r, "close"), LP_REPL_CLOSE_TIMEOUT_MS);

    if (reply == NULL && !r->gone)
        fprintf(stderr, "limpet: the server did not answer within %d ms; leaving anyway\n",
                LP_REPL_CLOSE_TIMEOUT_MS);
    json_decref(reply);
}

void lp_repl_gone(lp_repl_t *r)
{
    const char *name = str(r->c.welcome.server, "name");

    if (r->bye[0] != 0)
        fprintf(stderr, "limpet: %s: %s\n", name, r->bye);
    else
        fprintf(stderr, "limpet: %s (pid %" JSON_INTEGER_FORMAT ") closed the connection\n", name,
                json_integer_value(json_object_get(r->c.welcome.server, "pid")));
}

/* lineedit's Tab hook. */
static int complete(void *ctx, const char *line, size_t cursor, lp_le_matches_t *m)
{
    lp_repl_t *r = ctx;
    json_t *h = json_pack("{s:s,s:s,s:s,s:I}", "op", "complete", "session", r->c.welcome.session, "text",
                          line, "cursor", (json_int_t)cursor);
    json_t *reply = request(r, h, LP_REPL_COMPLETE_TIMEOUT_MS), *matches, *item;
    size_t i;

    matches = json_object_get(reply, "matches");
    m->n = 0;
    m->start = (size_t)json_integer_value(json_object_get(reply, "start"));
    if (json_array_size(matches) > 0 &&
        (m->items = calloc(json_array_size(matches), sizeof(char *))) != NULL)
        json_array_foreach(matches, i, item)
            if (json_is_string(item) && (m->items[m->n] = strdup(json_string_value(item))) != NULL)
                m->n++;
    json_decref(reply);
    return r->gone ? -1 : 0;
}

int lp_repl_open(lp_repl_t *r, const lp_target_t *t, const char *env)
{
    memset(r, 0, sizeof(*r));
    r->eval_id = r->wait_id = r->stdin_id = -1;
    if (lp_cli_open(&r->c, t, env == NULL, LP_CAP_PAGE) != 0)
        return -1;
    if (env != NULL && lp_cli_clone(&r->c, env) != 0) {
        lp_client_close(&r->c);
        return -1;
    }
    if (r->c.welcome.session[0] == 0) {
        fprintf(stderr, "limpet: '%s' opened no session\n", t->address);
        lp_client_close(&r->c);
        return -1;
    }
    r->pr = (lp_presenter_t){.write = write_out, .page = page, .ctx = r,
                             .colour = lp_term_colour(STDERR_FILENO)};
    return 0;
}

int lp_repl_start(lp_repl_t *r, const char *history_path)
{
    lp_le_hooks_t hooks = {.sock = r->c.fd, .on_socket = on_socket, .complete = complete,
                           .accept = accept, .ctx = r};

    if ((r->le = lp_le_new(history_path, &hooks)) == NULL) {
        fprintf(stderr, "limpet: out of memory\n");
        return -1;
    }
    return 0;
}

void lp_repl_free(lp_repl_t *r)
{
    lp_le_free(r->le);
    lp_client_close(&r->c);
    free(r->input_prompt);
    json_decref(r->reply);
}
