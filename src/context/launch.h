/* launch.h: starts a far Python and does the caller's part of its
 * bootstrap and handshake (docs/contexts.md, "Bootstrap"), so that the
 * link's fds can go to the broker (lp_broker_add). The one launcher of the
 * caller's side: python/limpet/_link.py uses it through _limpet.ctx_launch,
 * the limpet binary directly. (A relaying agent keeps its own, in Python:
 * the far side has no C.)
 *
 * Pure C: no Python. The command runs with pipes on its stdin, stdout and
 * stderr, in a session of its own, with no other fd of this process and
 * SIGPIPE at its default. It must end with stage 1 (lp_context_stage1). */
#ifndef LP_CONTEXT_LAUNCH_H
#define LP_CONTEXT_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

/* How to start one far Python. */
typedef struct lp_launch {
    const char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH */
    const char *password;  /* the answer to one password prompt, or NULL; read
                            * only, never copied, never in a message */
    size_t password_len;
    bool compiled;         /* stage 2 may be the agent compiled at build time
                            * (a local pipe, not ssh: 24 KB instead of 7) */
    bool session;          /* stage 2 is the environment's agent (capability
                            * `session`: protocol.md section 8), for limpet serve */
    int timeout_ms;        /* for stage 1's line, and again for the hello */
    int log_level;         /* sent in the answer to the hello (logging's numbers) */
    /* Asked every 200 ms of waiting when set: nonzero gives up the launch
     * (Ctrl+C in a caller that released its lock to wait). */
    int (*interrupted)(void *arg);
    void *arg;
} lp_launch_t;

/* How long an error text may be, NUL included. */
#define LP_LAUNCH_ERROR_MAX 512

/* A started far Python whose agent has said hello and been answered. */
typedef struct lp_launched {
    pid_t pid;             /* the command's process (a session leader); reap it with
                            * lp_context_reap */
    int rfd, wfd;          /* its stdout and stdin: the link, for lp_broker_add */
    int errfd;             /* its stderr (non-blocking), or -1 once it closed */
    uint8_t *initial;      /* bytes read past the hello (malloc'd; for lp_broker_add) */
    size_t initial_len;
    json_t *agent;         /* the hello's agent object (owned; {} when it sent none) */
    char error[LP_LAUNCH_ERROR_MAX]; /* on failure: what happened, to follow the
                                      * context's name ("did not start: ...") */
} lp_launched_t;

/* Starts opt->argv, answers the one password prompt it may print on stderr
 * (its last line ends with ':') before stage 1's line "limpet-stage1 TAG\n"
 * comes on stdout, writes stage 2 (compiled when TAG is lp_agent_code_tag
 * and opt->compiled, else the source), reads the agent's preamble and hello
 * and answers them. 0 with *out filled (the caller owns it: fds, initial,
 * agent; lp_launched_clear). On failure the child is killed and reaped, every
 * fd closed, out->error says why, and the code says what kind of failure:
 *   -EACCES      a password problem: asked for one when none was given
 *                ("asked for a password"), asked again ("asked for a password
 *                again: the one given was refused"), or ended after it was
 *                given ("ended after the password was given: STDERR");
 *   -ECONNRESET  ended after stage 2, before its agent said hello ("ended
 *                before its agent started: LAST LINES OF STDERR");
 *   LP_WIRE_EPREAMBLE, LP_WIRE_EHANDSHAKE: what it wrote is not a limpet
 *                agent's handshake;
 *   LP_EINTERRUPTED  opt->interrupted said so;  LP_WIRE_ENOMEM;
 *   any other code: it did not start ("did not start: ..."): -ENOEXEC when
 *                the command could not be run, -ETIMEDOUT, -EPROTO when it
 *                is not stage 1, or what it said when it ended. */
int lp_context_launch(const lp_launch_t *opt, lp_launched_t *out);

/* Closes the fds out still holds (those not handed on: set them to -1
 * first), frees initial and agent. Never touches the process. */
void lp_launched_clear(lp_launched_t *out);

/* Waits up to timeout_ms (-1: no end) for pid to exit, then kills it
 * (SIGKILL) and waits for that: its wait status (>= 0), or -errno (-ECHILD:
 * not a child of ours, or reaped already). Each pid is reaped once: callers
 * serialize their calls for one pid. */
int lp_context_reap(pid_t pid, int timeout_ms);

#endif
