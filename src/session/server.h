/* server.h: the embedded server's core, below Python: listeners, one thread
 * per connection, sessions and their output. Evaluation is delegated to an
 * engine (src/py/ supplies the CPython one), so this layer never includes
 * Python.h. Functions return 0 or a negative errno / LP_WIRE_E* code. */
#ifndef LP_SESSION_SERVER_H
#define LP_SESSION_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wire/wire.h" /* the one error space */

typedef struct lp_server lp_server_t;
typedef struct lp_session lp_session_t;

/* Server-side defaults of docs/protocol.md section 4. */
#define LP_HELLO_TIMEOUT_MS 5000
#define LP_TEXT_DETECT_MS 250
#define LP_MAX_CONNECTIONS 256         /* peers known to be us (kernel-checked or token shown) */
#define LP_MAX_PREAUTH 16               /* peers still to show the token, at once (sshd: MaxStartups) */
#define LP_PREAUTH_TIMEOUT_MS 3000      /* ...and how long each has to show it */
#define LP_MAX_SESSIONS 4096
#define LP_OUTPUT_QUEUE_MAX (4u << 20)  /* per session: buffered, unsent output */
#define LP_FLUSH_MS 5                   /* output waits at most this long to be sent */
#define LP_SEND_TIMEOUT_MS 30000        /* a client that reads nothing this long is dropped */
#define LP_WATCH_LAZY_MS 10             /* an eval's socket is watched once it ran this long */
#define LP_WATCH_IDLE_MS 250            /* the watcher keeps ticking this long after the last eval */
#define LP_GRACE_MS 1000                /* interrupted, still stuck: then it becomes a job */
#define LP_TEXT_LINE_MAX 65536          /* one line in plain-text mode */
#define LP_LINGER_MS 500                /* closing: time for the peer to read our last reply */
#define LP_EXC_MESSAGE_MAX 4096         /* an exception frame's message: str(exc), cut here */
#define LP_MAX_REFUSING 32              /* refusals being delivered at once; more are just closed */

typedef enum lp_stream { LP_STDOUT = 0, LP_STDERR = 1, LP_STDIN = 2 } lp_stream_t;

/* How an evaluation ended: docs/protocol.md, eval statuses. */
typedef enum lp_eval_status {
    LP_EVAL_OK,          /* "ok" */
    LP_EVAL_MORE,        /* "more": interactive input is incomplete */
    LP_EVAL_EXCEPTION,   /* "exception" */
    LP_EVAL_INTERRUPTED, /* "interrupted" */
    LP_EVAL_CLOSED,      /* "closed": the code ended the session */
    LP_EVAL_DETACHED,    /* "detached": stuck past the grace period, it went on as a job */
} lp_eval_status_t;

/* How an eval's code is compiled: eval's mode (capability cell). */
typedef enum lp_eval_mode {
    LP_MODE_EXEC,   /* interactive: false: one complete unit, no value */
    LP_MODE_SINGLE, /* interactive: true: REPL rules, pending input, single mode */
    LP_MODE_CELL,   /* the whole code; a last expression statement's value is shown */
} lp_eval_mode_t;

/* One eval request, as the engine receives it. */
typedef struct lp_eval_req {
    const char *code;     /* UTF-8, no NUL inside; code[len] == 0 */
    size_t len;           /* bytes of code */
    lp_eval_mode_t mode;  /* how it is compiled */
    const char *filename; /* for tracebacks */
} lp_eval_req_t;

/* What the server needs from the language runtime. All callbacks run on
 * server threads; the engine takes whatever lock its runtime needs. */
typedef struct lp_engine {
    void *ctx; /* passed to every callback */
    /* A server thread will call the engine: set up what it needs (*tls). */
    int (*thread_enter)(void *ctx, void **tls);
    /* The thread is done with the engine. */
    void (*thread_exit)(void *ctx, void *tls);
    /* A new session in environment env (the handle given for it: for
     * LP_ENV_MAIN, cfg->main_env): create its runtime state in *data. */
    int (*session_open)(void *ctx, void *tls, lp_session_t *s, void *env, void **data);
    /* The session is closed: free data. */
    void (*session_close)(void *ctx, void *tls, void *data);
    /* Run req in session s; report output, values and exceptions with the
     * lp_session_* functions below; return an lp_eval_status_t. */
    int (*eval)(void *ctx, void *tls, lp_session_t *s, void *data, const lp_eval_req_t *req);
    /* Forget the session's pending interactive input (Ctrl+C at the prompt). */
    void (*reset)(void *ctx, void *tls, void *data);
    /* Interrupt the eval of session data running on the thread of
     * target_tls; called from another server thread (whose tls is tls). */
    void (*interrupt)(void *ctx, void *tls, void *target_tls, void *data);
    /* Completions of text[0..cursor) (UTF-8 bytes): a new array of strings,
     * with *start the byte offset they replace from; NULL on failure. */
    json_t *(*complete)(void *ctx, void *tls, void *data, const char *text, size_t len,
                        size_t cursor, size_t *start);
    /* The eval of session data, running on the thread of target_tls, did not
     * stop within the grace period after an interrupt: from now on it is a
     * background job, and its eval callback must not touch data when it
     * returns (it returns LP_EVAL_DETACHED). Returns the job's id, or -1. */
    int64_t (*detach)(void *ctx, void *tls, void *target_tls, void *data);
    /* Optional: the engine's environments beyond LP_ENV_MAIN (limpet serve's,
     * made over HTTP too). A clone naming an environment asks it: 0 when
     * name exists there (its sessions get name itself as their env handle),
     * else nonzero. NULL: only LP_ENV_MAIN exists. */
    int (*env_exists)(void *ctx, const char *name);
    /* Optional: describe's "envs" ([{"env", ...}, ...], a new reference)
     * from the engine; NULL: the server's own table. */
    json_t *(*env_list)(void *ctx);
    /* Optional: the env-* operations (op: "env-create", "env-list",
     * "env-info", "env-delete"; req: the request's header). The done's
     * fields (a new object), or NULL with *err (an LP_WIRE_E* code), a
     * sentence in msg and the field at fault in *field. Its presence makes
     * the server offer capability "env". */
    json_t *(*env_op)(void *ctx, const char *op, const json_t *req, int *err, char *msg,
                      size_t size, const char **field);
    /* Capability check: is code[0..len) complete by the REPL's rules, with the
     * session's compiler flags? Runs nothing. The done's fields ("complete",
     * "indent"), a new object; NULL on failure. May be called while the
     * session evaluates, from another server thread (its own tls). */
    json_t *(*check)(void *ctx, void *tls, void *data, const char *code, size_t len);
    /* Capability inspect: the help text of the name at cursor (UTF-8 bytes)
     * of text[0..len), detail 0 or 1, at most max bytes, in *doc (malloc'd,
     * *doc_len bytes). The done's fields ("found"), a new object; NULL on
     * failure. Runs no property or __getattr__. */
    json_t *(*inspect)(void *ctx, void *tls, void *data, const char *text, size_t len,
                       size_t cursor, int detail, size_t max, char **doc, size_t *doc_len);
} lp_engine_t;

typedef struct lp_server_config {
    const char *path;          /* Unix socket path; NULL: <runtime dir>/<pid>.sock */
    const char *tcp;           /* or "HOST:PORT" / "[V6]:PORT" to listen on TCP instead */
    const char *token;         /* TCP: the secret a peer not known as us must send */
    bool allow_remote;         /* TCP: a non-loopback address is allowed (token required) */
    json_t *identity;          /* borrowed: "server" object of the hello reply */
    unsigned max_connections;  /* 0: LP_MAX_CONNECTIONS; peers still to show the token have
                                  their own limit, LP_MAX_PREAUTH, and cannot take these */
    unsigned max_sessions;     /* 0: LP_MAX_SESSIONS */
    int grace_ms;              /* interrupted code stuck this long becomes a job; 0: default */
    void *main_env;            /* the engine's handle of environment LP_ENV_MAIN (borrowed) */
} lp_server_config_t;

#define LP_ENV_MAIN "main" /* the environment a session gets when it names none */

/* The capabilities this server offers (docs/protocol.md), NULL-terminated:
 * the one list that the handshake and describe both give. */
extern const char *const lp_server_caps[];

/* Starts listening and serving; *out owns the running server. The engine
 * struct is copied. On failure nothing is left running. */
int lp_server_start(const lp_server_config_t *cfg, const lp_engine_t *engine, lp_server_t **out);
/* The address clients connect to (the socket path); owned by srv. */
const char *lp_server_address(const lp_server_t *srv);
/* Stops: refuses new connections, says bye to every client, closes them,
 * waits up to timeout_ms for every thread to finish, then frees srv.
 * Returns 0, or -ETIMEDOUT when threads were still busy (srv is then
 * leaked on purpose: those threads still use it). */
int lp_server_stop(lp_server_t *srv, int timeout_ms);
/* In a forked child: closes the server's descriptors without touching its
 * threads (the child has none) or its locks, and forgets srv. */
void lp_server_forget_after_fork(lp_server_t *srv);

/* --- called by the engine, from any thread ------------------------------ */

/* The session's id string; owned by s. */
const char *lp_session_id(const lp_session_t *s);
/* Reference counting: the engine holds a reference for every thread that
 * may write to s (threads started by session code). */
void lp_session_ref(lp_session_t *s);
void lp_session_unref(lp_session_t *s);
/* The engine's data for s (from session_open); NULL once closed. */
void *lp_session_data(const lp_session_t *s);

/* Queues output. Returns 0 when queued (sent within LP_FLUSH_MS), 1 when
 * the caller must call lp_session_flush now, 2 when the data was not queued
 * because it is large: the caller must send it with lp_session_send. Both
 * may block on a slow client: callers holding a global lock (the GIL)
 * release it first. Output of a closed session is dropped (returns 0). */
int lp_session_write(lp_session_t *s, lp_stream_t stream, const void *data, size_t len);
/* Sends what is queued. */
int lp_session_flush(lp_session_t *s);
/* Sends what is queued, then data, in chunks, without copying it. */
int lp_session_send(lp_session_t *s, lp_stream_t stream, const void *data, size_t len);

/* input() in the running eval of s: asks the client (an input frame after
 * the output queued so far) and waits for its stdin answer. Blocks: call
 * it without the GIL. On 0, *data (malloc'd, caller frees) holds *len
 * bytes of UTF-8; LP_EEOF: no more input (input() raises EOFError);
 * LP_EINTERRUPTED: raise KeyboardInterrupt. prompt: shown by the client when it has not been
 * printed already; echo: false for passwords. */
int lp_session_input(lp_session_t *s, const char *prompt, bool echo, uint8_t **data,
                     size_t *len);
/* True when an interrupt request reached the running eval of s (a
 * KeyboardInterrupt is then "interrupted", not just an exception). */
bool lp_session_was_interrupted(lp_session_t *s);
/* True, once, when an interrupt arrived before the eval could start. */
bool lp_session_take_interrupt(lp_session_t *s);

/* Queues a value (repr) or exception (traceback) reply for the current
 * eval, after the output queued before it; it leaves with the eval's done.
 * Returns like lp_session_write: 1 when the caller must lp_session_flush. */
int lp_session_value(lp_session_t *s, const char *type, const char *repr, size_t len);
int lp_session_exception(lp_session_t *s, const char *type, const char *message,
                         const char *tb, size_t len);
/* Sends long text (help()) for the client's pager, after the output before
 * it: 0; 1 when the client did not ask for pages or the text is too big
 * for it (the caller prints it instead); or an error. */
int lp_session_page(lp_session_t *s, const char *text, size_t len);

#endif
