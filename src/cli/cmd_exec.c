/* cmd_exec.c: `limpet exec TARGET (-c CODE | FILE | -)`: run code as one
 * unit in a fresh session of a live process; its stdout to stdout, its
 * stderr and traceback to stderr; the exit status says how it ended. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/present.h"
#include "wire/msg.h"

#define EXIT_EXCEPTION 1   /* the code raised, or the connection failed */
#define EXIT_TIMEOUT 124   /* --timeout ran out (as timeout(1) says it) */
#define EXIT_INTERRUPT 130 /* Ctrl+C */
#define POLL_MS 100        /* how often a waiting exec looks at Ctrl+C and the clock */

static const char exec_usage[] =
    "usage: limpet exec [--timeout SECONDS] [--env NAME] TARGET (-c CODE | FILE | -)\n"
    "\n"
    "Run code in a fresh session of the live process TARGET (a name or pid from\n"
    "'limpet list', a socket path, HOST:PORT or [V6]:PORT) and print what it prints.\n"
    "\n"
    "options:\n"
    "  -c CODE            the code to run; else FILE, or - for standard input\n"
    "  --timeout SECONDS  interrupt the code after SECONDS and exit 124\n"
    "  --env NAME         run it in environment NAME of a 'limpet serve'\n"
    "  -h, --help         show this help and exit\n"
    "\n"
    "exit status: 0 done, 1 an exception (traceback on stderr) or no server,\n"
    "2 usage error, 124 timed out, 130 interrupted by Ctrl+C\n";

static volatile sig_atomic_t interrupts; /* Ctrl+C presses: signal-safe, this process only */

static void on_sigint(int sig)
{
    (void)sig;
    interrupts++;
}

/* Reads all of f into a new buffer (caller frees); NULL when out of memory. */
static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0, k;
    char *buf = malloc(cap), *p;

    while (buf != NULL && (k = fread(buf + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n < cap)
            continue;
        if ((p = realloc(buf, cap * 2)) == NULL) {
            free(buf);
            return NULL;
        }
        buf = p;
        cap *= 2;
    }
    *len = n;
    return buf;
}

struct exec_opts {
    const char *target;   /* where */
    const char *code;     /* -c CODE, or NULL */
    const char *file;     /* FILE or "-" */
    double timeout;       /* seconds, 0 for none */
    const char *env;      /* --env NAME, or NULL */
};

static int parse(int argc, char **argv, struct exec_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        char *end;

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return fputs(exec_usage, stdout), -1;
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
            o->code = argv[++i];
        else if (strcmp(argv[i], "--env") == 0 && i + 1 < argc)
            o->env = argv[++i];
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            o->timeout = strtod(argv[++i], &end);
            if (*end != 0 || o->timeout <= 0)
                return lp_cli_usage_error(exec_usage, "--timeout needs a number of seconds, "
                                                      "not '%s'", argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1] != 0)
            return lp_cli_usage_error(exec_usage, "unknown option '%s'", argv[i]);
        else if (o->target == NULL)
            o->target = argv[i];
        else if (o->file == NULL && o->code == NULL)
            o->file = argv[i];
        else
            return lp_cli_usage_error(exec_usage, "too many arguments: '%s'", argv[i]);
    }
    if (o->target == NULL)
        return lp_cli_usage_error(exec_usage, "no TARGET given");
    if ((o->code == NULL) == (o->file == NULL))
        return lp_cli_usage_error(exec_usage, "give the code with -c CODE, a FILE, or -");
    return 0;
}

/* Answers the server's input() request with a line of our stdin. */
static void answer_input(lp_client_t *c, const char *session)
{
    char line[65536];
    bool eof = fgets(line, sizeof(line), stdin) == NULL;
    json_t *h = json_pack("{s:s,s:s,s:b}", "op", "stdin", "session", session, "eof", eof);

    lp_client_send(c, h, eof ? "" : line, eof ? 0 : strlen(line));
}

/* The presenter's output: stdout and stderr, flushed at once. */
static void write_std(void *ctx, int fd, const void *p, size_t n)
{
    FILE *to = fd == STDERR_FILENO ? stderr : stdout;

    fwrite(p, 1, n, to);
    fflush(to);
}

/* The exit status for the status of the eval's done reply. */
static int exit_status(const json_t *done, bool timed_out)
{
    static const struct {
        const char *status; /* as the server says it */
        int exit;           /* our exit status */
    } table[] = {
        {"ok", 0}, {"closed", 0}, {"interrupted", EXIT_INTERRUPT}, {"detached", EXIT_INTERRUPT},
    };
    const char *status = json_string_value(json_object_get(done, "status"));

    for (size_t i = 0; status != NULL && i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(status, table[i].status) == 0)
            return table[i].exit == EXIT_INTERRUPT && timed_out ? EXIT_TIMEOUT : table[i].exit;
    return EXIT_EXCEPTION;
}

/* Streams the eval's frames until its done; the exit status. */
static int follow(lp_client_t *c, const char *session, int64_t id, double timeout)
{
    const lp_presenter_t pr = {.write = write_std};
    /* beyond 3e13 s (a million years): no deadline, and no overflowing cast */
    uint64_t deadline =
        timeout > 0 && timeout < 3e13 ? lp_clock_ms() + (uint64_t)(timeout * 1000) : 0;
    bool timed_out = false;
    int seen = 0, code = -1;

    while (code < 0) {
        lp_frame_t f = {0};
        lp_route_t rt;
        int r = lp_client_read(c, &f, POLL_MS);

        if (interrupts > seen || (deadline > 0 && !timed_out && lp_clock_ms() > deadline)) {
            if (interrupts > 1)
                return EXIT_INTERRUPT; /* pressed again: leave at once */
            timed_out = interrupts == seen;
            seen = interrupts;
            lp_client_send(c, json_pack("{s:s,s:s}", "op", "interrupt", "session", session),
                           NULL, 0);
        }
        if (r == -ETIMEDOUT)
            continue;
        if (r != 0) {
            fprintf(stderr, "limpet: the server closed the connection\n");
            return EXIT_EXCEPTION;
        }
        switch (lp_present(&pr, &f, &rt)) {
        case LP_SHOWN_INPUT:
            answer_input(c, session);
            break;
        case LP_SHOWN_BYE:
            lp_present_error(&pr, f.header);
            code = EXIT_EXCEPTION;
            break;
        case LP_SHOWN_DONE:
            if (rt.re == id)
                code = exit_status(f.header, timed_out);
            break;
        case LP_SHOWN_ERROR:
            if (rt.re == id) {
                lp_present_error(&pr, f.header);
                code = EXIT_EXCEPTION;
            }
            break;
        case LP_SHOWN_NOTHING:
            break;
        }
        lp_frame_clear(&f);
    }
    return code;
}

int cmd_exec(int argc, char **argv)
{
    struct exec_opts o;
    char session[80];
    lp_target_t t = {0};
    struct sigaction sa = {.sa_handler = on_sigint};
    lp_client_t c;
    lp_frame_t f = {0};
    char *code = NULL;
    size_t len = 0;
    int64_t id;
    int status = EXIT_EXCEPTION, r;

    if ((r = parse(argc, argv, &o)) != 0)
        return r < 0 ? 0 : r;
    if (o.code != NULL) {
        code = strdup(o.code);
        len = strlen(o.code);
    } else {
        FILE *in = strcmp(o.file, "-") == 0 ? stdin : fopen(o.file, "rb");

        if (in == NULL) {
            fprintf(stderr, "limpet: cannot read '%s': %s\n", o.file, strerror(errno));
            return LP_EXIT_USAGE;
        }
        code = slurp(in, &len);
        if (in != stdin)
            fclose(in);
    }
    if (code == NULL || lp_cli_resolve(o.target, &t) != 0 || lp_cli_open(&c, &t, false, 0) != 0)
        goto out;
    sigaction(SIGINT, &sa, NULL);
    if (lp_cli_clone(&c, o.env) != 0)
        goto close;
    snprintf(session, sizeof(session), "%s", c.welcome.session);
    id = lp_client_send(&c, json_pack("{s:s,s:s,s:s}", "op", "eval", "session", session,
                                      "filename", o.code ? "<string>" : o.file),
                        code, len);
    status = id < 0 ? EXIT_EXCEPTION : follow(&c, session, id, o.timeout);
close:
    lp_frame_clear(&f);
    lp_client_close(&c);
out:
    lp_target_clear(&t);
    free(code);
    return status;
}
