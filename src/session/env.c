/* env.c: the server's table of environments (internal.h). The session
 * layer keeps their names, their sessions and the engine's handle; what an
 * environment is (a namespace dict, later a child interpreter) is the
 * engine's business. The embedded server's namespace is the first entry,
 * LP_ENV_MAIN; `limpet serve` adds the others (the env-* operations). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "session/internal.h"

bool lp_env_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > LP_ENV_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false; /* docs/protocol.md 7: [A-Za-z0-9_.-], 1-64 bytes */
    }
    return true;
}

/* The entry named name, or NULL. The caller holds srv->mu. */
static lp_env_t *find_locked(lp_server_t *srv, const char *name)
{
    for (lp_env_t *e = srv->envs; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

int lp_env_add(lp_server_t *srv, const char *name, void *data)
{
    lp_env_t *e;
    int r = 0;

    if (!lp_env_name_ok(name))
        return LP_WIRE_EFIELD;
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return LP_WIRE_ENOMEM;
    memcpy(e->name, name, strlen(name) + 1);
    e->data = data;
    e->created_ms = lp_clock_ms();
    pthread_mutex_lock(&srv->mu);
    if (find_locked(srv, name) != NULL) {
        r = -EEXIST;
    } else {
        lp_env_t **tail = &srv->envs;

        while (*tail != NULL) /* in creation order: the first is "main" */
            tail = &(*tail)->next;
        *tail = e;
        e = NULL;
    }
    pthread_mutex_unlock(&srv->mu);
    free(e);
    return r;
}

int lp_env_acquire(lp_server_t *srv, const char *name, lp_env_t **out)
{
    lp_env_t *e;

    if (name != NULL && strcmp(name, LP_ENV_MAIN) != 0 && srv->engine.env_exists != NULL) {
        /* the engine's table is the truth; ours keeps a record per name asked for */
        if (srv->engine.env_exists(srv->engine.ctx, name) != 0) {
            *out = NULL;
            return LP_WIRE_EFIELD;
        }
        if (lp_env_add(srv, name, NULL) == 0) {
            pthread_mutex_lock(&srv->mu);
            if ((e = find_locked(srv, name)) != NULL)
                e->data = e->name; /* the engine's handle: the name */
            pthread_mutex_unlock(&srv->mu);
        }
    }
    pthread_mutex_lock(&srv->mu);
    if ((e = find_locked(srv, name != NULL ? name : LP_ENV_MAIN)) != NULL)
        e->sessions++;
    pthread_mutex_unlock(&srv->mu);
    *out = e;
    return e != NULL ? 0 : LP_WIRE_EFIELD;
}

void lp_env_release(lp_server_t *srv, lp_env_t *e)
{
    if (e == NULL)
        return;
    pthread_mutex_lock(&srv->mu);
    e->sessions--;
    pthread_mutex_unlock(&srv->mu);
}

json_t *lp_env_list(lp_server_t *srv)
{
    json_t *list = json_array();

    pthread_mutex_lock(&srv->mu);
    for (lp_env_t *e = srv->envs; e != NULL && list != NULL; e = e->next)
        if (json_array_append_new(list, json_pack("{s:s,s:i}", "env", e->name, "sessions",
                                                  (int)e->sessions)) != 0) {
            json_decref(list);
            list = NULL;
        }
    pthread_mutex_unlock(&srv->mu);
    return list;
}

void lp_env_free_all(lp_server_t *srv)
{
    while (srv->envs != NULL) {
        lp_env_t *e = srv->envs;

        srv->envs = e->next;
        free(e);
    }
}
