/* cmd_list.c: `limpet list`: the servers this user can reach, from their
 * discovery records; stale records (pid gone or reused) are removed. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "net/discovery.h"
#include "net/net.h"

#define STARTED_SLACK_S 5 /* a record's start time and its process's may differ this much */

static const char list_usage[] =
    "usage: limpet list [--json]\n"
    "\n"
    "List the servers this user can reach: pid, name, address, uptime, command line.\n"
    "\n"
    "options:\n"
    "  --json      print a JSON array of the discovery records instead\n"
    "  -h, --help  show this help and exit\n";

/* When process pid started, in seconds since the epoch; -1 if it is gone. */
static double process_started(long pid)
{
    char path[64], buf[4096], *p;
    unsigned long long ticks = 0, boot = 0;
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
    if ((f = fopen("/proc/stat", "r")) == NULL)
        return -1;
    while (fgets(buf, sizeof(buf), f) != NULL)
        if (sscanf(buf, "btime %llu", &boot) == 1)
            break;
    fclose(f);
    return (double)boot + (double)ticks / (double)sysconf(_SC_CLK_TCK);
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
    static const char *const exts[] = {"json", "token", "sock"};
    char path[4096];

    for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
        if (lp_discovery_path(path, sizeof(path), dir, (pid_t)pid, exts[i]) == 0)
            unlink(path);
}

/* The live records in dir, as a JSON array sorted by start time. */
static json_t *read_records(const char *dir)
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

static void print_table(json_t **recs, size_t n)
{
    time_t now = time(NULL);

    printf("%-8s %-16s %-40s %-8s %s\n", "PID", "NAME", "ADDRESS", "UPTIME", "COMMAND");
    for (size_t i = 0; i < n; i++) {
        const json_t *argv = json_object_get(recs[i], "argv"), *a;
        const char *name = json_string_value(json_object_get(recs[i], "name"));
        const char *addr = json_string_value(json_object_get(recs[i], "address"));
        char up[32];
        size_t k;

        format_uptime(up, sizeof(up),
                      (long long)now -
                          json_integer_value(json_object_get(recs[i], "started")) / 1000);
        printf("%-8" JSON_INTEGER_FORMAT " %-16s %-40s %-8s",
               json_integer_value(json_object_get(recs[i], "pid")), name ? name : "?",
               addr ? addr : "?", up);
        json_array_foreach(argv, k, a)
            printf(" %s", json_string_value(a) ? json_string_value(a) : "");
        printf("\n");
    }
}

int cmd_list(int argc, char **argv)
{
    char dir[4096];
    bool as_json = false;
    json_t *recs;
    size_t n;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return fputs(list_usage, stdout), 0;
        else
            return lp_cli_usage_error(list_usage, "unknown option '%s'", argv[i]);
    }
    if ((r = lp_net_runtime_dir(dir, sizeof(dir))) != 0) {
        fprintf(stderr, "limpet: cannot use the runtime directory: %s\n", strerror(-r));
        return 1;
    }
    recs = read_records(dir);
    n = json_array_size(recs);
    json_t **sorted = calloc(n + 1, sizeof(*sorted));

    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(recs, i);
    qsort(sorted, n, sizeof(*sorted), by_start);
    if (as_json) {
        json_t *out = json_array();

        for (size_t i = 0; i < n; i++)
            json_array_append(out, sorted[i]);
        json_dumpf(out, stdout, JSON_INDENT(1));
        printf("\n");
        json_decref(out);
    } else if (n == 0) {
        printf("no limpet servers running for this user (in '%s')\n", dir);
    } else {
        print_table(sorted, n);
    }
    free(sorted);
    json_decref(recs);
    return 0;
}
