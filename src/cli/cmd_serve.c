/* cmd_serve.c: `limpet serve`: the kernel server (docs/serve.md). Named
 * environments, each a far Python started as an execution context, served
 * over the framed protocol on a Unix socket (the embedded server's core,
 * with the context engine) and over HTTP/JSON. No Python in this process. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "limpet.h"
#include "net/discovery.h"
#include "net/net.h"
#include "http/http.h"
#include "serve/engine.h"
#include "serve/serve.h"

#define TOKEN_EXT "http-token" /* <runtime dir>/<pid>.http-token, 0600 */
#define DRAIN_GRACE_MS 10000

static const char serve_usage[] =
    "usage: limpet serve [--name NAME] [--http ADDR|off] [--journal PATH] [--allow-remote]\n"
    "                    [--tls-cert PEM --tls-key PEM | --insecure-http] [--python PATH]\n"
    "       limpet serve [--name NAME] --print-token\n"
    "\n"
    "Run a kernel server: named environments (each a Python process of its own)\n"
    "that clients run code in, over the Unix socket (limpet connect NAME --env ENV,\n"
    "limpet exec) and over HTTP/JSON with a web console at http://ADDR/.\n"
    "\n"
    "options:\n"
    "  --name NAME      the server's name in 'limpet list' (default: serve)\n"
    "  --http ADDR|off  where HTTP listens (default: 127.0.0.1:8700)\n"
    "  --journal PATH   append one JSON line per run to PATH (0600; past\n"
    "                   --journal-max-mb, default 64, it becomes PATH.1)\n"
    "  --allow-remote   allow a non-loopback HTTP address (needs TLS or --insecure-http)\n"
    "  --tls-cert PEM, --tls-key PEM  serve HTTPS\n"
    "  --insecure-http  a non-loopback address without TLS: the token travels in clear\n"
    "  --python PATH    the Python of local environments (default: python3)\n"
    "  --cpu-s N, --memory-mb N   an environment's CPU seconds and address space\n"
    "                   (default: no limit; a local environment's process)\n"
    "  --output-mb N    output kept per run (default: 16; older output is dropped)\n"
    "  --wall-s N       a run longer than N seconds is interrupted (default: none)\n"
    "  --print-token    print the HTTP token of the running server NAME and exit\n"
    "  -h, --help       show this help and exit\n"
    "\n"
    "The HTTP token is made at start and kept in a 0600 file of the runtime\n"
    "directory; the server never prints it: use --print-token. SIGTERM drains: no\n"
    "new runs, running ones get 10 s, then every environment is stopped.\n";

struct serve_opts {
    const char *name, *http, *journal, *tls_cert, *tls_key, *python;
    const char *cpu_s, *memory_mb, *output_mb, *wall_s; /* environments' default limits */
    const char *journal_max_mb;
    bool allow_remote, insecure_http, print_token;
};

static int parse(int argc, char **argv, struct serve_opts *o)
{
    static const struct {
        const char *flag;
        size_t off;
    } valued[] = {
        {"--name", offsetof(struct serve_opts, name)},
        {"--http", offsetof(struct serve_opts, http)},
        {"--journal", offsetof(struct serve_opts, journal)},
        {"--tls-cert", offsetof(struct serve_opts, tls_cert)},
        {"--tls-key", offsetof(struct serve_opts, tls_key)},
        {"--python", offsetof(struct serve_opts, python)},
        {"--cpu-s", offsetof(struct serve_opts, cpu_s)},
        {"--memory-mb", offsetof(struct serve_opts, memory_mb)},
        {"--output-mb", offsetof(struct serve_opts, output_mb)},
        {"--wall-s", offsetof(struct serve_opts, wall_s)},
        {"--journal-max-mb", offsetof(struct serve_opts, journal_max_mb)},
    };

    memset(o, 0, sizeof(*o));
    o->name = "serve";
    o->http = "127.0.0.1:8700";
    for (int i = 1; i < argc; i++) {
        bool known = false;

        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return fputs(serve_usage, stdout), 0;
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]) && !known; k++) {
            if (strcmp(argv[i], valued[k].flag) != 0)
                continue;
            if (i + 1 >= argc)
                return lp_cli_usage_error(serve_usage, "%s needs a value", argv[i]);
            *(const char **)((char *)o + valued[k].off) = argv[++i];
            known = true;
        }
        if (known)
            continue;
        if (strcmp(argv[i], "--allow-remote") == 0)
            o->allow_remote = true;
        else if (strcmp(argv[i], "--insecure-http") == 0)
            o->insecure_http = true;
        else if (strcmp(argv[i], "--print-token") == 0)
            o->print_token = true;
        else
            return lp_cli_usage_error(serve_usage, "unknown option or argument '%s'", argv[i]);
    }
    if (o->name[0] == 0 || strlen(o->name) > 64)
        return lp_cli_usage_error(serve_usage, "--name needs 1-64 characters");
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return lp_cli_usage_error(serve_usage, "--tls-cert and --tls-key go together");
    return -1;
}

/* The live record of the serve named name in dir (a new reference), or NULL. */
static json_t *find_serve(const char *dir, const char *name)
{
    json_t *recs = lp_discovery_list(dir), *found = NULL, *rec;
    size_t i;

    json_array_foreach(recs, i, rec) {
        const char *n = json_string_value(json_object_get(rec, "name"));

        if (n != NULL && strcmp(n, name) == 0 && json_object_get(rec, "serve") != NULL)
            found = json_incref(rec);
    }
    json_decref(recs);
    return found;
}

/* A limit option's value: a whole number, 0 for none. */
static int limit_arg(const char *flag, const char *text, unsigned *out)
{
    char *end;
    unsigned long v;

    if (text == NULL)
        return 0;
    v = strtoul(text, &end, 10);
    if (*end != 0 || end == text || v > 1000000u || text[0] == '-')
        return lp_cli_usage_error(serve_usage, "%s needs a whole number, not '%s'", flag, text);
    *out = (unsigned)v;
    return 0;
}

static int print_token(const char *dir, const char *name)
{
    json_t *rec = find_serve(dir, name);
    char path[4200], token[256];
    FILE *f;
    int ok = 0;

    if (rec == NULL) {
        fprintf(stderr, "limpet: no 'limpet serve' named '%s' is running for this user\n", name);
        return LP_EXIT_FAILURE;
    }
    lp_discovery_path(path, sizeof(path), dir,
                      (pid_t)json_integer_value(json_object_get(rec, "pid")), TOKEN_EXT);
    json_decref(rec);
    if ((f = fopen(path, "r")) != NULL) {
        ok = fgets(token, sizeof(token), f) != NULL;
        fclose(f);
    }
    if (!ok) {
        fprintf(stderr, "limpet: cannot read the token of '%s' (%s)\n", name, path);
        return LP_EXIT_FAILURE;
    }
    fputs(token, stdout);
    return 0;
}

/* 32 random bytes as hex. */
static int make_token(char out[65])
{
    unsigned char raw[32];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return -1;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

static json_t *identity(const struct serve_opts *o, const char *http, int argc, char **argv)
{
    json_t *args = json_array();
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    for (int i = 0; i < argc && i < 32; i++)
        json_array_append_new(args, json_string(argv[i]));
    return json_pack("{s:s, s:I, s:s, s:o, s:I, s:{s:s}}", "name", o->name,
                     "pid", (json_int_t)getpid(), "limpet", LIMPET_VERSION, "argv", args,
                     "started", (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, "serve",
                     "http", http);
}

/* One line per request (HTTP's, and the socket's evals), on the server's
 * stderr (no token in it). */
static void log_request(void *arg, const char *line)
{
    fprintf(stderr, "%s\n", line);
}

/* Starts HTTP unless --http off; *addr is where it listens (its port the
 * real one, when the address asked for port 0). */
static int start_http(const struct serve_opts *o, lp_serve_t *sv, const char *token,
                      lp_http_t **http, char *addr, size_t addrsz)
{
    lp_http_config_t hc = {.addr = o->http, .token = token, .allow_remote = o->allow_remote,
                           .tls_cert = o->tls_cert, .tls_key = o->tls_key,
                           .insecure_http = o->insecure_http, .log = log_request};
    const char *colon = strrchr(o->http, ':');
    char msg[512];
    int r;

    snprintf(addr, addrsz, "%s", o->http);
    if (strcmp(o->http, "off") == 0)
        return 0;
    if ((r = lp_http_start(&hc, sv, http, msg)) != 0) {
        fprintf(stderr, "limpet: %s\n", msg);
        return r;
    }
    if (colon != NULL)
        snprintf(addr, addrsz, "%.*s:%u", (int)(colon - o->http), o->http, lp_http_port(*http));
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct serve_opts o;
    lp_serve_config_t scfg = {0};
    lp_server_config_t cfg = {0};
    lp_engine_t engine;
    json_t *main_env = NULL;
    unsigned journal_mb = 0;
    lp_serve_t *sv = NULL;
    lp_server_t *srv = NULL;
    lp_http_t *http = NULL;
    char http_addr[300];
    char dir[4096], msg[LP_SERVE_MSG_MAX], token[65], path[4200];
    sigset_t stop;
    int r, sig = 0, status = LP_EXIT_FAILURE;

    if ((r = parse(argc, argv, &o)) >= 0)
        return r;
    if ((r = lp_net_runtime_dir(dir, sizeof(dir))) != 0) {
        fprintf(stderr, "limpet: cannot use the runtime directory: %s\n", strerror(-r));
        return LP_EXIT_FAILURE;
    }
    if (o.print_token)
        return print_token(dir, o.name);
    if ((cfg.identity = find_serve(dir, o.name)) != NULL) {
        json_decref(cfg.identity);
        fprintf(stderr, "limpet: a 'limpet serve' named '%s' is running already\n", o.name);
        return LP_EXIT_FAILURE;
    }
    if (make_token(token) != 0) {
        fprintf(stderr, "limpet: no random bytes for the token\n");
        return LP_EXIT_FAILURE;
    }
    /* every thread started from here on leaves these signals to sigwait below */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    scfg.python = o.python;
    scfg.journal = o.journal;
    scfg.log = log_request;
    scfg.limits = (lp_env_limits_t)LP_ENV_LIMITS_DEFAULT;
    if (limit_arg("--cpu-s", o.cpu_s, &scfg.limits.cpu_s) != 0 ||
        limit_arg("--memory-mb", o.memory_mb, &scfg.limits.memory_mb) != 0 ||
        limit_arg("--output-mb", o.output_mb, &scfg.limits.output_mb) != 0 ||
        limit_arg("--wall-s", o.wall_s, &scfg.limits.wall_s) != 0 ||
        limit_arg("--journal-max-mb", o.journal_max_mb, &journal_mb) != 0)
        return LP_EXIT_USAGE;
    scfg.journal_max = (size_t)journal_mb << 20;
    if ((r = lp_serve_new(&scfg, &sv)) != 0) {
        if (o.journal != NULL && r == -ELOOP)
            fprintf(stderr, "limpet: the journal '%s' is a symbolic link: give the file itself\n",
                    o.journal);
        else
            fprintf(stderr, "limpet: cannot start: %s%s%s%s\n", lp_wire_strerror(r),
                    o.journal != NULL ? " (the journal '" : "", o.journal != NULL ? o.journal : "",
                    o.journal != NULL ? "')" : "");
        return LP_EXIT_FAILURE;
    }
    if ((r = lp_serve_env_create(sv, "main", NULL, NULL, NULL, &main_env, msg)) != 0) {
        fprintf(stderr, "limpet: %s\n", msg);
        goto out;
    }
    lp_serve_engine(sv, &engine);
    if (start_http(&o, sv, token, &http, http_addr, sizeof(http_addr)) != 0)
        goto out;
    cfg.identity = identity(&o, http_addr, argc, argv);
    /* the banner's Python: the main environment's */
    json_object_set(cfg.identity, "python", json_object_get(main_env, "python"));
    json_decref(main_env);
    cfg.main_env = (void *)"main";
    if ((r = lp_server_start(&cfg, &engine, &srv)) != 0) {
        fprintf(stderr, "limpet: cannot listen: %s\n", lp_wire_strerror(r));
        goto out;
    }
    if (lp_discovery_write_text(dir, getpid(), TOKEN_EXT, token) != 0) {
        fprintf(stderr, "limpet: cannot write the token file in %s\n", dir);
        goto out;
    }
    fprintf(stderr, "limpet serve '%s': socket %s, HTTP %s (the token: limpet serve%s%s "
                    "--print-token)\n",
            o.name, lp_server_address(srv), http_addr, strcmp(o.name, "serve") ? " --name " : "",
            strcmp(o.name, "serve") ? o.name : "");
    sigwait(&stop, &sig);
    fprintf(stderr, "limpet serve: %s: draining\n", strsignal(sig));
    lp_serve_drain(sv, sig == SIGTERM ? DRAIN_GRACE_MS : 0);
    status = 0;
out:
    lp_http_stop(http); /* no request comes in past here */
    /* the runs end before the sessions are waited for: a session's eval returns only once
     * its run has ended (a run that ignores interrupts went on past the wait, and the core
     * was freed under it); a session still busy past the wait keeps the core */
    if (sv != NULL)
        lp_serve_stop_envs(sv);
    if (srv == NULL || lp_server_stop(srv, 2000) == 0)
        lp_serve_free(sv);
    lp_discovery_path(path, sizeof(path), dir, getpid(), TOKEN_EXT);
    unlink(path);
    json_decref(cfg.identity);
    return status;
}
