/* cmd_kernel_run.c: `limpet kernel run TARGET -f CONNECTION_FILE`: what a
 * kernelspec's argv starts. Attaches to the host first (a target that does
 * not resolve fails before any socket is bound), then serves Jupyter
 * (src/jupyter/). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "jupyter/kernel.h"
#include "wire/ops.h"

static const char run_usage[] =
    "usage: limpet kernel run [--env NAME] [--iopub-welcome] TARGET -f CONNECTION_FILE\n"
    "\n"
    "Serve a Jupyter front end (notebook, console, VS Code, nbclient) from the live\n"
    "process TARGET: cells run in a session of its limpet server. Jupyter starts this\n"
    "from a kernelspec ('limpet kernel install'); it is rarely typed.\n"
    "\n"
    "options:\n"
    "  -f FILE           the connection file Jupyter wrote (ports, key)\n"
    "  --env NAME        run cells in environment NAME of a 'limpet serve'\n"
    "  --iopub-welcome   send JEP 65's iopub_welcome to each iopub subscriber\n"
    "  -h, --help        show this help and exit\n"
    "\n"
    "exit status: 0 shut down, 1 the host went away or could not be reached,\n"
    "2 usage error or a bad connection file\n";

/* What the kernel asks of the host's server: pages for help(), and the
 * three operations of docs/jupyter.md section 5. */
#define KERNEL_CAPS (LP_CAP_PAGE | LP_CAP_CELL | LP_CAP_CHECK | LP_CAP_INSPECT)

static int parse(int argc, char **argv, lp_kernel_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return fputs(run_usage, stdout), -1;
        if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
            o->conn_file = argv[++i];
        else if (strcmp(argv[i], "--env") == 0 && i + 1 < argc)
            o->env = argv[++i];
        else if (strcmp(argv[i], "--iopub-welcome") == 0)
            o->iopub_welcome = true;
        else if (argv[i][0] == '-' && argv[i][1] != 0)
            return lp_cli_usage_error(run_usage, "unknown option '%s'", argv[i]);
        else if (o->target == NULL)
            o->target = argv[i];
        else
            return lp_cli_usage_error(run_usage, "too many arguments: '%s'", argv[i]);
    }
    if (o->target == NULL)
        return lp_cli_usage_error(run_usage, "no TARGET given");
    if (o->conn_file == NULL)
        return lp_cli_usage_error(run_usage, "no connection file given (-f FILE)");
    return 0;
}

static bool serves(const lp_client_t *c, const char *cap)
{
    for (size_t i = 0; i < json_array_size(c->welcome.caps); i++) {
        const char *s = json_string_value(json_array_get(c->welcome.caps, i));

        if (s != NULL && strcmp(s, cap) == 0)
            return true;
    }
    return false;
}

int lp_kernel_run_cmd(int argc, char **argv)
{
    lp_kernel_opts_t o;
    lp_target_t t = {0};
    lp_client_t c;
    int r = parse(argc, argv, &o);

    if (r != 0)
        return r < 0 ? 0 : r;
    if (lp_cli_resolve(o.target, &t) != 0 ||
        lp_cli_open(&c, &t, o.env == NULL, KERNEL_CAPS) != 0) {
        lp_target_clear(&t);
        return LP_EXIT_FAILURE;
    }
    lp_target_clear(&t);
    if (!serves(&c, "cell")) {
        fprintf(stderr, "limpet: the limpet in '%s' is too old for 'limpet kernel' (its server "
                        "does not serve the 'cell' capability): upgrade it\n", o.target);
        lp_client_close(&c);
        return LP_EXIT_FAILURE;
    }
    if (o.env != NULL && lp_cli_clone(&c, o.env) != 0) {
        lp_client_close(&c);
        return LP_EXIT_FAILURE;
    }
    return lp_kernel_run(&o, &c);
}
