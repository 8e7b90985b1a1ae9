/* ssh.h: ssh://[user@]host[:port][/TARGET] addresses. The system's ssh
 * runs `limpet bridge TARGET` on the host, so keys, agents, ~/.ssh/config,
 * host-key checks and auditing are OpenSSH's, never ours. */
#ifndef LP_CLI_SSH_H
#define LP_CLI_SSH_H

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

bool lp_ssh_is_url(const char *address);
/* 0, or -1 with *why set to what is wrong. */
int lp_ssh_parse(const char *address, lp_ssh_url_t *u, const char **why);

/* Starts ssh to u's host running the bridge there; returns our end of a
 * socket pair joined to ssh's stdin and stdout, and the child's pid in
 * *pid, or -1 (errno set). $LIMPET_SSH_COMMAND replaces "ssh" (run by
 * /bin/sh with the arguments appended, as git's GIT_SSH_COMMAND), and
 * $LIMPET_REMOTE_LIMPET the remote "limpet". */
int lp_ssh_dial(const lp_ssh_url_t *u, pid_t *pid);

#endif
