/* discovery.c: discovery records (discovery.h). */
#include "discovery.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int lp_discovery_path(char *buf, size_t size, const char *dir, pid_t pid, const char *ext)
{
    int n = snprintf(buf, size, "%s/%ld.%s", dir, (long)pid, ext);

    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* Writes dir/<pid>.<ext> atomically, mode 0600: the JSON record, or text. */
static int write_file(const char *dir, pid_t pid, const char *ext, const json_t *record,
                      const char *text)
{
    char path[4096], tmp[4096], tmpext[32];
    int fd, r;

    snprintf(tmpext, sizeof(tmpext), "%s.tmp", ext);
    if ((r = lp_discovery_path(path, sizeof(path), dir, pid, ext)) != 0 ||
        (r = lp_discovery_path(tmp, sizeof(tmp), dir, pid, tmpext)) != 0)
        return r;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
        return -errno;
    if (record != NULL)
        r = json_dumpfd(record, fd, JSON_COMPACT) == 0 && write(fd, "\n", 1) == 1 ? 0 : -EIO;
    else
        r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) && write(fd, "\n", 1) == 1
                ? 0 : -EIO;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, path) != 0)
        r = -errno;
    if (r != 0)
        unlink(tmp);
    return r;
}

int lp_discovery_write(const char *dir, pid_t pid, const json_t *record)
{
    return write_file(dir, pid, "json", record, NULL);
}

int lp_discovery_write_text(const char *dir, pid_t pid, const char *ext, const char *text)
{
    return write_file(dir, pid, ext, NULL, text);
}

void lp_discovery_remove(const char *dir, pid_t pid)
{
    char path[4096];

    if (lp_discovery_path(path, sizeof(path), dir, pid, "json") == 0)
        unlink(path);
    if (lp_discovery_path(path, sizeof(path), dir, pid, "token") == 0)
        unlink(path);
}
