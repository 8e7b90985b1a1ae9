/* session.c: sessions, their output and their replies (server.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "session/internal.h"
#include "wire/msg.h"
#include "wire/ops.h"

#define LP_VALUE_TYPE_MAX 256 /* the value frame's type field (docs/protocol.md 6) */

uint64_t lp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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

bool lp_session_is_open(lp_session_t *s)
{
    bool open;

    pthread_mutex_lock(&s->qmu);
    open = !s->closed;
    pthread_mutex_unlock(&s->qmu);
    return open;
}

int lp_session_new(lp_conn_t *c, lp_session_t **out)
{
    lp_server_t *srv = c->srv;
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
    s->conn = c;
    s->cur_re = -1;
    s->text = s->outq.text = c->text; /* a plain-text connection has plain-text sessions */
    lp_outq_init(&s->outq);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_mutex_init(&s->smu, NULL);
    pthread_cond_init(&s->incv, NULL);
    s->next = c->sessions;
    c->sessions = s;
    *out = s;
    return 0;
}

lp_session_t *lp_session_find(lp_conn_t *c, const char *id)
{
    for (lp_session_t *s = c->sessions; s != NULL; s = s->next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

/* Takes the queued output out of s (under qmu) into *q. */
static void take_queue(lp_session_t *s, lp_outq_t *q, lp_conn_t **conn)
{
    pthread_mutex_lock(&s->qmu);
    *q = s->outq;
    lp_outq_init(&s->outq); /* the bytes now belong to *q */
    *conn = s->conn;
    s->last_flush_ms = lp_now_ms();
    pthread_mutex_unlock(&s->qmu);
}

/* Sends what is queued; the caller holds smu. */
static int flush_locked(lp_session_t *s, lp_conn_t **conn)
{
    lp_outq_t q;
    int r = 0;

    take_queue(s, &q, conn);
    if (q.len > 0 && *conn != NULL)
        r = lp_conn_send_raw(*conn, q.data, q.len);
    free(q.data);
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
    lp_conn_t *conn;
    int r;

    if (!lp_conn_thread_may_block()) {
        /* the watcher: smu may be held by a writer stuck on a client that
         * reads nothing; the flusher tries again until it goes */
        if ((r = lp_session_try_flush(s)) == LP_WIRE_EBUSY)
            schedule_flush(s);
        return r == LP_WIRE_EBUSY ? 0 : r;
    }
    pthread_mutex_lock(&s->smu);
    r = flush_locked(s, &conn);
    pthread_mutex_unlock(&s->smu);
    return r;
}

int lp_session_try_flush(lp_session_t *s)
{
    lp_conn_t *conn;
    int r = LP_WIRE_EBUSY;

    if (pthread_mutex_trylock(&s->smu) != 0)
        return r;
    pthread_mutex_lock(&s->qmu);
    conn = s->conn;
    pthread_mutex_unlock(&s->qmu);
    /* a congested client: the output stays queued, and its writer blocks
     * when the queue is full, as backpressure on that session only */
    if (conn == NULL || !lp_writer_congested(&conn->out))
        r = flush_locked(s, &conn);
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
    if (s->outq.len + len + 256 > LP_OUTPUT_QUEUE_MAX) {
        pthread_mutex_unlock(&s->qmu);
        return 2;
    }
    r = lp_outq_append(&s->outq, s->id, (int)stream, s->cur_re, data, len);
    /* Line-buffered, like a terminal: a line that ends a quiet spell leaves
     * at once; anything else within LP_FLUSH_MS (print() writes its text and
     * its newline separately: one frame, not two). */
    must = s->outq.len >= LP_WIRE_CHUNK ||
           (len > 0 && ((const char *)data)[len - 1] == '\n' &&
            lp_now_ms() - s->last_flush_ms >= LP_FLUSH_MS);
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
    lp_conn_t *conn;
    int64_t re;
    int r;

    pthread_mutex_lock(&s->smu);
    r = flush_locked(s, &conn);
    pthread_mutex_lock(&s->qmu);
    re = s->cur_re;
    pthread_mutex_unlock(&s->qmu);
    while (r == 0 && conn != NULL && len > 0) {
        size_t n = len < LP_WIRE_CHUNK ? len : LP_WIRE_CHUNK;
        lp_outq_t q;

        /* one frame at a time: at most one chunk copied */
        memset(&q, 0, sizeof(q));
        q.text = s->text;
        lp_outq_init(&q);
        if ((r = lp_outq_append(&q, s->id, (int)stream, re, data, n)) == 0)
            r = lp_conn_send_raw(conn, q.data, q.len);
        free(q.data);
        data = (const uint8_t *)data + n;
        len -= n;
    }
    pthread_mutex_unlock(&s->smu);
    return r;
}

/* Encodes header h (consumed) and payload and puts the frame in the queue,
 * after the output already there. 1 when the queue should be sent now. */
/* Plain-text mode: a value is its repr on a line, an exception its
 * traceback; nothing else (done, input) is shown. */
static int queue_text(lp_session_t *s, json_t *h, const void *payload, size_t len)
{
    const char *op = json_string_value(json_object_get(h, "op"));
    bool value = op != NULL && strcmp(op, "value") == 0;
    int r = 0;

    if (value || (op != NULL && strcmp(op, "exception") == 0)) {
        pthread_mutex_lock(&s->qmu);
        if (!s->closed && (r = lp_outq_append(&s->outq, s->id, 0, -1, payload, len)) == 0 && value)
            r = lp_outq_append(&s->outq, s->id, 0, -1, "\n", 1);
        pthread_mutex_unlock(&s->qmu);
    }
    json_decref(h);
    return r;
}

static int queue_frame(lp_session_t *s, json_t *h, const void *payload, size_t len)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_buf_t *b;
    int r;

    if (s->text)
        return queue_text(s, h, payload, len);
    b = lp_buf_new(SIZE_MAX);
    r = h == NULL || b == NULL ? LP_WIRE_ENOMEM : lp_frame_encode(b, h, payload, len, &lim);

    json_decref(h);
    if (r == 0) {
        pthread_mutex_lock(&s->qmu);
        if (!s->closed) {
            r = lp_outq_put_frame(&s->outq, lp_buf_data(b), lp_buf_len(b));
            r = r != 0 ? r : s->outq.len >= LP_WIRE_CHUNK;
        }
        pthread_mutex_unlock(&s->qmu);
    }
    lp_buf_free(b);
    return r;
}

/* Queues a frame whose header text is ready (see lp_outq_put_parts). */
static int queue_parts(lp_session_t *s, const char *h, size_t hlen, const void *payload,
                       size_t plen)
{
    int r = 0;

    pthread_mutex_lock(&s->qmu);
    if (!s->closed) {
        r = lp_outq_put_parts(&s->outq, h, hlen, payload, plen);
        r = r != 0 ? r : s->outq.len >= LP_WIRE_CHUNK;
    }
    pthread_mutex_unlock(&s->qmu);
    return r;
}

/* True when str can go between JSON quotes as it is (no quote, backslash
 * or control character) and within max bytes. */
static bool plain_json_string(const char *str, size_t max)
{
    size_t n = 0;

    for (; str[n] != 0; n++)
        if (n >= max || str[n] == '"' || str[n] == '\\' || (unsigned char)str[n] < 0x20)
            return false;
    return n > 0;
}

int lp_session_reply_done(lp_session_t *s, int64_t re, const char *status)
{
    char h[192];
    int n, r;

    /* framed sessions only (text mode shows no done); session ids are
     * ours (printable ASCII, no quotes), statuses our names */
    n = snprintf(h, sizeof(h), "{\"op\":\"done\",\"re\":%" PRId64 ",\"session\":\"%s\","
                 "\"status\":\"%s\"}", re, s->id, status);
    if (n < 0 || (size_t)n >= sizeof(h))
        return LP_WIRE_EINTERNAL;
    r = queue_parts(s, h, (size_t)n, NULL, 0);
    return r < 0 ? r : lp_session_flush(s);
}

int lp_session_reply(lp_session_t *s, json_t *h, const void *payload, size_t len)
{
    int r = queue_frame(s, h, payload, len);

    /* the final reply leaves with everything before it, in one write */
    return r < 0 ? r : lp_session_flush(s);
}

/* A reply header {"op": op, "re": the running eval, "session": id}. */
static json_t *eval_reply(lp_session_t *s, const char *op)
{
    json_t *h = lp_msg_new(op);
    int64_t re;

    pthread_mutex_lock(&s->qmu);
    re = s->cur_re;
    pthread_mutex_unlock(&s->qmu);
    if (h != NULL && ((re >= 0 && lp_msg_set_int(h, "re", re) != 0) ||
                      lp_msg_set_str(h, "session", s->id) != 0)) {
        json_decref(h);
        return NULL;
    }
    return h;
}

int lp_session_value(lp_session_t *s, const char *type, const char *repr, size_t len)
{
    json_t *h;
    int64_t re;
    bool idle;

    pthread_mutex_lock(&s->qmu);
    re = s->cur_re;
    pthread_mutex_unlock(&s->qmu);
    idle = re < 0;
    if (idle) {
        /* shown by a thread while no eval runs: a value reply would answer
         * nothing, so it is plain output, as the REPL would print it */
        int r = 0;

        pthread_mutex_lock(&s->qmu);
        if (!s->closed && (r = lp_outq_append(&s->outq, s->id, LP_STDOUT, -1, repr, len)) == 0)
            r = lp_outq_append(&s->outq, s->id, LP_STDOUT, -1, "\n", 1);
        pthread_mutex_unlock(&s->qmu);
        return r != 0 ? r : 1;
    }
    if (!s->text && type != NULL && plain_json_string(type, LP_VALUE_TYPE_MAX) &&
        len <= LP_WIRE_PAYLOAD_DEFAULT) {
        /* the reply most requests get: formatted here, not through a JSON tree */
        char hdr[LP_VALUE_TYPE_MAX + 160];
        int n = snprintf(hdr, sizeof(hdr),
                         "{\"op\":\"value\",\"re\":%" PRId64 ",\"session\":\"%s\",\"type\":\"%s\"}",
                         re, s->id, type);

        if (n > 0 && (size_t)n < sizeof(hdr))
            return queue_parts(s, hdr, (size_t)n, repr, len);
    }
    h = eval_reply(s, "value");

    if (h != NULL && type != NULL && lp_msg_set_str(h, "type", type) != 0) {
        json_decref(h);
        h = NULL;
    }
    return queue_frame(s, h, repr, len);
}

int lp_session_exception(lp_session_t *s, const char *type, const char *tb, size_t len)
{
    json_t *h = eval_reply(s, "exception");

    if (h != NULL && lp_msg_set_str(h, "type", type != NULL ? type : "Exception") != 0) {
        json_decref(h);
        h = NULL;
    }
    return queue_frame(s, h, tb, len);
}

int lp_session_page(lp_session_t *s, const char *text, size_t len)
{
    lp_conn_t *c = s->conn;
    bool idle;
    int r;

    pthread_mutex_lock(&s->qmu);
    idle = s->cur_re < 0; /* a thread's help(): nothing to reply to, so print */
    pthread_mutex_unlock(&s->qmu);
    if (idle || s->text || c == NULL || (c->peer_caps & LP_CAP_PAGE) == 0 ||
        len > c->peer_limits.payload_max)
        return 1;
    r = queue_frame(s, eval_reply(s, "page"), text, len);
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

void lp_session_interrupt(lp_session_t *s, int64_t id, lp_conn_t *c, void *tls)
{
    lp_engine_t *e = &s->srv->engine;
    bool waiting, answer_now = false;

    pthread_mutex_lock(&s->qmu);
    s->interrupted = true;
    if (s->intr_at_ms == 0)
        s->intr_at_ms = lp_now_ms();
    if (id >= 0 && s->nintr < LP_INTR_MAX)
        s->intr_ids[s->nintr++] = id;
    else if (id >= 0)
        answer_now = true;
    waiting = s->in_waiting;
    if (waiting)
        pthread_cond_broadcast(&s->incv); /* input() raises KeyboardInterrupt */
    pthread_mutex_unlock(&s->qmu);
    if (answer_now) {
        json_t *h = json_pack("{s:s,s:I,s:s,s:s}", "op", "done", "re", (json_int_t)id, "status",
                              "ok", "was", "running");

        lp_conn_send(c, h, NULL, 0);
        json_decref(h);
    }
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
    for (int i = 0; i < n; i++) {
        json_t *h = json_pack("{s:s,s:I,s:s,s:s}", "op", "done", "re", (json_int_t)ids[i],
                              "status", "ok", "was", "running");

        lp_conn_send(c, h, NULL, 0);
        json_decref(h);
    }
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
    json_t *h;
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
    h = json_pack("{s:s,s:I,s:s,s:s,s:b}", "op", "input", "re", (json_int_t)re, "session", s->id,
                  "prompt", prompt != NULL ? prompt : "", "echo", echo);
    r = lp_session_reply(s, h, NULL, 0);
    if (r == 0 && s->text && s->conn != NULL)
        lp_watch_poke(s->conn); /* the answer may have been typed ahead */
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

void lp_session_close(lp_session_t *s)
{
    lp_conn_t *c = s->conn;
    lp_server_t *srv = s->srv;

    /* smu first: a send in progress finishes before the conn can go away */
    pthread_mutex_lock(&s->smu);
    pthread_mutex_lock(&s->qmu);
    s->closed = true;
    s->conn = NULL;
    lp_outq_clear(&s->outq);
    pthread_cond_broadcast(&s->incv); /* a waiting input() gets end of input */
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_unlock(&s->smu);
    if (s->data != NULL && c != NULL) {
        void *data = s->data;

        s->data = NULL; /* before it is freed: a job's thread may still look */
        srv->engine.session_close(srv->engine.ctx, c->tls, data);
    }
    for (lp_session_t **p = c != NULL ? &c->sessions : NULL; p != NULL && *p != NULL;
         p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_lock(&srv->mu);
    srv->nsessions--;
    pthread_mutex_unlock(&srv->mu);
    lp_session_unref(s);
}
