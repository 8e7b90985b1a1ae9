/* repl.h: one interactive session with a server, as `limpet connect`
 * drives it: evaluate a line, show what comes back (output, values,
 * tracebacks, pages), answer input(), pass Ctrl+C on, complete, close. */
#ifndef LP_CLI_REPL_H
#define LP_CLI_REPL_H

#include "cli/cli.h"
#include "cli/lineedit.h"
#include "cli/present.h"

#define LP_REPL_CLOSE_TIMEOUT_MS 1000 /* Ctrl+D: how long a polite close may take */
#define LP_REPL_COMPLETE_TIMEOUT_MS 2000

typedef struct lp_repl {
    lp_client_t c;
    lp_le_t *le;
    int64_t eval_id;       /* the running eval; -1 at the prompt */
    bool sent_early;       /* Enter sent the line before el_gets returned it */
    char status[32];       /* how the last eval ended; "" while it runs */
    bool want_input;       /* the eval waits for a line (input()) */
    char *input_prompt;    /* and asks with this prompt */
    bool input_echo;       /* false for getpass */
    int64_t stdin_id;      /* our last answer to input() */
    int64_t wait_id;       /* a request whose final reply we wait for, or -1 */
    json_t *reply;         /* that reply's header, once it came */
    bool wake;             /* a frame that the waiting loop acts on came */
    bool gone;             /* the server left, or said bye */
    char bye[256];         /* what it said, if it did */
    lp_presenter_t pr;     /* shows what comes: through le, tracebacks in colour on a
                              colour terminal */
} lp_repl_t;

/* Connects to t, asking for a session in the handshake (or, with env, in
 * that environment with a clone); prints why on failure and returns -1. */
int lp_repl_open(lp_repl_t *r, const lp_target_t *t, const char *env);
/* Takes the terminal (history_path may be NULL); 0 or -1. */
int lp_repl_start(lp_repl_t *r, const char *history_path);
void lp_repl_free(lp_repl_t *r);

/* Sends code as the next interactive input and shows everything it brings
 * back, passing Ctrl+C on as interrupts: 0 with r->status set ("ok",
 * "more", "exception", "interrupted", "detached", "closed", "error"), or
 * -1 when the server is gone. */
int lp_repl_eval(lp_repl_t *r, const char *code, size_t len);
/* Clears the session's pending input (Ctrl+C at "... "); 0 or -1 (gone). */
int lp_repl_interrupt(lp_repl_t *r);
/* Closes the session politely; says so when the server does not answer
 * within LP_REPL_CLOSE_TIMEOUT_MS. */
void lp_repl_close(lp_repl_t *r);
/* Prints the one line that says the server went away. */
void lp_repl_gone(lp_repl_t *r);

#endif
