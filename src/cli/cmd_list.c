/* cmd_list.c: `limpet list`: the servers this user can reach, from their
 * discovery records; stale records (pid gone or reused) are removed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/discovery.h"
#include "net/net.h"

static const char list_usage[] =
    "usage: limpet list [--json]\n"
    "\n"
    "List the servers this user can reach: pid, name, address, uptime, command line.\n"
    "\n"
    "options:\n"
    "  --json      print a JSON array of the discovery records instead\n"
    "  -h, --help  show this help and exit\n";

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
    if ((recs = lp_discovery_list(dir)) == NULL) {
        fprintf(stderr, "limpet: out of memory\n");
        return 1;
    }
    n = json_array_size(recs);
    if (as_json) {
        json_dumpf(recs, stdout, JSON_INDENT(1));
        printf("\n");
    } else if (n == 0) {
        printf("no limpet servers running for this user (in '%s')\n", dir);
    } else {
        lp_cli_print_records(stdout, recs);
    }
    json_decref(recs);
    return 0;
}
