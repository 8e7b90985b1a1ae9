/* cmd_kernel.c: `limpet kernel run|install|list|remove`: a Jupyter kernel
 * attached to a live process (docs/jupyter.md); each subcommand is its own
 * function (cmd_kernel_run.c, cmd_kernel_spec.c). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char kernel_usage[] =
    "usage: limpet kernel <subcommand> [<args>]\n"
    "\n"
    "A Jupyter kernel attached to a live process: a notebook, VS Code or jupyter\n"
    "console runs code in the process, in a session of its limpet server.\n"
    "\n"
    "subcommands:\n"
    "  run      the kernel itself, as a front end starts it: run TARGET -f FILE\n"
    "  install  write a kernelspec for TARGET (limpet-TARGET by default)\n"
    "  list     the limpet kernelspecs Jupyter finds, and whether their server is up\n"
    "  remove   remove a limpet kernelspec\n"
    "\n"
    "options:\n"
    "  -h, --help  show this help and exit\n"
    "\n"
    "'limpet kernel <subcommand> --help' describes a subcommand. 'limpet jupyter\n"
    "TARGET' runs jupyter console on a temporary kernelspec in one step.\n";

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} subcommands[] = {
    {"run", lp_kernel_run_cmd},
    {"install", lp_kernel_install_cmd},
    {"list", lp_kernel_list_cmd},
    {"remove", lp_kernel_remove_cmd},
};

int cmd_kernel(int argc, char **argv)
{
    if (argc < 2)
        return lp_cli_usage_error(kernel_usage, "a subcommand is required");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
        return fputs(kernel_usage, stdout), 0;
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].run(argc - 1, argv + 1);
    return lp_cli_usage_error(kernel_usage, "unknown kernel subcommand '%s'", argv[1]);
}
