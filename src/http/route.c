/* route.c: method and path to an endpoint (route.h). One table; a pattern's
 * "*" is an environment's name, "#" a run's number. */
#include "http/route.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *method, *pattern;
    lp_http_what_t what;
} routes[] = {
    {"GET", "/", LP_HTTP_CONSOLE},
    {"POST", "/", LP_HTTP_ARTICLE_EXEC},
    {"POST", "/env/create", LP_HTTP_ARTICLE_CREATE},
    {"POST", "/env/delete", LP_HTTP_ARTICLE_DELETE},
    {"POST", "/env/get", LP_HTTP_ARTICLE_GET},
    {"GET", "/api/ping", LP_HTTP_PING},
    {"GET", "/api/envs", LP_HTTP_ENVS_LIST},
    {"POST", "/api/envs", LP_HTTP_ENVS_CREATE},
    {"GET", "/api/envs/*", LP_HTTP_ENV_GET},
    {"DELETE", "/api/envs/*", LP_HTTP_ENV_DELETE},
    {"POST", "/api/envs/*/restart", LP_HTTP_ENV_RESTART},
    {"POST", "/api/envs/*/exec", LP_HTTP_ENV_EXEC},
    {"POST", "/api/envs/*/interrupt", LP_HTTP_ENV_INTERRUPT},
    {"GET", "/api/envs/*/runs", LP_HTTP_RUNS_LIST},
    {"GET", "/api/envs/*/runs/#", LP_HTTP_RUN_GET},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static int parse_run(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0 || s[0] == '0')
        return LP_HTTP_EBADRUN;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return LP_HTTP_EBADRUN;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* 1 when path matches pattern (filling rt's name and run), 0 when not, or
 * a negative code for a match whose name or number cannot be. */
static int match(const char *pattern, const char *path, lp_http_route_t *rt)
{
    int bad = 0;

    rt->env[0] = '\0';
    rt->run = 0;
    while (*pattern != '\0') {
        if (*pattern == '*' || *pattern == '#') {
            size_t len = strcspn(path, "/");
            int rc;

            if (len == 0)
                return 0;
            if (*pattern == '*') {
                if (len > LP_HTTP_NAME_MAX)
                    rc = LP_HTTP_EBADNAME;
                else {
                    memcpy(rt->env, path, len);
                    rt->env[len] = '\0';
                    rc = 0;
                }
            } else {
                rc = parse_run(path, len, &rt->run);
            }
            path += len;
            pattern++;
            if (rc != 0 && bad == 0)
                bad = rc; /* said only if the rest of the path matches */
            continue;
        }
        if (*pattern != *path)
            return 0;
        pattern++;
        path++;
    }
    return *path != '\0' ? 0 : bad != 0 ? bad : 1;
}

int lp_http_route(const char *method, const char *path, lp_http_route_t *rt)
{
    int found = LP_HTTP_ENOROUTE;

    for (size_t i = 0; i < NROUTES; i++) {
        int m = match(routes[i].pattern, path, rt);

        if (m == 0)
            continue;
        if (strcmp(routes[i].method, method) != 0) {
            found = LP_HTTP_EMETHOD;
            continue;
        }
        if (m < 0)
            return m;
        rt->what = routes[i].what;
        return 0;
    }
    return found;
}

const char *lp_http_route_allow(const char *path)
{
    static const char *const sets[] = {"GET, POST", "GET, DELETE", "POST", "GET"};
    lp_http_route_t rt;
    bool get = false, post = false, del = false;

    for (size_t i = 0; i < NROUTES; i++) {
        if (match(routes[i].pattern, path, &rt) == 0)
            continue;
        get |= strcmp(routes[i].method, "GET") == 0;
        post |= strcmp(routes[i].method, "POST") == 0;
        del |= strcmp(routes[i].method, "DELETE") == 0;
    }
    if (get && post)
        return sets[0];
    if (get && del)
        return sets[1];
    return post ? sets[2] : get ? sets[3] : NULL;
}
