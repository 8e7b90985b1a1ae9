/* engine.c: the context engine: an lp_engine_t (src/session/server.h)
 * whose environments are the kernel server's, so the framed protocol's
 * sessions (limpet connect serve --env NAME, limpet exec) run in them
 * with no new client code. An eval is a run (serve.h) that this thread
 * follows to its end, passing its output, input() and result to the
 * session as the CPython engine does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/io.h"
#include "serve/engine.h"
#include "serve/internal.h"

/* inspect's help text comes back in one header of the agent's (64 KiB) */
#define LP_INSPECT_DOC_MAX 60000

typedef struct sdata {
    pthread_mutex_t mu;
    char env[LP_ENV_NAME_MAX + 1];
    char session[64];           /* whose pending input, in the environment's agent */
    lp_run_t *running;          /* the run of the eval going, under mu */
} sdata_t;

static int no_tls(void *ctx, void **tls)
{
    *tls = ctx; /* not NULL: the server core takes NULL for a thread not set up */
    return 0;
}

static void no_tls_exit(void *ctx, void *tls)
{
}

static int session_open(void *ctx, void *tls, lp_session_t *s, void *env, void **data)
{
    sdata_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return LP_WIRE_ENOMEM;
    pthread_mutex_init(&d->mu, NULL);
    snprintf(d->env, sizeof(d->env), "%s", env != NULL ? (const char *)env : LP_ENV_MAIN);
    snprintf(d->session, sizeof(d->session), "%s", lp_session_id(s));
    *data = d;
    return 0;
}

static void session_close(void *ctx, void *tls, void *data)
{
    sdata_t *d = data;

    lp_serve_forget_session(ctx, d->env, d->session);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/* Output copied out of the run (its lock is not held while the client is
 * written to: a slow client must not stall the broker's thread). */
typedef struct piece {
    struct piece *next;
    int stream;
    size_t len;
    const char *type;           /* a value's, after data; else NULL */
    char data[];
} piece_t;

static int collect(void *arg, const lp_run_chunk_t *c)
{
    piece_t ***tail = arg;
    size_t tlen = c->type != NULL ? strlen(c->type) + 1 : 0;
    piece_t *p = malloc(sizeof(*p) + c->len + tlen);

    if (p == NULL)
        return LP_WIRE_ENOMEM;
    p->next = NULL;
    p->stream = c->stream;
    p->len = c->len;
    memcpy(p->data, c->data, c->len);
    p->type = c->type != NULL ? memcpy(p->data + c->len, c->type, tlen) : NULL;
    **tail = p;
    *tail = &p->next;
    return 0;
}

/* Passes run output from *since on to session s. */
static void forward(lp_session_t *s, lp_run_t *r, uint64_t *since)
{
    piece_t *head = NULL, **tail = &head;
    bool dropped;

    lp_run_chunks(r, *since, collect, &tail, since, &dropped);
    while (head != NULL) {
        piece_t *p = head;
        int w;

        if (p->stream == 2 && lp_session_page(s, p->data, p->len) == 0)
            w = 0;
        else if (p->stream == LP_RUN_STREAM_VALUE && p->type != NULL && p->len > 0)
            w = lp_session_value(s, p->type, p->data, p->len - 1) == 1; /* no newline */
        else
            w = lp_session_write(s, p->stream == 1 ? LP_STDERR : LP_STDOUT, p->data, p->len);
        if (w == 1)
            lp_session_flush(s);
        else if (w == 2)
            lp_session_send(s, p->stream == 1 ? LP_STDERR : LP_STDOUT, p->data, p->len);
        head = p->next;
        free(p);
    }
}

/* input() in the run: asked of the session's client. */
static void ask_input(lp_session_t *s, lp_run_t *r)
{
    char *prompt = NULL;
    bool password = false;
    uint8_t *line = NULL;
    size_t len = 0;
    int e;

    if (lp_run_input_pending(r, &prompt, &password) != 1)
        return;
    e = lp_session_input(s, prompt, !password, &line, &len);
    if (e == 0)
        lp_run_answer(r, (const char *)line, len, false);
    else if (e == LP_EINTERRUPTED)
        lp_run_interrupt(r); /* the answer: KeyboardInterrupt in the waiting input() */
    else
        lp_run_answer(r, NULL, 0, true);
    free(line);
    free(prompt);
}

static int status_of(lp_run_status_t st)
{
    switch (st) {
    case LP_RUN_OK:
        return LP_EVAL_OK;
    case LP_RUN_MORE:
        return LP_EVAL_MORE;
    case LP_RUN_INTERRUPTED:
    case LP_RUN_DEADLINE:
        return LP_EVAL_INTERRUPTED;
    case LP_RUN_CLOSED:
        return LP_EVAL_CLOSED;
    default:
        return LP_EVAL_EXCEPTION;
    }
}

/* The run's value or exception, to the session, after its output. */
static void finish(lp_session_t *s, lp_run_t *r, lp_run_status_t st)
{
    char *vt, *vr, *et, *em, *tb;

    lp_run_result(r, &vt, &vr, &et, &em, &tb);
    if (vr != NULL && lp_session_value(s, vt != NULL ? vt : "object", vr, strlen(vr)) == 1)
        lp_session_flush(s);
    if (et != NULL && lp_session_exception(s, et, em != NULL ? em : "", tb != NULL ? tb : "",
                                           tb != NULL ? strlen(tb) : 0) == 1)
        lp_session_flush(s);
    if (st == LP_RUN_DEADLINE) {
        static const char why[] = "limpet: the run passed its time limit and was interrupted\n";

        if (lp_session_write(s, LP_STDERR, why, sizeof(why) - 1) == 1)
            lp_session_flush(s);
    }
    if (et == NULL && st == LP_RUN_KILLED) {
        static const char why[] = "limpet: the environment's process died during this run\n";

        if (lp_session_exception(s, "limpet.EnvironmentDied", "the environment's process died",
                                 why, sizeof(why) - 1) == 1)
            lp_session_flush(s);
    }
    free(vt);
    free(vr);
    free(et);
    free(em);
    free(tb);
}

/* One log line per eval, as HTTP has one per request. */
static void log_run(lp_serve_t *sv, const sdata_t *d, lp_run_t *r, lp_run_status_t st,
                    uint64_t t0)
{
    char line[256];

    if (sv->cfg.log == NULL)
        return;
    snprintf(line, sizeof(line), "unix uid:%u eval env=%s run=%llu %s %.1fms", (unsigned)getuid(),
             d->env, (unsigned long long)lp_run_id(r), lp_run_status_name(st),
             (double)(lp_clock_us() - t0) / 1000.0);
    sv->cfg.log(sv->cfg.log_arg, line);
}

static int eval(void *ctx, void *tls, lp_session_t *s, void *data, const lp_eval_req_t *req)
{
    sdata_t *d = data;
    char msg[LP_SERVE_MSG_MAX], tb[LP_SERVE_MSG_MAX + 1], who[32];
    static const lp_run_mode_t modes[] = {[LP_MODE_EXEC] = LP_RUN_SCRIPT,
                                          [LP_MODE_SINGLE] = LP_RUN_SINGLE,
                                          [LP_MODE_CELL] = LP_RUN_CELL};
    lp_run_req_t rr = {req->code, req->len, modes[req->mode],
                       d->session, req->filename, 0, true, who};
    lp_run_t *r;
    uint64_t since = 0;
    lp_run_status_t st;
    uint64_t t0 = lp_clock_us();
    int e;

    snprintf(who, sizeof(who), "uid:%u", (unsigned)getuid()); /* the socket admits only us */
    if ((e = lp_serve_submit(ctx, d->env, &rr, &r, msg)) != 0) {
        int n = snprintf(tb, sizeof(tb), "%s\n", msg); /* a traceback ends its line */

        lp_session_exception(s, "limpet.EnvironmentError", msg, tb, (size_t)n);
        return LP_EVAL_EXCEPTION;
    }
    pthread_mutex_lock(&d->mu);
    d->running = r;
    pthread_mutex_unlock(&d->mu);
    for (;;) {
        bool ended;

        lp_run_wait(r, since, 1000);
        ended = lp_run_ended(r); /* before the output: what came before the end is sent */
        forward(s, r, &since);
        if (ended)
            break;
        ask_input(s, r);
    }
    st = lp_run_status(r);
    finish(s, r, st);
    log_run(ctx, d, r, st, t0);
    pthread_mutex_lock(&d->mu);
    d->running = NULL;
    pthread_mutex_unlock(&d->mu);
    lp_run_unref(r);
    return status_of(st);
}

static void reset(void *ctx, void *tls, void *data)
{
    sdata_t *d = data;

    lp_serve_forget_session(ctx, d->env, d->session);
}

static void interrupt(void *ctx, void *tls, void *target_tls, void *data)
{
    sdata_t *d = data;

    pthread_mutex_lock(&d->mu);
    if (d->running != NULL)
        lp_run_interrupt(d->running);
    pthread_mutex_unlock(&d->mu);
}

static json_t *complete(void *ctx, void *tls, void *data, const char *text, size_t len,
                        size_t cursor, size_t *start)
{
    sdata_t *d = data;
    char *copy = strndup(text, len);
    json_t *m;
    int err;

    if (copy == NULL)
        return NULL;
    m = lp_serve_complete(ctx, d->env, d->session, copy, cursor, start, &err);
    free(copy);
    return m;
}

/* check: the environment's agent answers from its reader thread, at once. */
static json_t *check(void *ctx, void *tls, void *data, const char *code, size_t len)
{
    sdata_t *d = data;
    json_t *fields = json_pack("{s:s}", "session", d->session), *done, *out = NULL;
    const char *st, *indent;
    int err;

    if (fields == NULL)
        return NULL;
    done = lp_serve_ask(ctx, d->env, "check", fields, code, len, &err);
    st = json_string_value(json_object_get(done, "complete"));
    indent = json_string_value(json_object_get(done, "indent"));
    if (st != NULL)
        out = json_pack("{s:s,s:s}", "complete", st, "indent", indent != NULL ? indent : "");
    json_decref(fields);
    json_decref(done);
    return out;
}

/* inspect: the agent's help text comes back in its done's "doc" (one
 * header: at most LP_INSPECT_DOC_MAX bytes). */
static json_t *inspect(void *ctx, void *tls, void *data, const char *text, size_t len,
                       size_t cursor, int detail, size_t max, char **doc, size_t *doc_len)
{
    sdata_t *d = data;
    size_t limit = max < LP_INSPECT_DOC_MAX ? max : LP_INSPECT_DOC_MAX;
    json_t *fields = json_pack("{s:s,s:s%,s:I,s:i,s:I}", "session", d->session, "text", text, len,
                               "cursor", (json_int_t)cursor, "detail", detail, "limit",
                               (json_int_t)limit);
    json_t *done = NULL, *out = NULL;
    const json_t *found, *text_doc;
    int err;

    *doc = NULL;
    *doc_len = 0;
    if (fields != NULL)
        done = lp_serve_ask(ctx, d->env, "inspect", fields, NULL, 0, &err);
    found = json_object_get(done, "found");
    text_doc = json_object_get(done, "doc");
    if (json_is_boolean(found) && (text_doc == NULL || json_is_string(text_doc))) {
        *doc_len = lp_utf8_cut(json_string_value(text_doc) != NULL ? json_string_value(text_doc) : "",
                               json_string_length(text_doc), limit);
        if ((*doc = malloc(*doc_len + 1)) != NULL) {
            memcpy(*doc, text_doc != NULL ? json_string_value(text_doc) : "", *doc_len);
            out = json_pack("{s:O}", "found", found);
        }
    }
    if (out == NULL) {
        free(*doc);
        *doc = NULL;
        *doc_len = 0;
    }
    json_decref(fields);
    json_decref(done);
    return out;
}

static int env_exists(void *ctx, const char *name)
{
    lp_senv_t *e = lp_senv_find(ctx, name);

    if (e == NULL)
        return -1;
    lp_senv_unref(ctx, e);
    return 0;
}

/* describe's envs: the server's table, each entry with "env" as the
 * protocol names it (section 7) beside HTTP's "name". */
static json_t *env_list(void *ctx)
{
    json_t *list = lp_serve_env_list(ctx), *e;
    size_t i;

    json_array_foreach(list, i, e)
        json_object_set(e, "env", json_object_get(e, "name"));
    return list;
}

/* The env-* operations over the socket, as HTTP has them (protocol.md 7). */
static json_t *env_op(void *ctx, const char *op, const json_t *req, int *err, char *msg,
                      size_t size, const char **field)
{
    const char *name = json_string_value(json_object_get(req, "env"));
    const char *target = json_string_value(json_object_get(req, "target"));
    const char *python = json_string_value(json_object_get(req, "python"));
    char why[LP_SERVE_MSG_MAX] = "";
    json_t *info = NULL;
    int r = 0;

    *field = "env";
    if (strcmp(op, "env-list") == 0)
        return json_pack("{s:o}", "envs", env_list(ctx));
    if (strcmp(op, "env-create") == 0) {
        if ((r = lp_serve_env_create(ctx, name, target, python, NULL, &info, why)) == 0)
            return json_pack("{s:s, s:o}", "env", name, "info", info);
        if (r == LP_WIRE_EFIELD && strstr(why, "target") != NULL)
            *field = "target";
    } else if (strcmp(op, "env-info") == 0) {
        if ((info = lp_serve_env_info(ctx, name, true, &r)) != NULL) {
            json_object_set_new(info, "env", json_string(name));
            return info;
        }
        snprintf(why, sizeof(why), "%s", r == -ENOENT ? "no such environment"
                                         : r == -EPIPE ? "the environment is dead: restart it"
                                                       : lp_wire_strerror(r));
    } else if ((r = lp_serve_env_delete(ctx, name)) == 0) {
        return json_object();
    } else {
        snprintf(why, sizeof(why), "no such environment");
    }
    *err = r == -EAGAIN ? LP_WIRE_ETOOMANY : r == -ECHILD ? LP_WIRE_EINTERNAL : LP_WIRE_EFIELD;
    snprintf(msg, size, "%s", why[0] != 0 ? why : lp_wire_strerror(r));
    return NULL;
}

static int64_t detach(void *ctx, void *tls, void *target_tls, void *data)
{
    return -1; /* the environment's main thread is its own: nothing to hand back */
}

void lp_serve_engine(lp_serve_t *sv, lp_engine_t *out)
{
    memset(out, 0, sizeof(*out));
    out->ctx = sv;
    out->thread_enter = no_tls;
    out->thread_exit = no_tls_exit;
    out->session_open = session_open;
    out->session_close = session_close;
    out->eval = eval;
    out->reset = reset;
    out->interrupt = interrupt;
    out->complete = complete;
    out->detach = detach;
    out->env_exists = env_exists;
    out->env_list = env_list;
    out->env_op = env_op;
    out->check = check;
    out->inspect = inspect;
}
