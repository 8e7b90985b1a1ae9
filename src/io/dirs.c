/* dirs.c: mkdir -p (io.h), for the files the limpet command keeps
 * (history, kernelspecs). */
#include <errno.h>
#include <sys/stat.h>

#include "io/io.h"

int lp_io_make_dirs(char *path, unsigned mode)
{
    for (char *p = path + 1; *p != 0; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, (mode_t)mode) != 0 && errno != EEXIST) {
            *p = '/';
            return -errno;
        }
        *p = '/';
    }
    return mkdir(path, (mode_t)mode) != 0 && errno != EEXIST ? -errno : 0;
}
