/* main.c: the limpet command: option parsing and subcommand dispatch. */
#include <stdio.h>
#include <string.h>

#include "limpet.h"

#define EXIT_USAGE 2 /* usage errors, as documented in --help */

static const char usage_text[] =
    "usage: limpet [--help] [--version] <command> [<args>]\n"
    "\n"
    "Talk to live Python interpreters.\n"
    "\n"
    "options:\n"
    "  -h, --help     show this help and exit\n"
    "  -V, --version  show the version and the protocol version, and exit\n"
    "\n"
    "No subcommand is available yet: connect, exec, list, bridge and serve\n"
    "arrive with the embedded server and the terminal client.\n";

static void print_version(void)
{
    printf("limpet %s (protocol %d)\n", LIMPET_VERSION, LIMPET_PROTOCOL_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        print_version();
        return 0;
    }
    if (argv[1][0] == '-')
        fprintf(stderr, "limpet: unknown option '%s'\n", argv[1]);
    else
        fprintf(stderr, "limpet: unknown command '%s'\n", argv[1]);
    fputs("usage: limpet [--help] [--version] <command> [<args>]\n", stderr);
    return EXIT_USAGE;
}
