/* lineedit.h: the terminal seam of `limpet connect`: reading a line at the
 * prompt (editing, history, Ctrl+R, Tab), reading an answer for input(),
 * and showing output that arrives while the prompt waits. libedit is
 * behind it; the rest of the client sees only this. */
#ifndef LP_CLI_LINEEDIT_H
#define LP_CLI_LINEEDIT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

/* What lp_le_read and lp_le_input return. */
enum {
    LP_LE_LINE = 0,   /* *line holds a line (with its newline, if one was typed) */
    LP_LE_EOF = 1,    /* Ctrl+D on an empty line, or the end of standard input */
    LP_LE_CANCEL = 2, /* Ctrl+C */
    LP_LE_STOP = 3,   /* the socket hook asked to stop waiting (the eval ended) */
    LP_LE_GONE = 4,   /* the socket hook saw the server leave */
};

/* A completion answer: matches replace line[start..cursor). */
typedef struct lp_le_matches {
    char **items; /* malloc'd strings */
    size_t n;
    size_t start; /* byte offset in the line */
} lp_le_matches_t;

typedef struct lp_le_hooks {
    int sock; /* the server's socket: watched while waiting for keys */
    /* Called when sock is readable: reads and shows what came. 0 to go on
     * waiting, LP_LE_STOP or LP_LE_GONE to stop. */
    int (*on_socket)(void *ctx);
    /* Tab: fills *m for line[0..cursor) (byte offset); 0, or -1 when it
     * could not ask (the server is gone). */
    int (*complete)(void *ctx, const char *line, size_t cursor, lp_le_matches_t *m);
    /* Enter: the line is complete (with its newline), before the terminal
     * is given back: the caller may send it now, so the server works while
     * the terminal catches up. May be NULL. */
    void (*accept)(void *ctx, const char *line, size_t len);
    void *ctx;
} lp_le_hooks_t;

typedef struct lp_le lp_le_t;

/* The Ctrl+C presses since the last call (SIGINT arrives only inside the
 * waits of this module, so nothing is lost between a check and a wait). */
int lp_le_take_interrupts(void);

/* Sets up the terminal side; history_path may be NULL (no history kept).
 * Blocks SIGINT, SIGWINCH and SIGCONT outside its waits (so none is lost
 * between a check and a wait); lp_le_wait is where they arrive. */
lp_le_t *lp_le_new(const char *history_path, const lp_le_hooks_t *hooks);
/* Saves the history and gives the terminal back. */
void lp_le_free(lp_le_t *le);

/* Reads a line at prompt. *line is valid until the next call. */
int lp_le_read(lp_le_t *le, const char *prompt, const char **line);
/* Reads the answer to input() (prompt already shown, or shown here);
 * echo false for passwords. *line is valid until the next call. */
int lp_le_input(lp_le_t *le, const char *prompt, bool echo, const char **line);

/* Waits for the socket (calling on_socket) or a signal, up to timeout_ms
 * (< 0: no limit): 0 when something happened, 1 on timeout, or what
 * on_socket returned to stop. */
int lp_le_wait(lp_le_t *le, int timeout_ms);

/* Shows output that arrived while the prompt waits: above the prompt,
 * which is then drawn again. Elsewhere it is a plain write. */
void lp_le_show(lp_le_t *le, int fd, const void *data, size_t len);

/* Adds a line to the history (not saved until lp_le_free). */
void lp_le_remember(lp_le_t *le, const char *line);

#endif
