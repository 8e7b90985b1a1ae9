/* internal.h: the HTTP front end's state, shared by its files: daemon.c
 * (libmicrohttpd, the gate every request passes, the log), reply.c (JSON
 * answers and errors), api.c (/api/...), stream.c (server-sent events),
 * article.c (the article's form endpoints and the console page), park.c
 * (connections suspended while their run has nothing for them). */
#ifndef LP_HTTP_INTERNAL_H
#define LP_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "http/check.h"
#include "http/http.h"
#include "http/route.h"
#include "serve/serve.h"

#define LP_HTTP_LOG_URI_MAX 256
#define LP_HTTP_KEEPALIVE_S 15    /* an idle event stream sends a comment this often */

/* A connection parked on a run (park.c): part of a request or a stream. */
typedef struct lp_http_park {
    struct lp_http_park *prev, *next; /* in h->parked, under h->park_mu */
    lp_http_t *h;
    struct MHD_Connection *c;
    lp_run_t *r;                  /* watched (the owner holds the reference); NULL: idle */
    lp_run_watch_t w;
    uint64_t deadline_ms;         /* the timer resumes it then (lp_clock_ms) */
    bool parked;                  /* suspended, not yet resumed (under park_mu) */
} lp_http_park_t;

struct lp_http {
    struct MHD_Daemon *d;
    lp_serve_t *sv;
    char *token;
    char who[24];                 /* "token:xxxxxx", a hash of the token: the journal's who */
    lp_http_hosts_t hosts;
    bool tls;
    size_t body_max, header_max;
    unsigned max_connections;
    unsigned port;
    atomic_uint conns;            /* open connections */
    atomic_bool stopping;
    atomic_uint waiting;          /* requests waiting for their run (park.c) */
    void (*log)(void *arg, const char *line);
    void *log_arg;
    char *cert, *key;             /* PEM text under TLS */
    /* park.c */
    pthread_mutex_t park_mu;
    pthread_cond_t park_cv;       /* the timer: a sooner deadline, or the stop */
    lp_http_park_t *parked;       /* suspended connections */
    uint64_t timer_next;          /* the deadline the timer waits for */
    pthread_t timer;
    bool park_started, park_closed;
};

typedef struct lp_http_req lp_http_req_t;

/* What a request that waited for its run answers: ended false when the
 * server stops first. */
typedef enum MHD_Result (*lp_http_done_t)(lp_http_req_t *rq, struct MHD_Connection *c,
                                          lp_run_t *r, bool ended);

/* One request, from its URI to its completion (MHD's con_cls). */
struct lp_http_req {
    lp_http_t *h;
    uint64_t start_us;
    char method[16];
    char uri[LP_HTTP_LOG_URI_MAX]; /* as logged: no token */
    size_t uri_len;                /* the URI's real length, for the header bound */
    bool gated;                    /* its headers passed the checks */
    bool too_large;                /* its body went over body_max: 413 once read */
    bool page_refused;            /* GET / without the right token: the page, as a 401 */
    char *body;
    size_t len, cap;
    size_t dropped;                /* bytes of a body over the limit, read and dropped */
    unsigned status;               /* answered with, 0 before */
    char env[LP_HTTP_NAME_MAX + 1];
    uint64_t run;
    const char *outcome;           /* the run's status, for the log */
    lp_run_t *waiting;             /* the run it waits for (a reference), or NULL */
    bool counted;                  /* in h->waiting until it completes: answered is not sent */
    lp_http_done_t done;           /* its answer once the run ended */
    lp_http_park_t park;
};

/* reply.c */
#define LP_HTTP_JSON_TYPE "application/json; charset=utf-8"

/* Queues body (a reference stolen) as JSON with status. */
enum MHD_Result lp_http_reply_json(lp_http_req_t *rq, struct MHD_Connection *c, unsigned status,
                                   json_t *body);
/* {"error": {"code", "message"}} with status. */
enum MHD_Result lp_http_reply_error(lp_http_req_t *rq, struct MHD_Connection *c, unsigned status,
                                    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The error for a code of serve.h about environment env; msg, when not
 * empty, is the core's sentence. */
enum MHD_Result lp_http_reply_serve(lp_http_req_t *rq, struct MHD_Connection *c, int err,
                                    const char *env, const char *msg);
/* Queues a response made by the caller (headers added here). */
enum MHD_Result lp_http_reply(lp_http_req_t *rq, struct MHD_Connection *c, unsigned status,
                              struct MHD_Response *r);
/* The body as a JSON object: NULL after answering 400 (*ret says what to
 * return). An empty body is {}. */
json_t *lp_http_body_object(lp_http_req_t *rq, struct MHD_Connection *c, enum MHD_Result *ret);
/* The UTF-8 text data[0..len) as a JSON string: a byte that is not UTF-8
 * becomes U+FFFD. NULL only when out of memory. */
json_t *lp_http_text(const char *data, size_t len);

/* api.c */
enum MHD_Result lp_http_api(lp_http_req_t *rq, struct MHD_Connection *c, const lp_http_route_t *rt);

/* stream.c */
/* Answers with r's output from since as server-sent events, then its end;
 * takes the reference r. announce: first an event naming the run. */
enum MHD_Result lp_http_stream(lp_http_req_t *rq, struct MHD_Connection *c, lp_run_t *r,
                               uint64_t since, bool announce);
/* True when the request asks for server-sent events. */
bool lp_http_wants_stream(struct MHD_Connection *c);

/* park.c */
/* Suspends c (from its access handler or content reader) until r has
 * output past since or ends, deadline_ms passes (LP_CLOCK_NEVER: never),
 * or the server stops; the caller then returns (MHD_YES, or 0 from a
 * reader) and is called again once resumed, where it calls
 * lp_http_unpark first. false when the server stops: not parked. */
bool lp_http_park(lp_http_park_t *p, lp_http_t *h, struct MHD_Connection *c, lp_run_t *r,
                  uint64_t since, uint64_t deadline_ms);
/* Forgets p's watcher; before p is parked again or freed. Idle p: nothing. */
void lp_http_unpark(lp_http_park_t *p);
int lp_http_park_start(lp_http_t *h);
/* No more parking; resumes every parked connection (libmicrohttpd stops
 * only without any) and ends the timer. */
void lp_http_park_close(lp_http_t *h);
void lp_http_park_free(lp_http_t *h);
/* Answers with done(rq, c, r, ...) once r has ended, the connection parked
 * meanwhile; takes the reference r. */
enum MHD_Result lp_http_wait(lp_http_req_t *rq, struct MHD_Connection *c, lp_run_t *r,
                             lp_http_done_t done);
/* The access handler called again for a request that waits (rq->waiting). */
enum MHD_Result lp_http_wait_again(lp_http_req_t *rq, struct MHD_Connection *c);
/* The request is over (its connection closed): no more waiting. */
void lp_http_wait_drop(lp_http_req_t *rq);

/* article.c */
enum MHD_Result lp_http_article(lp_http_req_t *rq, struct MHD_Connection *c,
                                const lp_http_route_t *rt);
enum MHD_Result lp_http_console(lp_http_req_t *rq, struct MHD_Connection *c);

#endif
