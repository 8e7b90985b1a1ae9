/* conn.c: one thread per connection: handshake, then read a request, serve
 * it, and go back to reading. An eval runs right here, in the thread that
 * read it, so a request costs one wake-up (docs/architecture.md). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "session/internal.h"
#include "session/sink.h"
#include "wire/handshake.h"
#include "wire/hdr.h"
#include "wire/msg.h"
#include "wire/ops.h"


static _Thread_local bool never_blocks; /* see lp_conn_thread_never_blocks */

void lp_conn_thread_never_blocks(void) { never_blocks = true; }

bool lp_conn_thread_may_block(void) { return !never_blocks; }

int lp_conn_send_raw(lp_conn_t *c, const void *data, size_t len)
{
    int r = lp_writer_write(&c->out, data, len, !never_blocks);

    if (r == 0 && never_blocks && lp_writer_congested(&c->out)) {
        /* the rest waits in c->out: the flusher sends it on */
        lp_server_t *srv = c->srv;

        pthread_mutex_lock(&srv->mu);
        srv->kick = true;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
    }
    return r;
}

/* The port's side of a connection (lp_port_t): its sessions know only this. */
static lp_conn_t *conn_of(lp_port_t *p)
{
    return (lp_conn_t *)((char *)p - offsetof(lp_conn_t, port));
}

static int port_send(lp_port_t *p, const void *data, size_t len)
{
    return lp_conn_send_raw(conn_of(p), data, len);
}

static bool port_congested(lp_port_t *p) { return lp_writer_congested(&conn_of(p)->out); }

static void port_poke(lp_port_t *p) { lp_watch_poke(conn_of(p)); }

void lp_conn_init_port(lp_conn_t *c)
{
    c->port = (lp_port_t){port_send, port_congested, port_poke, 0, LP_LIMITS_DEFAULT};
}

lp_session_t *lp_conn_find_session(lp_conn_t *c, const char *id)
{
    for (lp_session_t *s = c->sessions; s != NULL; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

void lp_conn_close_session(lp_conn_t *c, lp_session_t *s)
{
    for (lp_session_t **p = &c->sessions; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    lp_session_close(s, c->tls);
}

bool lp_conn_kick_all(lp_server_t *srv)
{
    bool more = false;

    pthread_mutex_lock(&srv->mu);
    for (lp_conn_t *c = srv->conns; c != NULL; c = c->next)
        if (lp_writer_kick(&c->out) == 0 && lp_writer_congested(&c->out))
            more = true;
    pthread_mutex_unlock(&srv->mu);
    return more;
}

int lp_conn_send_frame(lp_conn_t *c, lp_hdr_t *h, const void *payload, size_t len)
{
    uint8_t small[1024], *frame = small;
    size_t hlen, total;
    int r;

    if ((r = lp_hdr_end(h, &hlen)) != 0)
        return r;
    if (len > c->port.limits.payload_max || hlen > c->port.limits.header_max)
        return LP_WIRE_ETOOLARGE;
    total = LP_WIRE_PREFIX_LEN + hlen + len; /* each term is < 2^32 */
    if (total > sizeof(small) && (frame = malloc(total)) == NULL)
        return LP_WIRE_ENOMEM;
    /* one buffer, one write: the peer wakes once */
    lp_frame_prefix(frame, (uint32_t)hlen, (uint32_t)len);
    memcpy(frame + LP_WIRE_PREFIX_LEN, h->buf, hlen);
    if (len > 0)
        memcpy(frame + LP_WIRE_PREFIX_LEN + hlen, payload, len);
    r = lp_conn_send_raw(c, frame, total);
    if (frame != small)
        free(frame);
    return r;
}

int lp_conn_send_error(lp_conn_t *c, int err, int64_t re, const char *message, const char *field)
{
    lp_buf_t *b = lp_buf_new(SIZE_MAX);
    int r = b == NULL ? LP_WIRE_ENOMEM
                      : lp_msg_error_encode(b, err, re >= 0 ? &re : NULL, message, field,
                                            &c->port.limits);

    if (r == 0)
        r = lp_conn_send_raw(c, lp_buf_data(b), lp_buf_len(b));
    lp_buf_free(b);
    return r;
}

/* Sends {"op":"done","re":re,"status":"ok"} plus the fields of extra
 * (consumed, may be NULL: most replies have none), and payload. */
static int send_done(lp_conn_t *c, int64_t re, json_t *extra, const void *payload, size_t len)
{
    char small[256], *buf = small;
    size_t cap = sizeof(small);
    const char *key;
    json_t *v;
    lp_hdr_t h;
    int r;

    if (extra != NULL && (buf = malloc(cap = LP_WIRE_HEADER_MAX)) == NULL) {
        json_decref(extra);
        return LP_WIRE_ENOMEM;
    }
    lp_hdr_begin(&h, buf, cap, "done");
    lp_hdr_int(&h, "re", re);
    lp_hdr_str(&h, "status", "ok");
    json_object_foreach(extra, key, v)
        lp_hdr_json(&h, key, v);
    r = lp_conn_send_frame(c, &h, payload, len);
    if (buf != small)
        free(buf);
    json_decref(extra);
    return r;
}

int lp_conn_fill(lp_conn_t *c, int timeout_ms)
{
    lp_reader_t rd = {c->fd, c->in, c->text};

    return lp_reader_fill(&rd, timeout_ms);
}

bool lp_conn_token_ok(lp_conn_t *c, const char *token)
{
    const char *want = c->srv->token;
    size_t n = strlen(want), m = strlen(token);
    unsigned diff = (unsigned)(n ^ m) | (n == 0);

    /* constant time: how much of a guess was right must not show */
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < m ? token[i] : 0);
    if (diff != 0)
        fprintf(stderr, "limpet: refused a connection on '%s': %s\n", c->srv->path,
                m == 0 ? "no token" : "wrong token");
    return diff == 0;
}

int lp_conn_admit(lp_conn_t *c, const char *token)
{
    lp_server_t *srv = c->srv;
    int r = 0;

    if (!lp_conn_token_ok(c, token))
        return LP_WIRE_EFORBIDDEN;
    pthread_mutex_lock(&srv->mu);
    if (srv->nconns >= srv->max_connections) {
        r = LP_WIRE_ETOOMANY;
    } else {
        srv->npreauth--;
        srv->nconns++;
        c->preauth = false;
        c->authed = true;
    }
    pthread_mutex_unlock(&srv->mu);
    return r;
}

int lp_conn_wait_budget(const lp_conn_t *c, int timeout_ms)
{
    if (!c->preauth)
        return timeout_ms;
    int left = lp_clock_left_ms(c->preauth_deadline);

    return timeout_ms < 0 || left < timeout_ms ? left : timeout_ms;
}

int lp_conn_open_session(lp_conn_t *c, const char *env, lp_session_t **out)
{
    lp_engine_t *e = &c->srv->engine;
    lp_env_t *where;
    int r;

    if ((r = lp_env_acquire(c->srv, env, &where)) != 0)
        return r;
    if ((r = lp_conn_enter(c)) != 0 ||
        (r = lp_session_new(c->srv, where, c->text ? &lp_sink_text : &lp_sink_frames, &c->port,
                            out)) != 0) {
        lp_env_release(c->srv, where);
        return r;
    }
    (*out)->next = c->sessions;
    c->sessions = *out;
    if (e->session_open(e->ctx, c->tls, *out, where->data, &(*out)->data) != 0) {
        lp_conn_close_session(c, *out);
        return LP_WIRE_EINTERNAL;
    }
    return 0;
}

/* The capabilities in force on c: the server's, less the negotiated ones
 * its client did not offer (a request of those is refused not-supported). */
static unsigned conn_caps(const lp_conn_t *c)
{
    return c->srv->cap_bits & (~LP_CAPS_NEGOTIATED | c->port.caps);
}

/* The welcome's caps for a client that offered the bits offered: the
 * server's list less the negotiated ones it did not offer. */
static void welcome_caps(const char *const *all, unsigned offered, const char **out, size_t size)
{
    size_t n = 0;

    for (; *all != NULL && n + 1 < size; all++) {
        unsigned bit = lp_cap_bit(*all);

        if ((bit & LP_CAPS_NEGOTIATED) == 0 || (bit & offered) != 0)
            out[n++] = *all;
    }
    out[n] = NULL;
}

/* Reads and answers the hello (opening a first session when asked: the
 * client's first prompt then costs one round trip). 0 when the
 * conversation may go on. */
static int handshake(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;
    uint64_t deadline = lp_clock_deadline(lp_conn_wait_budget(c, LP_HELLO_TIMEOUT_MS));
    lp_buf_t *out = lp_buf_new(SIZE_MAX);
    lp_hs_t hs = {0};
    lp_hello_t hello = {.id = -1};
    const char *caps[32];
    lp_session_t *s = NULL;
    const char *field = NULL;
    int r;

    while ((r = lp_hs_server_read(&hs, c->in, &hello, &field)) == LP_WIRE_EAGAIN) {
        if ((r = lp_conn_fill(c, lp_clock_left_ms(deadline))) != 0) {
            r = r == -ETIMEDOUT ? LP_WIRE_ETIMEOUT : r;
            break;
        }
    }
    if (r == 0 && !c->authed && (r = lp_conn_admit(c, hello.token)) != 0) {
        lp_hs_server_refuse(out, r, &hello,
                            r == LP_WIRE_ETOOMANY ? "too many connections"
                            : hello.token[0]      ? "forbidden: wrong token"
                                                  : "forbidden: this peer must send the server's token",
                            NULL);
    } else if (r == 0 && hello.want_session && (r = lp_conn_open_session(c, NULL, &s)) != 0) {
        lp_hs_server_refuse(out, r, &hello,
                            r == LP_WIRE_ETOOMANY ? "too many sessions" : "cannot create the session",
                            NULL);
    } else if (r == 0) {
        c->port.limits.payload_max = hello.max_payload;
        c->port.caps = hello.caps;
        welcome_caps(srv->caps, hello.caps, caps, sizeof(caps) / sizeof(caps[0]));
        r = lp_hs_server_accept(out, &hello, srv->identity, caps, LP_WIRE_PAYLOAD_DEFAULT,
                                s != NULL ? s->id : NULL);
    } else if (lp_wire_err_code(r) != NULL) {
        lp_hs_server_refuse(out, r, &hello, NULL, field);
        r = r != 0 ? r : LP_WIRE_EINTERNAL;
    }
    if (lp_buf_len(out) > 0 && lp_conn_send_raw(c, lp_buf_data(out), lp_buf_len(out)) != 0)
        r = r != 0 ? r : -EPIPE;
    lp_buf_free(out);
    return r;
}

int lp_conn_enter(lp_conn_t *c)
{
    lp_engine_t *e = &c->srv->engine;

    if (c->tls == NULL && e->thread_enter(e->ctx, &c->tls) != 0)
        return LP_WIRE_EINTERNAL;
    return 0;
}

static int do_clone(lp_conn_t *c, int64_t id, const json_t *h)
{
    const char *env = json_string_value(json_object_get(h, "env"));
    lp_session_t *s;
    int r = lp_conn_open_session(c, env, &s);

    if (r == LP_WIRE_EFIELD)
        return lp_conn_send_error(c, r, id, "no such environment", "env");
    if (r != 0)
        return lp_conn_send_error(c, r, id,
                                  r == LP_WIRE_ETOOMANY ? "too many sessions"
                                  : r == LP_WIRE_EINTERNAL ? "cannot create the session" : NULL,
                                  NULL);
    return send_done(c, id, json_pack("{s:s}", "session", s->id), NULL, 0);
}


/* Ends an eval: its output, then done with its status, in order. */
static int finish_eval(lp_conn_t *c, lp_session_t *s, int64_t id, int status)
{
    lp_session_end(s);
    (void)c;
    return lp_session_reply_done(s, id, lp_eval_status_name(status), -1);
}

int lp_conn_run_eval(lp_conn_t *c, lp_session_t *s, const lp_eval_req_t *req)
{
    lp_engine_t *e = &c->srv->engine;
    void *tls;
    int status;

    if (lp_conn_enter(c) != 0)
        return LP_EVAL_EXCEPTION;
    tls = c->tls;
    c->running = s;
    lp_watch(c); /* the watcher hears the client while the code runs */
    status = e->eval(e->ctx, tls, s, s->data, req);
    if (status == LP_EVAL_DETACHED) {
        /* The watcher made this eval a job and gave c to a new thread: c is
         * not ours to touch any more. This thread ends here. */
        e->thread_exit(e->ctx, tls);
        lp_session_unref(s); /* the reference the detach took for us */
        return LP_EDETACHED;
    }
    lp_unwatch(c);
    c->running = NULL;
    return status;
}

/* The eval's mode: interactive's, or mode's when the client offered
 * capability cell (a client that did not keeps what it always had). 0, or
 * LP_WIRE_EFIELD for a mode we do not know. */
static int eval_mode(const lp_conn_t *c, const json_t *h, lp_eval_mode_t *mode)
{
    static const char *const names[] = {[LP_MODE_EXEC] = "exec", [LP_MODE_SINGLE] = "single",
                                        [LP_MODE_CELL] = "cell"};
    const char *m = json_string_value(json_object_get(h, "mode"));

    *mode = json_is_true(json_object_get(h, "interactive")) ? LP_MODE_SINGLE : LP_MODE_EXEC;
    if (m == NULL || (conn_caps(c) & LP_CAP_CELL) == 0)
        return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(m, names[i]) == 0) {
            *mode = (lp_eval_mode_t)i;
            return 0;
        }
    }
    return LP_WIRE_EFIELD;
}

static int do_eval(lp_conn_t *c, int64_t id, const json_t *h, const lp_frame_t *f,
                   lp_session_t *s)
{
    const char *filename = json_string_value(json_object_get(h, "filename"));
    lp_eval_req_t req = {NULL, f->payload_len, LP_MODE_EXEC,
                         filename != NULL ? filename : "<limpet>"};
    char *code;
    int status, r;

    if (eval_mode(c, h, &req.mode) != 0)
        return lp_conn_send_error(c, LP_WIRE_EFIELD, id, "mode: cell, single or exec", "mode");
    if ((r = lp_conn_enter(c)) != 0)
        return lp_conn_send_error(c, r, id, NULL, NULL);
    if ((r = lp_session_begin(s, id)) != 0)
        return lp_conn_send_error(c, r, id, "the session is running another evaluation", NULL);
    if ((code = malloc(f->payload_len + 1)) == NULL) {
        lp_session_end(s);
        return lp_conn_send_error(c, LP_WIRE_ENOMEM, id, NULL, NULL);
    }
    if (f->payload_len > 0)
        memcpy(code, f->payload, f->payload_len);
    code[f->payload_len] = 0;
    req.code = code;
    status = lp_conn_run_eval(c, s, &req);
    free(code);
    if (status == LP_EDETACHED)
        return status;
    r = finish_eval(c, s, id, status);
    lp_session_answer_interrupts(s, c);
    if (status == LP_EVAL_CLOSED)
        lp_conn_close_session(c, s);
    return r;
}

static int do_complete(lp_conn_t *c, int64_t id, const json_t *h, lp_session_t *s)
{
    lp_engine_t *e = &c->srv->engine;
    const json_t *text = json_object_get(h, "text");
    const json_t *cur = json_object_get(h, "cursor");
    size_t len = json_string_length(text), cursor = len, start = 0;
    json_t *matches;

    if (cur != NULL && (size_t)json_integer_value(cur) > len)
        return lp_conn_send_error(c, LP_WIRE_EFIELD, id, "cursor is past the end of text",
                                  "cursor");
    if (cur != NULL)
        cursor = (size_t)json_integer_value(cur);
    if (lp_conn_enter(c) != 0 ||
        (matches = e->complete(e->ctx, c->tls, s->data, json_string_value(text), len, cursor,
                               &start)) == NULL)
        return lp_conn_send_error(c, LP_WIRE_EINTERNAL, id, "completion failed", NULL);
    return send_done(c, id, json_pack("{s:o,s:I}", "matches", matches, "start", (json_int_t)start),
                     NULL, 0);
}

/* check (capability check), on the thread whose engine state is tls: the
 * connection's own, or the watcher's while an eval runs (the answer is
 * wanted at once, and the engine runs no code for it). */
static int do_check(lp_conn_t *c, void *tls, int64_t id, const lp_frame_t *f, lp_session_t *s)
{
    lp_engine_t *e = &c->srv->engine;
    json_t *done;

    if (e->check == NULL)
        return lp_conn_send_error(c, LP_WIRE_ENOTSUP, id, "this server cannot check code", NULL);
    if (tls == NULL ||
        (done = e->check(e->ctx, tls, s->data, (const char *)f->payload, f->payload_len)) == NULL)
        return lp_conn_send_error(c, LP_WIRE_EINTERNAL, id, "the check failed", NULL);
    return send_done(c, id, done, NULL, 0);
}

/* inspect (capability inspect): served as complete is, in order. */
static int do_inspect(lp_conn_t *c, int64_t id, const json_t *h, lp_session_t *s)
{
    lp_engine_t *e = &c->srv->engine;
    const json_t *text = json_object_get(h, "text");
    const json_t *cur = json_object_get(h, "cursor");
    size_t len = json_string_length(text), cursor = cur != NULL ? (size_t)json_integer_value(cur) : len;
    char *doc = NULL;
    size_t doc_len = 0;
    json_t *done;
    int r;

    if (cursor > len)
        return lp_conn_send_error(c, LP_WIRE_EFIELD, id, "cursor is past the end of text",
                                  "cursor");
    if (e->inspect == NULL)
        return lp_conn_send_error(c, LP_WIRE_ENOTSUP, id, "this server cannot inspect", NULL);
    if (lp_conn_enter(c) != 0 ||
        (done = e->inspect(e->ctx, c->tls, s->data, json_string_value(text), len, cursor,
                           (int)json_integer_value(json_object_get(h, "detail")),
                           c->port.limits.payload_max, &doc, &doc_len)) == NULL)
        return lp_conn_send_error(c, LP_WIRE_EINTERNAL, id, "inspect failed", NULL);
    r = send_done(c, id, done, doc, doc_len);
    free(doc);
    return r;
}

/* A description of this server, as c's client sees it: operations,
 * capabilities (the welcome's), limits. */
static json_t *describe(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;
    json_t *ops = json_array(), *caps = json_array();
    const char *names[32];

    welcome_caps(srv->caps, c->port.caps, names, sizeof(names) / sizeof(names[0]));
    for (const char *const *cap = names; *cap != NULL; cap++)
        json_array_append_new(caps, json_string(*cap));
    for (int op = LP_OP_UNKNOWN + 1; op < LP_OP__COUNT; op++) {
        const lp_op_spec_t *s = lp_op_spec((lp_op_t)op);

        if (s->cap == 0 && (s->dirs & LP_DIR_C2S) && s->kind == LP_KIND_REQUEST)
            json_array_append_new(ops, json_pack("{s:s,s:s}", "op", s->name, "summary", s->summary));
    }
    unsigned nconns, nsessions;

    pthread_mutex_lock(&srv->mu);
    nconns = srv->nconns;
    nsessions = srv->nsessions;
    pthread_mutex_unlock(&srv->mu);
    return json_pack("{s:o,s:o,s:o*,s:{s:i,s:i,s:i,s:i},s:O,s:{s:i,s:i}}", "ops", ops, "caps",
                     caps, "envs", srv->engine.env_list != NULL ? srv->engine.env_list(srv->engine.ctx)
                                                 : lp_env_list(srv), "limits", "header_max", LP_WIRE_HEADER_MAX, "payload_max",
                     LP_WIRE_PAYLOAD_DEFAULT, "max_connections", srv->max_connections,
                     "max_sessions", srv->max_sessions, "server", srv->identity, "stats",
                     "connections", nconns, "sessions", nsessions);
}

/* env-create, env-list, env-info, env-delete (protocol.md section 7): the
 * engine's, when it has environments of its own. */
static int do_env_op(lp_conn_t *c, int64_t id, const char *op, const json_t *h)
{
    lp_engine_t *e = &c->srv->engine;
    char msg[512] = "";
    const char *field = NULL;
    json_t *done;
    int err = 0;

    if (e->env_op == NULL)
        return lp_conn_send_error(c, LP_WIRE_ENOTSUP, id, "this server has one environment", NULL);
    if ((done = e->env_op(e->ctx, op, h, &err, msg, sizeof(msg), &field)) == NULL)
        return lp_conn_send_error(c, err != 0 ? err : LP_WIRE_EINTERNAL, id, msg, field);
    return send_done(c, id, done, NULL, 0);
}

/* Serves one checked request. Returns 0 to go on, negative to close. */
static int serve(lp_conn_t *c, const lp_op_spec_t *spec, const lp_frame_t *f)
{
    const json_t *h = f->header;
    const char *sid = json_string_value(json_object_get(h, "session"));
    lp_session_t *s = sid != NULL ? lp_conn_find_session(c, sid) : NULL;
    int64_t id = -1;

    lp_msg_get_id(h, "id", &id);
    if (sid != NULL && s == NULL)
        return lp_conn_send_error(c, LP_WIRE_ENOSESSION, id, "no such session on this connection", NULL);
    switch (spec->op) {
    case LP_OP_PING:
        return send_done(c, id, NULL, f->payload, f->payload_len);
    case LP_OP_DESCRIBE:
        return send_done(c, id, describe(c), NULL, 0);
    case LP_OP_CLONE:
        return do_clone(c, id, h);
    case LP_OP_CLOSE:
        lp_conn_close_session(c, s);
        return send_done(c, id, NULL, NULL, 0);
    case LP_OP_EVAL:
        return do_eval(c, id, h, f, s);
    case LP_OP_INTERRUPT:
        /* This thread runs evaluations itself: reading this, nothing runs. */
        if (lp_conn_enter(c) == 0)
            c->srv->engine.reset(c->srv->engine.ctx, c->tls, s->data);
        return send_done(c, id, json_pack("{s:s}", "was", "idle"), NULL, 0);
    case LP_OP_STDIN:
        return lp_conn_send_error(c, LP_WIRE_EFIELD, id, "no input() is waiting in this session",
                          "session");
    case LP_OP_COMPLETE:
        return do_complete(c, id, h, s);
    case LP_OP_CHECK:
        return do_check(c, lp_conn_enter(c) == 0 ? c->tls : NULL, id, f, s);
    case LP_OP_INSPECT:
        return do_inspect(c, id, h, s);
    case LP_OP_HELLO:
        return lp_conn_send_error(c, LP_WIRE_EOP, id, "the handshake is already done", NULL);
    case LP_OP_ENV_CREATE:
    case LP_OP_ENV_LIST:
    case LP_OP_ENV_INFO:
    case LP_OP_ENV_DELETE:
        return do_env_op(c, id, spec->name, h);
    default:
        return lp_conn_send_error(c, LP_WIRE_ENOTSUP, id, "not available in this version", NULL);
    }
}

/* Checks and serves one frame (consumed). 0, or negative when replies can
 * no longer be sent. */
static int serve_one(lp_conn_t *c, lp_frame_t *f)
{
    const lp_op_spec_t *spec;
    const char *field;
    int64_t id = -1;
    int r = lp_msg_check(f->header, f->payload, f->payload_len, LP_DIR_C2S, conn_caps(c),
                         &spec, &field);

    if (r != 0) {
        lp_msg_get_id(f->header, "id", &id);
        r = lp_conn_send_error(c, r, id, NULL, field);
    } else {
        r = serve(c, spec, f);
    }
    lp_frame_clear(f);
    return r;
}

/* Serves the requests the watcher put aside during evals, in order. */
static int serve_deferred(lp_conn_t *c)
{
    int r = 0;

    while (r == 0 && c->deferred != NULL) {
        lp_deferred_t *d = c->deferred;

        c->deferred = d->next;
        if (c->deferred == NULL)
            c->deferred_tail = &c->deferred;
        r = serve(c, d->spec, &d->frame); /* checked when it was put aside */
        lp_frame_clear(&d->frame);
        free(d);
    }
    return r;
}

/* Decodes and serves the frames held in c->in. 0 when it needs more bytes;
 * negative when the connection must close. */
static int serve_frames(lp_conn_t *c)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;

    for (;;) {
        lp_frame_t f = {0};
        int r;

        if ((r = serve_deferred(c)) != 0 || c->peer_gone)
            return r != 0 ? r : -ECONNRESET;
        if ((r = lp_frame_decode(c->in, &lim, &f)) == LP_WIRE_EAGAIN)
            return 0;
        if (r != 0) {
            if (lp_wire_err_code(r) != NULL)
                lp_conn_send_error(c, r, -1, NULL, NULL);
            return r;
        }
        if ((r = serve_one(c, &f)) != 0)
            return r; /* replies could not be sent: the connection is broken */
    }
}

/* Puts f (moved; its op checked as spec) aside until the running eval ends. */
static void defer(lp_conn_t *c, lp_frame_t *f, const lp_op_spec_t *spec)
{
    lp_deferred_t *d = calloc(1, sizeof(*d));

    if (d == NULL) {
        lp_frame_clear(f);
        return;
    }
    d->spec = spec;
    d->frame = *f;
    memset(f, 0, sizeof(*f));
    *c->deferred_tail = d;
    c->deferred_tail = &d->next;
}

void lp_watch_serve(lp_conn_t *c, lp_frame_t *f, void *tls)
{
    const lp_op_spec_t *spec;
    const char *field, *sid;
    lp_session_t *s;
    int64_t id = -1;
    int r = lp_msg_check(f->header, f->payload, f->payload_len, LP_DIR_C2S, conn_caps(c),
                         &spec, &field);

    lp_msg_get_id(f->header, "id", &id);
    if (r != 0) {
        lp_conn_send_error(c, r, id, NULL, field);
        lp_frame_clear(f);
        return;
    }
    sid = json_string_value(json_object_get(f->header, "session"));
    s = sid != NULL ? lp_conn_find_session(c, sid) : NULL;
    if (spec->op == LP_OP_PING) {
        send_done(c, id, NULL, f->payload, f->payload_len);
    } else if (spec->op == LP_OP_INTERRUPT && s != NULL && s == c->running) {
        lp_session_interrupt(s, id, c, tls); /* answered after the eval's done */
    } else if (spec->op == LP_OP_STDIN && s != NULL && s == c->running) {
        r = lp_session_give_input(s, f->payload, f->payload_len,
                                  json_is_true(json_object_get(f->header, "eof")));
        if (r == 0)
            send_done(c, id, NULL, NULL, 0);
        else
            lp_conn_send_error(c, r, id, "no input() is waiting in this session", "session");
    } else if (spec->op == LP_OP_CHECK && s != NULL) {
        do_check(c, tls, id, f, s); /* at once: the kernel asks it while a cell runs */
    } else if (spec->op == LP_OP_EVAL && s != NULL && s == c->running) {
        lp_conn_send_error(c, LP_WIRE_EBUSY, id, "the session is running another evaluation",
                           NULL);
    } else {
        defer(c, f, spec);
        return;
    }
    lp_frame_clear(f);
}

/* Serves requests until the connection ends: 0, or LP_EDETACHED. */
static int frame_loop(lp_conn_t *c)
{
    int r;

    while ((r = serve_frames(c)) == 0 && lp_conn_fill(c, -1) == 0)
        ;
    return r == LP_EDETACHED ? r : 0;
}

static int run(lp_conn_t *c)
{
    uint8_t first;
    ssize_t n;

    if (lp_net_wait_readable(c->fd, lp_conn_wait_budget(c, LP_TEXT_DETECT_MS)) <= 0 ||
        (n = recv(c->fd, &first, 1, MSG_PEEK)) != 1 || first != 0) {
        c->text = true;
        lp_text_serve(c);
        return lp_text_loop(c);
    }
    if (handshake(c) != 0)
        return 0;
    pthread_mutex_lock(&c->srv->mu);
    c->handshaken = true;
    pthread_mutex_unlock(&c->srv->mu);
    lp_buf_set_max(c->in, LP_WIRE_PREFIX_LEN + LP_WIRE_HEADER_MAX + LP_WIRE_PAYLOAD_DEFAULT);
    return frame_loop(c);
}

/* This thread's end: c is freed, unless it went to another thread. */
static void *end_thread(lp_conn_t *c, lp_server_t *srv, int r)
{
    if (r != LP_EDETACHED) {
        lp_conn_finish(c);
        return NULL;
    }
    pthread_mutex_lock(&srv->mu);
    srv->threads--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

static void *resume_main(void *arg)
{
    lp_conn_t *c = arg;
    lp_server_t *srv = c->srv;

    return end_thread(c, srv, c->text ? lp_text_loop(c) : frame_loop(c));
}

int lp_conn_resume(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;
    int r;

    pthread_mutex_lock(&srv->mu);
    srv->threads++;
    pthread_mutex_unlock(&srv->mu);
    r = lp_thread_spawn(NULL, resume_main, c, LP_CONN_STACK);
    if (r != 0) {
        pthread_mutex_lock(&srv->mu);
        srv->threads--;
        pthread_mutex_unlock(&srv->mu);
    }
    return -r;
}

void lp_conn_finish(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;

    while (c->deferred != NULL) {
        lp_deferred_t *d = c->deferred;

        c->deferred = d->next;
        lp_frame_clear(&d->frame);
        free(d);
    }
    if (c->sessions != NULL && c->tls == NULL)
        lp_conn_enter(c); /* a thread that took over after a detach */
    while (c->sessions != NULL)
        lp_conn_close_session(c, c->sessions);
    if (c->tls != NULL)
        srv->engine.thread_exit(srv->engine.ctx, c->tls);
    pthread_mutex_lock(&srv->mu);
    for (lp_conn_t **p = &srv->conns; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (c->preauth)
        srv->npreauth--;
    else
        srv->nconns--;
    pthread_mutex_unlock(&srv->mu);
    lp_net_linger_close(c->fd, LP_LINGER_MS);
    lp_writer_destroy(&c->out);
    lp_buf_free(c->in);
    free(c);
    pthread_mutex_lock(&srv->mu);
    srv->threads--;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

void *lp_conn_main(void *arg)
{
    lp_conn_t *c = arg;
    lp_server_t *srv = c->srv;

    return end_thread(c, srv, run(c));
}
