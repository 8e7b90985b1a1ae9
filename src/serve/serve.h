/* serve.h: the kernel server's core (`limpet serve`, docs/serve.md): named
 * environments, each an execution context (a far agent with capability
 * `session`, docs/protocol.md section 8), and runs: every piece of code
 * executed in an environment is a run with an id, kept here, server-side,
 * so that it survives the client that started it.
 *
 * Both front ends stand on this one API: the framed protocol (the context
 * engine, serve/engine.c, behind src/session/'s server) and HTTP
 * (src/http/). Pure C, no Python. Every function is thread-safe. Functions
 * return 0 or a negative code of the one error space (wire/wire.h):
 *   LP_WIRE_EFIELD  a bad name or argument (msg says which)
 *   -ENOENT         no such environment / run
 *   -EEXIST         an environment of that name exists
 *   -EPIPE          the environment's process is dead (restart it)
 *   -EAGAIN         the environment's queue of runs is full
 *   -ESHUTDOWN      the server is draining: no new runs
 *   -ECHILD         the environment could not be started (msg says why)
 * and, where a function takes char msg[LP_SERVE_MSG_MAX], a sentence for
 * the user in it. */
#ifndef LP_SERVE_SERVE_H
#define LP_SERVE_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wire/wire.h"

#define LP_SERVE_MSG_MAX 512

typedef struct lp_serve lp_serve_t;
typedef struct lp_run lp_run_t;

/* Per-environment limits; 0 means none (docs/http.md, "limits"). */
typedef struct lp_env_limits {
    unsigned cpu_s;          /* RLIMIT_CPU of a local environment's process */
    unsigned memory_mb;      /* RLIMIT_AS of a local environment's process */
    unsigned output_mb;      /* output kept per run (the ring): older output is dropped */
    unsigned wall_s;         /* a run longer than this is interrupted: deadline-exceeded */
} lp_env_limits_t;

#define LP_ENV_LIMITS_DEFAULT {0, 0, 16, 0}

typedef struct lp_serve_config {
    const char *python;      /* the far Python of local environments; NULL: "python3" */
    lp_env_limits_t limits;  /* defaults for environments that give none */
    unsigned queue_max;      /* runs waiting per environment; 0: 1024 */
    unsigned runs_kept;      /* finished runs kept per environment; 0: 256 */
    unsigned max_envs;       /* 0: 64 */
    const char *journal;     /* the audit journal's path, or NULL for none */
    size_t journal_max;      /* rotate past this many bytes; 0: 64 MiB */
    void (*log)(void *arg, const char *line); /* one line per request of the socket's
                                                 sessions (HTTP logs its own); NULL: none */
    void *log_arg;
} lp_serve_config_t;

/* A new kernel server core with no environment. */
int lp_serve_new(const lp_serve_config_t *cfg, lp_serve_t **out);
/* Draining: no new runs (-ESHUTDOWN); waits up to grace_ms for the runs
 * going and queued to end. What still runs then is for lp_serve_stop_envs
 * (each environment's run going is interrupted, then its process ended). */
void lp_serve_drain(lp_serve_t *sv, int grace_ms);
/* Deletes every environment: the runs going end (killed), so that the
 * threads of the front ends that wait on them return; new ones are refused. */
void lp_serve_stop_envs(lp_serve_t *sv);
/* Stops every environment (their processes are ended and reaped) and frees.
 * No thread may be inside a function of sv any more. */
void lp_serve_free(lp_serve_t *sv);

/* --- environments ----------------------------------------------------- */

/* Creates environment name (1-64 bytes of [A-Za-z0-9_.-]) hosted by target:
 * NULL or "local" (a child of this process), "ssh://[user@]host[:port]",
 * "sudo:USER"; python: the far interpreter (NULL: the default); limits:
 * NULL for the defaults. Waits until the far side said hello. On 0, *info
 * (may be NULL) is its description (as lp_serve_env_info without names). */
int lp_serve_env_create(lp_serve_t *sv, const char *name, const char *target,
                        const char *python, const lp_env_limits_t *limits, json_t **info,
                        char msg[LP_SERVE_MSG_MAX]);
/* Deletes it: the run going is interrupted, queued ones end "killed", its
 * process is ended. */
int lp_serve_env_delete(lp_serve_t *sv, const char *name);
/* A new process for it, with an empty namespace; its finished runs are kept. */
int lp_serve_env_restart(lp_serve_t *sv, const char *name, json_t **info,
                         char msg[LP_SERVE_MSG_MAX]);
/* [ENV, ...] in creation order: docs/http.md's ENV objects
 * {"name","target","state","why"?,"pid","created","runs","running","limits"}. */
json_t *lp_serve_env_list(lp_serve_t *sv);
/* ENV for name, with "names": [{"name","type","repr"}, ...] when names is
 * true (asked of the far side; its repr made without running properties).
 * NULL with *err = -ENOENT, -EPIPE, or another code. */
json_t *lp_serve_env_info(lp_serve_t *sv, const char *name, bool names, int *err);
/* Completions of text[0..cursor) in the environment's namespace: a new
 * array of strings, *start the byte offset they replace from; NULL with
 * *err on failure. session: whose pending input (may be NULL). */
json_t *lp_serve_complete(lp_serve_t *sv, const char *name, const char *session,
                          const char *text, size_t cursor, size_t *start, int *err);
/* Asks the environment's agent op (check, inspect: answered at once, not
 * queued behind its evals) with the fields of fields (borrowed) and
 * payload: its done's header (a new reference), or NULL with *err. */
json_t *lp_serve_ask(lp_serve_t *sv, const char *name, const char *op, const json_t *fields,
                     const void *payload, size_t len, int *err);
/* Forgets a session's pending interactive input (Ctrl+C at the prompt). */
void lp_serve_forget_session(lp_serve_t *sv, const char *name, const char *session);

/* --- runs --------------------------------------------------------------- */

typedef enum lp_run_mode {
    LP_RUN_CELL,   /* HTTP exec: the whole code; a final expression's value is shown */
    LP_RUN_SINGLE, /* the terminal client's lines: REPL rules, pending input per session */
    LP_RUN_SCRIPT, /* limpet exec: the whole code, no value */
} lp_run_mode_t;

typedef struct lp_run_req {
    const char *code;        /* UTF-8, no NUL inside */
    size_t len;
    lp_run_mode_t mode;
    const char *session;     /* LP_RUN_SINGLE: whose pending input; else may be NULL */
    const char *filename;    /* for tracebacks; NULL: "<limpet>" */
    int timeout_ms;          /* > 0: interrupted past it (deadline-exceeded); 0: the
                              * environment's wall_s, if any */
    bool input;              /* a client answers input() (lp_run_answer); else EOF */
    const char *who;         /* for the journal: "uid:1000", "token:ab12cd" */
} lp_run_req_t;

/* The run's state, as docs/http.md names it. */
typedef enum lp_run_status {
    LP_RUN_QUEUED,
    LP_RUN_RUNNING,
    LP_RUN_OK,
    LP_RUN_ERROR,            /* the code raised ("error"; "exception" on the wire) */
    LP_RUN_INTERRUPTED,
    LP_RUN_DEADLINE,         /* "deadline-exceeded" */
    LP_RUN_KILLED,           /* the environment died (or was deleted) during it */
    LP_RUN_MORE,             /* LP_RUN_SINGLE: the input is incomplete, nothing ran */
    LP_RUN_CLOSED,           /* the code called exit(): its session ends, not the env */
} lp_run_status_t;

const char *lp_run_status_name(lp_run_status_t st);
/* Whether a run in state st is over (no more output, its answer is final). */
static inline bool lp_run_over(lp_run_status_t st)
{
    return st != LP_RUN_QUEUED && st != LP_RUN_RUNNING;
}

/* Queues a run in environment name, after the runs before it; *out is a
 * reference the caller drops with lp_run_unref. */
int lp_serve_submit(lp_serve_t *sv, const char *name, const lp_run_req_t *req,
                    lp_run_t **out, char msg[LP_SERVE_MSG_MAX]);
/* A kept run of name by id: a reference, or NULL. */
lp_run_t *lp_serve_run_find(lp_serve_t *sv, const char *name, uint64_t id);
/* [{"run","status","started","duration_ms","code_bytes"}, ...] of the kept
 * runs of name, oldest first; NULL with -ENOENT. */
json_t *lp_serve_runs(lp_serve_t *sv, const char *name, int *err);
/* Interrupts the run going in name: *run_id its id, or 0 when none ran. */
int lp_serve_interrupt(lp_serve_t *sv, const char *name, uint64_t *run_id);

void lp_run_ref(lp_run_t *r);
void lp_run_unref(lp_run_t *r);
uint64_t lp_run_id(const lp_run_t *r);
lp_run_status_t lp_run_status(lp_run_t *r);
/* True once it is over (lp_run_over of its status). */
bool lp_run_ended(lp_run_t *r);
/* Interrupts this run: running, it gets KeyboardInterrupt; queued, it ends
 * "interrupted" without running. 0, or -EALREADY when it has ended. */
int lp_run_interrupt(lp_run_t *r);

/* Waits up to timeout_ms (-1: no end) for something past offset since:
 * output, an input() waiting for an answer, or the run's end. Returns 1
 * when there is, 0 on timeout. */
int lp_run_wait(lp_run_t *r, uint64_t since, int timeout_ms);

/* A watcher of a run: owned by the caller, who fills the first four
 * fields and keeps it (and a reference to the run) until it has fired or
 * lp_run_unwatch has returned. */
typedef struct lp_run_watch {
    uint64_t since;          /* output past this offset wakes it */
    bool input;              /* an input() asking for an answer wakes it too */
    void (*fn)(void *arg);   /* called once, with the run's lock held: it must be
                              * cheap and must not call lp_run_* on the run */
    void *arg;
    struct lp_run_watch *prev, *next; /* the core's */
    bool armed;              /* the core's: registered, not fired */
} lp_run_watch_t;

/* The wait without a thread: w->fn(w->arg) is called once, by the thread
 * that makes the change (usually the broker's I/O thread), at the first
 * of: output past w->since, the run's end, an input() asking (w->input).
 * Returns 1 when there is one already (nothing is registered, fn is not
 * called), 0 when w waits. Any number of watchers per run. */
int lp_run_watch(lp_run_t *r, lp_run_watch_t *w);
/* Forgets w: true when it was still waiting, false when it had fired.
 * Once it returns, w->fn is not running and will not be called. */
bool lp_run_unwatch(lp_run_t *r, lp_run_watch_t *w);

/* One piece of output, at byte offset `offset` of the run's output (both
 * streams counted together, from 0). */
typedef struct lp_run_chunk {
    uint64_t offset;
    int stream;              /* 0 stdout, 1 stderr, 2 a help() page (the whole text),
                              * LP_RUN_STREAM_VALUE a value */
    const char *data;        /* valid only during the callback */
    size_t len;
    const char *type;        /* LP_RUN_STREAM_VALUE: the value's type; else NULL */
} lp_run_chunk_t;

/* A value shown by a LP_RUN_SINGLE run: each is output, in order with the
 * rest (`1; 2`, a loop's values), as python3 prints it (its repr and a
 * newline, stdout to HTTP); such a run has no "value" of its own. */
#define LP_RUN_STREAM_VALUE 3

/* Calls fn for each kept piece of output past since (a piece that straddles
 * since is cut there), in order; *next = the offset after the last byte
 * kept; *dropped = true when output past since was dropped by the ring
 * (since is before the first offset kept). fn returning nonzero stops
 * the walk (its value is returned). The run's lock is held during fn:
 * fn must not call lp_run_* on r. */
int lp_run_chunks(lp_run_t *r, uint64_t since,
                  int (*fn)(void *arg, const lp_run_chunk_t *c), void *arg,
                  uint64_t *next, bool *dropped);

/* The run's answer (docs/http.md): {"run","status","stdout","stderr",
 * "value","error","duration_ms"} with output from since, plus "since",
 * "next", "truncated". A new reference. */
json_t *lp_run_json(lp_run_t *r, uint64_t since);

/* The end of a finished run, for the framed protocol: its value's repr
 * (type, repr) or exception (type, message, traceback), copied into new
 * strings the caller frees; NULL when there is none. 0, or -EAGAIN while
 * it goes on. */
int lp_run_result(lp_run_t *r, char **value_type, char **value_repr, char **exc_type,
                  char **exc_message, char **traceback);

/* input() in the run: 1 with *prompt (malloc'd) and *password when it waits
 * for an answer, 0 when it does not. */
int lp_run_input_pending(lp_run_t *r, char **prompt, bool *password);
/* Answers the waiting input(): data (a line) or eof. -EALREADY when none waits. */
int lp_run_answer(lp_run_t *r, const char *data, size_t len, bool eof);
#endif
