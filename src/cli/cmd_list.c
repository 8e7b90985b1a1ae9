/* cmd_list.c: `limpet list`: the servers this user can reach, from their
 * discovery records; stale records (pid gone or reused) are removed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "net/net.h"

static const char list_usage[] =
    "usage: limpet list [--json]\n"
    "\n"
    "List the servers this user can reach: pid, name, address, uptime, command line.\n"
    "\n"
    "options:\n"
    "  --json      print a JSON array of the discovery records instead\n"
    "  -h, --help  show this help and exit\n";

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

static void print_table(const json_t *recs)
{
    time_t now = time(NULL);
    const json_t *rec;
    size_t i;

    printf("%-8s %-16s %-40s %-8s %s\n", "PID", "NAME", "ADDRESS", "UPTIME", "COMMAND");
    json_array_foreach(recs, i, rec) {
        const json_t *argv = json_object_get(rec, "argv"), *a;
        const char *name = json_string_value(json_object_get(rec, "name"));
        const char *addr = json_string_value(json_object_get(rec, "address"));
        char up[32];
        size_t k;

        format_uptime(up, sizeof(up),
                      (long long)now -
                          json_integer_value(json_object_get(rec, "started")) / 1000);
        printf("%-8" JSON_INTEGER_FORMAT " %-16s %-40s %-8s",
               json_integer_value(json_object_get(rec, "pid")), name ? name : "?",
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
    recs = lp_cli_records(dir);
    n = json_array_size(recs);
    if (as_json) {
        json_dumpf(recs, stdout, JSON_INDENT(1));
        printf("\n");
    } else if (n == 0) {
        printf("no limpet servers running for this user (in '%s')\n", dir);
    } else {
        print_table(recs);
    }
    json_decref(recs);
    return 0;
}
