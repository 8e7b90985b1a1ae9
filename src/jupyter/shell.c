/* shell.c: the Jupyter requests (docs/jupyter.md section 3): each becomes
 * the limpet request that answers it, or is answered here. Every request
 * on shell or control goes out between an iopub busy and idle under it. */
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "io/io.h"
#include "jupyter/internal.h"
#include "limpet.h"
#include "wire/ops.h"

/* ---- requests kept: identities copied, header held ---- */

static int req_keep(kreq_t *req, int ch, const lp_jmsg_t *m)
{
    size_t total = 0;

    memset(req, 0, sizeof(*req));
    for (size_t i = 0; i < m->n_ids; i++)
        total += m->ids[i].len;
    if ((req->ids = malloc(total ? total : 1)) == NULL)
        return -1;
    for (size_t i = 0, off = 0; i < m->n_ids; off += m->ids[i++].len) {
        memcpy(req->ids + off, m->ids[i].data, m->ids[i].len);
        req->id_len[i] = m->ids[i].len;
    }
    req->n_ids = m->n_ids;
    req->ch = ch;
    req->header = json_incref(m->header);
    req->content = json_incref(m->content);
    req->type = m->msg_type;
    return 0;
}

void k_req_clear(kreq_t *req)
{
    free(req->ids);
    json_decref(req->header);
    json_decref(req->content);
    memset(req, 0, sizeof(*req));
}

/* ---- limpet requests in flight ---- */

kpending_t *k_pending_find(kernel_t *k, int64_t id)
{
    for (size_t i = 0; i < K_PENDING_MAX; i++)
        if (k->pending[i].what != K_FREE && k->pending[i].id == id)
            return &k->pending[i];
    return NULL;
}

kpending_t *k_pending_of(kernel_t *k, kwhat_t what)
{
    for (size_t i = 0; i < K_PENDING_MAX; i++)
        if (k->pending[i].what == what)
            return &k->pending[i];
    return NULL;
}

void k_pending_free(kpending_t *p)
{
    k_req_clear(&p->req);
    p->what = K_FREE;
}

int64_t k_host_send(kernel_t *k, json_t *header, const void *payload, size_t len, kwhat_t what,
                    kreq_t *req)
{
    kpending_t *p = k_pending_of(k, K_FREE);
    int64_t id;

    if (p == NULL) { /* cannot happen: shell is one at a time, control a few */
        json_decref(header);
        k_log(k, "too many requests in flight to the host");
        if (req != NULL)
            k_req_clear(req);
        return -1;
    }
    id = lp_client_send(k->lc, header, payload, len);
    if (id < 0) {
        if (req != NULL)
            k_req_clear(req);
        if (lp_client_is_broken(id))
            k_host_gone(k, "the connection to it broke");
        else
            k_log(k, "a request to the host could not be encoded (%s)", lp_wire_strerror((int)id));
        return -1;
    }
    p->what = what;
    p->id = id;
    p->since_ms = lp_clock_ms();
    if (req != NULL) {
        p->req = *req;
        memset(req, 0, sizeof(*req));
    }
    return id;
}

/* ---- content helpers ---- */

const char *k_str_or(const json_t *v, const char *dflt)
{
    const char *s = json_string_value(v);

    return s != NULL ? s : dflt;
}

const char *k_str(const json_t *o, const char *key, const char *dflt)
{
    return k_str_or(json_object_get(o, key), dflt);
}

json_t *k_restart(const json_t *content)
{
    return json_boolean(json_is_true(json_object_get(content, "restart")));
}

static bool bool_of(const json_t *o, const char *key, bool dflt)
{
    const json_t *v = json_object_get(o, key);

    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int64_t int_of(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* ---- the requests ---- */

static json_t *kernel_info(kernel_t *k)
{
    const json_t *srv = k->lc->welcome.server;
    const char *python = k_str(srv, "python", "3");
    char banner[2048];
    int n = snprintf(banner, sizeof(banner), "limpet %s: '%s', pid %lld, Python %s:", LIMPET_VERSION,
                     k_str(srv, "name", "?"), (long long)int_of(srv, "pid", 0), python);
    const json_t *argv = json_object_get(srv, "argv");

    for (size_t i = 0; i < json_array_size(argv) && n > 0 && (size_t)n < sizeof(banner); i++)
        n += snprintf(banner + n, sizeof(banner) - (size_t)n, " %s",
                      k_str_or(json_array_get(argv, i), ""));
    if (n > 0 && (size_t)n < sizeof(banner))
        snprintf(banner + n, sizeof(banner) - (size_t)n, "%s%s\n(a live process: restarting this "
                 "kernel keeps its globals)", k->opts->env ? "\nenvironment " : "",
                 k->opts->env ? k->opts->env : "");
    return json_pack(
        "{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:i},s:s},s:s,s:[],s:b}", "status", "ok",
        "protocol_version", LP_JMSG_VERSION, "implementation", "limpet",
        "implementation_version", LIMPET_VERSION, "language_info", "name", "python", "version",
        python, "mimetype", "text/x-python", "file_extension", ".py", "pygments_lexer", "python3",
        "codemirror_mode", "name", "python", "version", 3, "nbconvert_exporter", "python",
        "banner", banner, "help_links", "debugger", 0);
}

/* Front ends send %config lines and the like, silently, at start: the
 * host is plain Python, so a silent cell of only magics is answered here. */
static bool only_magics(const char *code)
{
    bool any = false;

    for (const char *line = code; *line != 0;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        size_t i = strspn(line, " \t");

        if (i < len) {
            if (line[i] != '%' && line[i] != '!')
                return false;
            any = true;
        }
        line += len + (end != NULL);
    }
    return any;
}

/* The eval goes to the host first; busy, execute_input and the history
 * entry are written while the host runs it (the order on iopub is the
 * same: the host's frames are read after). */
static void execute(kernel_t *k, kreq_t *req)
{
    json_t *header = json_incref(req->header), *content = json_incref(req->content);
    const char *code = k_str(content, "code", "");
    kexec_t *e = &k->exec;
    bool magics;

    memset(e, 0, sizeof(*e));
    e->silent = bool_of(content, "silent", false);
    e->store_history = bool_of(content, "store_history", !e->silent);
    e->allow_stdin = bool_of(content, "allow_stdin", true);
    e->stop_on_error = bool_of(content, "stop_on_error", true);
    if (e->store_history && !e->silent)
        k->exec_count++;
    e->count = k->exec_count;
    json_decref(k->last_parent);
    k->last_parent = json_incref(header);
    magics = e->silent && only_magics(code);
    if (!magics) {
        char filename[64];

        snprintf(filename, sizeof(filename), "<cell %lld>", (long long)e->count);
        e->active = k_host_send(k, json_pack("{s:s,s:s,s:s,s:s}", "op", "eval", "session",
                                             k->session, "mode", e->silent ? "exec" : "cell",
                                             "filename", filename),
                                code, strlen(code), K_EXECUTE, req) >= 0;
        k->shell_busy = e->active;
    }
    k_status(k, header, "busy");
    if (!e->silent)
        k_send(k, LP_JCH_IOPUB, NULL, header, "execute_input", NULL,
               json_pack("{s:s,s:I}", "code", code, "execution_count", (json_int_t)e->count));
    if (e->store_history)
        k_history_add(k, e->count, code, NULL);
    if (magics) {
        k_reply(k, req, "execute_reply",
                json_pack("{s:s,s:I,s:[],s:{}}", "status", "ok", "execution_count",
                          (json_int_t)e->count, "payload", "user_expressions"));
        k_req_clear(req);
    }
    json_decref(header);
    json_decref(content);
}

static bool shell_waiting(kernel_t *k)
{
    zmq_pollitem_t it = {k->sock[LP_JCH_SHELL], 0, ZMQ_POLLIN, 0};

    return zmq_poll(&it, 1, 0) > 0 && (it.revents & ZMQ_POLLIN);
}

void k_execute_end(kernel_t *k, kpending_t *p, const char *status, const json_t *done)
{
    kexec_t *e = &k->exec;
    json_t *reply;
    bool failed = e->error != NULL;

    if (strcmp(status, "interrupted") == 0 && e->error == NULL)
        e->error = json_pack("{s:s,s:s,s:[s]}", "ename", "KeyboardInterrupt", "evalue", "",
                             "traceback", "KeyboardInterrupt");
    else if (strcmp(status, "detached") == 0) {
        char why[160];

        snprintf(why, sizeof(why), "still running in the host as job %lld",
                 (long long)int_of(done, "job", 0));
        json_decref(e->error);
        e->error = json_pack("{s:s,s:s,s:[s]}", "ename", "limpet.Detached", "evalue", why,
                             "traceback", why);
    }
    if (e->error != NULL && !failed) /* one made here: shown on iopub as the host's are */
        k_send(k, LP_JCH_IOPUB, NULL, p->req.header, "error", NULL, json_deep_copy(e->error));
    if (e->error != NULL) {
        reply = json_deep_copy(e->error);
        json_object_set_new(reply, "status", json_string("error"));
    } else {
        json_t *payload = json_array();

        if (e->page != NULL)
            json_array_append_new(payload,
                                  json_pack("{s:s,s:{s:s%},s:i}", "source", "page", "data",
                                            "text/plain", e->page, e->page_len, "start", 0));
        if (strcmp(status, "closed") == 0)
            json_array_append_new(payload, json_pack("{s:s,s:b}", "source", "ask_exit",
                                                     "keepkernel", 0));
        reply = json_pack("{s:s,s:o,s:{}}", "status", "ok", "payload", payload,
                          "user_expressions");
    }
    json_object_set_new(reply, "execution_count", json_integer(e->count));
    if (e->store_history && e->result != NULL) {
        json_t *last = json_array_get(k->history, json_array_size(k->history) - 1);

        json_array_set_new(last, 3, json_string(e->result));
    }
    /* stop_on_error aborts what was queued before this reply: a request the
     * client sends once it has seen the error is served (looked at first,
     * as the reply makes the client send its next cell) */
    bool abort = e->error != NULL && !e->silent && e->stop_on_error && shell_waiting(k);

    k_reply(k, &p->req, "execute_reply", reply);

    json_decref(e->error);
    free(e->page);
    free(e->result);
    memset(e, 0, sizeof(*e));
    k_pending_free(p);
    k->shell_busy = false;
    if (abort)
        k_abort_queue(k);
}

/* code points <-> UTF-8 bytes of the code a completion or inspection is in */
static size_t cursor_bytes(const char *code, const json_t *c)
{
    int64_t cp = int_of(c, "cursor_pos", -1);
    size_t len = strlen(code);

    return cp < 0 ? len : lp_jtext_cp_to_byte((const uint8_t *)code, len, (size_t)cp);
}

static void complete(kernel_t *k, kreq_t *req)
{
    const char *code = k_str(req->content, "code", "");

    if (k_host_send(k, json_pack("{s:s,s:s,s:s,s:I}", "op", "complete", "session", k->session,
                                 "text", code, "cursor",
                                 (json_int_t)cursor_bytes(code, req->content)),
                    NULL, 0, K_COMPLETE, req) >= 0)
        k->shell_busy = true;
}

static void inspect(kernel_t *k, kreq_t *req)
{
    const char *code = k_str(req->content, "code", "");

    if (!(k->caps & LP_CAP_INSPECT)) {
        k_reply(k, req, "inspect_reply",
                json_pack("{s:s,s:b,s:{},s:{}}", "status", "ok", "found", 0, "data", "metadata"));
        k_req_clear(req);
        return;
    }
    if (k_host_send(k, json_pack("{s:s,s:s,s:s,s:I,s:I}", "op", "inspect", "session",
                                 k->session, "text", code, "cursor",
                                 (json_int_t)cursor_bytes(code, req->content), "detail",
                                 (json_int_t)(int_of(req->content, "detail_level", 0) ? 1 : 0)),
                    NULL, 0, K_INSPECT, req) >= 0)
        k->shell_busy = true;
}

static void is_complete(kernel_t *k, kreq_t *req)
{
    const char *code = k_str(req->content, "code", "");

    if (!(k->caps & LP_CAP_CHECK)) {
        k_reply(k, req, "is_complete_reply", json_pack("{s:s}", "status", "unknown"));
        k_req_clear(req);
        return;
    }
    if (k_host_send(k, json_pack("{s:s,s:s}", "op", "check", "session", k->session), code,
                    strlen(code), K_CHECK, req) >= 0)
        k->shell_busy = true;
}

static void shutdown(kernel_t *k, kreq_t *req)
{
    if (k->exec.active)
        k_host_send(k, json_pack("{s:s,s:s}", "op", "interrupt", "session", k->session), NULL, 0,
                    K_IGNORE, NULL);
    k->quit_by_ms = lp_clock_ms() + K_CLOSE_WAIT_MS;
    k_host_send(k, json_pack("{s:s,s:s}", "op", "close", "session", k->session), NULL, 0,
                K_CLOSE, req);
}

static void interrupt(kernel_t *k, kreq_t *req)
{
    k_host_send(k, json_pack("{s:s,s:s}", "op", "interrupt", "session", k->session), NULL, 0,
                K_INTERRUPT, req);
}

/* input_reply on stdin: the line for the input() waiting in the host. */
static void input_reply(kernel_t *k, const kreq_t *req)
{
    const char *value = k_str(req->content, "value", "");

    if (!k->exec.active) {
        k_log(k, "an input_reply with no input() waiting: dropped");
        return;
    }
    k_host_send(k, json_pack("{s:s,s:s}", "op", "stdin", "session", k->session), value,
                strlen(value), K_IGNORE, NULL);
}

void k_abort_queue(kernel_t *k)
{
    /* what the client sent before it saw the error: in libzmq's queue now */
    while (!k->shell_busy && !k->quit && shell_waiting(k)) {
        k->aborting = true;
        k_on_request(k, LP_JCH_SHELL);
        k->aborting = false;
    }
}

/* Requests answered here, without the host. */
static void kernel_info_req(kernel_t *k, kreq_t *req)
{
    k_reply(k, req, "kernel_info_reply", kernel_info(k));
    k_req_clear(req);
}

static void history_req(kernel_t *k, kreq_t *req)
{
    k_reply(k, req, "history_reply", k_history_reply(k, req->content));
    k_req_clear(req);
}

static void comm_info_req(kernel_t *k, kreq_t *req)
{
    k_reply(k, req, "comm_info_reply", json_pack("{s:s,s:{}}", "status", "ok", "comms"));
    k_req_clear(req);
}

/* No comm targets here: the spec's answer to comm_open is to close it. */
static void comm_open_req(kernel_t *k, kreq_t *req)
{
    k_send(k, LP_JCH_IOPUB, NULL, req->header, "comm_close", NULL,
           json_pack("{s:s,s:{}}", "comm_id", k_str(req->content, "comm_id", ""), "data"));
    k_status(k, req->header, "idle");
    k_req_clear(req);
}

#define ON_SHELL (1u << LP_JCH_SHELL)
#define ON_CONTROL (1u << LP_JCH_CONTROL)

/* Each handler takes the request: it answers it, or hands it to a pending
 * limpet request that will. */
static const struct {
    const char *type;
    unsigned channels;
    void (*run)(kernel_t *k, kreq_t *req);
} handlers[] = {
    {"execute_request", ON_SHELL, execute},
    {"complete_request", ON_SHELL, complete},
    {"inspect_request", ON_SHELL, inspect},
    {"is_complete_request", ON_SHELL, is_complete},
    {"history_request", ON_SHELL, history_req},
    {"comm_info_request", ON_SHELL, comm_info_req},
    {"comm_open", ON_SHELL, comm_open_req},
    {"kernel_info_request", ON_SHELL | ON_CONTROL, kernel_info_req},
    {"shutdown_request", ON_SHELL | ON_CONTROL, shutdown},
    {"interrupt_request", ON_CONTROL, interrupt},
};

void k_request(kernel_t *k, int ch, lp_jmsg_t *m)
{
    const char *type = m->msg_type;
    kreq_t req;

    if (req_keep(&req, ch, m) != 0) {
        k_log(k, "out of memory: %s dropped", type);
        return;
    }
    if (ch == LP_JCH_STDIN) {
        if (strcmp(type, "input_reply") == 0)
            input_reply(k, &req);
        else
            k_log(k, "stdin: unexpected %s: dropped", type);
        k_req_clear(&req);
        return;
    }
    if (strcmp(type, "execute_request") != 0 || k->aborting)
        k_status(k, req.header, "busy"); /* execute says it once the host has its code */
    if (k->aborting && strcmp(type, "execute_request") == 0) {
        k_reply(k, &req, "execute_reply",
                json_pack("{s:s,s:I}", "status", "aborted", "execution_count",
                          (json_int_t)k->exec_count));
        k_req_clear(&req);
        return;
    }
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(type, handlers[i].type) == 0 && (handlers[i].channels & (1u << ch))) {
            handlers[i].run(k, &req);
            return;
        }
    k_log(k, "%s: %s is not served: dropped", lp_jconn_channel_name(ch), type);
    k_status(k, req.header, "idle");
    k_req_clear(&req);
}

void k_host_gone(kernel_t *k, const char *why)
{
    kpending_t *exec = k_pending_of(k, K_EXECUTE);
    const json_t *srv = k->lc->welcome.server;
    char text[512];

    snprintf(text, sizeof(text), "the host '%s' (pid %lld) went away: %s",
             k_str(srv, "name", k->opts->target), (long long)int_of(srv, "pid", 0), why);
    k_log(k, "%s", text);
    if (exec != NULL) {
        json_decref(k->exec.error);
        k->exec.error = NULL;
        k_send(k, LP_JCH_IOPUB, NULL, exec->req.header, "error", NULL,
               json_pack("{s:s,s:s,s:[s]}", "ename", "limpet.HostGone", "evalue", text,
                         "traceback", text));
        k->exec.error = json_pack("{s:s,s:s,s:[s]}", "ename", "limpet.HostGone", "evalue", text,
                                  "traceback", text);
        k->exec.stop_on_error = false;
        k_execute_end(k, exec, "exception", NULL);
    }
    k->quit = true;
    k->exit_code = 1;
}
