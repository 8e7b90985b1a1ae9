/* cli.h: what the limpet command's subcommands share. */
#ifndef LP_CLI_H
#define LP_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define LP_EXIT_FAILURE 1 /* no server, a lost connection, an exception */
#define LP_EXIT_USAGE 2   /* usage errors, as every --help says */

/* Prints "limpet: <message>" and the usage to stderr; returns LP_EXIT_USAGE. */
int lp_cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#include <jansson.h>

/* Parses `limpet CMD [TARGET]` with only -h/--help: -1 and *target (NULL
 * when none) to go on; else the exit status (--help shown, or a usage
 * error said). */
int lp_cli_target_arg(int argc, char **argv, const char *usage, const char **target);

/* The live discovery records in dir, oldest first (a new array); stale
 * records are removed with their socket and token files. */
json_t *lp_cli_records(const char *dir);

/* Prints recs as the table of `limpet list`: pid, name, address, uptime,
 * command line. */
void lp_cli_print_records(FILE *out, const json_t *recs);

/* Subcommands: argv[0] is the subcommand's name; return the exit status. */
int cmd_list(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_bridge(int argc, char **argv);

#endif
