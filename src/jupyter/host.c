/* host.c: limpet's frames become Jupyter messages (docs/jupyter.md
 * section 3): out -> stream, value -> execute_result, exception -> error,
 * input -> input_request, page -> the reply's payload, done -> the reply. */
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "jupyter/internal.h"

static const char *const stream_names[2] = {"stdout", "stderr"};

/* The frame's payload as JSON-safe text (invalid UTF-8 as U+FFFD), a new
 * NUL-terminated buffer; NULL on ENOMEM. */
static char *payload_text(const lp_frame_t *f, size_t *len)
{
    lp_jstream_t d = {0};
    char *out = NULL;

    return lp_jstream_decode(&d, f->payload, f->payload_len, 1, &out, len) == 0 ? out : NULL;
}

void k_stream_flush(kernel_t *k)
{
    if (k->stream_len > 0)
        k_send(k, LP_JCH_IOPUB, NULL, k->stream_parent, "stream", NULL,
               json_pack("{s:s,s:s%}", "name", stream_names[k->stream_name], "text", k->stream,
                         k->stream_len));
    k->stream_len = 0;
    k->stream_name = -1;
    json_decref(k->stream_parent);
    k->stream_parent = NULL;
}

/* Output joins what is gathered when it is of the same stream under the
 * same parent: sent when the host has nothing more, or before anything else. */
static void on_out(kernel_t *k, const lp_frame_t *f, const kpending_t *p)
{
    const char *stream = json_string_value(json_object_get(f->header, "stream"));
    int name = stream != NULL && strcmp(stream, "stderr") == 0;
    json_t *parent = p != NULL && p->what == K_EXECUTE ? p->req.header : k->last_parent;
    char *text = NULL;
    size_t len = 0;

    if (k->stream_len > 0 && (k->stream_name != name || k->stream_parent != parent))
        k_stream_flush(k);
    if (lp_jstream_decode(&k->dec[name], f->payload, f->payload_len, 0, &text, &len) != 0) {
        k_log(k, "out of memory: output dropped");
        return;
    }
    if (k->stream_len + len + 1 > k->stream_cap) {
        size_t cap = k->stream_len + len + 1 > 4096 ? k->stream_len + len + 1 : 4096;
        char *grown = realloc(k->stream, cap);

        if (grown == NULL) {
            free(text);
            {
            k_log(k, "out of memory: output dropped");
            return;
        }
        }
        k->stream = grown;
        k->stream_cap = cap;
    }
    memcpy(k->stream + k->stream_len, text, len);
    k->stream_len += len;
    free(text);
    if (k->stream_name < 0) {
        k->stream_name = name;
        k->stream_parent = json_incref(parent);
    }
    if (k->stream_len >= K_STREAM_MAX)
        k_stream_flush(k);
}

/* An exception frame: ename is the last dotted part of its type, evalue its
 * message (or the traceback's last line after "Type: "), the traceback the
 * host's text in lines. */
static json_t *error_content(const lp_frame_t *f)
{
    const char *type = k_str(f->header, "type", "Exception");
    const char *message = json_string_value(json_object_get(f->header, "message"));
    const char *dot = strrchr(type, '.');
    size_t len = 0;
    char *text = payload_text(f, &len);
    json_t *lines = json_array(), *out;
    char *last = NULL;

    for (char *line = text, *end; line != NULL && *line != 0; line = end ? end + 1 : NULL) {
        end = strchr(line, '\n');
        if (end != NULL)
            *end = 0;
        json_array_append_new(lines, json_string(line));
        last = line;
    }
    if (message == NULL && last != NULL) {
        const char *colon = strstr(last, ": ");

        message = colon != NULL ? colon + 2 : "";
    }
    out = json_pack("{s:s,s:s,s:o}", "ename", dot ? dot + 1 : type, "evalue", message != NULL ? message : "",
                    "traceback", lines);
    free(text);
    return out;
}

static void append_page(kexec_t *e, const lp_frame_t *f)
{
    char *grown = realloc(e->page, e->page_len + f->payload_len + 1);

    if (grown == NULL)
        return;
    memcpy(grown + e->page_len, f->payload, f->payload_len);
    e->page_len += f->payload_len;
    grown[e->page_len] = 0;
    e->page = grown;
}

/* A session's input(): asked on stdin, of the execute's own identities. */
static void on_input(kernel_t *k, const lp_frame_t *f, const kpending_t *p)
{
    const json_t *h = f->header;
    bool password = json_is_false(json_object_get(h, "echo")) ||
                    json_is_true(json_object_get(h, "password"));

    if (!k->exec.allow_stdin) {
        k_host_send(k, json_pack("{s:s,s:s,s:b}", "op", "stdin", "session", k->session, "eof", 1),
                    NULL, 0, K_IGNORE, NULL);
        return;
    }
    k_send(k, LP_JCH_STDIN, &p->req, p->req.header, "input_request", NULL,
           json_pack("{s:s,s:b}", "prompt",
                     k_str(h, "prompt", ""), "password",
                     password));
}

/* After exit(): the session is gone, the host is not; a new session (in
 * the same environment) serves the next cell, and then the execute ends. */
static void reopen(kernel_t *k, kpending_t *p)
{
    json_t *h = json_pack("{s:s}", "op", "clone");
    kreq_t req = p->req;

    if (k->opts->env != NULL)
        json_object_set_new(h, "env", json_string(k->opts->env));
    memset(&p->req, 0, sizeof(p->req));
    p->what = K_FREE;
    k_host_send(k, h, NULL, 0, K_REOPEN, &req);
}

static void on_execute(kernel_t *k, kpending_t *p, const char *op, lp_frame_t *f)
{
    kexec_t *e = &k->exec;

    if (strcmp(op, "value") == 0) {
        if (e->silent)
            return;
        free(e->result);
        e->result = strndup((const char *)f->payload, f->payload_len);
        k_send(k, LP_JCH_IOPUB, NULL, p->req.header, "execute_result", NULL,
               json_pack("{s:I,s:{s:s%},s:{}}", "execution_count", (json_int_t)e->count, "data",
                         "text/plain", e->result != NULL ? e->result : "",
                         e->result != NULL ? strlen(e->result) : 0,
                         "metadata"));
    } else if (strcmp(op, "exception") == 0) {
        json_decref(e->error);
        e->error = error_content(f);
        k_send(k, LP_JCH_IOPUB, NULL, p->req.header, "error", NULL, json_deep_copy(e->error));
    } else if (strcmp(op, "input") == 0)
        on_input(k, f, p);
    else if (strcmp(op, "page") == 0)
        append_page(e, f);
    else if (strcmp(op, "done") == 0) {
        const char *status = k_str(f->header, "status", "ok");

        if (strcmp(status, "closed") == 0)
            reopen(k, p);
        else
            k_execute_end(k, p, status, f->header);
    } else if (strcmp(op, "error") == 0) {
        const char *msg = k_str(f->header, "message", "refused");

        json_decref(e->error);
        e->error = NULL;
        k_send(k, LP_JCH_IOPUB, NULL, p->req.header, "error", NULL,
               json_pack("{s:s,s:s,s:[s]}", "ename", "limpet.Error", "evalue", msg, "traceback",
                         msg));
        e->error = json_pack("{s:s,s:s,s:[s]}", "ename", "limpet.Error", "evalue", msg,
                             "traceback", msg);
        k_execute_end(k, p, "exception", f->header);
    }
}

static size_t code_cps(const char *code)
{
    return lp_jtext_byte_to_cp((const uint8_t *)code, strlen(code), strlen(code));
}

/* complete's done: byte offsets back to code points. */
static json_t *complete_reply(const kreq_t *req, const json_t *done)
{
    const char *code = k_str(req->content, "code", "");
    const json_t *pos = json_object_get(req->content, "cursor_pos");
    json_t *matches = json_object_get(done, "matches");
    size_t start = SIZE_MAX, end = json_is_integer(pos) ? (size_t)json_integer_value(pos)
                                                         : code_cps(code);
    const json_t *s = json_object_get(done, "start");

    if (json_is_integer(s) && json_integer_value(s) >= 0)
        start = lp_jtext_byte_to_cp((const uint8_t *)code, strlen(code),
                                    (size_t)json_integer_value(s));
    if (start == SIZE_MAX || !json_is_array(matches)) {
        matches = NULL;
        start = end;
    }
    return json_pack("{s:s,s:O,s:I,s:I,s:{}}", "status", "ok", "matches",
                     matches ? matches : json_array(), "cursor_start", (json_int_t)start,
                     "cursor_end", (json_int_t)end, "metadata");
}

static json_t *inspect_reply(const lp_frame_t *f, bool ok)
{
    bool found = ok && json_is_true(json_object_get(f->header, "found"));
    char *text = NULL;
    size_t len = 0;
    json_t *r;

    if (found && (text = payload_text(f, &len)) == NULL)
        found = false;
    r = found ? json_pack("{s:s,s:b,s:{s:s%},s:{}}", "status", "ok", "found", 1, "data",
                          "text/plain", text, len, "metadata")
              : json_pack("{s:s,s:b,s:{},s:{}}", "status", "ok", "found", 0, "data", "metadata");
    free(text);
    return r;
}

static json_t *check_reply(const json_t *done, bool ok)
{
    const char *c = ok ? json_string_value(json_object_get(done, "complete")) : NULL;
    const char *indent = json_string_value(json_object_get(done, "indent"));

    if (c == NULL || (strcmp(c, "complete") != 0 && strcmp(c, "incomplete") != 0 &&
                      strcmp(c, "invalid") != 0))
        return json_pack("{s:s}", "status", "unknown");
    if (strcmp(c, "incomplete") == 0)
        return json_pack("{s:s,s:s}", "status", c, "indent", indent != NULL ? indent : "");
    return json_pack("{s:s}", "status", c);
}

/* The final reply to a request that is not an execute. */
static void on_final(kernel_t *k, kpending_t *p, const char *op, const lp_frame_t *f)
{
    bool ok = strcmp(op, "done") == 0;

    if (!ok)
        k_log(k, "the host refused a request: %s",
              k_str(f->header, "message", "?"));
    switch (p->what) {
    case K_COMPLETE:
        k_reply(k, &p->req, "complete_reply", complete_reply(&p->req, ok ? f->header : NULL));
        k->shell_busy = false;
        break;
    case K_INSPECT:
        k_reply(k, &p->req, "inspect_reply", inspect_reply(f, ok));
        k->shell_busy = false;
        break;
    case K_CHECK:
        k_reply(k, &p->req, "is_complete_reply", check_reply(f->header, ok));
        k->shell_busy = false;
        break;
    case K_REOPEN: {
        const char *s = json_string_value(json_object_get(f->header, "session"));

        if (ok && s != NULL)
            snprintf(k->session, sizeof(k->session), "%s", s);
        k_execute_end(k, p, "closed", NULL);
        if (!ok || s == NULL)
            k_host_gone(k, "no new session after the last one closed");
        return; /* k_execute_end freed p */
    }
    case K_INTERRUPT:
        k_reply(k, &p->req, "interrupt_reply", json_pack("{s:s}", "status", "ok"));
        break;
    case K_CLOSE:
        k_reply(k, &p->req, "shutdown_reply",
                json_pack("{s:s,s:o}", "status", "ok", "restart",
                          k_restart(p->req.content)));
        k->quit = true;
        k->exit_code = 0;
        break;
    default: /* K_PING, K_IGNORE */
        break;
    }
    k_pending_free(p);
}

void k_host_frame(kernel_t *k, lp_frame_t *f)
{
    lp_route_t rt;
    kpending_t *p;
    const char *op;

    lp_route_get(f->header, &rt);
    op = rt.op != NULL ? rt.op : "";
    p = rt.re >= 0 ? k_pending_find(k, rt.re) : NULL;
    if (strcmp(op, "out") == 0) {
        on_out(k, f, p);
        return;
    }
    k_stream_flush(k); /* output first, in the order it came */
    if (strcmp(op, "bye") == 0) {
        k_host_gone(k, k_str(f->header, "message", "bye"));
        return;
    }
    if (p == NULL) {
        if (strcmp(op, "error") == 0)
            k_log(k, "the host says: %s",
                  k_str(f->header, "message", "?"));
        return;
    }
    if (p->what == K_EXECUTE)
        on_execute(k, p, op, f);
    else if (strcmp(op, "done") == 0 || strcmp(op, "error") == 0)
        on_final(k, p, op, f);
}
