/* discovery.c: discovery records (discovery.h). */
#include "discovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int lp_discovery_path(char *buf, size_t size, const char *dir, pid_t pid, const char *ext)
{
    int n = snprintf(buf, size, "%s/%ld.%s", dir, (long)pid, ext);

    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int lp_discovery_write(const char *dir, pid_t pid, const json_t *record)
{
    char path[4096], tmp[4096];
    int fd, r;

    if ((r = lp_discovery_path(path, sizeof(path), dir, pid, "json")) != 0 ||
        (r = lp_discovery_path(tmp, sizeof(tmp), dir, pid, "json.tmp")) != 0)
        return r;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return -errno;
    r = json_dumpfd(record, fd, JSON_COMPACT) == 0 && write(fd, "\n", 1) == 1 ? 0 : -EIO;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
    if (r != 0)
        unlink(tmp);
    return r;
}

void lp_discovery_remove(const char *dir, pid_t pid)
{
    char path[4096];

    if (lp_discovery_path(path, sizeof(path), dir, pid, "json") == 0)
        unlink(path);
}
