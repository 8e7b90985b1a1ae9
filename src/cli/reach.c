/* reach.c: finding and reaching a server, as the limpet command says it:
 * the client library (src/client) answers with codes and messages, this
 * file prints them (cli.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

int lp_cli_resolve(const char *target, lp_target_t *t)
{
    int r = lp_target_resolve(t, target, NULL);

    if (r == 0)
        return 0;
    fprintf(stderr, "limpet: %s\n", t->message);
    if (r == -ENOTUNIQ)
        lp_cli_print_records(stderr, t->matches);
    return -1;
}

int lp_cli_open(lp_client_t *c, const lp_target_t *t, bool want_session, unsigned caps)
{
    if (lp_client_open(c, t->address, t->token, want_session, caps) == 0)
        return 0;
    fprintf(stderr, "limpet: %s\n", c->message);
    return -1;
}

int lp_cli_clone(lp_client_t *c, const char *env)
{
    json_t *h = json_pack("{s:s}", "op", "clone");
    lp_frame_t f = {0};
    const char *session = NULL, *msg;
    int64_t id;

    if (h != NULL && env != NULL)
        json_object_set_new(h, "env", json_string(env));
    if ((id = lp_client_send(c, h, NULL, 0)) >= 0 && lp_client_read(c, &f, -1) == 0)
        session = json_string_value(json_object_get(f.header, "session"));
    if (session != NULL) {
        snprintf(c->welcome.session, sizeof(c->welcome.session), "%s", session);
    } else {
        msg = f.header != NULL ? json_string_value(json_object_get(f.header, "message")) : NULL;
        if (env != NULL && msg != NULL)
            fprintf(stderr, "limpet: no environment '%s' there (%s)\n", env, msg);
        else
            fprintf(stderr, "limpet: the server did not open a session\n");
    }
    lp_frame_clear(&f);
    return session != NULL ? 0 : -1;
}

int lp_cli_dial(const char *address)
{
    char message[LP_CLIENT_MESSAGE_MAX];
    int fd;

    if (lp_client_dial(address, &fd, message, sizeof(message)) == 0)
        return fd;
    fprintf(stderr, "limpet: %s\n", message);
    return -1;
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
