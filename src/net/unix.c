/* unix.c: the runtime directory, Unix listeners, peer credentials (net.h). */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* 0 when path is a real directory (not a symlink) owned by us, mode 0700. */
static int check_private_dir(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0777) != 0700)
        return -EPERM;
    return 0;
}

/* Creates path as a private directory, or accepts it if it already is one. */
static int make_private_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -errno;
    return check_private_dir(path);
}

/* True when XDG_RUNTIME_DIR names an absolute directory that we own. */
static bool xdg_usable(const char *xdg)
{
    struct stat st;

    return xdg != NULL && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode) &&
           st.st_uid == geteuid();
}

int lp_net_runtime_dir(char *buf, size_t size)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;

    if (xdg_usable(xdg))
        n = snprintf(buf, size, "%s/limpet", xdg);
    else
        n = snprintf(buf, size, "/tmp/limpet-%u", (unsigned)geteuid());
    if (n < 0 || (size_t)n >= size)
        return -ENAMETOOLONG;
    return make_private_dir(buf);
}

/* Fills *addr for path; -ENAMETOOLONG if it does not fit sun_path. */
static int unix_addr(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr->sun_path))
        return -ENAMETOOLONG;
    memcpy(addr->sun_path, path, strlen(path) + 1);
    return 0;
}

/* True when someone accepts connections on the socket file at path. */
static bool socket_is_live(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live;

    if (fd < 0)
        return true; /* cannot tell: do not remove it */
    live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0 || errno != ECONNREFUSED;
    close(fd);
    return live;
}

int lp_net_listen_unix(const char *path, int *fd)
{
    struct sockaddr_un addr;
    struct stat st;
    int s, r;

    if ((r = unix_addr(path, &addr)) != 0)
        return r;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST;
        if (socket_is_live(&addr))
            return -EADDRINUSE;
        unlink(path);
    }
    if ((s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -errno;
    /* The file is briefly more open than 0600 between bind and chmod; the
     * directory around it is ours and 0700 (lp_net_runtime_dir), and the
     * process-wide umask is not ours to change in someone else's program. */
    if (bind(s, (const struct sockaddr *)&addr, sizeof(addr)) != 0 || chmod(path, 0600) != 0 ||
        listen(s, 128) != 0) {
        r = -errno;
        close(s);
        return r;
    }
    *fd = s;
    return 0;
}

int lp_net_peer_uid(int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return -errno;
    if (len != sizeof(cred))
        return -EPROTO;
    *uid = cred.uid;
    return 0;
}

bool lp_net_uid_allowed(uid_t peer)
{
    return peer == geteuid() || peer == 0;
}

int lp_net_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int lp_net_wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;

    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

void lp_net_linger_close(int fd, int timeout_ms)
{
    char sink[4096];
    size_t dropped = 0;
    struct timespec t0, t;

    shutdown(fd, SHUT_WR);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (dropped < LP_NET_LINGER_MAX) {
        long spent;
        ssize_t n;

        clock_gettime(CLOCK_MONOTONIC, &t);
        spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= timeout_ms || lp_net_wait_readable(fd, (int)(timeout_ms - spent)) <= 0)
            break;
        if ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) <= 0)
            break;
        dropped += (size_t)n;
    }
    close(fd);
}
