/* term.c: the terminal's size, colour and pager (term.h). */
#include "cli/term.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>


int lp_term_write(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void lp_term_size(int *rows, int *cols)
{
    struct winsize ws;
    bool known = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0;

    if (rows != NULL)
        *rows = known ? ws.ws_row : 24;
    if (cols != NULL)
        *cols = known ? ws.ws_col : 80;
}

bool lp_term_colour(int fd)
{
    const char *no = getenv("NO_COLOR"), *term = getenv("TERM");

    return isatty(fd) && (no == NULL || no[0] == 0) && (term == NULL || strcmp(term, "dumb") != 0);
}

static size_t count_lines(const char *text, size_t len)
{
    size_t n = 0;

    for (const char *p = text; (p = memchr(p, '\n', len - (size_t)(p - text))) != NULL; p++)
        n++;
    return n;
}

/* In the child: the pager reads the pipe; with no pager at all, the text
 * is copied through as it is. */
static void run_pager(int in)
{
    const char *pager = getenv("PAGER");
    sigset_t none;
    char buf[65536];
    ssize_t n;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    dup2(in, STDIN_FILENO);
    close(in);
    if (pager != NULL && pager[0] != 0)
        execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
    execlp("less", "less", (char *)NULL);
    execlp("more", "more", (char *)NULL);
    while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
        if (lp_term_write(STDOUT_FILENO, buf, (size_t)n) != 0)
            break;
    _exit(0);
}

/* Prints pydoc's text without its "c\bc" bold, which only pagers draw. */
static void print_plain(const char *text, size_t len)
{
    char *plain = malloc(len + 1);
    size_t n = 0;

    if (plain == NULL) {
        lp_term_write(STDOUT_FILENO, text, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (i + 1 < len && text[i + 1] == '\b')
            i++; /* drop the character and its backspace; the next one stays */
        else
            plain[n++] = text[i];
    }
    lp_term_write(STDOUT_FILENO, plain, n);
    free(plain);
}

void lp_term_page(const char *text, size_t len)
{
    struct sigaction ignore = {.sa_handler = SIG_IGN}, saved;
    int rows, fds[2], status;
    pid_t pid;

    lp_term_size(&rows, NULL);
    if (!isatty(STDOUT_FILENO) || count_lines(text, len) < (size_t)rows - 1 || pipe(fds) != 0) {
        print_plain(text, len);
        return;
    }
    /* Ctrl+C in the pager is the pager's, not an interrupt of the code */
    sigaction(SIGINT, &ignore, &saved);
    if ((pid = fork()) == 0) {
        close(fds[1]);
        run_pager(fds[0]);
    }
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        print_plain(text, len);
    } else {
        lp_term_write(fds[1], text, len); /* EPIPE when the user quits early: fine */
        close(fds[1]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    /* SIGINT is blocked here, and Linux queues a blocked signal even when
     * ignored: setting SIG_IGN again discards it (POSIX) */
    sigaction(SIGINT, &ignore, NULL);
    sigaction(SIGINT, &saved, NULL);
}
