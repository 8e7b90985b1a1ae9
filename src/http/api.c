/* api.c: the /api/ endpoints of docs/http.md over serve.h. */
#include "http/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MAX_S 2000000.0 /* a timeout in ms must fit an int */

static enum MHD_Result envs_list(lp_http_req_t *rq, struct MHD_Connection *c)
{
    json_t *envs = lp_serve_env_list(rq->h->sv);

    if (envs == NULL)
        return MHD_NO;
    return lp_http_reply_json(rq, c, MHD_HTTP_OK, json_pack("{so}", "envs", envs));
}

/* "limits" of a create: each field a whole number >= 0 or null. */
static int limits_from(json_t *j, lp_env_limits_t *l, char *msg, size_t msgsz)
{
    static const char *const names[] = {"cpu_s", "memory_mb", "output_mb_per_run", "wall_s_per_run"};
    unsigned *fields[] = {&l->cpu_s, &l->memory_mb, &l->output_mb, &l->wall_s};
    const char *key;
    json_t *v;

    json_object_foreach(j, key, v) {
        size_t i = 0;

        while (i < 4 && strcmp(names[i], key) != 0)
            i++;
        if (i == 4) {
            snprintf(msg, msgsz, "unknown limit '%s' (cpu_s, memory_mb, output_mb_per_run, "
                                 "wall_s_per_run)", key);
            return -1;
        }
        if (json_is_null(v)) {
            *fields[i] = 0;
            continue;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > (json_int_t)UINT32_MAX) {
            snprintf(msg, msgsz, "limit '%s' must be a whole number >= 0, or null", key);
            return -1;
        }
        *fields[i] = (unsigned)json_integer_value(v);
    }
    return 0;
}

/* A string field of b, or NULL (also when absent); *bad when present and
 * not a string. */
static const char *str_field(json_t *b, const char *key, bool *bad)
{
    json_t *v = json_object_get(b, key);

    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static enum MHD_Result envs_create(lp_http_req_t *rq, struct MHD_Connection *c)
{
    enum MHD_Result ret = MHD_NO;
    json_t *b = lp_http_body_object(rq, c, &ret), *info = NULL, *lj;
    lp_env_limits_t limits = LP_ENV_LIMITS_DEFAULT;
    char msg[LP_SERVE_MSG_MAX] = "";
    const char *name, *target, *python;
    bool bad = false;
    int rc;

    if (b == NULL)
        return ret;
    name = str_field(b, "name", &bad);
    target = str_field(b, "target", &bad);
    python = str_field(b, "python", &bad);
    if (bad || name == NULL) {
        ret = lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request",
                                  "give {\"name\": NAME} and optionally \"target\", \"python\" "
                                  "(strings) and \"limits\" (an object)");
        goto out;
    }
    snprintf(rq->env, sizeof(rq->env), "%s", name);
    if ((lj = json_object_get(b, "limits")) != NULL && !json_is_null(lj)) {
        if (!json_is_object(lj) || limits_from(lj, &limits, msg, sizeof(msg)) != 0) {
            ret = lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request", "%s",
                                      msg[0] != '\0' ? msg : "\"limits\" must be an object");
            goto out;
        }
    }
    rc = lp_serve_env_create(rq->h->sv, name, target, python, lj != NULL ? &limits : NULL, &info,
                             msg);
    if (rc != 0)
        ret = lp_http_reply_serve(rq, c, rc, name, msg);
    else
        ret = lp_http_reply_json(rq, c, MHD_HTTP_CREATED, info);
out:
    json_decref(b);
    return ret;
}

/* The answer for an environment that is not there (or dead): 404 or 410. */
static enum MHD_Result env_gone(lp_http_req_t *rq, struct MHD_Connection *c, int err)
{
    int e2 = 0;
    json_t *info = err == -EPIPE ? lp_serve_env_info(rq->h->sv, rq->env, false, &e2) : NULL;
    const char *why = json_string_value(json_object_get(info, "why"));
    enum MHD_Result ret = lp_http_reply_serve(rq, c, err, rq->env, why);

    json_decref(info);
    return ret;
}

static enum MHD_Result env_get(lp_http_req_t *rq, struct MHD_Connection *c)
{
    int err = 0;
    json_t *info = lp_serve_env_info(rq->h->sv, rq->env, true, &err);

    if (info == NULL)
        return env_gone(rq, c, err);
    return lp_http_reply_json(rq, c, MHD_HTTP_OK, info);
}

static enum MHD_Result env_delete(lp_http_req_t *rq, struct MHD_Connection *c)
{
    int rc = lp_serve_env_delete(rq->h->sv, rq->env);

    if (rc != 0)
        return lp_http_reply_serve(rq, c, rc, rq->env, NULL);
    return lp_http_reply_json(rq, c, MHD_HTTP_OK, json_pack("{ss}", "deleted", rq->env));
}

static enum MHD_Result env_restart(lp_http_req_t *rq, struct MHD_Connection *c)
{
    char msg[LP_SERVE_MSG_MAX] = "";
    json_t *info = NULL;
    int rc = lp_serve_env_restart(rq->h->sv, rq->env, &info, msg);

    if (rc != 0)
        return lp_http_reply_serve(rq, c, rc, rq->env, msg);
    return lp_http_reply_json(rq, c, MHD_HTTP_OK, info);
}

static enum MHD_Result env_interrupt(lp_http_req_t *rq, struct MHD_Connection *c)
{
    uint64_t id = 0;
    int rc = lp_serve_interrupt(rq->h->sv, rq->env, &id);

    if (rc != 0)
        return lp_http_reply_serve(rq, c, rc, rq->env, NULL);
    rq->run = id;
    return lp_http_reply_json(rq, c, MHD_HTTP_OK,
                              json_pack("{so}", "interrupted",
                                        id != 0 ? json_integer((json_int_t)id) : json_null()));
}

/* The answer of a run that ended: 200, or 504 for one its timeout ended,
 * whose "error" then says so as every error does ({"code","message"}),
 * with the KeyboardInterrupt's type and traceback kept beside. */
static enum MHD_Result run_answer(lp_http_req_t *rq, struct MHD_Connection *c, lp_run_t *r,
                                  uint64_t since)
{
    json_t *ans = lp_run_json(r, since), *err;
    lp_run_status_t st = lp_run_status(r);

    rq->outcome = lp_run_status_name(st);
    if (ans == NULL)
        return MHD_NO;
    if (st != LP_RUN_DEADLINE)
        return lp_http_reply_json(rq, c, MHD_HTTP_OK, ans);
    err = json_object_get(ans, "error");
    if (!json_is_object(err)) {
        err = json_object();
        json_object_set_new(ans, "error", err);
    }
    json_object_set_new(err, "code", json_string("deadline-exceeded"));
    json_object_set_new(err, "message", json_string("the run passed its timeout and was interrupted"));
    return lp_http_reply_json(rq, c, MHD_HTTP_GATEWAY_TIMEOUT, ans);
}

static enum MHD_Result exec_done(lp_http_req_t *rq, struct MHD_Connection *c, lp_run_t *r,
                                 bool ended)
{
    if (!ended)
        return lp_http_reply_error(rq, c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
                                   "the server is stopping; run %llu goes on",
                                   (unsigned long long)rq->run);
    return run_answer(rq, c, r, 0);
}

/* "timeout" in seconds (> 0) to ms; 0 when absent; -1 when bad. */
static int timeout_ms(json_t *b)
{
    json_t *v = json_object_get(b, "timeout");
    double t;

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v) || !((t = json_number_value(v)) > 0) || t > TIMEOUT_MAX_S)
        return -1;
    return t * 1000 < 1 ? 1 : (int)(t * 1000 + 0.999); /* rounded up */
}

static enum MHD_Result env_exec(lp_http_req_t *rq, struct MHD_Connection *c)
{
    enum MHD_Result ret = MHD_NO;
    json_t *b = lp_http_body_object(rq, c, &ret), *code, *wait;
    char msg[LP_SERVE_MSG_MAX] = "";
    lp_run_req_t req = {0};
    lp_run_t *r = NULL;
    int rc;

    if (b == NULL)
        return ret;
    code = json_object_get(b, "code");
    wait = json_object_get(b, "wait");
    req.timeout_ms = timeout_ms(b);
    if (!json_is_string(code) || (wait != NULL && !json_is_boolean(wait)) || req.timeout_ms < 0) {
        ret = lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request",
                                  "give {\"code\": STRING} and optionally \"timeout\" (seconds, "
                                  "> 0) and \"wait\" (true or false)");
        goto out;
    }
    req.code = json_string_value(code);
    req.len = json_string_length(code);
    req.mode = LP_RUN_CELL;
    req.who = rq->h->who;
    if ((rc = lp_serve_submit(rq->h->sv, rq->env, &req, &r, msg)) != 0) {
        ret = rc == -EPIPE ? env_gone(rq, c, rc) : lp_http_reply_serve(rq, c, rc, rq->env, msg);
        goto out;
    }
    rq->run = lp_run_id(r);
    if (lp_http_wants_stream(c)) {
        ret = lp_http_stream(rq, c, r, 0, true);
        r = NULL;
    } else if (wait != NULL && json_is_false(wait)) {
        rq->outcome = lp_run_status_name(lp_run_status(r));
        ret = lp_http_reply_json(rq, c, MHD_HTTP_ACCEPTED,
                                 json_pack("{sIss}", "run", (json_int_t)rq->run, "status",
                                           rq->outcome));
    } else {
        ret = lp_http_wait(rq, c, r, exec_done);
        r = NULL;
    }
out:
    lp_run_unref(r);
    json_decref(b);
    return ret;
}

static enum MHD_Result runs_list(lp_http_req_t *rq, struct MHD_Connection *c)
{
    int err = 0;
    json_t *runs = lp_serve_runs(rq->h->sv, rq->env, &err);

    if (runs == NULL)
        return lp_http_reply_serve(rq, c, err != 0 ? err : -ENOENT, rq->env, NULL);
    return lp_http_reply_json(rq, c, MHD_HTTP_OK, json_pack("{so}", "runs", runs));
}

/* A decimal offset (?since=, Last-Event-ID): 0 when s is NULL, -1 when bad. */
static int parse_offset(const char *s, uint64_t *out)
{
    char *end;

    *out = 0;
    if (s == NULL)
        return 0;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno != 0 || *end != '\0' ? -1 : 0;
}

static enum MHD_Result run_get(lp_http_req_t *rq, struct MHD_Connection *c, uint64_t id)
{
    const char *last = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    lp_run_t *r;
    uint64_t since;
    enum MHD_Result ret;
    int err = 0;

    if (parse_offset(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since"), &since) != 0 ||
        (last != NULL && parse_offset(last, &since) != 0))
        return lp_http_reply_error(rq, c, MHD_HTTP_BAD_REQUEST, "bad-request",
                                   "since (and Last-Event-ID) is an offset: a whole number >= 0");
    if ((r = lp_serve_run_find(rq->h->sv, rq->env, id)) == NULL) {
        json_t *runs = lp_serve_runs(rq->h->sv, rq->env, &err);

        json_decref(runs);
        if (runs == NULL)
            return lp_http_reply_serve(rq, c, err != 0 ? err : -ENOENT, rq->env, NULL);
        return lp_http_reply_error(rq, c, MHD_HTTP_NOT_FOUND, "no-such-run",
                                   "no run %llu kept in '%s'", (unsigned long long)id, rq->env);
    }
    if (lp_http_wants_stream(c))
        return lp_http_stream(rq, c, r, since, false);
    rq->outcome = lp_run_status_name(lp_run_status(r));
    ret = lp_http_reply_json(rq, c, MHD_HTTP_OK, lp_run_json(r, since));
    lp_run_unref(r);
    return ret;
}

enum MHD_Result lp_http_api(lp_http_req_t *rq, struct MHD_Connection *c, const lp_http_route_t *rt)
{
    switch (rt->what) {
    case LP_HTTP_ENVS_LIST:
        return envs_list(rq, c);
    case LP_HTTP_ENVS_CREATE:
        return envs_create(rq, c);
    case LP_HTTP_ENV_GET:
        return env_get(rq, c);
    case LP_HTTP_ENV_DELETE:
        return env_delete(rq, c);
    case LP_HTTP_ENV_RESTART:
        return env_restart(rq, c);
    case LP_HTTP_ENV_EXEC:
        return env_exec(rq, c);
    case LP_HTTP_ENV_INTERRUPT:
        return env_interrupt(rq, c);
    case LP_HTTP_RUNS_LIST:
        return runs_list(rq, c);
    case LP_HTTP_RUN_GET:
        return run_get(rq, c, rt->run);
    case LP_HTTP_PING: /* the token was checked: the cheapest answer that says so */
        return lp_http_reply_json(rq, c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
    default:
        return MHD_NO;
    }
}
