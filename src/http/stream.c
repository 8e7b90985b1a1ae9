/* stream.c: a run's output as server-sent events (docs/http.md): "event:
 * stdout" / "stderr" with "id:" the offset after the piece (where a
 * client that comes back with Last-Event-ID resumes) and "data:" the text
 * as a JSON string; then "event: done" with the run's answer. The
 * response's callback never blocks: with nothing to send it parks the
 * connection (park.c) until output, the end, or LP_HTTP_KEEPALIVE_S of
 * quiet, when it sends a comment. */
#include "http/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io.h"

typedef struct stream {
    lp_http_t *h;
    struct MHD_Connection *c;
    lp_run_t *r;
    lp_http_park_t park;
    uint64_t quiet_ms; /* when the last event was made (lp_clock_ms) */
    uint64_t start;  /* the offset the stream began at: its done's output is from there */
    uint64_t since;  /* the offset sent up to */
    char *buf;       /* events made, not yet given to libmicrohttpd */
    size_t len, pos, cap;
    bool finished;   /* done is in buf */
    bool failed;     /* out of memory: the stream ends */
} stream_t;

static void put(stream_t *st, const char *s, size_t n)
{
    if (st->failed)
        return;
    if (st->len + n > st->cap) {
        size_t cap = st->cap != 0 ? st->cap : 8192;
        char *b;

        while (cap < st->len + n)
            cap *= 2;
        if ((b = realloc(st->buf, cap)) == NULL) {
            st->failed = true;
            return;
        }
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, s, n);
    st->len += n;
}

/* One event; data (a reference stolen) on one line, as JSON. */
static void event(stream_t *st, const char *name, uint64_t id, json_t *data)
{
    char head[96];
    char *text = data != NULL ? json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(12)) : NULL;
    int n = id != UINT64_MAX ? snprintf(head, sizeof(head), "event: %s\nid: %llu\ndata: ", name,
                                        (unsigned long long)id)
                             : snprintf(head, sizeof(head), "event: %s\ndata: ", name);

    json_decref(data);
    if (text == NULL) {
        st->failed = true;
        return;
    }
    put(st, head, (size_t)n);
    put(st, text, strlen(text));
    put(st, "\n\n", 2);
    free(text);
}

static int chunk_event(void *arg, const lp_run_chunk_t *c)
{
    static const char *const names[] = {"stdout", "stderr", "help"}; /* a value: stdout */

    event(arg, names[c->stream >= 0 && c->stream <= 2 ? c->stream : 0], c->offset + c->len,
          lp_http_text(c->data, c->len));
    return 0;
}

/* Makes the next events there are, without waiting: the buffer stays
 * empty when there are none. */
static void fill(stream_t *st)
{
    /* Ended first, output next: a run's output is all in before it ends,
     * so nothing is missed between the two looks. */
    bool ended = lp_run_ended(st->r), dropped;
    uint64_t next;

    lp_run_chunks(st->r, st->since, chunk_event, st, &next, &dropped);
    st->since = next;
    if (st->len == 0 && ended) {
        event(st, "done", UINT64_MAX, lp_run_json(st->r, st->start));
        st->finished = true;
    } else if (st->len == 0 && lp_clock_ms() >= st->quiet_ms + LP_HTTP_KEEPALIVE_S * 1000) {
        put(st, ": keep-alive\n\n", 14);
    }
    if (st->len > 0)
        st->quiet_ms = lp_clock_ms();
}

static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max)
{
    stream_t *st = cls;
    size_t n;

    if (st->pos == st->len) {
        st->pos = st->len = 0;
        if (st->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        lp_http_unpark(&st->park); /* called again after a park */
        if (atomic_load(&st->h->stopping))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        fill(st);
        if (st->failed) /* out of memory */
            return MHD_CONTENT_READER_END_WITH_ERROR;
        if (st->len == 0) /* nothing yet: called again once resumed */
            return lp_http_park(&st->park, st->h, st->c, st->r, st->since,
                                st->quiet_ms + LP_HTTP_KEEPALIVE_S * 1000)
                       ? 0 : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = st->len - st->pos < max ? st->len - st->pos : max;
    memcpy(out, st->buf + st->pos, n);
    st->pos += n;
    return (ssize_t)n;
}

static void release(void *cls)
{
    stream_t *st = cls;

    lp_http_unpark(&st->park);
    lp_run_unref(st->r);
    free(st->buf);
    free(st);
}

bool lp_http_wants_stream(struct MHD_Connection *c)
{
    const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);

    return accept != NULL && strstr(accept, "text/event-stream") != NULL;
}

enum MHD_Result lp_http_stream(lp_http_req_t *rq, struct MHD_Connection *c, lp_run_t *r,
                               uint64_t since, bool announce)
{
    stream_t *st = calloc(1, sizeof(*st));
    struct MHD_Response *resp;

    if (st == NULL) {
        lp_run_unref(r);
        return MHD_NO;
    }
    st->h = rq->h;
    st->c = c;
    st->r = r;
    st->quiet_ms = lp_clock_ms();
    st->start = st->since = since;
    rq->outcome = "stream";
    if (announce) /* the run's number first, for a client that comes back to it */
        event(st, "run", UINT64_MAX, json_pack("{sIss}", "run", (json_int_t)lp_run_id(r), "env",
                                               rq->env));
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, reader, st, release);
    if (resp == NULL) {
        release(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return lp_http_reply(rq, c, MHD_HTTP_OK, resp);
}
