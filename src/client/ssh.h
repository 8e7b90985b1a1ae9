/* ssh.h: ssh://[user@]host[:port][/TARGET] addresses. The system's ssh
 * runs `limpet bridge TARGET` on the host, so keys, agents, ~/.ssh/config,
 * host-key checks and auditing are OpenSSH's, never ours. */
#ifndef LP_CLIENT_SSH_H
#define LP_CLIENT_SSH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define LP_SSH_PREFIX "ssh://"

/* The parts of an ssh:// address; each "" when absent. */
typedef struct lp_ssh_url {
    char user[256];
    char host[256];
    char port[16];
    char target[1024]; /* what `limpet bridge` resolves on the host */
} lp_ssh_url_t;

/* True when address starts with ssh:// (NULL is not). */
bool lp_ssh_is_url(const char *address);
/* Splits an ssh:// address into *u: 0, or -EINVAL with *why set to what
 * is wrong (a static string). */
int lp_ssh_parse(const char *address, lp_ssh_url_t *u, const char **why);

/* Starts ssh to u's host running the bridge there: 0 with *fd our end of
 * a socket pair joined to ssh's stdin and stdout (close-on-exec; the
 * caller closes it) and *pid the child to reap; or -errno, with nothing
 * left behind, when ssh could not be started or run (exec failed: the
 * child's errno). $LIMPET_SSH_COMMAND replaces "ssh" (run by /bin/sh with
 * the arguments appended, as git's GIT_SSH_COMMAND), and
 * $LIMPET_REMOTE_LIMPET the remote "limpet". */
int lp_ssh_dial(const lp_ssh_url_t *u, int *fd, pid_t *pid);
/* The command line that runs remote on u's host: ssh -T [-o BatchMode=yes]
 * [-p PORT] [-l USER] -- HOST REMOTE, or the same run by /bin/sh -c
 * '$LIMPET_SSH_COMMAND "$@"'. args holds LP_SSH_ARGS_MAX (NULL-terminated),
 * script (size bytes) backs the /bin/sh script. Only reads the environment:
 * callable before a fork, never after. batch: no prompt (a server). */
#define LP_SSH_ARGS_MAX 16
void lp_ssh_argv(const lp_ssh_url_t *u, const char *remote, bool batch, const char **args,
                 char *script, size_t size);

#endif
