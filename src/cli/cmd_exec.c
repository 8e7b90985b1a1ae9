/* cmd_exec.c: `limpet exec TARGET (-c CODE | FILE | -)`: run code as one
 * unit in a fresh session of a live process; its stdout to stdout, its
 * stderr and traceback to stderr; the exit status says how it ended. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "wire/msg.h"

#define EXIT_EXCEPTION 1   /* the code raised, or the connection failed */
#define EXIT_TIMEOUT 124   /* --timeout ran out (as timeout(1) says it) */
#define EXIT_INTERRUPT 130 /* Ctrl+C */
#define POLL_MS 100        /* how often a waiting exec looks at Ctrl+C and the clock */

static const char exec_usage[] =
    "usage: limpet exec [--timeout SECONDS] TARGET (-c CODE | FILE | -)\n"
    "\n"
    "Run code in a fresh session of the live process TARGET (a name or pid from\n"
    "'limpet list', a socket path, HOST:PORT or [V6]:PORT) and print what it prints.\n"
    "\n"
    "options:\n"
    "  -c CODE            the code to run; else FILE, or - for standard input\n"
    "  --timeout SECONDS  interrupt the code after SECONDS and exit 124\n"
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

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Streams the eval's frames until its done; the exit status. */
static int follow(lp_client_t *c, const char *session, int64_t id, double timeout)
{
    double deadline = timeout > 0 ? now_s() + timeout : 0;
    bool timed_out = false;
    int seen = 0;

    for (;;) {
        lp_frame_t f = {0};
        const char *op;
        int r = lp_client_read(c, &f, POLL_MS);

        if (interrupts > seen || (deadline > 0 && !timed_out && now_s() > deadline)) {
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
        op = json_string_value(json_object_get(f.header, "op"));
        if (strcmp(op, "out") == 0 || strcmp(op, "exception") == 0) {
            FILE *to = strcmp(op, "out") == 0 &&
                               strcmp(json_string_value(json_object_get(f.header, "stream")),
                                      "stdout") == 0 ? stdout : stderr;

            fwrite(f.payload, 1, f.payload_len, to);
            fflush(to);
        } else if (strcmp(op, "input") == 0) {
            answer_input(c, session);
        } else if (strcmp(op, "bye") == 0) {
            fprintf(stderr, "limpet: %s\n", json_string_value(json_object_get(f.header, "message")));
            lp_frame_clear(&f);
            return EXIT_EXCEPTION;
        } else if (json_integer_value(json_object_get(f.header, "re")) == id &&
                   (strcmp(op, "done") == 0 || strcmp(op, "error") == 0)) {
            const char *status = json_string_value(json_object_get(f.header, "status"));
            int code = EXIT_EXCEPTION;

            if (strcmp(op, "error") == 0)
                fprintf(stderr, "limpet: %s\n",
                        json_string_value(json_object_get(f.header, "message")));
            else if (strcmp(status, "ok") == 0 || strcmp(status, "closed") == 0)
                code = 0;
            else if (strcmp(status, "interrupted") == 0 || strcmp(status, "detached") == 0)
                code = timed_out ? EXIT_TIMEOUT : EXIT_INTERRUPT;
            lp_frame_clear(&f);
            return code;
        }
        lp_frame_clear(&f);
    }
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
    if ((id = lp_client_send(&c, json_pack("{s:s}", "op", "clone"), NULL, 0)) < 0 ||
        lp_client_read(&c, &f, -1) != 0 || json_object_get(f.header, "session") == NULL) {
        fprintf(stderr, "limpet: the server did not open a session\n");
        goto close;
    }
    snprintf(session, sizeof(session), "%s", json_string_value(json_object_get(f.header, "session")));
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
