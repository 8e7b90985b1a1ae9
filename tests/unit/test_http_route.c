/* test_http_route.c: every path of docs/http.md to its endpoint, and the
 * paths that are none: 404, 405 with what Allow says, a name too long for
 * an environment, a run that is no number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/route.h"

static void each_endpoint(void **state)
{
    static const struct {
        const char *method, *path;
        lp_http_what_t what;
        const char *env;
        uint64_t run;
    } cases[] = {
        {"GET", "/", LP_HTTP_CONSOLE, "", 0},
        {"POST", "/", LP_HTTP_ARTICLE_EXEC, "", 0},
        {"POST", "/env/create", LP_HTTP_ARTICLE_CREATE, "", 0},
        {"POST", "/env/delete", LP_HTTP_ARTICLE_DELETE, "", 0},
        {"POST", "/env/get", LP_HTTP_ARTICLE_GET, "", 0},
        {"GET", "/api/envs", LP_HTTP_ENVS_LIST, "", 0},
        {"POST", "/api/envs", LP_HTTP_ENVS_CREATE, "", 0},
        {"GET", "/api/envs/exp1", LP_HTTP_ENV_GET, "exp1", 0},
        {"DELETE", "/api/envs/exp1", LP_HTTP_ENV_DELETE, "exp1", 0},
        {"POST", "/api/envs/a.b-c_d/restart", LP_HTTP_ENV_RESTART, "a.b-c_d", 0},
        {"POST", "/api/envs/exp1/exec", LP_HTTP_ENV_EXEC, "exp1", 0},
        {"POST", "/api/envs/exp1/interrupt", LP_HTTP_ENV_INTERRUPT, "exp1", 0},
        {"GET", "/api/envs/exp1/runs", LP_HTTP_RUNS_LIST, "exp1", 0},
        {"GET", "/api/envs/exp1/runs/7", LP_HTTP_RUN_GET, "exp1", 7},
        {"GET", "/api/envs/x/runs/18446744073709551615", LP_HTTP_RUN_GET, "x", UINT64_MAX},
        /* A name that is a path word is still a name here: the core says
         * whether it is a good one. */
        {"GET", "/api/envs/runs", LP_HTTP_ENV_GET, "runs", 0},
    };
    lp_http_route_t rt;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&rt, 0x55, sizeof(rt));
        assert_int_equal(lp_http_route(cases[i].method, cases[i].path, &rt), 0);
        assert_int_equal(rt.what, cases[i].what);
        assert_string_equal(rt.env, cases[i].env);
        assert_true(rt.run == cases[i].run);
    }
}

static void no_such_path(void **state)
{
    static const char *const paths[] = {
        "", "/api", "/api/", "/api/envs/", "/api/envs//exec", "/api/envs/x/", "/api/envs/x/exec/",
        "/api/envs/x/nope", "/api/envs/x/runs/", "/api/envs/x/runs/1/2", "/env", "/env/create/",
        "//", "/API/envs", "/index.html",
    };
    lp_http_route_t rt;

    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(lp_http_route("GET", paths[i], &rt), LP_HTTP_ENOROUTE);
}

static void wrong_method(void **state)
{
    lp_http_route_t rt;

    assert_int_equal(lp_http_route("PUT", "/api/envs", &rt), LP_HTTP_EMETHOD);
    assert_string_equal(lp_http_route_allow("/api/envs"), "GET, POST");
    assert_int_equal(lp_http_route("POST", "/api/envs/x", &rt), LP_HTTP_EMETHOD);
    assert_string_equal(lp_http_route_allow("/api/envs/x"), "GET, DELETE");
    assert_int_equal(lp_http_route("GET", "/api/envs/x/exec", &rt), LP_HTTP_EMETHOD);
    assert_string_equal(lp_http_route_allow("/api/envs/x/exec"), "POST");
    assert_int_equal(lp_http_route("GET", "/env/get", &rt), LP_HTTP_EMETHOD);
    assert_int_equal(lp_http_route("DELETE", "/api/envs/x/runs/3", &rt), LP_HTTP_EMETHOD);
    assert_string_equal(lp_http_route_allow("/api/envs/x/runs/3"), "GET");
    assert_int_equal(lp_http_route("OPTIONS", "/", &rt), LP_HTTP_EMETHOD);
    assert_string_equal(lp_http_route_allow("/"), "GET, POST");
    assert_null(lp_http_route_allow("/nope"));
}

static void bad_name_and_run(void **state)
{
    char path[200], name[LP_HTTP_NAME_MAX + 2];
    lp_http_route_t rt;

    memset(name, 'n', LP_HTTP_NAME_MAX);
    name[LP_HTTP_NAME_MAX] = '\0';
    snprintf(path, sizeof(path), "/api/envs/%s/exec", name);
    assert_int_equal(lp_http_route("POST", path, &rt), 0); /* 64 bytes: a name */
    assert_string_equal(rt.env, name);
    strcat(name, "n");
    snprintf(path, sizeof(path), "/api/envs/%s/exec", name);
    assert_int_equal(lp_http_route("POST", path, &rt), LP_HTTP_EBADNAME);
    snprintf(path, sizeof(path), "/api/envs/%s/nope", name);
    assert_int_equal(lp_http_route("POST", path, &rt), LP_HTTP_ENOROUTE);

    static const char *const runs[] = {"0", "07", "x", "1x", "-1", "18446744073709551616x",
                                       "99999999999999999999"};
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        snprintf(path, sizeof(path), "/api/envs/e/runs/%s", runs[i]);
        assert_int_equal(lp_http_route("GET", path, &rt), LP_HTTP_EBADRUN);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_endpoint), cmocka_unit_test(no_such_path),
        cmocka_unit_test(wrong_method), cmocka_unit_test(bad_name_and_run),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
