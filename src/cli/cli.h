/* cli.h: what the limpet command's subcommands share. */
#ifndef LP_CLI_H
#define LP_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define LP_EXIT_FAILURE 1 /* no server, a lost connection, an exception */
#define LP_EXIT_USAGE 2   /* usage errors, as every --help says */

#include <jansson.h>

#include "client/client.h"
#include "client/target.h"

/* main.c */

/* Prints "limpet: <message>" and the usage to stderr; returns LP_EXIT_USAGE. */
int lp_cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses `limpet CMD [TARGET]` with only -h/--help: -1 and *target (NULL
 * when none) to go on; else the exit status (--help shown, or a usage
 * error said). */
int lp_cli_target_arg(int argc, char **argv, const char *usage, const char **target);

/* reach.c: the client library's answers, said on stderr */

/* lp_target_resolve against this user's servers: 0, or -1 once why is
 * said (with the table of the servers that match when several do). The
 * caller clears t. */
int lp_cli_resolve(const char *target, lp_target_t *t);
/* lp_client_open: 0, or -1 once why is said. */
int lp_cli_open(lp_client_t *c, const lp_target_t *t, bool want_session, unsigned caps);
/* Opens a session in environment env (NULL: the server's main one) on c
 * with a clone request; its id goes into c->welcome.session. 0, or -1
 * after saying why on stderr. */
int lp_cli_clone(lp_client_t *c, const char *env);
/* A socket connected to a local address, with no handshake: the fd, or -1
 * once why is said. */
int lp_cli_dial(const char *address);

/* Prints recs as the table of `limpet list`: pid, name, address, uptime,
 * command line. */
void lp_cli_print_records(FILE *out, const json_t *recs);

/* Subcommands (cmd_<name>.c): argv[0] is the subcommand's name; return
 * the exit status. */
int cmd_list(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_bridge(int argc, char **argv);
int cmd_kernel(int argc, char **argv);
int cmd_jupyter(int argc, char **argv);

/* `limpet kernel SUB`'s (argv[0] is SUB): cmd_kernel_run.c, and
 * cmd_kernel_spec.c for the kernelspecs. */
int lp_kernel_run_cmd(int argc, char **argv);
int lp_kernel_install_cmd(int argc, char **argv);
int lp_kernel_list_cmd(int argc, char **argv);
int lp_kernel_remove_cmd(int argc, char **argv);

#endif
