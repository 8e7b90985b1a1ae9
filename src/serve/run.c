/* run.c: a run's record (serve.h, internal.h): its status, its output in
 * a bounded list of chunks (the last output_max bytes and the total count,
 * so that a client that went away reads what it missed), its value or
 * exception, and an input() waiting for an answer. Filled by agent.c as
 * frames come, read by the front ends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "io/io.h"
#include "serve/internal.h"
#include "wire/buf.h"

static const char *const status_names[] = {
    [LP_RUN_QUEUED] = "queued",
    [LP_RUN_RUNNING] = "running",
    [LP_RUN_OK] = "ok",
    [LP_RUN_ERROR] = "error",
    [LP_RUN_INTERRUPTED] = "interrupted",
    [LP_RUN_DEADLINE] = "deadline-exceeded",
    [LP_RUN_KILLED] = "killed",
    [LP_RUN_MORE] = "more",
    [LP_RUN_CLOSED] = "closed",
};

const char *lp_run_status_name(lp_run_status_t st)
{
    return (unsigned)st < sizeof(status_names) / sizeof(status_names[0]) ? status_names[st]
                                                                          : "unknown";
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

lp_run_t *lp_run_new(lp_serve_t *sv, const char *env, uint64_t id, const lp_run_req_t *req,
                     size_t output_max)
{
    lp_run_t *r = calloc(1, sizeof(*r));
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (r == NULL)
        return NULL;
    if (lp_clock_cond_init(&r->cv) != 0) {
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->refs = 1;
    r->sv = sv;
    snprintf(r->env, sizeof(r->env), "%s", env);
    r->id = id;
    r->mode = req->mode;
    r->input = req->input;
    r->output_max = output_max;
    r->code_bytes = req->len;
    /* the journal's fingerprint: not paid for by a server that keeps none */
    if ((sv == NULL || sv->journal_fd >= 0) &&
        EVP_Digest(req->code, req->len, md, &mdlen, EVP_sha256(), NULL) == 1)
        for (unsigned i = 0; i < mdlen && i < 32; i++)
            snprintf(r->code_sha256 + 2 * i, 3, "%02x", md[i]);
    r->who = dup_or_null(req->who);
    r->timeout_ms = req->timeout_ms;
    r->started_wall_ms = lp_clock_wall_ms();
    r->status = LP_RUN_QUEUED;
    return r;
}

void lp_run_ref(lp_run_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->refs++;
    pthread_mutex_unlock(&r->mu);
}

void lp_run_unref(lp_run_t *r)
{
    int left;

    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    left = --r->refs;
    pthread_mutex_unlock(&r->mu);
    if (left > 0)
        return;
    for (lp_chunk_t *c = r->head, *n; c != NULL; c = n) {
        n = c->next;
        free(c);
    }
    free(r->who);
    free(r->value_type);
    free(r->value_repr);
    free(r->exc_type);
    free(r->exc_message);
    free(r->traceback);
    free(r->prompt);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

uint64_t lp_run_id(const lp_run_t *r)
{
    return r->id;
}

lp_run_status_t lp_run_status(lp_run_t *r)
{
    lp_run_status_t st;

    pthread_mutex_lock(&r->mu);
    st = r->status;
    pthread_mutex_unlock(&r->mu);
    return st;
}

bool lp_run_ended(lp_run_t *r)
{
    return lp_run_over(lp_run_status(r));
}

void lp_run_started(lp_run_t *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->status == LP_RUN_QUEUED) {
        r->status = LP_RUN_RUNNING;
        r->run_start_us = lp_clock_us();
    }
    pthread_mutex_unlock(&r->mu);
}

/* Whether w has something to see (under r->mu). */
static bool watch_due(const lp_run_t *r, const lp_run_watch_t *w)
{
    return lp_run_over(r->status) || r->total > w->since || (w->input && r->prompt != NULL);
}

static void unlink_locked(lp_run_t *r, lp_run_watch_t *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        r->watchers = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->armed = false;
}

/* Fires the watchers that have something to see (under r->mu): each is
 * unlinked before its fn runs, so fn may watch again elsewhere. */
static void notify_locked(lp_run_t *r)
{
    for (lp_run_watch_t *w = r->watchers, *n; w != NULL; w = n) {
        n = w->next;
        if (watch_due(r, w)) {
            unlink_locked(r, w);
            w->fn(w->arg);
        }
    }
}

int lp_run_watch(lp_run_t *r, lp_run_watch_t *w)
{
    int due;

    pthread_mutex_lock(&r->mu);
    if (!(due = watch_due(r, w))) {
        w->prev = NULL;
        w->next = r->watchers;
        if (r->watchers != NULL)
            r->watchers->prev = w;
        r->watchers = w;
        w->armed = true;
    }
    pthread_mutex_unlock(&r->mu);
    return due ? 1 : 0;
}

bool lp_run_unwatch(lp_run_t *r, lp_run_watch_t *w)
{
    bool was;

    pthread_mutex_lock(&r->mu);
    if ((was = w->armed))
        unlink_locked(r, w);
    pthread_mutex_unlock(&r->mu);
    return was;
}

/* Output grew (under r->mu): drops the oldest chunks past output_max and
 * wakes the readers. */
static void grew_locked(lp_run_t *r)
{
    lp_chunk_t *c;

    while (r->kept > r->output_max && r->head != r->tail) {
        lp_chunk_t *old = r->head;

        r->head = old->next;
        if (r->tail_at == &old->next)
            r->tail_at = &r->head;
        r->kept -= sizeof(*old) + old->len;
        free(old);
    }
    if (r->kept > r->output_max && (c = r->head) != NULL && c->stream != LP_RUN_STREAM_VALUE) {
        /* one write past the bound (up to a frame's 64 MiB): only its last bytes are kept */
        size_t cut = r->kept - r->output_max < c->len ? r->kept - r->output_max : c->len;
        lp_chunk_t *less;

        memmove(c->data, c->data + cut, c->len - cut);
        c->offset += cut;
        c->len -= cut;
        r->kept -= cut;
        if ((less = realloc(c, sizeof(*c) + c->len)) != NULL)
            r->head = r->tail = less;
    }
    pthread_cond_broadcast(&r->cv);
    notify_locked(r);
}

/* Appends c (all but its links and offset filled) to r's output, under r->mu. */
static void append_locked(lp_run_t *r, lp_chunk_t *c)
{
    c->next = NULL;
    c->offset = r->total;
    r->tail_at = r->tail != NULL ? &r->tail->next : &r->head;
    *r->tail_at = c;
    r->tail = c;
    r->kept += sizeof(*c) + c->len; /* records counted: 1-byte chunks must not cost 50 times */
    r->total += c->len;
    grew_locked(r);
}

void lp_run_output(lp_run_t *r, int stream, const void *data, size_t len)
{
    lp_chunk_t *c;

    if (len == 0)
        return;
    pthread_mutex_lock(&r->mu);
    if (r->tail != NULL && r->tail->stream == stream && stream != LP_RUN_STREAM_VALUE &&
        r->tail->len < 4096 && len < 4096) {
        /* small writes of one stream grow the last chunk: one SSE event, not fifty */
        lp_chunk_t *grown = realloc(r->tail, sizeof(*c) + r->tail->len + len);

        if (grown != NULL) {
            *r->tail_at = r->tail = grown; /* the link to the last chunk: no walk */
            memcpy(grown->data + grown->len, data, len);
            grown->len += len;
            r->kept += len;
            r->total += len;
            grew_locked(r);
            pthread_mutex_unlock(&r->mu);
            return;
        }
    }
    if ((c = malloc(sizeof(*c) + len)) == NULL) {
        r->total += len; /* counted, not kept: the reader sees the gap */
        pthread_cond_broadcast(&r->cv);
        notify_locked(r);
    } else {
        c->stream = stream;
        c->len = len;
        c->type = NULL;
        memcpy(c->data, data, len);
        append_locked(r, c);
    }
    pthread_mutex_unlock(&r->mu);
}

static void set_str(char **slot, const void *data, size_t len)
{
    char *s = malloc(len + 1);

    if (s == NULL)
        return;
    memcpy(s, data, len);
    s[len] = 0;
    free(*slot);
    *slot = s;
}

/* A single run's value is output (LP_RUN_STREAM_VALUE): repr, a newline,
 * then (past len) its type and a NUL. */
static void value_output(lp_run_t *r, const char *type, const void *repr, size_t len)
{
    size_t tlen = strlen(type);
    lp_chunk_t *c = malloc(sizeof(*c) + len + 1 + tlen + 1);

    if (c == NULL) {
        r->total += len + 1;
        pthread_cond_broadcast(&r->cv);
        notify_locked(r);
        return;
    }
    c->stream = LP_RUN_STREAM_VALUE;
    c->len = len + 1;
    memcpy(c->data, repr, len);
    c->data[len] = '\n';
    c->type = memcpy(c->data + len + 1, type, tlen + 1);
    append_locked(r, c);
}

void lp_run_set_value(lp_run_t *r, const char *type, const void *repr, size_t len)
{
    pthread_mutex_lock(&r->mu);
    if (r->mode == LP_RUN_SINGLE) {
        value_output(r, type, repr, len);
    } else {
        set_str(&r->value_type, type, strlen(type));
        set_str(&r->value_repr, repr, len);
    }
    pthread_mutex_unlock(&r->mu);
}

void lp_run_set_exception(lp_run_t *r, const char *type, const char *message, const void *tb,
                          size_t len)
{
    pthread_mutex_lock(&r->mu);
    set_str(&r->exc_type, type, strlen(type));
    set_str(&r->exc_message, message, strlen(message));
    set_str(&r->traceback, tb, len);
    pthread_mutex_unlock(&r->mu);
}

void lp_run_set_input(lp_run_t *r, const char *prompt, bool password)
{
    pthread_mutex_lock(&r->mu);
    set_str(&r->prompt, prompt, strlen(prompt));
    r->password = password;
    pthread_cond_broadcast(&r->cv);
    notify_locked(r);
    pthread_mutex_unlock(&r->mu);
}

void lp_run_end(lp_run_t *r, lp_run_status_t st)
{
    pthread_mutex_lock(&r->mu);
    if (!lp_run_over(r->status)) {
        if ((st == LP_RUN_INTERRUPTED || st == LP_RUN_KILLED) && r->deadline_hit)
            st = LP_RUN_DEADLINE; /* killed: with its environment, for its deadline */
        r->status = st;
        if (r->run_start_us != 0)
            r->duration_us = lp_clock_us() - r->run_start_us;
        free(r->prompt);
        r->prompt = NULL;
        pthread_cond_broadcast(&r->cv);
        notify_locked(r);
    }
    pthread_mutex_unlock(&r->mu);
}

int lp_run_wait(lp_run_t *r, uint64_t since, int timeout_ms)
{
    uint64_t deadline = lp_clock_deadline(timeout_ms);
    int ready;

    pthread_mutex_lock(&r->mu);
    while (!(ready = lp_run_over(r->status) || r->total > since || r->prompt != NULL))
        if (lp_clock_cond_wait(&r->cv, &r->mu, deadline) == -ETIMEDOUT)
            break;
    pthread_mutex_unlock(&r->mu);
    return ready ? 1 : 0;
}

int lp_run_chunks(lp_run_t *r, uint64_t since, int (*fn)(void *arg, const lp_run_chunk_t *c),
                  void *arg, uint64_t *next, bool *dropped)
{
    int rc = 0;

    pthread_mutex_lock(&r->mu);
    *dropped = r->head != NULL ? r->head->offset > since : r->total > since;
    for (lp_chunk_t *c = r->head; c != NULL && rc == 0; c = c->next) {
        uint64_t end = c->offset + c->len;
        lp_run_chunk_t v;

        if (end <= since)
            continue;
        v.offset = c->offset > since ? c->offset : since;
        v.stream = c->stream;
        v.data = c->data + (v.offset - c->offset);
        v.len = (size_t)(end - v.offset);
        v.type = c->type;
        rc = fn(arg, &v);
    }
    *next = r->total;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Appends a chunk to stdout or stderr (a page and a value are stdout), as
 * UTF-8 that JSON can hold. */
static int gather(void *arg, const lp_run_chunk_t *c)
{
    return lp_buf_put_utf8(((lp_buf_t **)arg)[c->stream == 1 ? 1 : 0], c->data, c->len);
}

static json_t *text_or_null(const char *s)
{
    return s != NULL ? json_stringn_nocheck(s, strlen(s)) : json_null();
}

json_t *lp_run_json(lp_run_t *r, uint64_t since)
{
    lp_buf_t *bufs[2] = {lp_buf_new(SIZE_MAX / 4), lp_buf_new(SIZE_MAX / 4)};
    json_t *o = NULL, *err = json_null();
    uint64_t next = 0;
    bool dropped = false;
    lp_run_status_t st;

    if (bufs[0] == NULL || bufs[1] == NULL)
        goto out;
    lp_run_chunks(r, since, gather, bufs, &next, &dropped);
    pthread_mutex_lock(&r->mu);
    st = r->status;
    if (r->exc_type != NULL)
        err = json_pack("{s:s, s:s?, s:s?}", "type", r->exc_type, "message", r->exc_message,
                        "traceback", r->traceback);
    o = json_pack("{s:I, s:s, s:s%, s:s%, s:o, s:o, s:f, s:I, s:I, s:b}", "run",
                  (json_int_t)r->id, "status", lp_run_status_name(st), "stdout",
                  (const char *)lp_buf_data(bufs[0]), lp_buf_len(bufs[0]), "stderr",
                  (const char *)lp_buf_data(bufs[1]), lp_buf_len(bufs[1]), "value",
                  text_or_null(lp_run_over(r->status) ? r->value_repr : NULL), "error",
                  err != NULL ? err : json_null(), "duration_ms",
                  lp_run_over(r->status) ? (double)r->duration_us / 1000.0
                  : r->run_start_us ? (double)(lp_clock_us() - r->run_start_us) / 1000.0 : 0.0,
                  "since", (json_int_t)since, "next", (json_int_t)next, "truncated", dropped);
    if (o != NULL && r->prompt != NULL)
        json_object_set_new(o, "input", json_pack("{s:s, s:b}", "prompt", r->prompt,
                                                  "password", r->password));
    pthread_mutex_unlock(&r->mu);
out:
    lp_buf_free(bufs[0]);
    lp_buf_free(bufs[1]);
    return o;
}

int lp_run_result(lp_run_t *r, char **value_type, char **value_repr, char **exc_type,
                  char **exc_message, char **traceback)
{
    int rc = -EAGAIN;

    *value_type = *value_repr = *exc_type = *exc_message = *traceback = NULL;
    pthread_mutex_lock(&r->mu);
    if (lp_run_over(r->status)) {
        *value_type = dup_or_null(r->value_type);
        *value_repr = dup_or_null(r->value_repr);
        *exc_type = dup_or_null(r->exc_type);
        *exc_message = dup_or_null(r->exc_message);
        *traceback = dup_or_null(r->traceback);
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int lp_run_input_pending(lp_run_t *r, char **prompt, bool *password)
{
    int rc = 0;

    pthread_mutex_lock(&r->mu);
    if (r->prompt != NULL && (*prompt = strdup(r->prompt)) != NULL) {
        *password = r->password;
        rc = 1;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Takes the waiting input() off r: true when there was one. */
bool lp_run_take_input(lp_run_t *r)
{
    bool had;

    pthread_mutex_lock(&r->mu);
    had = r->prompt != NULL;
    free(r->prompt);
    r->prompt = NULL;
    pthread_mutex_unlock(&r->mu);
    return had;
}
