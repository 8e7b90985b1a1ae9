/* cmd_list.c: `limpet list`: the servers this user can reach, from their
 * discovery records; stale records (pid gone or reused) are removed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"
#include "net/discovery.h"
#include "net/net.h"

static const char list_usage[] =
    "usage: limpet list [--json]\n"
    "\n"
    "List the servers this user can reach: pid, name, address, uptime, command line;\n"
    "for a kernel server (limpet serve), its environments below it.\n"
    "\n"
    "options:\n"
    "  --json      print a JSON array of the discovery records instead\n"
    "  -h, --help  show this help and exit\n";

/* A kernel server's environments, asked of it (describe), one line each. */
static void print_envs(FILE *out, const json_t *rec)
{
    const char *addr = json_string_value(json_object_get(rec, "address"));
    json_t *req = json_pack("{s:s}", "op", "describe"), *env;
    lp_client_t c;
    lp_frame_t f = {0};
    size_t i;

    if (addr == NULL || lp_client_open(&c, addr, "", false, 0) != 0) {
        json_decref(req);
        return;
    }
    if (lp_client_send(&c, req, NULL, 0) >= 0 && lp_client_read(&c, &f, 2000) == 0)
        json_array_foreach(json_object_get(f.header, "envs"), i, env) {
            const json_t *running = json_object_get(env, "running");

            fprintf(out, "%8s env %-16s %-8s runs %" JSON_INTEGER_FORMAT, "",
                    json_string_value(json_object_get(env, "env")),
                    json_string_value(json_object_get(env, "state")),
                    json_integer_value(json_object_get(env, "runs")));
            if (json_is_integer(running))
                fprintf(out, ", run %" JSON_INTEGER_FORMAT " going", json_integer_value(running));
            fputc('\n', out);
        }
    lp_frame_clear(&f);
    lp_client_close(&c);
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
        for (size_t i = 0; i < n; i++)
            if (json_object_get(json_array_get(recs, i), "serve") != NULL)
                print_envs(stdout, json_array_get(recs, i));
    }
    json_decref(recs);
    return 0;
}
