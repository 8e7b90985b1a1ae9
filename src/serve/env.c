/* env.c: the kernel server's environments (serve.h): a table of named far
 * agents, each started by the one launcher (src/context/launch.c) and
 * linked to the one broker. An environment that dies stays in the table,
 * "dead" with why, until it is restarted or deleted. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "context/launch.h"
#include "io/io.h"
#include "serve/internal.h"
#include "serve/target.h"
#include "wire/hdr.h"

#define LAUNCH_TIMEOUT_MS 30000
#define INTERRUPT_GRACE_MS 300 /* delete: the run going gets this long to stop */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > LP_ENV_NAME_MAX)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
           n;
}

static lp_senv_t *find_locked(lp_serve_t *sv, const char *name)
{
    for (lp_senv_t *e = sv->envs; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            return e;
    return NULL;
}

lp_senv_t *lp_senv_find(lp_serve_t *sv, const char *name)
{
    lp_senv_t *e;

    pthread_mutex_lock(&sv->mu);
    if ((e = find_locked(sv, name)) != NULL)
        e->refs++;
    pthread_mutex_unlock(&sv->mu);
    return e;
}

static void senv_free(lp_senv_t *e)
{
    json_decref(e->agent);
    free(e->target);
    free(e->python);
    pthread_mutex_destroy(&e->send_mu);
    pthread_mutex_destroy(&e->life_mu);
    free(e);
}

void lp_senv_unref(lp_serve_t *sv, lp_senv_t *e)
{
    int left;

    pthread_mutex_lock(&sv->mu);
    left = --e->refs;
    pthread_mutex_unlock(&sv->mu);
    if (left == 0)
        senv_free(e);
}

lp_senv_t *lp_senv_by_link_locked(lp_serve_t *sv, uint32_t link)
{
    for (lp_senv_t *e = sv->envs; e != NULL; e = e->next)
        if (e->link == link && link != 0)
            return e;
    return NULL;
}

/* Ends every run e has in flight with st and keeps them (under sv->mu). */
static void end_inflight_locked(lp_serve_t *sv, lp_senv_t *e, lp_run_status_t st)
{
    while (e->inflight != NULL) {
        lp_run_t *r = e->inflight;

        e->inflight = r->next;
        lp_run_end(r, st);
        lp_journal_run(sv, e->name, r);
        r->next = e->kept;
        e->kept = r;
        e->nkept++;
    }
    e->inflight_tail = &e->inflight;
}

void lp_senv_died_locked(lp_serve_t *sv, lp_senv_t *e, const char *why)
{
    if (e->state == LP_ENV_STOPPING)
        return;
    e->state = LP_ENV_DEAD;
    snprintf(e->why, sizeof(e->why), "%s", why);
    end_inflight_locked(sv, e, LP_RUN_KILLED);
}

/* Applies e's CPU and memory limits to its process (a local one only:
 * for sudo and ssh the process here is not the far Python). */
static void apply_limits(pid_t pid, const lp_env_limits_t *l)
{
    struct rlimit rl;

    if (l->cpu_s > 0) {
        rl.rlim_cur = l->cpu_s;
        rl.rlim_max = (rlim_t)l->cpu_s + 5; /* SIGXCPU first, the kill 5 s later */
        prlimit(pid, RLIMIT_CPU, &rl, NULL);
    }
    if (l->memory_mb > 0) {
        rl.rlim_cur = rl.rlim_max = (rlim_t)l->memory_mb << 20;
        prlimit(pid, RLIMIT_AS, &rl, NULL);
    }
}

/* Starts e's process and links it (without sv->mu: it takes a while). */
static int start(lp_serve_t *sv, lp_senv_t *e, char msg[LP_SERVE_MSG_MAX])
{
    lp_target_argv_t t;
    lp_launch_t opt = {0};
    lp_launched_t out;
    uint32_t link = 0;
    int r;

    if ((r = lp_target_argv(e->target, e->python, &t, msg, LP_SERVE_MSG_MAX)) != 0)
        return r == -EINVAL ? LP_WIRE_EFIELD : r;
    opt.argv = (const char *const *)t.argv;
    opt.compiled = t.compiled;
    opt.session = true;
    opt.timeout_ms = LAUNCH_TIMEOUT_MS;
    opt.log_level = 20;
    if ((r = lp_context_launch(&opt, &out)) != 0) {
        snprintf(msg, LP_SERVE_MSG_MAX, "environment '%s' %.400s", e->name, out.error);
        lp_target_free(&t);
        return -ECHILD;
    }
    if (t.local)
        apply_limits(out.pid, &e->limits);
    lp_target_free(&t);
    r = lp_broker_add(sv->broker, out.rfd, out.wfd, out.initial, out.initial_len, &link);
    if (r == 0) {
        out.rfd = out.wfd = -1;
        pthread_mutex_lock(&sv->mu);
        e->pid = out.pid;
        e->link = link;
        json_decref(e->agent);
        e->agent = json_incref(out.agent);
        e->state = LP_ENV_READY;
        e->why[0] = 0;
        pthread_mutex_unlock(&sv->mu);
    } else {
        snprintf(msg, LP_SERVE_MSG_MAX, "environment '%s': cannot link it (%s)", e->name,
                 lp_wire_strerror(r));
        lp_context_reap(out.pid, 0);
    }
    lp_launched_clear(&out);
    return r;
}

/* ENV (docs/http.md) for e (under sv->mu). */
static json_t *describe_locked(lp_serve_t *sv, const lp_senv_t *e)
{
    static const char *const states[] = {"starting", "ready", "dead", "stopping"};
    char created[32];
    time_t t = (time_t)(e->created_ms / 1000);
    struct tm tm;
    json_t *o;

    gmtime_r(&t, &tm);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:o, s:{s:o, s:o, s:o, s:o}}", "name", e->name,
                  "target", e->target != NULL ? e->target : "local", "state",
                  e->state == LP_ENV_READY && e->inflight != NULL ? "busy" : states[e->state],
                  "pid", (json_int_t)e->pid, "created", created, "runs",
                  (json_int_t)e->runs_total, "running",
                  e->inflight != NULL ? json_integer((json_int_t)e->inflight->id) : json_null(),
                  "limits", "cpu_s", e->limits.cpu_s ? json_integer(e->limits.cpu_s) : json_null(),
                  "memory_mb", e->limits.memory_mb ? json_integer(e->limits.memory_mb) : json_null(),
                  "output_mb_per_run",
                  e->limits.output_mb ? json_integer(e->limits.output_mb) : json_null(),
                  "wall_s_per_run", e->limits.wall_s ? json_integer(e->limits.wall_s) : json_null());
    if (o != NULL && e->state == LP_ENV_DEAD)
        json_object_set_new(o, "why", json_string(e->why));
    if (o != NULL && e->agent != NULL)
        json_object_set(o, "python", json_object_get(e->agent, "python"));
    (void)sv;
    return o;
}

/* ENV for e, taking sv->mu. */
static json_t *describe(lp_serve_t *sv, const lp_senv_t *e)
{
    json_t *o;

    pthread_mutex_lock(&sv->mu);
    o = describe_locked(sv, e);
    pthread_mutex_unlock(&sv->mu);
    return o;
}

int lp_serve_env_create(lp_serve_t *sv, const char *name, const char *target, const char *python,
                        const lp_env_limits_t *limits, json_t **info, char msg[LP_SERVE_MSG_MAX])
{
    lp_senv_t *e;
    int r = 0;

    if (info != NULL)
        *info = NULL;
    if (!name_ok(name)) {
        snprintf(msg, LP_SERVE_MSG_MAX,
                 "bad environment name '%.80s': 1-64 characters of A-Z a-z 0-9 _ . -", name);
        return LP_WIRE_EFIELD;
    }
    if ((e = calloc(1, sizeof(*e))) == NULL)
        return LP_WIRE_ENOMEM;
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->target = target != NULL ? strdup(target) : NULL;
    e->python = strdup(python != NULL ? python : sv->cfg.python);
    e->limits = limits != NULL ? *limits : sv->cfg.limits;
    if (e->limits.output_mb == 0)
        e->limits.output_mb = sv->cfg.limits.output_mb;
    e->created_ms = lp_clock_wall_ms();
    e->state = LP_ENV_STARTING;
    e->refs = 2; /* the table's and ours */
    e->inflight_tail = &e->inflight;
    pthread_mutex_init(&e->send_mu, NULL);
    pthread_mutex_init(&e->life_mu, NULL);
    pthread_mutex_lock(&e->life_mu); /* a delete or restart of it waits for the start */
    pthread_mutex_lock(&sv->mu);
    if (sv->draining)
        r = -ESHUTDOWN;
    else if (find_locked(sv, name) != NULL)
        r = -EEXIST;
    else if (sv->nenvs >= sv->cfg.max_envs)
        r = -EAGAIN;
    if (r == 0) {
        lp_senv_t **tail = &sv->envs;

        while (*tail != NULL)
            tail = &(*tail)->next;
        *tail = e;
        sv->nenvs++;
    }
    pthread_mutex_unlock(&sv->mu);
    if (r != 0) {
        pthread_mutex_unlock(&e->life_mu);
        snprintf(msg, LP_SERVE_MSG_MAX, r == -EEXIST  ? "environment '%s' exists"
                                        : r == -EAGAIN ? "too many environments (not '%s')"
                                                       : "the server is stopping: no '%s'",
                 name);
        senv_free(e);
        return r;
    }
    if ((r = start(sv, e, msg)) != 0) {
        lp_senv_t **at;

        pthread_mutex_lock(&sv->mu);
        for (at = &sv->envs; *at != NULL && *at != e; at = &(*at)->next)
            ;
        if (*at != NULL) {
            *at = e->next;
            sv->nenvs--;
            e->refs--;
        }
        pthread_mutex_unlock(&sv->mu);
    } else if (info != NULL) {
        *info = describe(sv, e);
    }
    pthread_mutex_unlock(&e->life_mu);
    lp_senv_unref(sv, e);
    return r;
}

/* Stops e's process: the run going is interrupted first, then the link is
 * closed (its agent leaves at the end of its stdin) and the process reaped. */
static void stop_process(lp_serve_t *sv, lp_senv_t *e)
{
    uint32_t link;
    pid_t pid;
    lp_run_t *going = NULL;

    pthread_mutex_lock(&sv->mu);
    link = e->link;
    pid = e->pid;
    if (e->state == LP_ENV_READY && (going = e->inflight) != NULL)
        lp_run_ref(going);
    e->state = LP_ENV_STOPPING;
    pthread_mutex_unlock(&sv->mu);
    if (going != NULL) {
        lp_agent_interrupt(sv, link, going->id);
        lp_run_wait(going, UINT64_MAX, INTERRUPT_GRACE_MS);
        lp_run_unref(going);
    }
    pthread_mutex_lock(&sv->mu);
    end_inflight_locked(sv, e, LP_RUN_KILLED);
    e->link = 0;
    e->pid = 0;
    pthread_mutex_unlock(&sv->mu);
    if (link != 0)
        lp_broker_close(sv->broker, link);
    if (pid > 0)
        lp_context_reap(pid, 1000);
}

int lp_serve_env_delete(lp_serve_t *sv, const char *name)
{
    lp_senv_t *e = lp_senv_find(sv, name);
    lp_senv_t **at;

    if (e == NULL)
        return -ENOENT;
    pthread_mutex_lock(&sv->mu);
    for (at = &sv->envs; *at != NULL && *at != e; at = &(*at)->next)
        ;
    if (*at != NULL) { /* out of the table first: no new run can come */
        *at = e->next;
        sv->nenvs--;
        e->refs--;
        e->deleted = true;
    }
    pthread_mutex_unlock(&sv->mu);
    pthread_mutex_lock(&e->life_mu); /* a start going on ends first: its process is stopped */
    stop_process(sv, e);
    pthread_mutex_unlock(&e->life_mu);
    pthread_mutex_lock(&sv->mu);
    for (lp_run_t *r = e->kept, *n; r != NULL; r = n) {
        n = r->next;
        lp_run_unref(r);
    }
    e->kept = NULL;
    pthread_mutex_unlock(&sv->mu);
    lp_senv_unref(sv, e);
    return 0;
}

int lp_serve_env_restart(lp_serve_t *sv, const char *name, json_t **info,
                         char msg[LP_SERVE_MSG_MAX])
{
    lp_senv_t *e = lp_senv_find(sv, name);
    bool gone;
    int r;

    if (info != NULL)
        *info = NULL;
    if (e == NULL)
        return -ENOENT;
    pthread_mutex_lock(&e->life_mu);
    pthread_mutex_lock(&sv->mu);
    gone = e->deleted; /* deleted while we waited */
    pthread_mutex_unlock(&sv->mu);
    if (gone) {
        pthread_mutex_unlock(&e->life_mu);
        lp_senv_unref(sv, e);
        return -ENOENT;
    }
    stop_process(sv, e);
    pthread_mutex_lock(&sv->mu);
    e->state = LP_ENV_STARTING;
    pthread_mutex_unlock(&sv->mu);
    if ((r = start(sv, e, msg)) != 0) {
        pthread_mutex_lock(&sv->mu);
        e->state = LP_ENV_DEAD;
        snprintf(e->why, sizeof(e->why), "%s", msg);
        pthread_mutex_unlock(&sv->mu);
    } else if (info != NULL) {
        *info = describe(sv, e);
    }
    pthread_mutex_unlock(&e->life_mu);
    lp_senv_unref(sv, e);
    return r;
}

json_t *lp_serve_env_list(lp_serve_t *sv)
{
    json_t *list = json_array();

    pthread_mutex_lock(&sv->mu);
    for (lp_senv_t *e = sv->envs; e != NULL && list != NULL; e = e->next)
        json_array_append_new(list, describe_locked(sv, e));
    pthread_mutex_unlock(&sv->mu);
    return list;
}

/* Asks e's agent a question (a header with "id"): its done, or NULL with *err. */
static json_t *ask(lp_serve_t *sv, lp_senv_t *e, int64_t id, lp_hdr_t *h, char *text, int *err)
{
    json_t *done = NULL;
    size_t len;
    uint32_t link;
    bool ready;

    pthread_mutex_lock(&sv->mu);
    ready = e->state == LP_ENV_READY;
    link = e->link;
    pthread_mutex_unlock(&sv->mu);
    if (!ready) {
        *err = -EPIPE;
        return NULL;
    }
    if ((*err = lp_hdr_end(h, &len)) == 0)
        *err = lp_agent_request(sv, link, id, text, len, NULL, 0, 10000, &done);
    return done;
}

json_t *lp_serve_env_info(lp_serve_t *sv, const char *name, bool names, int *err)
{
    lp_senv_t *e = lp_senv_find(sv, name);
    json_t *o = NULL, *done = NULL;

    *err = 0;
    if (e == NULL) {
        *err = -ENOENT;
        return NULL;
    }
    if (names) {
        char text[128];
        lp_hdr_t h;
        int64_t id = lp_agent_next_id(sv);

        lp_hdr_begin(&h, text, sizeof(text), "names");
        lp_hdr_int(&h, "id", id);
        done = ask(sv, e, id, &h, text, err);
    }
    if (!names || done != NULL) {
        o = describe(sv, e);
        if (o != NULL && done != NULL)
            json_object_set(o, "names", json_object_get(done, "names"));
    }
    json_decref(done);
    lp_senv_unref(sv, e);
    return o;
}
