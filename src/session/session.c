/* session.c: sessions, their output and their replies (server.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session/internal.h"
#include "session/sink.h"
#include "wire/ops.h"

const char *lp_eval_status_name(int status)
{
    static const char *const names[] = {
        [LP_EVAL_OK] = "ok", [LP_EVAL_MORE] = "more", [LP_EVAL_EXCEPTION] = "exception",
        [LP_EVAL_INTERRUPTED] = "interrupted", [LP_EVAL_CLOSED] = "closed",
        [LP_EVAL_DETACHED] = "detached",
    };

    return status >= 0 && (size_t)status < sizeof(names) / sizeof(names[0]) ? names[status]
                                                                            : "exception";
}

const char *lp_session_id(const lp_session_t *s) { return s->id; }
void *lp_session_data(const lp_session_t *s) { return s->data; }

void lp_session_ref(lp_session_t *s) { atomic_fetch_add(&s->refs, 1); }

void lp_session_unref(lp_session_t *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&s->qmu);
    pthread_mutex_destroy(&s->smu);
    pthread_cond_destroy(&s->incv);
    lp_outq_clear(&s->outq);
    free(s->in_data);
    free(s);
}

int lp_session_new(lp_server_t *srv, lp_env_t *env, const struct lp_sink *sink, lp_port_t *port,
                   lp_session_t **out)
{
    lp_session_t *s;
    uint64_t n;

    pthread_mutex_lock(&srv->mu);
    if (srv->nsessions >= srv->max_sessions) {
        pthread_mutex_unlock(&srv->mu);
        return LP_WIRE_ETOOMANY;
    }
    srv->nsessions++;
    n = ++srv->next_session;
    pthread_mutex_unlock(&srv->mu);
    if ((s = calloc(1, sizeof(*s))) == NULL) {
        pthread_mutex_lock(&srv->mu);
        srv->nsessions--;
        pthread_mutex_unlock(&srv->mu);
        return LP_WIRE_ENOMEM;
    }
    atomic_init(&s->refs, 1);
    snprintf(s->id, sizeof(s->id), "%" PRIu64, n);
    s->srv = srv;
    s->port = port;
    s->env = env;
    s->cur_re = -1;
    s->sink = sink;
    lp_outq_init(&s->outq);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_mutex_init(&s->smu, NULL);
    pthread_cond_init(&s->incv, NULL);
    *out = s;
    return 0;
}

/* Takes the queued output out of s (under qmu) into *q. */
static void take_queue(lp_session_t *s, lp_outq_t *q, lp_port_t **port)
{
    pthread_mutex_lock(&s->qmu);
    *q = s->outq;
    lp_outq_init(&s->outq); /* the bytes now belong to *q */
    *port = s->port;
    s->last_flush_ms = lp_clock_ms();
    pthread_mutex_unlock(&s->qmu);
}

/* Sends what is queued; the caller holds smu. */
static int flush_locked(lp_session_t *s, lp_port_t **port)
{
    lp_outq_t q;
    int r = 0;

    take_queue(s, &q, port);
    if (lp_outq_len(&q) > 0 && *port != NULL)
        r = (*port)->send(*port, lp_outq_data(&q), lp_outq_len(&q));
    lp_outq_clear(&q);
    return r;
}

/* Has the flusher send s's queue soon. */
static void schedule_flush(lp_session_t *s)
{
    bool wake;

    pthread_mutex_lock(&s->qmu);
    wake = !s->flush_pending && !s->closed;
    s->flush_pending = true;
    pthread_mutex_unlock(&s->qmu);
    if (wake)
        lp_flusher_request(s);
}

int lp_session_flush(lp_session_t *s)
{
    lp_port_t *port;
    int r;

    if (!lp_conn_thread_may_block()) {
        /* the watcher: smu may be held by a writer stuck on a client that
         * reads nothing; the flusher tries again until it goes */
        if ((r = lp_session_try_flush(s)) == LP_WIRE_EBUSY)
            schedule_flush(s);
        return r == LP_WIRE_EBUSY ? 0 : r;
    }
    pthread_mutex_lock(&s->smu);
    r = flush_locked(s, &port);
    pthread_mutex_unlock(&s->smu);
    return r;
}

int lp_session_try_flush(lp_session_t *s)
{
    lp_port_t *port;
    int r = LP_WIRE_EBUSY;

    if (pthread_mutex_trylock(&s->smu) != 0)
        return r;
    pthread_mutex_lock(&s->qmu);
    port = s->port;
    pthread_mutex_unlock(&s->qmu);
    /* a congested client: the output stays queued, and its writer blocks
     * when the queue is full, as backpressure on that session only */
    if (port == NULL || !port->congested(port))
        r = flush_locked(s, &port);
    pthread_mutex_unlock(&s->smu);
    return r;
}

int lp_session_write(lp_session_t *s, lp_stream_t stream, const void *data, size_t len)
{
    bool must = false, wake = false;
    int r = 0;

    if (len >= LP_WIRE_CHUNK)
        return 2;
    pthread_mutex_lock(&s->qmu);
    if (s->closed) {
        pthread_mutex_unlock(&s->qmu);
        return 0;
    }
    if (lp_outq_len(&s->outq) + len + 256 > LP_OUTPUT_QUEUE_MAX) {
        pthread_mutex_unlock(&s->qmu);
        return 2;
    }
    r = s->sink->put(&s->outq, s->id,
                     &(lp_event_t){.kind = LP_EV_OUT, .re = s->cur_re, .stream = stream,
                                   .data = data, .len = len});
    /* Line-buffered, like a terminal: a line that ends a quiet spell leaves
     * at once; anything else within LP_FLUSH_MS (print() writes its text and
     * its newline separately: one frame, not two). */
    must = lp_outq_len(&s->outq) >= LP_WIRE_CHUNK ||
           (len > 0 && ((const char *)data)[len - 1] == '\n' &&
            lp_clock_ms() - s->last_flush_ms >= LP_FLUSH_MS);
    if (!must && !s->flush_pending) {
        s->flush_pending = true;
        wake = true;
    }
    pthread_mutex_unlock(&s->qmu);
    if (wake)
        lp_flusher_request(s);
    return r != 0 ? r : must;
}

int lp_session_send(lp_session_t *s, lp_stream_t stream, const void *data, size_t len)
{
    lp_port_t *port;
    int64_t re;
    int r;

    pthread_mutex_lock(&s->smu);
    r = flush_locked(s, &port);
    pthread_mutex_lock(&s->qmu);
    re = s->cur_re;
    pthread_mutex_unlock(&s->qmu);
    while (r == 0 && port != NULL && len > 0) {
        size_t n = len < LP_WIRE_CHUNK ? len : LP_WIRE_CHUNK;
        lp_outq_t q;

        /* one frame at a time: at most one chunk copied */
        lp_outq_init(&q);
        r = s->sink->put(&q, s->id, &(lp_event_t){.kind = LP_EV_OUT, .re = re, .stream = stream,
                                                   .data = data, .len = n});
        if (r == 0)
            r = port->send(port, lp_outq_data(&q), lp_outq_len(&q));
        lp_outq_clear(&q);
        data = (const uint8_t *)data + n;
        len -= n;
    }
    pthread_mutex_unlock(&s->smu);
    return r;
}

/* Queues event ev of s after the output already queued, unless s is
 * closed. 1 when the queue should be sent now (a chunk is waiting). */
static int queue_event(lp_session_t *s, lp_event_t *ev, bool current)
{
    int r = 0;

    pthread_mutex_lock(&s->qmu);
    if (current)
        ev->re = s->cur_re;
    if (!s->closed) {
        r = s->sink->put(&s->outq, s->id, ev);
        r = r != 0 ? r : lp_outq_len(&s->outq) >= LP_WIRE_CHUNK;
    }
    pthread_mutex_unlock(&s->qmu);
    return r;
}

int lp_session_reply_done(lp_session_t *s, int64_t re, const char *status, int64_t job)
{
    int r = queue_event(s, &(lp_event_t){.kind = LP_EV_DONE, .re = re, .name = status,
                                         .job = job}, false);

    /* the final reply leaves with everything before it, in one write */
    return r < 0 ? r : lp_session_flush(s);
}

int lp_session_value(lp_session_t *s, const char *type, const char *repr, size_t len)
{
    lp_event_t ev = {.kind = LP_EV_VALUE, .name = type, .data = repr, .len = len};
    int r;

    pthread_mutex_lock(&s->qmu);
    if (s->cur_re >= 0) {
        pthread_mutex_unlock(&s->qmu);
        return queue_event(s, &ev, true);
    }
    /* shown by a thread while no eval runs: a value reply would answer
     * nothing, so it is plain output, as the REPL would print it */
    r = 0;
    if (!s->closed &&
        (r = s->sink->put(&s->outq, s->id, &(lp_event_t){.kind = LP_EV_OUT, .re = -1,
                                                          .data = repr, .len = len})) == 0)
        r = s->sink->put(&s->outq, s->id,
                         &(lp_event_t){.kind = LP_EV_OUT, .re = -1, .data = "\n", .len = 1});
    pthread_mutex_unlock(&s->qmu);
    return r != 0 ? r : 1;
}

int lp_session_exception(lp_session_t *s, const char *type, const char *message,
                         const char *tb, size_t len)
{
    char cut[LP_EXC_MESSAGE_MAX + 1];

    if (message != NULL) {
        size_t n = lp_utf8_cut(message, strlen(message), LP_EXC_MESSAGE_MAX);

        memcpy(cut, message, n);
        cut[n] = 0;
    }
    return queue_event(s, &(lp_event_t){.kind = LP_EV_EXCEPTION, .name = type, .data = tb,
                                        .len = len, .message = message != NULL ? cut : NULL},
                       true);
}

int lp_session_page(lp_session_t *s, const char *text, size_t len)
{
    lp_port_t *port;
    bool idle;
    int r;

    pthread_mutex_lock(&s->qmu);
    idle = s->cur_re < 0; /* a thread's help(): nothing to reply to, so print */
    port = s->port;
    pthread_mutex_unlock(&s->qmu);
    if (idle || !s->sink->pages || port == NULL || (port->caps & LP_CAP_PAGE) == 0 ||
        len > port->limits.payload_max)
        return 1;
    r = queue_event(s, &(lp_event_t){.kind = LP_EV_PAGE, .data = text, .len = len}, true);
    return r < 0 ? r : lp_session_flush(s);
}

int lp_session_begin(lp_session_t *s, int64_t re)
{
    int r = 0;

    pthread_mutex_lock(&s->qmu);
    if (s->cur_re >= 0) /* an eval is running */
        r = LP_WIRE_EBUSY;
    else
        s->cur_re = re;
    pthread_mutex_unlock(&s->qmu);
    return r;
}

void lp_session_end(lp_session_t *s)
{
    pthread_mutex_lock(&s->qmu);
    s->cur_re = -1;
    s->intr_at_ms = 0;
    pthread_mutex_unlock(&s->qmu);
}

bool lp_session_was_interrupted(lp_session_t *s)
{
    bool was;

    pthread_mutex_lock(&s->qmu);
    was = s->intr_at_ms != 0;
    pthread_mutex_unlock(&s->qmu);
    return was;
}

bool lp_session_take_interrupt(lp_session_t *s)
{
    bool was;

    pthread_mutex_lock(&s->qmu);
    was = s->interrupted;
    s->interrupted = false;
    pthread_mutex_unlock(&s->qmu);
    return was;
}

/* Answers interrupt request id: it reached a running eval. */
static void answer_interrupt(lp_conn_t *c, int64_t id)
{
    char buf[128];
    lp_hdr_t h;

    lp_hdr_begin(&h, buf, sizeof(buf), "done");
    lp_hdr_int(&h, "re", id);
    lp_hdr_str(&h, "status", "ok");
    lp_hdr_str(&h, "was", "running");
    lp_conn_send_frame(c, &h, NULL, 0);
}

void lp_session_interrupt(lp_session_t *s, int64_t id, lp_conn_t *c, void *tls)
{
    lp_engine_t *e = &s->srv->engine;
    bool waiting, answer_now = false;

    pthread_mutex_lock(&s->qmu);
    s->interrupted = true;
    if (s->intr_at_ms == 0)
        s->intr_at_ms = lp_clock_ms();
    if (id >= 0 && s->nintr < LP_INTR_MAX)
        s->intr_ids[s->nintr++] = id;
    else if (id >= 0)
        answer_now = true;
    waiting = s->in_waiting;
    if (waiting)
        pthread_cond_broadcast(&s->incv); /* input() raises KeyboardInterrupt */
    pthread_mutex_unlock(&s->qmu);
    if (answer_now)
        answer_interrupt(c, id);
    if (!waiting && tls != NULL && c->tls != NULL)
        e->interrupt(e->ctx, tls, c->tls, s->data);
}

void lp_session_answer_interrupts(lp_session_t *s, lp_conn_t *c)
{
    int64_t ids[LP_INTR_MAX];
    int n;

    pthread_mutex_lock(&s->qmu);
    n = s->nintr;
    memcpy(ids, s->intr_ids, sizeof(ids));
    s->nintr = 0;
    s->interrupted = false;
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < n; i++)
        answer_interrupt(c, ids[i]);
}

int lp_session_give_input(lp_session_t *s, const uint8_t *data, size_t len, bool eof)
{
    uint8_t *copy = malloc(len + 2); /* room for a newline and a NUL */
    int r = 0;

    if (copy == NULL)
        return LP_WIRE_ENOMEM;
    if (len > 0)
        memcpy(copy, data, len);
    pthread_mutex_lock(&s->qmu);
    if (!s->in_waiting || s->in_ready) {
        r = LP_WIRE_EFIELD;
    } else {
        free(s->in_data);
        s->in_data = copy;
        s->in_len = len;
        s->in_eof = eof && len == 0;
        s->in_ready = true;
        copy = NULL;
        pthread_cond_broadcast(&s->incv);
    }
    pthread_mutex_unlock(&s->qmu);
    free(copy);
    return r;
}

int lp_session_input(lp_session_t *s, const char *prompt, bool echo, uint8_t **data,
                     size_t *len)
{
    int64_t re;
    int r;

    pthread_mutex_lock(&s->qmu);
    if (s->closed || s->cur_re < 0) {
        pthread_mutex_unlock(&s->qmu);
        return LP_EEOF; /* no eval to ask on behalf of: a thread's input() */
    }
    if (s->interrupted) {
        s->interrupted = false;
        pthread_mutex_unlock(&s->qmu);
        return LP_EINTERRUPTED;
    }
    s->in_waiting = true;
    s->in_ready = false;
    re = s->cur_re;
    pthread_mutex_unlock(&s->qmu);
    r = queue_event(s, &(lp_event_t){.kind = LP_EV_INPUT, .re = re, .name = prompt, .echo = echo},
                    false);
    r = r < 0 ? r : lp_session_flush(s);
    if (r == 0 && s->port != NULL && s->port->poke != NULL)
        s->port->poke(s->port); /* the answer may have been typed ahead */
    pthread_mutex_lock(&s->qmu);
    while (r == 0 && !s->in_ready && !s->interrupted && !s->closed)
        pthread_cond_wait(&s->incv, &s->qmu);
    if (r != 0 || s->closed) {
        r = LP_EEOF;
    } else if (s->in_ready) {
        r = s->in_eof ? LP_EEOF : 0;
        *data = s->in_data;
        *len = s->in_len;
        s->in_data = NULL;
        if (r != 0) {
            free(*data);
            *data = NULL;
        }
    } else {
        s->interrupted = false;
        r = LP_EINTERRUPTED;
    }
    s->in_waiting = false;
    s->in_ready = false;
    pthread_mutex_unlock(&s->qmu);
    return r;
}

void lp_session_close(lp_session_t *s, void *tls)
{
    lp_server_t *srv = s->srv;

    /* smu first: a send in progress finishes before the port can go away */
    pthread_mutex_lock(&s->smu);
    pthread_mutex_lock(&s->qmu);
    s->closed = true;
    s->port = NULL;
    lp_outq_clear(&s->outq);
    pthread_cond_broadcast(&s->incv); /* a waiting input() gets end of input */
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_unlock(&s->smu);
    if (s->data != NULL) {
        void *data = s->data;

        s->data = NULL; /* before it is freed: a job's thread may still look */
        srv->engine.session_close(srv->engine.ctx, tls, data);
    }
    lp_env_release(srv, s->env);
    s->env = NULL;
    pthread_mutex_lock(&srv->mu);
    srv->nsessions--;
    pthread_mutex_unlock(&srv->mu);
    lp_session_unref(s);
}
