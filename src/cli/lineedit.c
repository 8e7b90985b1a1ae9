/* lineedit.c: the terminal seam of `limpet connect` (lineedit.h), over
 * libedit. libedit reads keys through getc_hook, which waits on standard
 * input and the server's socket at once: output from the host's threads
 * shows up while the prompt waits, and a server that leaves is noticed
 * at the prompt, not at the next Enter. */
#include "cli/lineedit.h"

#include <errno.h>
#include <histedit.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include "cli/term.h"

#define HISTORY_SIZE 10000 /* lines kept per target */

struct lp_le {
    EditLine *el;
    History *hist;
    char *history_path;      /* NULL: keep none */
    lp_le_hooks_t hooks;
    const char *prompt;      /* what the prompt function shows */
    bool at_prompt;          /* inside el_gets: output goes above the prompt */
    bool tty_out;            /* standard output is a terminal */
    bool tty_in;             /* standard input is a terminal */
    bool edit;               /* both are: libedit edits (else it only reads lines) */
    struct termios saved;    /* the terminal as we found it (when edit) */
    bool hiding;             /* a password is being typed, with these modes: */
    struct termios quiet;
    bool cancelled;          /* Ctrl+C during el_gets */
    int stop;                /* what on_socket returned during el_gets */
    mbstate_t mbs;           /* decoding standard input for libedit */
    char in[4096];           /* standard input read, not yet used */
    size_t in_pos, in_len;
    bool in_eof;             /* standard input ended */
    char *line;              /* lp_le_input's answer */
    size_t line_cap;
    sigset_t wait_mask;      /* the signal mask inside waits */
    sigset_t orig_mask;      /* the mask before us, given back at the end */
    struct sigaction orig_actions[5]; /* the handlers before us (see taken[]) */
};

static volatile sig_atomic_t interrupts, resized, continued;

static void on_signal(int sig)
{
    if (sig == SIGINT)
        interrupts++;
    else if (sig == SIGWINCH)
        resized = 1;
    else
        continued = 1;
}

int lp_le_take_interrupts(void)
{
    int n = interrupts;

    interrupts = 0;
    return n;
}

/* The terminal came back (fg after Ctrl+Z) or changed size while
 * libedit had it: set it up again and redraw. */
static void after_signals(lp_le_t *le)
{
    if (resized) {
        resized = 0;
        el_resize(le->el);
    }
    if (continued) {
        continued = 0;
        if (le->at_prompt && le->edit) {
            el_set(le->el, EL_PREP_TERM, 0); /* forget the modes the shell left */
            el_set(le->el, EL_PREP_TERM, 1);
            el_set(le->el, EL_REFRESH);
        }
        if (le->hiding) /* a password being typed: the shell turned echo back on */
            tcsetattr(STDIN_FILENO, TCSANOW, &le->quiet);
    }
}

/* Waits for standard input (when want_in), the socket, or a signal. */
static int wait_fds(lp_le_t *le, bool want_in, int timeout_ms, bool *in_ready)
{
    struct pollfd p[2] = {{.fd = le->hooks.sock, .events = POLLIN},
                          {.fd = STDIN_FILENO, .events = POLLIN}};
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
    int n = ppoll(p, want_in ? 2 : 1, timeout_ms < 0 ? NULL : &ts, &le->wait_mask);
    int e = errno; /* before after_signals' own system calls change it */

    *in_ready = false;
    after_signals(le);
    if (n < 0)
        return e == EINTR ? 0 : LP_LE_GONE;
    if (n == 0)
        return 1;
    if (p[0].revents != 0) {
        int r = le->hooks.on_socket(le->hooks.ctx);

        if (r != 0)
            return r;
    }
    *in_ready = want_in && p[1].revents != 0;
    return 0;
}

int lp_le_wait(lp_le_t *le, int timeout_ms)
{
    bool in_ready;

    return wait_fds(le, false, timeout_ms, &in_ready);
}

/* Reads more standard input into le->in (which is empty). */
static void fill(lp_le_t *le)
{
    ssize_t n = read(STDIN_FILENO, le->in, sizeof(le->in));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    le->in_pos = 0;
    le->in_len = n > 0 ? (size_t)n : 0;
    le->in_eof = n <= 0;
}

/* True at the end of input. On a terminal that is one Ctrl+D, not the
 * end of everything: the next read waits for keys again. */
static bool take_eof(lp_le_t *le)
{
    bool eof = le->in_eof;

    if (eof && le->tty_in)
        le->in_eof = false;
    return eof;
}

/* libedit's key reader: 1 and a character, 0 at the end of input, -1
 * (with le->cancelled or le->stop set) to end el_gets. */
static int getc_hook(EditLine *el, wchar_t *wc)
{
    lp_le_t *le;

    el_get(el, EL_CLIENTDATA, &le);
    for (;;) {
        bool in_ready;
        int r;

        while (le->in_pos < le->in_len) {
            size_t k = mbrtowc(wc, &le->in[le->in_pos++], 1, &le->mbs);

            if (k == (size_t)-1)
                memset(&le->mbs, 0, sizeof(le->mbs)); /* a bad byte: drop it */
            else if (k != (size_t)-2)
                return 1;
        }
        if (take_eof(le))
            return 0;
        if (interrupts > 0) {
            lp_le_take_interrupts();
            le->cancelled = true;
            errno = EINTR;
            return -1;
        }
        if ((r = wait_fds(le, true, -1, &in_ready)) == LP_LE_GONE) {
            le->stop = r;
            errno = EINTR;
            return -1;
        }
        if (in_ready)
            fill(le);
    }
}

static char *prompt_fn(EditLine *el)
{
    lp_le_t *le;

    el_get(el, EL_CLIENTDATA, &le);
    return (char *)le->prompt;
}

/* Ctrl+C as a key (when the terminal does not turn it into SIGINT). */
static unsigned char cancel_fn(EditLine *el, int ch)
{
    lp_le_t *le;

    (void)ch;
    el_get(el, EL_CLIENTDATA, &le);
    le->cancelled = true;
    return CC_EOF;
}

/* Keys no terminal sends, bound to libedit's ed-newline: Enter pushes them
 * after handing the line over (^M and ^J are both Enter's, depending on
 * the terminal's ICRNL, so neither can be left to ed-newline). */
#define NEWLINE_KEYS "\033[9999~"

/* Enter: hands the line over at once, then lets libedit's own newline
 * finish it as usual. */
static unsigned char accept_fn(EditLine *el, int ch)
{
    const LineInfo *li = el_line(el);
    size_t len = (size_t)(li->lastchar - li->buffer);
    char *line = malloc(len + 2);
    lp_le_t *le;

    (void)ch;
    el_get(el, EL_CLIENTDATA, &le);
    if (line != NULL && le->hooks.accept != NULL) {
        memcpy(line, li->buffer, len);
        memcpy(line + len, "\n", 2);
        le->hooks.accept(le->hooks.ctx, line, len + 1);
    }
    free(line);
    el_push(el, NEWLINE_KEYS); /* libedit's own newline ends the line, display and all */
    return CC_NORM;
}

/* Characters (not bytes) in s[0..n): what el_deletestr counts. */
static int chars_in(const char *s, size_t n)
{
    int k = 0;

    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* The bytes all items share, cut back to a whole UTF-8 character. */
static size_t common_prefix(char **items, size_t n)
{
    size_t len = strlen(items[0]);

    for (size_t i = 1; i < n; i++) {
        size_t k = 0;

        while (k < len && items[i][k] == items[0][k])
            k++;
        len = k;
    }
    if (n > 1)
        while (len > 0 && ((unsigned char)items[0][len] & 0xC0) == 0x80)
            len--;
    return len;
}

/* Lists matches in columns, down then across, as readline does. */
static void list_matches(char **items, size_t n)
{
    size_t width = 0, cols, rows;
    int tcols;

    lp_term_size(NULL, &tcols);
    for (size_t i = 0; i < n; i++)
        width = strlen(items[i]) > width ? strlen(items[i]) : width;
    width += 2;
    cols = (size_t)tcols / width > 0 ? (size_t)tcols / width : 1;
    rows = (n + cols - 1) / cols;
    fputc('\n', stdout);
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols && c * rows + r < n; c++) {
            const char *item = items[c * rows + r];
            bool last = c + 1 == cols || (c + 1) * rows + r >= n;

            fprintf(stdout, "%-*s", last ? 0 : (int)width, item);
        }
        fputc('\n', stdout);
    }
    fflush(stdout);
}

/* Tab: asks the server; inserts what all matches share, or lists them. */
static unsigned char complete_fn(EditLine *el, int ch)
{
    const LineInfo *li = el_line(el);
    size_t cursor = (size_t)(li->cursor - li->buffer), typed, common;
    lp_le_matches_t m = {0};
    unsigned char r = CC_REFRESH;
    char *text;
    lp_le_t *le;

    (void)ch;
    el_get(el, EL_CLIENTDATA, &le);
    if ((text = strndup(li->buffer, (size_t)(li->lastchar - li->buffer))) == NULL ||
        le->hooks.complete(le->hooks.ctx, text, cursor, &m) != 0 || m.n == 0 ||
        m.start > cursor) {
        r = CC_REFRESH_BEEP;
        goto out;
    }
    typed = cursor - m.start;
    common = common_prefix(m.items, m.n);
    if (common > typed || (m.n == 1 && strncmp(m.items[0], text + m.start, typed) != 0)) {
        char *ins = strndup(m.items[0], common);

        if (ins != NULL && mbstowcs(NULL, ins, 0) != (size_t)-1) { /* insertable */
            el_deletestr(el, chars_in(text + m.start, typed));
            el_insertstr(el, ins);
        }
        free(ins);
    } else if (m.n > 1) {
        list_matches(m.items, m.n);
        r = CC_REDISPLAY;
    }
out:
    for (size_t i = 0; i < m.n; i++)
        free(m.items[i]);
    free(m.items);
    free(text);
    return r;
}

/* The signals this module takes over, and what they were before. */
static const int taken[] = {SIGINT, SIGWINCH, SIGCONT, SIGTERM, SIGHUP};
#define N_TAKEN (sizeof(taken) / sizeof(taken[0]))
_Static_assert(N_TAKEN == sizeof(((lp_le_t *)0)->orig_actions) / sizeof(struct sigaction),
               "one saved action per signal taken");

static struct termios fatal_tty;           /* restored by a fatal signal */
static volatile sig_atomic_t fatal_tty_set;

/* SIGTERM, SIGHUP: give the terminal back as we found it, then die of
 * the signal as if we had not caught it. */
static void on_fatal(int sig)
{
    if (fatal_tty_set)
        tcsetattr(STDIN_FILENO, TCSANOW, &fatal_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

lp_le_t *lp_le_new(const char *history_path, const lp_le_hooks_t *hooks)
{
    lp_le_t *le = calloc(1, sizeof(*le));
    struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits end */
    struct sigaction fatal = {.sa_handler = on_fatal};
    sigset_t block;
    HistEvent ev;

    if (le == NULL)
        return NULL;
    le->hooks = *hooks;
    le->prompt = "";
    le->tty_out = isatty(STDOUT_FILENO);
    le->tty_in = isatty(STDIN_FILENO);
    /* libedit edits only when both are terminals; preparing stdin alone
     * would leave it raw with nobody to restore it */
    le->edit = le->tty_in && le->tty_out && tcgetattr(STDIN_FILENO, &le->saved) == 0;
    if (le->edit) {
        fatal_tty = le->saved;
        fatal_tty_set = 1;
    }
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGWINCH);
    sigaddset(&block, SIGCONT);
    sigprocmask(SIG_BLOCK, &block, &le->orig_mask);
    le->wait_mask = le->orig_mask;
    sigdelset(&le->wait_mask, SIGINT);
    sigdelset(&le->wait_mask, SIGWINCH);
    sigdelset(&le->wait_mask, SIGCONT);
    for (size_t i = 0; i < N_TAKEN; i++)
        sigaction(taken[i], taken[i] == SIGTERM || taken[i] == SIGHUP ? &fatal : &sa,
                  &le->orig_actions[i]);

    le->hist = history_init();
    history(le->hist, &ev, H_SETSIZE, HISTORY_SIZE);
    history(le->hist, &ev, H_SETUNIQUE, 1);
    if (history_path != NULL && (le->history_path = strdup(history_path)) != NULL)
        history(le->hist, &ev, H_LOAD, history_path); /* none yet is fine */

    le->el = el_init("limpet", stdin, stdout, stderr);
    el_set(le->el, EL_CLIENTDATA, le);
    el_set(le->el, EL_EDITOR, "emacs");
    el_set(le->el, EL_PROMPT, prompt_fn);
    el_set(le->el, EL_HIST, history, le->hist);
    el_set(le->el, EL_GETCFN, getc_hook);
    el_set(le->el, EL_ADDFN, "lp-complete", "complete with the server's names", complete_fn);
    el_set(le->el, EL_ADDFN, "lp-cancel", "clear the line (Ctrl+C)", cancel_fn);
    el_set(le->el, EL_BIND, "^I", "lp-complete", NULL);
    el_set(le->el, EL_BIND, "^C", "lp-cancel", NULL);
    el_set(le->el, EL_ADDFN, "lp-accept", "send the line, then end it", accept_fn);
    el_set(le->el, EL_BIND, "^M", "lp-accept", NULL);
    el_set(le->el, EL_BIND, "^J", "lp-accept", NULL);
    el_set(le->el, EL_BIND, NEWLINE_KEYS, "ed-newline", NULL);
    el_source(le->el, NULL); /* the user's ~/.editrc has the last word */
    return le;
}

void lp_le_free(lp_le_t *le)
{
    HistEvent ev;

    if (le == NULL)
        return;
    if (le->history_path != NULL)
        history(le->hist, &ev, H_SAVE, le->history_path);
    el_end(le->el);
    if (le->edit)
        tcsetattr(STDIN_FILENO, TCSANOW, &le->saved);
    fatal_tty_set = 0;
    sigprocmask(SIG_SETMASK, &le->orig_mask, NULL); /* a pending Ctrl+C meets our handler */
    for (size_t i = 0; i < N_TAKEN; i++)
        sigaction(taken[i], &le->orig_actions[i], NULL);
    history_end(le->hist);
    free(le->history_path);
    free(le->line);
    free(le);
}

int lp_le_read(lp_le_t *le, const char *prompt, const char **line)
{
    const char *s;
    int count = 0;

    le->prompt = prompt;
    le->cancelled = false;
    le->stop = 0;
    le->at_prompt = true;
    /* the terminal goes raw before the prompt is drawn, not after (as
     * libedit would): a key pressed once the prompt shows, a Ctrl+D above
     * all, must not meet the kernel's line discipline */
    if (le->edit)
        el_set(le->el, EL_PREP_TERM, 1);
    s = el_gets(le->el, &count);
    le->at_prompt = false;
    if (le->stop != 0)
        return le->stop;
    if (le->cancelled)
        return LP_LE_CANCEL;
    if (s == NULL || count <= 0)
        return LP_LE_EOF;
    *line = s;
    return LP_LE_LINE;
}

/* Appends le->in up to and including a newline to le->line; true when the
 * newline came. */
static bool take_line(lp_le_t *le, size_t *len)
{
    char *nl = memchr(le->in + le->in_pos, '\n', le->in_len - le->in_pos);
    size_t n = nl != NULL ? (size_t)(nl - (le->in + le->in_pos)) + 1 : le->in_len - le->in_pos;

    if (*len + n + 1 > le->line_cap) {
        size_t cap = (*len + n + 1) * 2;
        char *p = realloc(le->line, cap);

        if (p == NULL)
            return true; /* give what we have */
        le->line = p;
        le->line_cap = cap;
    }
    memcpy(le->line + *len, le->in + le->in_pos, n);
    *len += n;
    le->line[*len] = 0;
    le->in_pos += n;
    return nl != NULL;
}

int lp_le_input(lp_le_t *le, const char *prompt, bool echo, const char **line)
{
    struct termios saved;
    bool hidden = !echo && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
    size_t len = 0;
    int r = LP_LE_LINE;

    if (prompt[0] != 0)
        lp_term_write(STDOUT_FILENO, prompt, strlen(prompt));
    if (hidden) {
        le->quiet = saved;
        le->quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &le->quiet); /* keeps what was typed ahead */
        le->hiding = true;
    }
    if (le->line == NULL && (le->line = malloc(le->line_cap = 256)) != NULL)
        le->line[0] = 0;
    while (le->line != NULL && !take_line(le, &len)) {
        bool in_ready = false;

        if (len == 1 && le->line[0] == '\004') {
            /* Ctrl+D typed while the line editor still had the terminal raw
             * (just after Enter): a byte, not the end of input the terminal
             * makes of it in lines mode. It means the same. */
            len = 0;
            le->line[0] = 0;
            r = LP_LE_EOF;
            break;
        }
        if (take_eof(le)) {
            r = len > 0 ? LP_LE_LINE : LP_LE_EOF;
            break;
        }
        if (lp_le_take_interrupts() > 0) {
            r = LP_LE_CANCEL;
            break;
        }
        if ((r = wait_fds(le, true, -1, &in_ready)) != 0)
            break;
        if (in_ready)
            fill(le);
    }
    if (hidden) {
        le->hiding = false;
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        lp_term_write(STDOUT_FILENO, "\n", 1);
    }
    *line = le->line != NULL ? le->line : "";
    return r;
}

void lp_le_show(lp_le_t *le, int fd, const void *data, size_t len)
{
    if (!le->at_prompt || !le->tty_out) {
        lp_term_write(fd, data, len);
        return;
    }
    lp_term_write(STDOUT_FILENO, "\r\033[K", 4); /* the prompt's row, cleared */
    lp_term_write(fd, data, len);
    if (len > 0 && ((const char *)data)[len - 1] != '\n')
        lp_term_write(fd, "\n", 1);
    el_set(le->el, EL_REFRESH);
}

void lp_le_remember(lp_le_t *le, const char *line)
{
    size_t n = strcspn(line, "\n");
    char *copy;
    HistEvent ev;

    if (n == 0 || (copy = strndup(line, n)) == NULL)
        return;
    history(le->hist, &ev, H_ENTER, copy);
    free(copy);
}
