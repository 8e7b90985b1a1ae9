/* main.c: the limpet command: options and subcommand dispatch. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "limpet.h"

struct command {
    const char *name;                 /* as typed */
    int (*run)(int argc, char **argv); /* cmd_<name>() */
    const char *summary;              /* for --help */
};

static const struct command commands[] = {
    {"connect", cmd_connect, "open an interactive session in a live process"},
    {"bridge", cmd_bridge, "relay stdin and stdout to a local server (ssh:// runs it)"},
    {"exec", cmd_exec, "run code in a live process, print what it prints"},
    {"list", cmd_list, "list the servers this user can reach"},
    {"kernel", cmd_kernel,
     "a Jupyter kernel attached to a live process: run, install, list, remove"},
    {"jupyter", cmd_jupyter, "jupyter console inside a live process"},
    {"serve", cmd_serve, "run a kernel server of named environments (socket and HTTP)"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fputs("usage: limpet [--help] [--version] <command> [<args>]\n"
          "\n"
          "Talk to live Python interpreters.\n"
          "\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "options:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  show the version and the protocol version, and exit\n"
          "\n"
          "'limpet <command> --help' describes a command.\n",
          out);
}

int lp_cli_usage_error(const char *usage_text, const char *fmt, ...)
{
    va_list ap;

    fputs("limpet: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(usage_text, stderr);
    return LP_EXIT_USAGE;
}

int lp_cli_target_arg(int argc, char **argv, const char *usage_text, const char **target)
{
    *target = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return fputs(usage_text, stdout), 0;
        if (argv[i][0] == '-' && argv[i][1] != 0)
            return lp_cli_usage_error(usage_text, "unknown option '%s'", argv[i]);
        if (*target != NULL)
            return lp_cli_usage_error(usage_text, "too many arguments: '%s'", argv[i]);
        *target = argv[i];
    }
    return -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return LP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("limpet %s (protocol %d)\n", LIMPET_VERSION, LIMPET_PROTOCOL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (argv[1][0] == '-')
        fprintf(stderr, "limpet: unknown option '%s'\n", argv[1]);
    else
        fprintf(stderr, "limpet: unknown command '%s'\n", argv[1]);
    fputs("usage: limpet [--help] [--version] <command> [<args>]\n", stderr);
    return LP_EXIT_USAGE;
}
