/* ttyrtt.c: the terminal client as a person meets it, timed from the
 * terminal's side of a pseudo-terminal.
 *
 *   ttyrtt LIMPET ADDRESS [STARTS] [N]
 *
 * STARTS times (default 20): `LIMPET --version` (process start, the
 * floor) and `LIMPET connect ADDRESS` until its first ">>> " (then Ctrl+D).
 * Then, in one session, N times (default 2000): Enter after "1+1" until
 * "2" and the next ">>> " are on the screen. Prints medians and p99s in
 * microseconds as JSON.
 *
 *   ttyrtt --python [N]
 *
 * The same Enter-to-result loop against python3's own REPL: what the
 * terminal costs with no network at all.
 */
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

#define SCREEN 65536

typedef struct tty {
    int fd;
    pid_t pid;
    char buf[SCREEN]; /* what the terminal received, since the last mark */
    size_t len;
} tty_t;

static void spawn(tty_t *t, char *const argv[])
{
    struct winsize ws = {.ws_row = 24, .ws_col = 100};

    t->len = 0;
    if ((t->pid = forkpty(&t->fd, NULL, NULL, &ws)) < 0) {
        perror("ttyrtt: forkpty");
        exit(1);
    }
    if (t->pid == 0) {
        setenv("TERM", "xterm", 1);
        setenv("NO_COLOR", "1", 1);
        execv(argv[0], argv);
        _exit(127);
    }
}

/* Reads until the screen ends with want (or the child's end, want NULL). */
static void wait_for(tty_t *t, const char *want)
{
    size_t wl = want ? strlen(want) : 0;

    for (;;) {
        ssize_t n;

        if (want != NULL && t->len >= wl && memcmp(t->buf + t->len - wl, want, wl) == 0)
            return;
        if (t->len == SCREEN)
            t->len = 0;
        n = read(t->fd, t->buf + t->len, SCREEN - t->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (want == NULL)
                return;
            fprintf(stderr, "ttyrtt: the client ended before '%s'\n", want);
            exit(1);
        }
        t->len += (size_t)n;
    }
}

static void reap(tty_t *t)
{
    wait_for(t, NULL);
    close(t->fd);
    waitpid(t->pid, NULL, 0);
}

static void report(const char *name, uint64_t *ns, int n, bool comma)
{
    double median = quantile_us(ns, (size_t)n, 0.5), p99 = quantile_us(ns, (size_t)n, 0.99);

    printf("  \"%s\": {\"median_us\": %.1f, \"p99_us\": %.1f}%s\n", name, median, p99,
           comma ? "," : "");
}

/* N Enters after "1+1" in the REPL child runs, after a tenth more as
 * warm-up; the times in ns. */
static void enter_loop(char *const child[], uint64_t *ns, int n)
{
    tty_t t;

    spawn(&t, child);
    wait_for(&t, ">>> ");
    for (int i = -n / 10; i < n; i++) {
        uint64_t t0 = now_ns();

        t.len = 0;
        if (write(t.fd, "1+1\r", 4) != 4)
            exit(1);
        wait_for(&t, "2\r\n>>> ");
        if (i >= 0)
            ns[i] = now_ns() - t0;
    }
    if (write(t.fd, "\004", 1) != 1)
        exit(1);
    reap(&t);
}

int main(int argc, char **argv)
{
    static char opt_version[] = "--version", cmd_connect[] = "connect", python[] = "/usr/bin/python3",
                opt_quiet[] = "-q";
    bool py = argc > 1 && strcmp(argv[1], "--python") == 0;
    int starts = !py && argc > 3 ? atoi(argv[3]) : 20, n = 2000;
    uint64_t *start_ns, *prompt_ns, *enter_ns;
    char *version[] = {argv[1], opt_version, NULL};
    char *connect[] = {argv[1], cmd_connect, argv[argc > 2 ? 2 : 1], NULL};
    char *repl[] = {python, opt_quiet, NULL};
    tty_t t;

    if (argc > (py ? 2 : 4))
        n = atoi(argv[py ? 2 : 4]);
    if ((!py && argc < 3) || starts <= 0 || n <= 0) {
        fprintf(stderr, "usage: ttyrtt LIMPET ADDRESS [STARTS] [N] | ttyrtt --python [N]\n");
        return 2;
    }
    enter_ns = calloc((size_t)n, sizeof(uint64_t));
    if (py) {
        enter_loop(repl, enter_ns, n);
        printf("{\n");
        report("enter_to_result", enter_ns, n, false);
        printf("}\n");
        return 0;
    }
    start_ns = calloc((size_t)starts, sizeof(uint64_t));
    prompt_ns = calloc((size_t)starts, sizeof(uint64_t));
    for (int i = 0; i < starts + 2; i++) { /* two rounds to warm the page cache */
        uint64_t t0 = now_ns();

        spawn(&t, version);
        reap(&t);
        if (i >= 2)
            start_ns[i - 2] = now_ns() - t0;
        t0 = now_ns();
        spawn(&t, connect);
        wait_for(&t, ">>> ");
        if (i >= 2)
            prompt_ns[i - 2] = now_ns() - t0;
        if (write(t.fd, "\004", 1) != 1)
            return 1;
        reap(&t);
    }
    enter_loop(connect, enter_ns, n);
    printf("{\n");
    report("process_start", start_ns, starts, true);
    report("connect_to_prompt", prompt_ns, starts, true);
    report("enter_to_result", enter_ns, n, false);
    printf("}\n");
    return 0;
}
