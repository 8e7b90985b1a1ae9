/* ssh.c: ssh:// addresses (ssh.h). */
#include "client/ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
        return -EINVAL;
    if ((at = memchr(p, '@', (size_t)(end - p))) != NULL) {
        if (!copy(u->user, sizeof(u->user), p, (size_t)(at - p)))
            return -EINVAL;
        p = at + 1;
    }
    if (*p == '[') { /* [v6]:port */
        const char *close = memchr(p, ']', (size_t)(end - p));

        *why = "no ']' after an IPv6 address";
        if (close == NULL || !copy(u->host, sizeof(u->host), p + 1, (size_t)(close - p - 1)))
            return -EINVAL;
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
        *why = "junk after ']'";
        if (colon == NULL && close + 1 != end)
            return -EINVAL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        *why = "too long";
        if (!copy(u->host, sizeof(u->host), p, (size_t)((colon ? colon : end) - p)))
            return -EINVAL;
    }
    if (colon != NULL) {
        *why = "the port is not a number from 1 to 65535";
        if (!copy(u->port, sizeof(u->port), colon + 1, (size_t)(end - colon - 1)) ||
            u->port[strspn(u->port, "0123456789")] != 0 || atoi(u->port) < 1 ||
            atoi(u->port) > 65535)
            return -EINVAL;
    }
    *why = "no host";
    if (u->host[0] == 0 || u->host[0] == '-' || (at != NULL && u->user[0] == 0))
        return -EINVAL;
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

void lp_ssh_argv(const lp_ssh_url_t *u, const char *remote, bool batch, const char **args,
                 char *script, size_t size)
{
    const char *custom = getenv("LIMPET_SSH_COMMAND");
    int n = 0;

    if (custom != NULL && custom[0] != 0) {
        snprintf(script, size, "%s \"$@\"", custom);
        args[n++] = "/bin/sh";
        args[n++] = "-c";
        args[n++] = script;
    }
    args[n++] = "ssh"; /* $0 of the script, or ssh's own argv[0] */
    args[n++] = "-T";  /* no terminal: the bytes are the protocol's */
    if (batch) {
        args[n++] = "-o";
        args[n++] = "BatchMode=yes";
    }
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
}

/* In the child: ssh with our socket as its stdin and stdout. SIGINT is
 * ignored: Ctrl+C is the session's, and ssh keeps an inherited SIG_IGN.
 * If exec fails, its errno goes up the close-on-exec pipe report (the
 * parent says why; the library never prints). Never returns. */
static void run_ssh(int fd, int report, const char *const *args)
{
    int err;

    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (fd > STDOUT_FILENO)
        close(fd);
    fcntl(STDIN_FILENO, F_SETFD, 0); /* dup2 onto itself keeps close-on-exec */
    fcntl(STDOUT_FILENO, F_SETFD, 0);
    signal(SIGINT, SIG_IGN);
    if (args[0][0] == '/')
        execv(args[0], (char *const *)args);
    else
        execvp(args[0], (char *const *)args);
    err = errno;
    if (write(report, &err, sizeof(err)) != (ssize_t)sizeof(err))
        _exit(126);
    _exit(127);
}

/* The child's errno from the report pipe when its exec failed (the child
 * is then reaped), or 0 once the pipe closed on a successful exec. */
static int exec_result(int report, pid_t pid)
{
    int err = 0;
    ssize_t n;

    do
        n = read(report, &err, sizeof(err));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(err))
        return 0;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return err > 0 ? -err : -ECHILD;
}

int lp_ssh_dial(const lp_ssh_url_t *u, int *fd, pid_t *pid)
{
    const char *limpet = getenv("LIMPET_REMOTE_LIMPET");
    char remote[2048] = "", script[4096];
    const char *args[LP_SSH_ARGS_MAX];
    int sv[2], report[2], r;

    if (!append_quoted(remote, sizeof(remote), limpet != NULL && limpet[0] ? limpet : "limpet") ||
        !append_quoted(remote, sizeof(remote), "bridge") ||
        (u->target[0] != 0 && !append_quoted(remote, sizeof(remote), u->target)))
        return -ENAMETOOLONG;
    lp_ssh_argv(u, remote + 1, false, args, script, sizeof(script)); /* without the leading space */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -errno;
    if (pipe2(report, O_CLOEXEC) != 0) {
        r = -errno;
        goto out;
    }
    if ((*pid = fork()) < 0) {
        r = -errno;
        close(report[0]);
        close(report[1]);
        goto out;
    }
    if (*pid == 0) {
        close(sv[0]);
        close(report[0]);
        run_ssh(sv[1], report[1], args);
    }
    close(report[1]);
    r = exec_result(report[0], *pid);
    close(report[0]);
out:
    close(sv[1]);
    if (r == 0)
        *fd = sv[0];
    else
        close(sv[0]);
    return r;
}
