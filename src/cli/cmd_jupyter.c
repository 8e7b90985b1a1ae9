/* cmd_jupyter.c: `limpet jupyter TARGET`: jupyter console on a temporary
 * kernelspec for TARGET (docs/jupyter.md section 8). The console starts
 * the kernel itself (not --existing), so its Ctrl+C interrupts the cell. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "jupyter/spec.h"

static const char jupyter_usage[] =
    "usage: limpet jupyter [--env NAME] TARGET [-- ARGS...]\n"
    "\n"
    "Run 'jupyter console' inside the live process TARGET (a name or pid from\n"
    "'limpet list', a socket path, HOST:PORT, ssh://...): a temporary kernelspec\n"
    "limpet-tmp-PID is written under the runtime directory, put first in\n"
    "JUPYTER_PATH, and removed when the console exits. ARGS go to jupyter console.\n"
    "Ctrl+C interrupts the running cell; leaving the console leaves the process\n"
    "running.\n"
    "\n"
    "options:\n"
    "  --env NAME  a session in environment NAME of a 'limpet serve'\n"
    "  -h, --help  show this help and exit\n"
    "\n"
    "exit status: jupyter console's; 1 when the server cannot be reached or jupyter\n"
    "console is not installed, 2 usage error\n";

/* True when an executable name is in one of PATH's directories, or in dir
 * (jupyter finds its subcommands beside itself too; NULL: not looked). */
static bool on_path(const char *name, const char *dir)
{
    const char *path = getenv("PATH");
    char buf[4096];

    if (dir != NULL && snprintf(buf, sizeof(buf), "%s/%s", dir, name) < (int)sizeof(buf) &&
        access(buf, X_OK) == 0)
        return true;
    for (const char *p = path; p != NULL && *p != 0;) {
        const char *end = strchr(p, ':');
        int len = end ? (int)(end - p) : (int)strlen(p);

        if (len > 0 && snprintf(buf, sizeof(buf), "%.*s/%s", len, p, name) < (int)sizeof(buf) &&
            access(buf, X_OK) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

/* Removes the temporary specs of `limpet jupyter` runs that died before
 * cleaning up (killed): limpet-tmp-PID with no process PID. */
static void remove_stale(const char *kernels)
{
    DIR *d = opendir(kernels);
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL) {
        char dir[LP_KSPEC_PATH_MAX], why[256], *end;
        long pid;

        if (strncmp(e->d_name, "limpet-tmp-", 11) != 0)
            continue;
        pid = strtol(e->d_name + 11, &end, 10);
        if (*end != 0 || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH ||
            snprintf(dir, sizeof(dir), "%s/%s", kernels, e->d_name) >= (int)sizeof(dir))
            continue;
        lp_kspec_remove(dir, why, sizeof(why));
    }
    if (d != NULL)
        closedir(d);
}

/* Runs jupyter console --kernel name ARGS in the foreground; its exit
 * status (128 + signal when killed). We ignore the terminal's SIGINT and
 * SIGQUIT meanwhile, as system() does: they are the console's to handle. */
static int run_console(const char *name, int argc, char **argv)
{
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    const char **args = calloc((size_t)argc + 5, sizeof(*args));
    int status = 0, n = 0;
    pid_t pid;

    if (args == NULL)
        return fputs("limpet: out of memory\n", stderr), LP_EXIT_FAILURE;
    args[n++] = "jupyter";
    args[n++] = "console";
    args[n++] = "--kernel";
    args[n++] = name;
    for (int i = 0; i < argc; i++)
        args[n++] = argv[i];
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    if ((pid = fork()) == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        execvp(args[0], (char *const *)args);
        fprintf(stderr, "limpet: cannot run jupyter: %s\n", strerror(errno));
        _exit(127);
    }
    free((void *)args);
    if (pid < 0)
        status = -1;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    if (pid < 0)
        return fprintf(stderr, "limpet: fork: %s\n", strerror(errno)), LP_EXIT_FAILURE;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Writes the temporary spec (KERNELS/name) and puts its data directory
 * first in JUPYTER_PATH. 0, or -1 once why is said. */
static int write_tmp_spec(const lp_kspec_opts_t *o, const char *data, const char *name)
{
    char kernels[LP_KSPEC_PATH_MAX + 16], why[LP_KSPEC_PATH_MAX + 128], *jp;
    const char *old = getenv("JUPYTER_PATH");
    json_t *spec;
    int r = -1;

    snprintf(kernels, sizeof(kernels), "%s/kernels", data);
    if ((spec = lp_kspec_build(o, why, sizeof(why))) != NULL &&
        lp_kspec_write(kernels, name, spec, why, sizeof(why)) == 0)
        r = 0;
    json_decref(spec);
    if (r != 0)
        return fprintf(stderr, "limpet: %s\n", why), -1;
    if (asprintf(&jp, "%s%s%s", data, old && old[0] ? ":" : "", old && old[0] ? old : "") < 0)
        return fputs("limpet: out of memory\n", stderr), -1;
    setenv("JUPYTER_PATH", jp, 1);
    free(jp);
    return 0;
}

int cmd_jupyter(int argc, char **argv)
{
    char data[LP_KSPEC_PATH_MAX], kernels[LP_KSPEC_PATH_MAX + 16], name[64];
    char dir[LP_KSPEC_PATH_MAX + 96], why[LP_KSPEC_PATH_MAX + 128];
    lp_kspec_opts_t o = {0};
    lp_target_t t;
    int i, status;

    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return fputs(jupyter_usage, stdout), 0;
        if (strcmp(argv[i], "--env") == 0) {
            if (i + 1 >= argc)
                return lp_cli_usage_error(jupyter_usage, "--env needs a value");
            o.env = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            return lp_cli_usage_error(jupyter_usage, "unknown option '%s' (jupyter console's "
                                                     "options go after --)", argv[i]);
        } else if (o.target != NULL) {
            return lp_cli_usage_error(jupyter_usage, "too many arguments: '%s'", argv[i]);
        } else {
            o.target = argv[i];
        }
    }
    if (o.target == NULL)
        return lp_cli_usage_error(jupyter_usage, "TARGET is required");
    if (!on_path("jupyter", NULL) || !on_path("jupyter-console", NULL)) {
        fputs("limpet: jupyter console is not installed (Debian: apt-get install "
              "jupyter-console)\n", stderr);
        return LP_EXIT_FAILURE;
    }
    /* Fail here, with limpet connect's message, not in the console's kernel log. */
    if (lp_cli_resolve(o.target, &t) != 0) {
        lp_target_clear(&t);
        return LP_EXIT_FAILURE;
    }
    lp_target_clear(&t);
    if (lp_kspec_tmp_data_dir(data, sizeof(data), why, sizeof(why)) != 0)
        return fprintf(stderr, "limpet: %s\n", why), LP_EXIT_FAILURE;
    snprintf(kernels, sizeof(kernels), "%s/kernels", data);
    remove_stale(kernels);
    snprintf(name, sizeof(name), "limpet-tmp-%ld", (long)getpid());
    snprintf(dir, sizeof(dir), "%s/%s", kernels, name);
    if (write_tmp_spec(&o, data, name) != 0)
        return LP_EXIT_FAILURE;
    status = run_console(name, i < argc ? argc - i - 1 : 0, argv + (i < argc ? i + 1 : argc));
    if (lp_kspec_remove(dir, why, sizeof(why)) != 0)
        fprintf(stderr, "limpet: %s\n", why);
    return status;
}
