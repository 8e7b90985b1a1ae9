/* target.c: TARGET resolution (target.h). */
#include "client/target.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client/ssh.h"
#include "net/discovery.h"
#include "net/net.h"

lp_target_kind_t lp_target_kind(const char *target)
{
    if (target == NULL)
        return LP_TARGET_ONLY;
    if (lp_ssh_is_url(target))
        return LP_TARGET_SSH;
    if (strchr(target, '/') != NULL && strchr(target, ':') == NULL)
        return LP_TARGET_PATH;
    return LP_TARGET_NAME;
}

/* The string field key of rec, or "". */
static const char *field(const json_t *rec, const char *key)
{
    const char *v = json_string_value(json_object_get(rec, key));

    return v != NULL ? v : "";
}

/* True when rec's pid, name or address is target (any record when target
 * is NULL). */
static bool matches(const json_t *rec, const char *target)
{
    char pid[32];

    if (target == NULL)
        return true;
    snprintf(pid, sizeof(pid), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(rec, "pid")));
    return strcmp(target, pid) == 0 || strcmp(target, field(rec, "name")) == 0 ||
           strcmp(target, field(rec, "address")) == 0;
}

/* The live records in dir that match target, as a new array (NULL: out of
 * memory). */
static json_t *matching(const char *dir, const char *target)
{
    json_t *all = lp_discovery_list(dir), *found = json_array(), *rec;
    size_t i;

    if (all == NULL || found == NULL) {
        json_decref(all);
        json_decref(found);
        return NULL;
    }
    json_array_foreach(all, i, rec)
        if (matches(rec, target) && json_array_append(found, rec) != 0) {
            json_decref(found);
            found = NULL;
            break;
        }
    json_decref(all);
    return found;
}

/* Copies address into t: 0 or -ENAMETOOLONG, said. */
static int set_address(lp_target_t *t, const char *address)
{
    if (strlen(address) >= sizeof(t->address)) {
        snprintf(t->message, sizeof(t->message), "an address too long for limpet (%zu bytes)",
                 strlen(address));
        return -ENAMETOOLONG;
    }
    memcpy(t->address, address, strlen(address) + 1);
    return 0;
}

/* No record matched, or several did: says so; the code. */
static int say_unresolved(lp_target_t *t, const char *target, json_t *found)
{
    size_t n = json_array_size(found);

    if (n > 1) {
        snprintf(t->message, sizeof(t->message), "%zu servers %s%s%s; choose one by pid or name:",
                 n, target ? "match '" : "are running", target ? target : "", target ? "'" : "");
        t->matches = json_incref(found);
        return -ENOTUNIQ;
    }
    if (target != NULL)
        snprintf(t->message, sizeof(t->message), "no server named '%s' (see 'limpet list')",
                 target);
    else
        snprintf(t->message, sizeof(t->message), "no server is running for this user");
    return -ENOENT;
}

int lp_target_resolve(lp_target_t *t, const char *target, const char *dir)
{
    lp_target_kind_t kind = lp_target_kind(target);
    char rundir[4096];
    json_t *found = NULL, *rec;
    int r;

    memset(t, 0, sizeof(*t));
    if (kind == LP_TARGET_SSH || kind == LP_TARGET_PATH)
        return set_address(t, target); /* no records to read, no token needed */
    if (dir == NULL && lp_net_runtime_dir(rundir, sizeof(rundir)) == 0)
        dir = rundir;
    if (dir != NULL)
        found = matching(dir, target);
    if (json_array_size(found) == 1) {
        rec = json_array_get(found, 0);
        if ((r = set_address(t, field(rec, "address"))) == 0)
            lp_discovery_read_token(dir, (pid_t)json_integer_value(json_object_get(rec, "pid")),
                                    t->token, sizeof(t->token));
    } else if (target != NULL && strchr(target, ':') != NULL) {
        r = set_address(t, target); /* HOST:PORT of its own (or a path with a ':') */
    } else {
        r = say_unresolved(t, target, found);
    }
    json_decref(found);
    return r;
}

void lp_target_clear(lp_target_t *t)
{
    if (t == NULL)
        return;
    json_decref(t->matches);
    memset(t, 0, sizeof(*t));
}
