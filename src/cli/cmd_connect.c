/* cmd_connect.c: `limpet connect [TARGET]`: an interactive session in a
 * live process. The prompt loop lives here; the terminal is lineedit.c's,
 * the wire src/client's, and what the server sends is shown by repl.c. */
#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/repl.h"
#include "io/io.h"
#include "wire/ops.h"

static const char connect_usage[] =
    "usage: limpet connect [--env NAME] [TARGET]\n"
    "\n"
    "Open an interactive session in the live process TARGET: a name or pid from\n"
    "'limpet list', a socket path, HOST:PORT or [V6]:PORT. With no TARGET, the only\n"
    "server running for this user.\n"
    "\n"
    "At the prompt: Tab completes, Ctrl+R searches the history (kept per server\n"
    "name under $XDG_STATE_HOME/limpet/history), Ctrl+C interrupts the running code\n"
    "or clears the line, Ctrl+D or exit() leaves; the process goes on.\n"
    "\n"
    "options:\n"
    "  --env NAME  a session in environment NAME of a 'limpet serve'\n"
    "  -h, --help  show this help and exit\n"
    "\n"
    "exit status: 0 when you leave, 1 when the server could not be reached or went\n"
    "away, 2 usage error\n";

/* Characters in history file names other than these become '_'. */
static bool safe_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

/* $XDG_STATE_HOME/limpet/history/<name> (else ~/.local/state/...), its
 * directory made, the file private (lines typed may hold secrets); false
 * when there is no home to keep it in. */
static bool history_path(const char *name, char *path, size_t size)
{
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    size_t n;
    int fd;

    if (state != NULL && state[0] == '/')
        n = (size_t)snprintf(path, size, "%s/limpet/history", state);
    else if (home != NULL && home[0] == '/')
        n = (size_t)snprintf(path, size, "%s/.local/state/limpet/history", home);
    else
        return false;
    if (name[0] == 0)
        name = "unnamed";
    if (n + 2 + strlen(name) >= size || lp_io_make_dirs(path, 0700) != 0)
        return false;
    path[n++] = '/';
    for (const char *p = name; *p != 0; p++)
        path[n++] = safe_char(*p) ? *p : '_';
    path[n] = 0;
    if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return false;
    close(fd);
    return true;
}

/* Text is read and shown as UTF-8 whatever the locale says (as Python
 * does under the C locale). */
static void utf8_locale(void)
{
    if (setlocale(LC_CTYPE, "") == NULL || strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8");
}

/* The string field key of h, or fallback. */
static const char *field_or(const json_t *h, const char *key, const char *fallback)
{
    const char *v = json_string_value(json_object_get(h, key));

    return v != NULL ? v : fallback;
}

static void banner(const lp_client_t *c)
{
    const json_t *srv = c->welcome.server, *argv = json_object_get(srv, "argv"), *a;
    size_t i;

    printf("limpet: connected to %s (pid %" JSON_INTEGER_FORMAT "):", field_or(srv, "name", "?"),
           json_integer_value(json_object_get(srv, "pid")));
    json_array_foreach(argv, i, a)
        printf(" %s", json_string_value(a) ? json_string_value(a) : "");
    printf("\nPython %s, limpet %s. Ctrl+D or exit() leaves (the process goes on); "
           "Ctrl+C interrupts.\n",
           field_or(srv, "python", "?"), field_or(srv, "limpet", "?"));
    fflush(stdout);
}

/* The prompt loop: the exit status. */
static int prompt_loop(lp_repl_t *r)
{
    bool more = false;

    for (;;) {
        const char *line = NULL;
        int k = lp_le_read(r->le, more ? "... " : ">>> ", &line);

        if (k == LP_LE_LINE) {
            lp_le_remember(r->le, line);
            if (lp_repl_eval(r, line, strlen(line)) != 0)
                break;
            if (strcmp(r->status, "closed") == 0)
                return 0;
            more = strcmp(r->status, "more") == 0;
        } else if (k == LP_LE_CANCEL) {
            fputs("\nKeyboardInterrupt\n", stdout);
            fflush(stdout);
            if (more && lp_repl_interrupt(r) != 0) /* drops the lines typed so far */
                break;
            more = false;
        } else if (k == LP_LE_EOF) {
            fputc('\n', stdout);
            fflush(stdout);
            lp_repl_close(r);
            return 0;
        } else {
            break;
        }
    }
    lp_repl_gone(r);
    return LP_EXIT_FAILURE;
}

int cmd_connect(int argc, char **argv)
{
    const char *target = NULL, *env = NULL;
    char hist[4096];
    lp_target_t t;
    lp_repl_t r;
    int status;

    for (int i = 1; i + 1 < argc; i++) /* --env NAME: taken out before the target */
        if (strcmp(argv[i], "--env") == 0) {
            env = argv[i + 1];
            memmove(argv + i, argv + i + 2, (size_t)(argc - i - 2) * sizeof(char *));
            argc -= 2;
            break;
        }
    if ((status = lp_cli_target_arg(argc, argv, connect_usage, &target)) >= 0)
        return status;
    utf8_locale();
    if (lp_cli_resolve(target, &t) != 0 || lp_repl_open(&r, &t, env) != 0) {
        lp_target_clear(&t);
        return LP_EXIT_FAILURE;
    }
    lp_target_clear(&t);
    signal(SIGPIPE, SIG_IGN); /* a pager quit early, a server gone: errors, not death */
    if (isatty(STDIN_FILENO))
        banner(&r.c);
    if (lp_repl_start(&r, history_path(field_or(r.c.welcome.server, "name", ""), hist,
                                       sizeof(hist)) ? hist : NULL) != 0) {
        lp_repl_free(&r);
        return LP_EXIT_FAILURE;
    }
    status = prompt_loop(&r);
    lp_repl_free(&r);
    return status;
}
