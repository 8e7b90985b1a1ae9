/* agent.c: the kernel server's side of its environments' links
 * (docs/protocol.md section 8, "Sessions"). Frames from the agents are
 * handled on the broker's I/O thread as they come (the handler: one
 * hand-off from the far side to the client waiting on a run, not two);
 * link ends go to the ender thread, which marks the environment dead; the
 * ticker thread interrupts runs past their deadline. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context/launch.h"
#include "io/io.h"
#include "serve/internal.h"
#include "wire/buf.h"
#include "wire/frame.h"
#include "wire/hdr.h"

#define HDR_MAX 1024 /* our own headers to an agent: a few small fields */

int64_t lp_agent_next_id(lp_serve_t *sv)
{
    int64_t id;

    pthread_mutex_lock(&sv->mu);
    id = ++sv->next_req;
    pthread_mutex_unlock(&sv->mu);
    return id;
}

int lp_agent_send(lp_serve_t *sv, uint32_t link, const char *hdr, size_t hlen,
                  const void *payload, size_t len)
{
    lp_limits_t lim = {LP_WIRE_HEADER_MAX, (uint32_t)-1};
    lp_buf_t *b = lp_buf_new(LP_WIRE_PREFIX_LEN + hlen + len);
    int r;

    if (b == NULL)
        return LP_WIRE_ENOMEM;
    if ((r = lp_frame_put(b, hdr, hlen, payload, len, &lim)) == 0)
        r = lp_broker_send(sv->broker, link, lp_buf_data(b), lp_buf_len(b));
    lp_buf_free(b);
    return r;
}

int lp_agent_request(lp_serve_t *sv, uint32_t link, int64_t id, const char *hdr, size_t hlen,
                     const void *payload, size_t len, int timeout_ms, json_t **done)
{
    char reason[LP_BROKER_REASON_MAX];
    lp_broker_msg_t *got = NULL;
    int r;

    *done = NULL;
    if ((r = lp_broker_expect(sv->broker, link, id)) != 0)
        return r;
    if ((r = lp_agent_send(sv, link, hdr, hlen, payload, len)) == 0)
        r = lp_broker_wait(sv->broker, link, id, timeout_ms, &got, reason);
    lp_broker_forget(sv->broker, link, id);
    for (lp_broker_msg_t *m = got; r == 0 && m != NULL; m = m->next) {
        const char *op = json_string_value(json_object_get(m->frame.header, "op"));

        if (op != NULL && strcmp(op, "done") == 0) {
            *done = json_incref(m->frame.header);
            break;
        }
        if (op != NULL && strcmp(op, "error") == 0)
            r = LP_WIRE_EFIELD;
    }
    lp_broker_msg_free(got);
    if (r == 0 && *done == NULL)
        r = -EPROTO;
    return r;
}

int lp_agent_eval(lp_serve_t *sv, uint32_t link, lp_run_t *r, const lp_run_req_t *req)
{
    static const char *const modes[] = {"cell", "single", "exec"};
    char text[HDR_MAX];
    lp_hdr_t h;
    size_t len;
    int e;

    lp_hdr_begin(&h, text, sizeof(text), "eval");
    lp_hdr_int(&h, "id", (int64_t)r->id);
    lp_hdr_str(&h, "session", req->session != NULL ? req->session : "-");
    lp_hdr_str(&h, "mode", modes[req->mode]);
    if (req->filename != NULL)
        lp_hdr_str(&h, "filename", req->filename);
    lp_hdr_bool(&h, "input", req->input);
    if ((e = lp_hdr_end(&h, &len)) != 0)
        return e;
    return lp_agent_send(sv, link, text, len, req->code, req->len);
}

int lp_agent_interrupt(lp_serve_t *sv, uint32_t link, uint64_t id)
{
    char text[HDR_MAX];
    lp_hdr_t h;
    size_t len;
    int e;

    lp_hdr_begin(&h, text, sizeof(text), "interrupt");
    lp_hdr_int(&h, "id", lp_agent_next_id(sv));
    lp_hdr_int(&h, "call", (int64_t)id);
    if ((e = lp_hdr_end(&h, &len)) != 0)
        return e;
    return lp_agent_send(sv, link, text, len, NULL, 0);
}

void lp_agents_tick(lp_serve_t *sv)
{
    pthread_mutex_lock(&sv->mu);
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
}

/* module-get: the kernel server has no modules to give (protocol.md 8). */
static void answer_module_get(lp_serve_t *sv, uint32_t link, const json_t *h)
{
    json_t *id = json_object_get(h, "id");
    const char *name = json_string_value(json_object_get(h, "name"));
    char text[HDR_MAX];
    json_t *missing = json_pack("[s]", name != NULL ? name : "");
    lp_hdr_t b;
    size_t len;

    if (json_is_integer(id) && missing != NULL) {
        lp_hdr_begin(&b, text, sizeof(text), "done");
        lp_hdr_int(&b, "re", (int64_t)json_integer_value(id));
        lp_hdr_str(&b, "status", "ok");
        lp_hdr_json(&b, "missing", missing);
        if (lp_hdr_end(&b, &len) == 0)
            lp_agent_send(sv, link, text, len, NULL, 0);
    }
    json_decref(missing);
}

static lp_run_status_t status_of(const char *s)
{
    static const struct {
        const char *name;
        lp_run_status_t st;
    } map[] = {{"ok", LP_RUN_OK}, {"more", LP_RUN_MORE}, {"exception", LP_RUN_ERROR},
               {"interrupted", LP_RUN_INTERRUPTED}, {"closed", LP_RUN_CLOSED}};

    for (size_t i = 0; s != NULL && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(s, map[i].name) == 0)
            return map[i].st;
    return LP_RUN_ERROR;
}

/* Run r of e is done (under sv->mu): out of the inflight list, into the
 * kept ones; the next one starts. */
static void retire_locked(lp_serve_t *sv, lp_senv_t *e, lp_run_t *r)
{
    lp_run_t **at = &e->inflight;
    unsigned keep = sv->cfg.runs_kept;

    while (*at != NULL && *at != r)
        at = &(*at)->next;
    if (*at == NULL)
        return;
    *at = r->next;
    if (e->inflight_tail == &r->next)
        e->inflight_tail = at;
    r->next = e->kept;
    e->kept = r; /* the list's reference moves with it */
    if (++e->nkept > keep) {
        lp_run_t *old = e->kept;

        for (unsigned i = 1; i < keep && old->next != NULL; i++)
            old = old->next;
        for (lp_run_t *x = old->next, *n; x != NULL; x = n) {
            n = x->next;
            lp_run_unref(x);
            e->nkept--;
        }
        old->next = NULL;
    }
    if (e->inflight != NULL)
        lp_run_started(e->inflight);
    pthread_cond_broadcast(&sv->cv);
}

/* The run of link with id re, with a reference; its env's name in env. */
static lp_run_t *run_of(lp_serve_t *sv, uint32_t link, int64_t re, bool done)
{
    lp_run_t *r = NULL;
    lp_senv_t *e;

    pthread_mutex_lock(&sv->mu);
    if ((e = lp_senv_by_link_locked(sv, link)) != NULL) {
        for (r = e->inflight; r != NULL && r->id != (uint64_t)re; r = r->next)
            ;
        if (r != NULL) {
            lp_run_ref(r);
            if (done)
                retire_locked(sv, e, r);
        }
    }
    pthread_mutex_unlock(&sv->mu);
    return r;
}

/* The run going on link now (the head of its queue), with a reference. */
static lp_run_t *current_run(lp_serve_t *sv, uint32_t link, char *env, size_t size)
{
    lp_run_t *r = NULL;
    lp_senv_t *e;

    pthread_mutex_lock(&sv->mu);
    if ((e = lp_senv_by_link_locked(sv, link)) != NULL) {
        snprintf(env, size, "%s", e->name);
        if ((r = e->inflight) != NULL)
            lp_run_ref(r);
    }
    pthread_mutex_unlock(&sv->mu);
    return r;
}

#define LOG_LINE_MAX 1024 /* bytes of an environment's log frame in our log */

/* An environment's log text as one line of our log: at most LOG_LINE_MAX
 * bytes, control bytes as \xNN, so that an environment (another user's
 * process, for sudo:USER) cannot forge lines of ours or drive a terminal. */
static void log_line(const char *env, const unsigned char *p, size_t n)
{
    char line[LOG_LINE_MAX * 4 + 8];
    size_t o = 0;

    for (size_t i = 0; i < n && i < LOG_LINE_MAX; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f)
            o += (size_t)snprintf(line + o, sizeof(line) - o, "\\x%02x", p[i]);
        else
            line[o++] = (char)p[i];
    }
    line[o] = 0;
    fprintf(stderr, "limpet serve: env %s: %s%s\n", env, line, n > LOG_LINE_MAX ? "..." : "");
}

/* A log frame: far output while no eval ran, or a log record. It goes to
 * the run going, if any (Jupyter does the same), else to our log. */
static void on_log(lp_serve_t *sv, lp_broker_msg_t *m)
{
    const char *origin = json_string_value(json_object_get(m->frame.header, "origin"));
    char env[LP_ENV_NAME_MAX + 1] = "";
    lp_run_t *r = current_run(sv, m->link, env, sizeof(env));
    bool out = origin != NULL && strcmp(origin, "stdout") == 0;

    if (r != NULL) {
        lp_run_output(r, out ? 0 : 1, m->frame.payload, m->frame.payload_len);
        lp_run_output(r, out ? 0 : 1, "\n", 1);
        lp_run_unref(r);
    } else {
        log_line(env, m->frame.payload, m->frame.payload_len);
    }
}

/* A frame about run r (the answer to its eval). */
static void on_run_frame(lp_serve_t *sv, lp_run_t *r, const char *op, lp_broker_msg_t *m)
{
    const json_t *h = m->frame.header;
    const char *p = (const char *)m->frame.payload;
    size_t n = m->frame.payload_len;

    if (strcmp(op, "out") == 0) {
        const char *stream = json_string_value(json_object_get(h, "stream"));

        lp_run_output(r, stream != NULL && strcmp(stream, "stderr") == 0 ? 1 : 0, p, n);
    } else if (strcmp(op, "page") == 0) {
        lp_run_output(r, 2, p, n);
    } else if (strcmp(op, "value") == 0) {
        const char *type = json_string_value(json_object_get(h, "type"));

        lp_run_set_value(r, type != NULL ? type : "object", p, n);
    } else if (strcmp(op, "exception") == 0) {
        const char *type = json_string_value(json_object_get(h, "type"));
        const char *msg = json_string_value(json_object_get(h, "message"));
        json_int_t skip = json_integer_value(json_object_get(h, "pickle"));

        if (skip < 0 || (size_t)skip > n)
            skip = 0;
        lp_run_set_exception(r, type != NULL ? type : "Exception", msg != NULL ? msg : "",
                             p + skip, n - (size_t)skip);
    } else if (strcmp(op, "input") == 0) {
        const char *prompt = json_string_value(json_object_get(h, "prompt"));

        lp_run_set_input(r, prompt != NULL ? prompt : "",
                         json_is_true(json_object_get(h, "password")));
    } else if (strcmp(op, "done") == 0 || strcmp(op, "error") == 0) {
        const char *st = json_string_value(json_object_get(h, "status"));

        if (op[0] == 'e') {
            const char *msg = json_string_value(json_object_get(h, "message"));

            lp_run_set_exception(r, "limpet.ProtocolError", msg != NULL ? msg : "refused",
                                 msg != NULL ? msg : "", msg != NULL ? strlen(msg) : 0);
        }
        lp_run_end(r, op[0] == 'e' ? LP_RUN_ERROR : status_of(st));
        lp_journal_run(sv, r->env, r);
    }
}

static void handler(void *arg, lp_broker_msg_t *m)
{
    lp_serve_t *sv = arg;
    const json_t *h = m->frame.header;
    const char *op = json_string_value(json_object_get(h, "op"));
    json_t *re = json_object_get(h, "re");

    if (op == NULL) {
        /* nothing: a frame with no op is not one an agent sends */
    } else if (json_is_integer(re) && json_integer_value(re) < LP_SERVE_REQ_BASE) {
        bool done = strcmp(op, "done") == 0 || strcmp(op, "error") == 0;
        lp_run_t *r = run_of(sv, m->link, (int64_t)json_integer_value(re), done);

        if (r != NULL) {
            on_run_frame(sv, r, op, m);
            lp_run_unref(r);
        }
    } else if (strcmp(op, "module-get") == 0) {
        answer_module_get(sv, m->link, h);
    } else if (strcmp(op, "log") == 0) {
        on_log(sv, m);
    }
    lp_broker_msg_free(m);
}

/* The ender: a link that ended is an environment that died (unless we
 * ended it). Its process is reaped here, and its exit said in `why`. */
static void *ender(void *arg)
{
    lp_serve_t *sv = arg;

    for (;;) {
        lp_broker_msg_t *ev = NULL;
        lp_senv_t *e;
        pid_t pid = 0;
        bool stop;

        lp_broker_next_event(sv->broker, 200, &ev);
        pthread_mutex_lock(&sv->mu);
        stop = sv->stopping;
        if (ev != NULL && ev->frame.header == NULL &&
            (e = lp_senv_by_link_locked(sv, ev->link)) != NULL && e->state != LP_ENV_STOPPING) {
            /* not one that stop_process stops: it reaps that pid itself (twice reaped,
             * a pid used again meanwhile would be waited for and killed) */
            pid = e->pid;
            lp_senv_died_locked(sv, e, ev->reason);
            e->pid = 0;
        }
        pthread_mutex_unlock(&sv->mu);
        if (pid > 0) {
            int ws = lp_context_reap(pid, 1000);
            char why[128] = "";

            if (ws >= 0 && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGXCPU)
                snprintf(why, sizeof(why), "its CPU time limit ran out (SIGXCPU)");
            else if (ws >= 0 && WIFSIGNALED(ws))
                snprintf(why, sizeof(why), "its process was killed by signal %d%s",
                         WTERMSIG(ws), WTERMSIG(ws) == 9 ? " (SIGKILL: out of memory?)" : "");
            else if (ws >= 0 && WIFEXITED(ws))
                snprintf(why, sizeof(why), "its process exited with status %d",
                         WEXITSTATUS(ws));
            pthread_mutex_lock(&sv->mu);
            for (e = sv->envs; e != NULL && why[0] != 0; e = e->next)
                if (e->state == LP_ENV_DEAD && e->link == ev->link)
                    snprintf(e->why, sizeof(e->why), "%s", why);
            pthread_mutex_unlock(&sv->mu);
        }
        lp_broker_msg_free(ev);
        if (stop)
            return NULL;
    }
}

/* The deadline of the run going in e (under sv->mu): microseconds on
 * lp_clock_us, or 0 for none. */
static uint64_t deadline_of(const lp_senv_t *e)
{
    const lp_run_t *r = e->inflight;
    uint64_t ms;

    if (r == NULL || r->run_start_us == 0 || e->state != LP_ENV_READY)
        return 0;
    if (r->deadline_hit) /* interrupted, and still going: its environment ends at this */
        return r->deadline_hit_us + (uint64_t)LP_DEADLINE_GRACE_MS * 1000u;
    ms = r->timeout_ms > 0 ? (uint64_t)r->timeout_ms : (uint64_t)e->limits.wall_s * 1000u;
    return ms > 0 ? r->run_start_us + ms * 1000u : 0;
}

/* A run went on LP_DEADLINE_GRACE_MS past the interrupt its deadline sent
 * (it catches KeyboardInterrupt, or is stuck in C): its environment ends,
 * so the limit holds and the runs after it are not held up for good
 * (under sv->mu; *link and *pid are for the caller to close and reap). */
static void end_for_deadline_locked(lp_serve_t *sv, lp_senv_t *e, uint32_t *link, pid_t *pid)
{
    *link = e->link;
    *pid = e->pid;
    lp_senv_died_locked(sv, e, "a run passed its time limit and did not stop when "
                               "interrupted: the environment was ended (restart it)");
    e->link = 0; /* the ender leaves it alone: its end is this */
    e->pid = 0;
}

/* The ticker: interrupts each run that passes its deadline, and ends the
 * environment of one that goes on regardless. */
static void *ticker(void *arg)
{
    lp_serve_t *sv = arg;

    pthread_mutex_lock(&sv->mu);
    while (!sv->stopping) {
        uint64_t now = lp_clock_us(), next = 0, id = 0;
        uint32_t link = 0;
        pid_t pid = 0;

        for (lp_senv_t *e = sv->envs; e != NULL && id == 0 && link == 0; e = e->next) {
            uint64_t d = deadline_of(e);

            if (d != 0 && d <= now && e->inflight->deadline_hit) {
                end_for_deadline_locked(sv, e, &link, &pid);
            } else if (d != 0 && d <= now) {
                pthread_mutex_lock(&e->inflight->mu);
                e->inflight->deadline_hit = true;
                e->inflight->deadline_hit_us = now;
                pthread_mutex_unlock(&e->inflight->mu);
                link = e->link;
                id = e->inflight->id;
            } else if (d != 0 && (next == 0 || d < next)) {
                next = d;
            }
        }
        if (id != 0 || link != 0) { /* without the lock: sending takes it for an id */
            pthread_mutex_unlock(&sv->mu);
            if (id != 0) {
                lp_agent_interrupt(sv, link, id);
            } else {
                lp_broker_close(sv->broker, link);
                if (pid > 0)
                    lp_context_reap(pid, 0); /* SIGKILL, then reaped */
            }
            pthread_mutex_lock(&sv->mu);
            continue;
        }
        now = lp_clock_us();
        lp_clock_cond_wait(&sv->cv, &sv->mu,
                           lp_clock_ms() + (next == 0 ? 1000 : next > now ? (next - now) / 1000 + 1
                                                                          : 0));
    }
    pthread_mutex_unlock(&sv->mu);
    return NULL;
}

int lp_agents_start(lp_serve_t *sv)
{
    int r;

    if ((r = lp_broker_new(NULL, &sv->broker)) != 0)
        return r;
    lp_broker_set_handler(sv->broker, handler, sv);
    if ((r = lp_thread_spawn(&sv->ender, ender, sv, 0)) != 0)
        return r;
    if ((r = lp_thread_spawn(&sv->ticker, ticker, sv, 0)) != 0) {
        pthread_mutex_lock(&sv->mu);
        sv->stopping = true;
        pthread_mutex_unlock(&sv->mu);
        pthread_join(sv->ender, NULL);
        return r;
    }
    sv->threads = true;
    return 0;
}

void lp_agents_stop(lp_serve_t *sv)
{
    pthread_mutex_lock(&sv->mu);
    sv->stopping = true;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    if (sv->threads) {
        pthread_join(sv->ticker, NULL);
        pthread_join(sv->ender, NULL);
        sv->threads = false;
    }
    lp_broker_free(sv->broker);
    sv->broker = NULL;
}
