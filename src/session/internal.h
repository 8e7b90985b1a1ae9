/* internal.h: the session layer's private structures. */
#ifndef LP_SESSION_INTERNAL_H
#define LP_SESSION_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "io/io.h"
#include "net/net.h"
#include "session/server.h"
#include "wire/frame.h"
#include "wire/hdr.h"

typedef struct lp_conn lp_conn_t;

#define LP_ENV_NAME_MAX 64 /* docs/protocol.md 7 */

/* An environment: a namespace sessions run in (env.c). */
typedef struct lp_env {
    char name[LP_ENV_NAME_MAX + 1]; /* [A-Za-z0-9_.-], 1-64 bytes */
    void *data;                   /* the engine's handle (the namespace), borrowed */
    unsigned sessions;            /* open sessions in it (under srv->mu) */
    uint64_t created_ms;          /* lp_clock_ms at creation */
    struct lp_env *next;          /* in srv->envs, in creation order */
} lp_env_t;

/* A session's queue: the output limit, then one reply at most (a value's
 * repr of the largest payload): the hard maximum of its lp_buf. */
#define LP_OUTQ_MAX (LP_OUTPUT_QUEUE_MAX + 2 * (LP_WIRE_PREFIX_LEN + LP_WIRE_HEADER_MAX) + \
                     LP_WIRE_PAYLOAD_DEFAULT)
#define LP_CONN_PENDING_MAX (LP_OUTPUT_QUEUE_MAX + (1u << 20)) /* bytes queued without blocking */
#define LP_CONN_STACK 0 /* the default (virtual; a few pages resident): user code runs on
                           connection threads, and deep recursion needs the room */
#define LP_INTR_MAX 8 /* interrupt requests answered per eval; more are answered at once */

/* Output not yet sent: the bytes its sink made of the session's events.
 * For the framed sink, consecutive writes to the same stream grow the last
 * out frame in place, up to LP_WIRE_CHUNK. */
struct lp_sink;

/* What a session needs of whatever carries its bytes: a connection today;
 * an HTTP request, a Jupyter socket or a context link next. A session
 * knows no socket: only this. */
typedef struct lp_port {
    /* Sends whole frames (or text) after those sent before: 0 or a negative
     * code. Blocks unless the calling thread must not (the watcher). */
    int (*send)(struct lp_port *p, const void *data, size_t len);
    /* True while output waits to leave: the flusher leaves a session's
     * queue where it is (its writer blocks when it is full). */
    bool (*congested)(struct lp_port *p);
    /* input() asked: serve what the peer sent ahead of the question. */
    void (*poke)(struct lp_port *p);
    unsigned caps;                /* LP_CAP_* bits the peer asked for */
    lp_limits_t limits;           /* what the peer accepts */
} lp_port_t;

typedef struct lp_outq {
    lp_buf_t *buf;       /* the bytes (frames, or text); NULL until the first */
    size_t last;         /* offset of the last frame's prefix */
    int last_stream;     /* its stream, -1 when there is no last frame */
    int64_t last_re;     /* its re, -1 for none */
} lp_outq_t;

struct lp_session {
    atomic_int refs;              /* owners: the conn's table, engine threads, flusher */
    char id[LP_WIRE_SESSION_ID_MAX + 1]; /* server-wide unique */
    lp_server_t *srv;             /* the server it belongs to */
    lp_port_t *port;              /* where its bytes go; NULL once closed (under qmu) */
    void *data;                   /* the engine's state */
    lp_env_t *env;                /* where its code runs; holds a count on it */
    lp_session_t *next;           /* in conn->sessions */
    pthread_mutex_t qmu;          /* guards outq, conn, cur_re, closed; never held while sending */
    pthread_mutex_t smu;          /* serialises this session's sends, keeps them in order */
    lp_outq_t outq;               /* queued output */
    int64_t cur_re;               /* id of the running eval (>= 0 while one runs), -1 when idle */
    uint64_t last_flush_ms;       /* when output was last sent */
    bool flush_pending;           /* on the flusher's list */
    bool closed;                  /* closed: output is dropped */
    lp_session_t *flush_next;     /* in srv->flush_list */
    /* input() and interrupt, under qmu: */
    pthread_cond_t incv;          /* an answer arrived, or the wait was interrupted */
    uint8_t *in_data;             /* the answer to input(), owned */
    size_t in_len;                /* its bytes */
    bool in_waiting;              /* input() waits for an answer */
    bool in_ready;                /* in_data (or in_eof) is the answer */
    bool in_eof;                  /* the client has no more input, or left */
    bool interrupted;             /* an interrupt arrived for the running eval */
    int64_t intr_ids[LP_INTR_MAX]; /* interrupt requests to answer after the eval's done */
    int nintr;                    /* how many */
    uint64_t intr_at_ms;          /* when the running eval was first interrupted, 0 if not */
    const struct lp_sink *sink;   /* what its events look like to its front end */
};

/* A request the watcher read while an eval ran, served after it. */
typedef struct lp_deferred {
    lp_frame_t frame;             /* owned */
    const struct lp_op_spec *spec; /* its op, already checked by the watcher */
    struct lp_deferred *next;     /* in arrival order */
} lp_deferred_t;

struct lp_conn {
    int fd;                       /* the socket */
    lp_server_t *srv;             /* owner */
    lp_writer_t out;              /* the one way bytes leave for this client */
    bool handshaken;              /* the hello was accepted (under srv->mu) */
    bool authed;                  /* the peer is known to be us (or root), or showed the token */
    bool preauth;                 /* counted in srv->npreauth, not srv->nconns (under srv->mu) */
    uint64_t preauth_deadline;    /* when a peer still to show the token is dropped (ms) */
    lp_buf_t *in;                 /* bytes read, not yet decoded */
    lp_port_t port;               /* what its sessions see of it: caps, limits, send */
    lp_session_t *sessions;       /* sessions it owns (touched by its thread only) */
    void *tls;                    /* engine thread data, NULL until first needed */
    lp_conn_t *next;              /* in srv->conns */
    /* While an eval runs, the watcher reads fd; under srv->wmu: */
    int wpins;                    /* a thread uses c->in without srv->wmu (the watcher, a poke) */
    uint64_t detach_tick;         /* the watcher's tick that last tried to detach its eval */
    bool watched;                 /* registered with the watcher */
    bool peer_gone;               /* the watcher saw the client leave */
    bool polled;                  /* fd is in the watcher's epoll set */
    bool no_poll;                 /* the client stopped sending: never poll it again */
    uint64_t watch_since;         /* when its eval began (ms) */
    lp_session_t *running;        /* the session evaluating on this conn's thread */
    lp_deferred_t *deferred;      /* requests to serve after the eval, in order */
    lp_deferred_t **deferred_tail; /* where the next one goes */
    lp_conn_t *wnext;             /* in srv->watched */
    bool text;                    /* plain-text mode (text.c) */
};

struct lp_server {
    lp_engine_t engine;           /* copy of the caller's */
    json_t *identity;             /* "server" object for hello replies (own reference) */
    const char *const *caps;      /* what the handshake and describe offer */
    unsigned cap_bits;            /* the LP_CAP_* of those that gate requests (env) */
    char path[LP_NET_PATH_MAX];   /* socket path, or the TCP "host:port" */
    bool tcp;                     /* listening on TCP */
    char token[LP_WIRE_TOKEN_MAX + 1]; /* TCP: what an unknown peer must send */
    char dir[4096];               /* runtime directory of the discovery record, "" if none */
    int listen_fd;                /* listening socket */
    int wake_fd;                  /* eventfd: wakes the acceptor to stop */
    unsigned max_connections;     /* limits */
    unsigned max_sessions;
    pthread_t acceptor;           /* accepts connections */
    pthread_t flusher;            /* sends output that waited LP_FLUSH_MS */
    pthread_t watcher;            /* reads the sockets of connections that evaluate */
    int epfd;                     /* the watcher's epoll set */
    int wwake_fd;                 /* eventfd: wakes the watcher to stop */
    void *wtls;                   /* the watcher's engine thread data */
    pthread_mutex_t wmu;          /* guards the watched list; never held across I/O or the GIL */
    pthread_cond_t wcv;           /* a connection was unpinned */
    lp_conn_t *watched;           /* connections whose eval runs */
    int grace_ms;                 /* from the config */
    bool watcher_asleep;          /* in epoll_wait for longer than a tick (under wmu) */
    uint64_t ticks;               /* the watcher's ticks (under wmu) */
    uint64_t watch_busy_until;    /* the watcher ticks until then (ms, under wmu) */
    pthread_mutex_t mu;           /* guards what follows */
    pthread_cond_t cv;            /* threads == 0, flush list, stopping */
    lp_conn_t *conns;             /* live connections */
    lp_env_t *envs;               /* environments, LP_ENV_MAIN first */
    unsigned nconns;              /* their number, less those still to show the token */
    unsigned npreauth;            /* connections still to show the token */
    unsigned nsessions;           /* open sessions, server-wide */
    uint64_t next_session;        /* for session ids */
    unsigned threads;             /* live connection and refusal threads */
    unsigned refusing;            /* refusal threads among them */
    lp_session_t *flush_list;     /* sessions with output waiting */
    bool kick;                    /* some connection's writer has bytes queued */
    bool stopping;                /* stop has begun */
};


/* env.c */
/* True for a valid environment name. */
bool lp_env_name_ok(const char *name);
/* Adds environment name with the engine's handle data: 0, LP_WIRE_EFIELD
 * for a bad name, -EEXIST, LP_WIRE_ENOMEM. */
int lp_env_add(lp_server_t *srv, const char *name, void *data);
/* Finds environment name (NULL: LP_ENV_MAIN) and counts a session in it:
 * 0, or LP_WIRE_EFIELD when there is none of that name. */
int lp_env_acquire(lp_server_t *srv, const char *name, lp_env_t **out);
/* A session left env (NULL is accepted). */
void lp_env_release(lp_server_t *srv, lp_env_t *env);
/* [{"env": name, "sessions": n}, ...], new reference, or NULL. */
json_t *lp_env_list(lp_server_t *srv);
/* Frees the table; no session may be open. */
void lp_env_free_all(lp_server_t *srv);

/* session.c */
/* The wire name of an lp_eval_status_t ("ok", "more", ...); static. */
const char *lp_eval_status_name(int status);
/* A new session in env, presented by sink, its bytes sent through port
 * (borrowed: it must outlive the session, or the session be closed first).
 * 0, LP_WIRE_ETOOMANY at the server's session limit, LP_WIRE_ENOMEM. */
int lp_session_new(lp_server_t *srv, lp_env_t *env, const struct lp_sink *sink, lp_port_t *port,
                   lp_session_t **out);
/* Closes s: no more output, a waiting input() gets end of input, the
 * engine's state is freed on this thread (tls), the reference is dropped. */
void lp_session_close(lp_session_t *s, void *tls);
int lp_session_begin(lp_session_t *s, int64_t re);
/* Opens a session on c in environment env (NULL: LP_ENV_MAIN), the
 * engine's side too: 0, or the wire error to answer with (LP_WIRE_ETOOMANY
 * at the session limit, LP_WIRE_EFIELD for no such environment). */
int lp_conn_open_session(lp_conn_t *c, const char *env, lp_session_t **out);
/* Ends eval re with status (docs/protocol.md), after its output, and sends
 * it all; job: the job's id for status "detached". */
int lp_session_reply_done(lp_session_t *s, int64_t re, const char *status, int64_t job);
void lp_session_end(lp_session_t *s);

/* The flusher's flush: LP_WIRE_EBUSY, without waiting, when another
 * thread is sending for s or its connection's writer is congested. */
int lp_session_try_flush(lp_session_t *s);

/* outq.c */
int lp_outq_append(lp_outq_t *q, const char *session, int stream, int64_t re, const void *data,
                   size_t len);
/* Appends an encoded frame (a value, an exception, a done). */
int lp_outq_put_frame(lp_outq_t *q, const void *frame, size_t len);
/* Appends bytes as they are (plain text). */
int lp_outq_put(lp_outq_t *q, const void *data, size_t len);
/* Appends a frame from its header text (valid JSON, within the limits)
 * and payload. */
int lp_outq_put_parts(lp_outq_t *q, const char *header, size_t hlen, const void *payload,
                      size_t plen);
/* Bytes queued / the first of them (NULL when none were ever queued). */
size_t lp_outq_len(const lp_outq_t *q);
const uint8_t *lp_outq_data(const lp_outq_t *q);
/* Empties q without freeing (its bytes were taken) / freeing its bytes. */
void lp_outq_init(lp_outq_t *q);
void lp_outq_clear(lp_outq_t *q);

/* flusher.c */
void *lp_flusher_main(void *arg);
void lp_flusher_request(lp_session_t *s);

/* watcher.c */
void *lp_watcher_main(void *arg);
/* Hands c's socket to the watcher while c->running evaluates; buffered
 * input is served first. */
void lp_watch(lp_conn_t *c);
/* Serves input already buffered for c (a typed-ahead answer to input()). */
void lp_watch_poke(lp_conn_t *c);
/* Takes the socket back; the watcher no longer touches c. */
void lp_unwatch(lp_conn_t *c);
/* Serves one request frame (consumed) that arrived while c evaluates. */
void lp_watch_serve(lp_conn_t *c, lp_frame_t *f, void *tls);

/* session.c, for the watcher */
/* Interrupt request id (-1: none to answer) for s, running on c. */
void lp_session_interrupt(lp_session_t *s, int64_t id, lp_conn_t *c, void *tls);
/* Gives input() its answer: 0, or LP_WIRE_EFIELD when none is waiting. */
int lp_session_give_input(lp_session_t *s, const uint8_t *data, size_t len, bool eof);
/* Answers the interrupt requests recorded during the eval that ended. */
void lp_session_answer_interrupts(lp_session_t *s, lp_conn_t *c);

/* text.c */
void lp_text_serve(lp_conn_t *c);
/* The line loop of an open text session; LP_EDETACHED as above. */
int lp_text_loop(lp_conn_t *c);
/* The watcher's side: input() answers and Ctrl+C while code runs. */
int lp_text_watch_serve(lp_conn_t *c, void *tls);

/* conn.c */
void *lp_conn_main(void *arg);
/* Reads more bytes into c->in, through the one read loop (lp_reader_fill,
 * raw in plain-text mode), waiting at most timeout_ms (-1: forever). */
int lp_conn_fill(lp_conn_t *c, int timeout_ms);
/* True when token is the server's (compared in constant time); a refusal
 * is logged on stderr. */
bool lp_conn_token_ok(lp_conn_t *c, const char *token);
/* A peer that was not known to be us showed token: 0 when it is right and
 * the connection moved from the pre-authentication pool to the server's
 * connections; LP_WIRE_EFORBIDDEN (wrong token) or LP_WIRE_ETOOMANY (no
 * room left among the connections). */
int lp_conn_admit(lp_conn_t *c, const char *token);
/* Milliseconds this connection may still wait for its peer's first words:
 * timeout_ms, or less for a peer still to show the token. */
int lp_conn_wait_budget(const lp_conn_t *c, int timeout_ms);
/* Makes sure this thread may call the engine (c->tls): 0 or an error. */
int lp_conn_enter(lp_conn_t *c);
/* Runs an eval of s on c's thread, with the watcher hearing c meanwhile;
 * the engine's status, or LP_EDETACHED when the eval became a job:
 * another thread serves c now, and the caller must unwind and end its
 * thread without touching c. */
int lp_conn_run_eval(lp_conn_t *c, lp_session_t *s, const lp_eval_req_t *req);
/* A new thread that goes on serving c after a detach. */
int lp_conn_resume(lp_conn_t *c);
/* Sends an error frame; re < 0 for none. */
int lp_conn_send_error(lp_conn_t *c, int err, int64_t re, const char *message, const char *field);
/* Sets up c->port: what c's sessions see of c. */
void lp_conn_init_port(lp_conn_t *c);
/* The session id of c, or NULL. */
lp_session_t *lp_conn_find_session(lp_conn_t *c, const char *id);
/* Closes session s of c. */
void lp_conn_close_session(lp_conn_t *c, lp_session_t *s);
/* Closes the connection's sessions and frees it; its thread ends after. */
void lp_conn_finish(lp_conn_t *c);
/* Sends the frame of header h (ended here) and payload, in one write. */
int lp_conn_send_frame(lp_conn_t *c, lp_hdr_t *h, const void *payload, size_t len);
/* Sends bytes (whole frames, or text) after everything sent before them.
 * On a thread marked by lp_conn_thread_never_blocks, what the socket does
 * not take at once waits in c->out (the flusher sends it on); on any other
 * thread the call returns once all is written. */
int lp_conn_send_raw(lp_conn_t *c, const void *data, size_t len);
/* Marks the calling thread as one that serves every client (the watcher,
 * the flusher): its sends never block, so a client that reads nothing
 * costs only itself. */
void lp_conn_thread_never_blocks(void);
/* False on such a thread. */
bool lp_conn_thread_may_block(void);
/* The flusher's side: sends what waits in the queues of the connections'
 * writers, without blocking: true when some still wait. */
bool lp_conn_kick_all(lp_server_t *srv);

#endif
