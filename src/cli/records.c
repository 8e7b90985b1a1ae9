/* records.c: the discovery records of this user's servers, as the
 * limpet command reads them: live ones, oldest first; stale ones (pid gone,
 * or the pid now a younger process's) removed with their files. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "net/discovery.h"

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

    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    p = fgets(buf, sizeof(buf), f) != NULL ? strrchr(buf, ')') : NULL;
    fclose(f);
    /* after "pid (comm)": field 22 is the start time in clock ticks since boot */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                                   "%*d %*d %*d %*d %llu", &ticks) != 1)
        return -1;
    return boot_time() + (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

/* True when the record's server is still running. */
static bool is_live(const json_t *rec)
{
    double started = process_started((long)json_integer_value(json_object_get(rec, "pid")));
    double said = (double)json_integer_value(json_object_get(rec, "started")) / 1000.0;

    /* the server started after its process did, never before: an earlier
     * start means the pid now belongs to someone else */
    return started >= 0 && said >= started - STARTED_SLACK_S;
}

static void remove_stale(const char *dir, long pid)
{
    char path[4096];

    lp_discovery_remove(dir, (pid_t)pid); /* the record and the token */
    if (lp_discovery_path(path, sizeof(path), dir, (pid_t)pid, "sock") == 0)
        unlink(path); /* its server is gone and will not remove it */
}

/* The live records in dir, as a JSON array sorted by start time. */
static json_t *read_live(const char *dir)
{
    json_t *all = json_array();
    struct dirent *e;
    DIR *d = opendir(dir);

    if (d == NULL)
        return all;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char path[8192];
        json_t *rec;

        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0 ||
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        if ((rec = json_load_file(path, 0, NULL)) == NULL)
            continue; /* being written, or not a record */
        if (!json_is_object(rec) || !json_is_integer(json_object_get(rec, "pid")))
            ;
        else if (is_live(rec))
            json_array_append(all, rec);
        else
            remove_stale(dir, (long)json_integer_value(json_object_get(rec, "pid")));
        json_decref(rec);
    }
    closedir(d);
    return all;
}

static int by_start(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "started"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "started"));

    return x < y ? -1 : x > y;
}

json_t *lp_cli_records(const char *dir)
{
    json_t *live = read_live(dir), *sorted = json_array();
    size_t n = json_array_size(live);
    json_t **v = calloc(n + 1, sizeof(*v));

    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(live, i);
    qsort(v, n, sizeof(*v), by_start);
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, v[i]);
    free(v);
    json_decref(live);
    return sorted;
}

/* "3h12m", "5m07s", "42s" */
static void format_uptime(char *buf, size_t size, long long seconds)
{
    if (seconds < 0)
        seconds = 0;
    if (seconds >= 86400)
        snprintf(buf, size, "%lldd%02lldh", seconds / 86400, seconds % 86400 / 3600);
    else if (seconds >= 3600)
        snprintf(buf, size, "%lldh%02lldm", seconds / 3600, seconds % 3600 / 60);
    else if (seconds >= 60)
        snprintf(buf, size, "%lldm%02llds", seconds / 60, seconds % 60);
    else
        snprintf(buf, size, "%llds", seconds);
}

void lp_cli_print_records(FILE *out, const json_t *recs)
{
    time_t now = time(NULL);
    const json_t *rec;
    size_t i;

    fprintf(out, "%-8s %-16s %-40s %-8s %s\n", "PID", "NAME", "ADDRESS", "UPTIME", "COMMAND");
    json_array_foreach(recs, i, rec) {
        const json_t *argv = json_object_get(rec, "argv"), *a;
        const char *name = json_string_value(json_object_get(rec, "name"));
        const char *addr = json_string_value(json_object_get(rec, "address"));
        char up[32];
        size_t k;

        format_uptime(up, sizeof(up),
                      (long long)now -
                          json_integer_value(json_object_get(rec, "started")) / 1000);
        fprintf(out, "%-8" JSON_INTEGER_FORMAT " %-16s %-40s %-8s",
               json_integer_value(json_object_get(rec, "pid")), name ? name : "?",
               addr ? addr : "?", up);
        json_array_foreach(argv, k, a)
            fprintf(out, " %s", json_string_value(a) ? json_string_value(a) : "");
        fputc('\n', out);
    }
}
