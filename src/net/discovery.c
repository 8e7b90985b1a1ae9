/* discovery.c: discovery records, written and read (discovery.h). */
#include "discovery.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

#define STARTED_SLACK_S 5 /* a record's start time and its process's may differ this much */

/* When this machine booted, in seconds since the epoch: the wall clock
 * minus the time since boot (no need to read /proc/stat for it). */
static double boot_time(void)
{
    struct timespec now, up;

    clock_gettime(CLOCK_REALTIME, &now);
    clock_gettime(CLOCK_BOOTTIME, &up);
    return (double)(now.tv_sec - up.tv_sec) + (double)(now.tv_nsec - up.tv_nsec) / 1e9;
}

/* When process pid started, in seconds since the epoch; -1 if it is gone. */
static double process_started(long pid)
{
    char path[64], buf[4096], *p;
    unsigned long long ticks = 0;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "re")) == NULL)
        return -1;
    p = fgets(buf, sizeof(buf), f) != NULL ? strrchr(buf, ')') : NULL;
    fclose(f);
    /* after "pid (comm)": field 22 is the start time in clock ticks since boot */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                                   "%*d %*d %*d %*d %llu", &ticks) != 1)
        return -1;
    return boot_time() + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

bool lp_discovery_is_live(const json_t *rec)
{
    double started = process_started((long)json_integer_value(json_object_get(rec, "pid")));
    double said = (double)json_integer_value(json_object_get(rec, "started")) / 1000.0;

    /* the server started after its process did, never before: an earlier
     * start means the pid now belongs to someone else */
    return started >= 0 && said >= started - STARTED_SLACK_S;
}

/* Removes a stale record's files, its socket too: its server is gone and
 * will not remove it. */
static void remove_stale(const char *dir, pid_t pid)
{
    char path[4096];

    lp_discovery_remove(dir, pid);
    if (lp_discovery_path(path, sizeof(path), dir, pid, "sock") == 0)
        unlink(path);
}

/* The record in dir/name (a new reference), or NULL when name is not a
 * record or is being written. */
static json_t *load_record(const char *dir, const char *name)
{
    size_t n = strlen(name);
    char path[8192];
    json_t *rec;

    if (n < 6 || strcmp(name + n - 5, ".json") != 0 ||
        snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return NULL;
    if ((rec = json_load_file(path, 0, NULL)) == NULL)
        return NULL;
    if (!json_is_object(rec) || !json_is_integer(json_object_get(rec, "pid"))) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

static int by_start(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "started"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "started"));

    return x < y ? -1 : x > y;
}

/* Sorts the records of arr by start time, in place. 0 or -ENOMEM. */
static int sort_by_start(json_t *arr)
{
    size_t n = json_array_size(arr);
    json_t **v = calloc(n + 1, sizeof(*v));
    int r = 0;

    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), by_start);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(arr, v[i]) != 0)
            r = -ENOMEM;
    free(v);
    return r;
}

json_t *lp_discovery_list(const char *dir)
{
    json_t *live = json_array(), *rec;
    struct dirent *e;
    DIR *d;

    if (live == NULL || (d = opendir(dir)) == NULL)
        return live;
    while (live != NULL && (e = readdir(d)) != NULL) {
        if ((rec = load_record(dir, e->d_name)) == NULL)
            continue;
        if (!lp_discovery_is_live(rec)) {
            remove_stale(dir, (pid_t)json_integer_value(json_object_get(rec, "pid")));
        } else if (json_array_append(live, rec) != 0) {
            json_decref(live);
            live = NULL;
        }
        json_decref(rec);
    }
    closedir(d);
    if (live != NULL && sort_by_start(live) != 0) {
        json_decref(live);
        live = NULL;
    }
    return live;
}

int lp_discovery_read_token(const char *dir, pid_t pid, char *token, size_t size)
{
    char path[4096];
    FILE *f;
    int r;

    token[0] = 0;
    if ((r = lp_discovery_path(path, sizeof(path), dir, pid, "token")) != 0)
        return r;
    if ((f = fopen(path, "re")) == NULL)
        return -errno;
    if (fgets(token, (int)size, f) == NULL)
        token[0] = 0;
    token[strcspn(token, "\n")] = 0;
    fclose(f);
    return 0;
}
