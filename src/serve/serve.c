/* serve.c: the kernel server core's lifetime and its runs (serve.h): a run
 * joins its environment's queue and its eval goes to the agent at once
 * (the agent runs them one at a time, in the order they came: pipelined,
 * with no round trip between two runs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"
#include "serve/internal.h"
#include "wire/hdr.h"

int lp_serve_new(const lp_serve_config_t *cfg, lp_serve_t **out)
{
    lp_serve_t *sv = calloc(1, sizeof(*sv));
    int r;

    *out = NULL;
    if (sv == NULL)
        return LP_WIRE_ENOMEM;
    sv->cfg = *cfg;
    if (sv->cfg.python == NULL)
        sv->cfg.python = "python3";
    if (sv->cfg.queue_max == 0)
        sv->cfg.queue_max = 1024;
    if (sv->cfg.runs_kept == 0)
        sv->cfg.runs_kept = 256;
    if (sv->cfg.max_envs == 0)
        sv->cfg.max_envs = 64;
    if (sv->cfg.limits.output_mb == 0)
        sv->cfg.limits.output_mb = 16;
    if (sv->cfg.journal_max == 0)
        sv->cfg.journal_max = 64u << 20;
    sv->next_req = LP_SERVE_REQ_BASE;
    sv->journal_fd = -1;
    pthread_mutex_init(&sv->mu, NULL);
    pthread_mutex_init(&sv->journal_mu, NULL);
    if ((r = lp_clock_cond_init(&sv->cv)) != 0 || (r = lp_journal_open(sv)) != 0 ||
        (r = lp_agents_start(sv)) != 0) {
        lp_journal_close(sv);
        free(sv);
        return r;
    }
    *out = sv;
    return 0;
}

void lp_serve_drain(lp_serve_t *sv, int grace_ms)
{
    uint64_t deadline = lp_clock_deadline(grace_ms);
    bool busy = true;

    pthread_mutex_lock(&sv->mu);
    sv->draining = true;
    while (busy) {
        busy = false;
        for (lp_senv_t *e = sv->envs; e != NULL; e = e->next)
            busy |= e->inflight != NULL && e->state == LP_ENV_READY;
        if (busy && lp_clock_cond_wait(&sv->cv, &sv->mu, deadline) == -ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&sv->mu);
}

void lp_serve_stop_envs(lp_serve_t *sv)
{
    char *names[256];
    int n;

    do { /* delete outside the lock: each waits for its process */
        n = 0;
        pthread_mutex_lock(&sv->mu);
        sv->draining = true;
        for (lp_senv_t *e = sv->envs; e != NULL && n < 256; e = e->next)
            names[n++] = strdup(e->name);
        pthread_mutex_unlock(&sv->mu);
        for (int i = 0; i < n; i++) {
            if (names[i] != NULL)
                lp_serve_env_delete(sv, names[i]);
            free(names[i]);
        }
    } while (n > 0);
}

void lp_serve_free(lp_serve_t *sv)
{
    if (sv == NULL)
        return;
    lp_serve_stop_envs(sv);
    lp_agents_stop(sv);
    lp_journal_close(sv);
    pthread_cond_destroy(&sv->cv);
    pthread_mutex_destroy(&sv->mu);
    pthread_mutex_destroy(&sv->journal_mu);
    free(sv);
}

/* Takes r, the last run queued (send_mu held), out of e's queue if the
 * ender has not ended it already, and drops the queue's reference. */
static void unqueue(lp_serve_t *sv, lp_senv_t *e, lp_run_t *r)
{
    lp_run_t **at = &e->inflight;
    bool found;

    pthread_mutex_lock(&sv->mu);
    while (*at != NULL && *at != r)
        at = &(*at)->next;
    if ((found = *at != NULL)) {
        *at = r->next;
        if (e->inflight_tail == &r->next)
            e->inflight_tail = at;
        e->runs_total--;
    }
    pthread_mutex_unlock(&sv->mu);
    lp_run_end(r, LP_RUN_KILLED);
    if (found)
        lp_run_unref(r);
}

int lp_serve_submit(lp_serve_t *sv, const char *name, const lp_run_req_t *req, lp_run_t **out,
                    char msg[LP_SERVE_MSG_MAX])
{
    lp_senv_t *e = lp_senv_find(sv, name);
    unsigned queued = 0;
    lp_run_t *r = NULL;
    int rc = 0;

    *out = NULL;
    if (e == NULL) {
        snprintf(msg, LP_SERVE_MSG_MAX, "no environment named '%.80s'", name);
        return -ENOENT;
    }
    pthread_mutex_lock(&e->send_mu); /* evals leave in the order they join the queue */
    pthread_mutex_lock(&sv->mu);
    for (lp_run_t *x = e->inflight; x != NULL; x = x->next)
        queued++;
    if (sv->draining)
        rc = -ESHUTDOWN;
    else if (e->state == LP_ENV_DEAD)
        rc = -EPIPE;
    else if (e->state != LP_ENV_READY)
        rc = -ENOENT;
    else if (queued >= sv->cfg.queue_max)
        rc = -EAGAIN;
    else if ((r = lp_run_new(sv, e->name, ++e->next_run, req,
                             (size_t)e->limits.output_mb << 20)) == NULL)
        rc = LP_WIRE_ENOMEM;
    if (rc == 0) {
        lp_run_ref(r); /* the queue's */
        *e->inflight_tail = r;
        e->inflight_tail = &r->next;
        e->runs_total++;
        if (e->inflight == r)
            lp_run_started(r);
        pthread_cond_broadcast(&sv->cv);
    } else if (rc == -EPIPE) {
        snprintf(msg, LP_SERVE_MSG_MAX, "environment '%s' is dead (%s): restart it", e->name,
                 e->why);
    } else {
        snprintf(msg, LP_SERVE_MSG_MAX, "%s",
                 rc == -ESHUTDOWN ? "the server is stopping: no new runs"
                 : rc == -EAGAIN  ? "too many runs waiting in this environment"
                 : rc == -ENOENT  ? "the environment is not ready"
                                  : "out of memory");
    }
    pthread_mutex_unlock(&sv->mu);
    if (rc == 0 && (rc = lp_agent_eval(sv, e->link, r, req)) != 0) {
        /* the agent never got it (a header too long for an eval, the link gone): out of
         * the queue, else every later run would wait behind it for good */
        snprintf(msg, LP_SERVE_MSG_MAX, "environment '%s' did not take the run: %s", e->name,
                 lp_wire_strerror(rc));
        rc = rc == LP_WIRE_EFIELD ? rc : -EPIPE;
        unqueue(sv, e, r);
        lp_run_unref(r);
        r = NULL;
    }
    pthread_mutex_unlock(&e->send_mu);
    lp_senv_unref(sv, e);
    *out = r;
    return rc;
}

lp_run_t *lp_serve_run_find(lp_serve_t *sv, const char *name, uint64_t id)
{
    lp_senv_t *e = lp_senv_find(sv, name);
    lp_run_t *r = NULL;

    if (e == NULL)
        return NULL;
    pthread_mutex_lock(&sv->mu);
    for (r = e->inflight; r != NULL && r->id != id; r = r->next)
        ;
    if (r == NULL)
        for (r = e->kept; r != NULL && r->id != id; r = r->next)
            ;
    if (r != NULL)
        lp_run_ref(r);
    pthread_mutex_unlock(&sv->mu);
    lp_senv_unref(sv, e);
    return r;
}

static json_t *run_summary(lp_run_t *r)
{
    json_t *o;

    pthread_mutex_lock(&r->mu);
    o = json_pack("{s:I, s:s, s:I, s:f, s:I}", "run", (json_int_t)r->id, "status",
                  lp_run_status_name(r->status), "started", (json_int_t)r->started_wall_ms,
                  "duration_ms", lp_run_over(r->status) ? (double)r->duration_us / 1000.0 : 0.0, "code_bytes",
                  (json_int_t)r->code_bytes);
    pthread_mutex_unlock(&r->mu);
    return o;
}

json_t *lp_serve_runs(lp_serve_t *sv, const char *name, int *err)
{
    lp_senv_t *e = lp_senv_find(sv, name);
    json_t *list;
    size_t at;

    if (e == NULL) {
        *err = -ENOENT;
        return NULL;
    }
    *err = 0;
    list = json_array();
    pthread_mutex_lock(&sv->mu);
    for (lp_run_t *r = e->kept; r != NULL && list != NULL; r = r->next)
        json_array_insert_new(list, 0, run_summary(r)); /* kept is newest first */
    at = list != NULL ? json_array_size(list) : 0;
    for (lp_run_t *r = e->inflight; r != NULL && list != NULL; r = r->next)
        json_array_insert_new(list, at++, run_summary(r));
    pthread_mutex_unlock(&sv->mu);
    lp_senv_unref(sv, e);
    return list;
}

int lp_serve_interrupt(lp_serve_t *sv, const char *name, uint64_t *run_id)
{
    lp_senv_t *e = lp_senv_find(sv, name);
    uint32_t link = 0;

    *run_id = 0;
    if (e == NULL)
        return -ENOENT;
    pthread_mutex_lock(&sv->mu);
    if (e->inflight != NULL && e->state == LP_ENV_READY) {
        *run_id = e->inflight->id;
        link = e->link;
    }
    pthread_mutex_unlock(&sv->mu);
    lp_senv_unref(sv, e);
    return *run_id != 0 ? lp_agent_interrupt(sv, link, *run_id) : 0;
}

/* The link of run r's env while r is in flight there, else 0. */
static uint32_t link_of_inflight(lp_run_t *r)
{
    lp_serve_t *sv = r->sv;
    lp_senv_t *e = lp_senv_find(sv, r->env);
    uint32_t link = 0;

    if (e == NULL)
        return 0;
    pthread_mutex_lock(&sv->mu);
    for (lp_run_t *x = e->inflight; x != NULL; x = x->next)
        if (x == r && e->state == LP_ENV_READY)
            link = e->link;
    pthread_mutex_unlock(&sv->mu);
    lp_senv_unref(sv, e);
    return link;
}

int lp_run_interrupt(lp_run_t *r)
{
    uint32_t link = link_of_inflight(r);

    return link != 0 ? lp_agent_interrupt(r->sv, link, r->id) : -EALREADY;
}

int lp_run_answer(lp_run_t *r, const char *data, size_t len, bool eof)
{
    uint32_t link = link_of_inflight(r);
    char text[128];
    lp_hdr_t h;
    size_t hlen;
    int e;

    if (link == 0 || !lp_run_take_input(r))
        return -EALREADY;
    lp_hdr_begin(&h, text, sizeof(text), "stdin");
    lp_hdr_int(&h, "re", (int64_t)r->id);
    lp_hdr_bool(&h, "eof", eof);
    if ((e = lp_hdr_end(&h, &hlen)) != 0)
        return e;
    return lp_agent_send(r->sv, link, text, hlen, eof ? NULL : data, eof ? 0 : len);
}

/* e's link when it is ready, else 0 with *err. */
static uint32_t ready_link(lp_serve_t *sv, const char *name, int *err)
{
    lp_senv_t *e = lp_senv_find(sv, name);
    uint32_t link = 0;

    *err = -ENOENT;
    if (e == NULL)
        return 0;
    pthread_mutex_lock(&sv->mu);
    if (e->state == LP_ENV_READY)
        link = e->link;
    *err = link != 0 ? 0 : -EPIPE;
    pthread_mutex_unlock(&sv->mu);
    lp_senv_unref(sv, e);
    return link;
}

json_t *lp_serve_complete(lp_serve_t *sv, const char *name, const char *session, const char *text,
                          size_t cursor, size_t *start, int *err)
{
    uint32_t link = ready_link(sv, name, err);
    int64_t id = lp_agent_next_id(sv);
    json_t *done = NULL, *matches = NULL;
    size_t hcap = strlen(text) * 6 + 256, len;
    char *hdr = malloc(hcap);
    lp_hdr_t h;

    if (link == 0 || hdr == NULL) {
        free(hdr);
        *err = link == 0 ? *err : LP_WIRE_ENOMEM;
        return NULL;
    }
    lp_hdr_begin(&h, hdr, hcap, "complete");
    lp_hdr_int(&h, "id", id);
    if (session != NULL)
        lp_hdr_str(&h, "session", session);
    lp_hdr_str(&h, "text", text);
    lp_hdr_int(&h, "cursor", (int64_t)cursor);
    if ((*err = lp_hdr_end(&h, &len)) == 0 &&
        (*err = lp_agent_request(sv, link, id, hdr, len, NULL, 0, 5000, &done)) == 0) {
        json_int_t s = json_integer_value(json_object_get(done, "start"));

        matches = json_incref(json_object_get(done, "matches"));
        *start = s >= 0 && (size_t)s <= cursor ? (size_t)s : cursor;
        if (!json_is_array(matches)) {
            json_decref(matches);
            matches = NULL;
            *err = -EPROTO;
        }
    }
    json_decref(done);
    free(hdr);
    return matches;
}

json_t *lp_serve_ask(lp_serve_t *sv, const char *name, const char *op, const json_t *fields,
                     const void *payload, size_t len, int *err)
{
    uint32_t link = ready_link(sv, name, err);
    int64_t id = lp_agent_next_id(sv);
    char *hdr = link != 0 ? malloc(LP_WIRE_HEADER_MAX) : NULL;
    json_t *done = NULL, *v;
    const char *key;
    size_t hlen;
    lp_hdr_t h;

    if (hdr == NULL) {
        *err = link == 0 ? *err : LP_WIRE_ENOMEM;
        return NULL;
    }
    lp_hdr_begin(&h, hdr, LP_WIRE_HEADER_MAX, op);
    lp_hdr_int(&h, "id", id);
    json_object_foreach((json_t *)fields, key, v)
        lp_hdr_json(&h, key, v);
    if ((*err = lp_hdr_end(&h, &hlen)) == 0)
        *err = lp_agent_request(sv, link, id, hdr, hlen, payload, len, 5000, &done);
    free(hdr);
    return done;
}

void lp_serve_forget_session(lp_serve_t *sv, const char *name, const char *session)
{
    int err;
    uint32_t link = ready_link(sv, name, &err);
    char text[256];
    lp_hdr_t h;
    size_t len;

    if (link == 0)
        return;
    lp_hdr_begin(&h, text, sizeof(text), "forget");
    lp_hdr_str(&h, "session", session);
    if (lp_hdr_end(&h, &len) == 0)
        lp_agent_send(sv, link, text, len, NULL, 0);
}
