/* ssh.c: ssh:// addresses (ssh.h). */
#include "cli/ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool lp_ssh_is_url(const char *address)
{
    return address != NULL && strncmp(address, LP_SSH_PREFIX, strlen(LP_SSH_PREFIX)) == 0;
}

/* Copies s[0..n) into dst[size]; false when it does not fit. */
static bool copy(char *dst, size_t size, const char *s, size_t n)
{
    if (n >= size)
        return false;
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

int lp_ssh_parse(const char *address, lp_ssh_url_t *u, const char **why)
{
    const char *p = address + strlen(LP_SSH_PREFIX), *slash = strchr(p, '/');
    const char *end = slash != NULL ? slash : p + strlen(p), *at, *colon;

    memset(u, 0, sizeof(*u));
    *why = "too long";
    if (slash != NULL && !copy(u->target, sizeof(u->target), slash + 1, strlen(slash + 1)))
        return -1;
    if ((at = memchr(p, '@', (size_t)(end - p))) != NULL) {
        if (!copy(u->user, sizeof(u->user), p, (size_t)(at - p)))
            return -1;
        p = at + 1;
    }
    if (*p == '[') { /* [v6]:port */
        const char *close = memchr(p, ']', (size_t)(end - p));

        *why = "no ']' after an IPv6 address";
        if (close == NULL || !copy(u->host, sizeof(u->host), p + 1, (size_t)(close - p - 1)))
            return -1;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        *why = "junk after ']'";
        if (colon == NULL && close + 1 != end)
            return -1;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        *why = "too long";
        if (!copy(u->host, sizeof(u->host), p, (size_t)((colon ? colon : end) - p)))
            return -1;
    }
    if (colon != NULL) {
        *why = "the port is not a number from 1 to 65535";
        if (!copy(u->port, sizeof(u->port), colon + 1, (size_t)(end - colon - 1)) ||
            u->port[strspn(u->port, "0123456789")] != 0 || atoi(u->port) < 1 ||
            atoi(u->port) > 65535)
            return -1;
    }
    *why = "no host";
    if (u->host[0] == 0 || u->host[0] == '-' || (at != NULL && u->user[0] == 0))
        return -1;
    *why = NULL;
    return 0;
}

/* Appends s to the remote command in single quotes (the remote shell sees
 * exactly s). */
static bool append_quoted(char *cmd, size_t size, const char *s)
{
    size_t n = strlen(cmd);

    if (n + 3 >= size)
        return false;
    cmd[n++] = ' ';
    cmd[n++] = '\'';
    for (; *s != 0; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t k = piece ? 4 : 1;

        if (n + k + 2 >= size)
            return false;
        memcpy(cmd + n, piece ? piece : s, k);
        n += k;
    }
    cmd[n++] = '\'';
    cmd[n] = 0;
    return true;
}

/* In the child: ssh with our socket as its stdin and stdout. SIGINT is
 * ignored: Ctrl+C is the session's, and ssh keeps an inherited SIG_IGN. */
static void run_ssh(const lp_ssh_url_t *u, int fd, const char *remote)
{
    const char *custom = getenv("LIMPET_SSH_COMMAND");
    const char *args[16];
    int n = 0;

    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (fd > STDOUT_FILENO)
        close(fd);
    fcntl(STDIN_FILENO, F_SETFD, 0); /* dup2 onto itself keeps close-on-exec */
    fcntl(STDOUT_FILENO, F_SETFD, 0);
    signal(SIGINT, SIG_IGN);
    if (custom != NULL && custom[0] != 0) {
        static char script[4096];

        snprintf(script, sizeof(script), "%s \"$@\"", custom);
        args[n++] = "/bin/sh";
        args[n++] = "-c";
        args[n++] = script;
    }
    args[n++] = "ssh"; /* $0 of the script, or ssh's own argv[0] */
    args[n++] = "-T";  /* no terminal: the bytes are the protocol's */
    if (u->port[0] != 0) {
        args[n++] = "-p";
        args[n++] = u->port;
    }
    if (u->user[0] != 0) {
        args[n++] = "-l";
        args[n++] = u->user;
    }
    args[n++] = "--";
    args[n++] = u->host;
    args[n++] = remote;
    args[n] = NULL;
    if (custom != NULL && custom[0] != 0)
        execv(args[0], (char *const *)args);
    else
        execvp(args[0], (char *const *)args);
    fprintf(stderr, "limpet: cannot run ssh: %s\n", strerror(errno));
    _exit(127);
}

int lp_ssh_dial(const lp_ssh_url_t *u, pid_t *pid)
{
    const char *limpet = getenv("LIMPET_REMOTE_LIMPET");
    char remote[2048] = "";
    int sv[2];

    if (!append_quoted(remote, sizeof(remote), limpet != NULL && limpet[0] ? limpet : "limpet") ||
        !append_quoted(remote, sizeof(remote), "bridge") ||
        (u->target[0] != 0 && !append_quoted(remote, sizeof(remote), u->target))) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    if ((*pid = fork()) < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (*pid == 0) {
        close(sv[0]);
        run_ssh(u, sv[1], remote + 1); /* without the leading space */
    }
    close(sv[1]);
    return sv[0];
}
