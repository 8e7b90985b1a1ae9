/* test_http_check.c: the HTTP front end's pure checks (src/http/check.c):
 * the token, Host and Origin (no DNS rebinding, no cross-site request),
 * listen addresses, and the URI as logged (never the token). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/check.h"

static void token_equal(void **state)
{
    assert_true(lp_http_token_equal("s3cret", "s3cret"));
    assert_false(lp_http_token_equal("s3cret", "s3cre"));     /* a prefix */
    assert_false(lp_http_token_equal("s3cret", "s3cret!"));   /* longer */
    assert_false(lp_http_token_equal("s3cret", "S3cret"));    /* case counts */
    assert_false(lp_http_token_equal("s3cret", ""));
    assert_false(lp_http_token_equal("s3cret", NULL));
    assert_false(lp_http_token_equal("", ""));                /* no token is never one */
    assert_false(lp_http_token_equal("ab", "ax"));
}

static void bearer(void **state)
{
    assert_string_equal(lp_http_bearer("Bearer abc"), "abc");
    assert_string_equal(lp_http_bearer("bearer   abc"), "abc");
    assert_null(lp_http_bearer("Basic abc"));
    assert_null(lp_http_bearer("Bearer "));
    assert_null(lp_http_bearer("Bearerabc"));
    assert_null(lp_http_bearer(NULL));
}

static void addr_parse(void **state)
{
    lp_http_addr_t a;
    char msg[256];

    assert_int_equal(lp_http_addr_parse("127.0.0.1:8700", &a, msg, sizeof(msg)), 0);
    assert_true(a.loopback);
    assert_false(a.ipv6);
    assert_int_equal(a.port, 8700);
    assert_int_equal(lp_http_addr_parse("127.1.2.3:0", &a, msg, sizeof(msg)), 0);
    assert_true(a.loopback);
    assert_int_equal(lp_http_addr_parse("localhost:1", &a, msg, sizeof(msg)), 0);
    assert_true(a.loopback);
    assert_int_equal(lp_http_addr_parse("[::1]:8700", &a, msg, sizeof(msg)), 0);
    assert_true(a.loopback);
    assert_true(a.ipv6);
    assert_int_equal(lp_http_addr_parse("0.0.0.0:8700", &a, msg, sizeof(msg)), 0);
    assert_false(a.loopback);
    assert_int_equal(lp_http_addr_parse("[::]:8700", &a, msg, sizeof(msg)), 0);
    assert_false(a.loopback);
    assert_int_equal(lp_http_addr_parse("10.0.0.1:8700", &a, msg, sizeof(msg)), 0);
    assert_false(a.loopback);
    /* Bad ones, each said. */
    static const char *const bad[] = {"", "8700", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x",
                                      "127.0.0.1:65536", "127.0.0.1:-1", "[::1]8700", "[::1",
                                      "example.com:80", "::1:8700", "1.2.3:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        assert_int_equal(lp_http_addr_parse(bad[i], &a, msg, sizeof(msg)), -EINVAL);
        assert_non_null(strstr(msg, "bad HTTP address"));
    }
    assert_int_equal(lp_http_addr_parse(NULL, &a, msg, sizeof(msg)), -EINVAL);
}

static void hosts(void **state)
{
    const char *extra[] = {"gpu1.example.org", "Box:9000", NULL};
    lp_http_hosts_t h;
    lp_http_addr_t a;
    char msg[256];

    assert_int_equal(lp_http_addr_parse("127.0.0.1:8700", &a, msg, sizeof(msg)), 0);
    assert_int_equal(lp_http_hosts_init(&h, &a, extra), 0);
    assert_true(lp_http_host_ok(&h, "127.0.0.1:8700"));
    assert_true(lp_http_host_ok(&h, "localhost:8700"));
    assert_true(lp_http_host_ok(&h, "LocalHost:8700"));
    assert_true(lp_http_host_ok(&h, "[::1]:8700"));
    assert_true(lp_http_host_ok(&h, "gpu1.example.org"));
    assert_true(lp_http_host_ok(&h, "gpu1.example.org:8700"));
    assert_true(lp_http_host_ok(&h, "box:9000"));
    /* DNS rebinding: a name that resolves here but is not ours. */
    assert_false(lp_http_host_ok(&h, "evil.example.com:8700"));
    assert_false(lp_http_host_ok(&h, "localhost:8701"));
    assert_false(lp_http_host_ok(&h, "localhost"));
    assert_false(lp_http_host_ok(&h, "box:8700"));
    assert_false(lp_http_host_ok(&h, "127.0.0.1:8700 "));
    assert_false(lp_http_host_ok(&h, ""));
    assert_false(lp_http_host_ok(&h, NULL));
    lp_http_hosts_free(&h);

    assert_int_equal(lp_http_addr_parse("[::1]:99", &a, msg, sizeof(msg)), 0);
    assert_int_equal(lp_http_hosts_init(&h, &a, NULL), 0);
    assert_true(lp_http_host_ok(&h, "[::1]:99"));
    assert_true(lp_http_host_ok(&h, "localhost:99"));
    lp_http_hosts_free(&h);

    /* Too many names is an error, not a silent cut. */
    const char *many[LP_HTTP_HOSTS_MAX + 1];
    for (size_t i = 0; i < LP_HTTP_HOSTS_MAX; i++)
        many[i] = "h";
    many[LP_HTTP_HOSTS_MAX] = NULL;
    assert_int_equal(lp_http_hosts_init(&h, &a, many), -E2BIG);
    assert_int_equal(h.n, 0);
}

static void origin(void **state)
{
    assert_true(lp_http_origin_ok(NULL, "127.0.0.1:8700", false));
    assert_true(lp_http_origin_ok("http://127.0.0.1:8700", "127.0.0.1:8700", false));
    assert_true(lp_http_origin_ok("http://LOCALHOST:8700", "localhost:8700", false));
    assert_true(lp_http_origin_ok("https://h:1", "h:1", true));
    assert_false(lp_http_origin_ok("http://h:1", "h:1", true));      /* the scheme counts */
    assert_false(lp_http_origin_ok("https://h:1", "h:1", false));
    assert_false(lp_http_origin_ok("http://evil.com", "127.0.0.1:8700", false));
    assert_false(lp_http_origin_ok("http://127.0.0.1:8701", "127.0.0.1:8700", false));
    assert_false(lp_http_origin_ok("null", "127.0.0.1:8700", false));
    assert_false(lp_http_origin_ok("", "127.0.0.1:8700", false));
    assert_false(lp_http_origin_ok("http://127.0.0.1:8700", NULL, false));
}

static void uri_for_log(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"/", "/"},
        {"/?token=abc", "/"},
        {"/api/envs?token=abc&x=1", "/api/envs?x=1"},
        {"/api/envs/a/runs/1?since=5&token=abc", "/api/envs/a/runs/1?since=5"},
        {"/p?a=1&token=abc&b=2", "/p?a=1&b=2"},
        {"/p?TOKEN=abc", "/p"},
        {"/p?token", "/p"},
        {"/p?%74oken=abc", "/p"},
        {"/p?t%6Fken=abc&z", "/p?z"},
        {"/p?%54%4F%4B%45%4E=abc", "/p"},
        {"/p?tokens=1", "/p?tokens=1"},
        {"/p?mytoken=1", "/p?mytoken=1"},
        {"/p?&&token=x&", "/p"},
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lp_http_uri_for_log(cases[i].in, out, sizeof(out));
        assert_string_equal(out, cases[i].out);
    }
    /* Cut to fit, never past the buffer. */
    lp_http_uri_for_log("/0123456789?a=0123456789", out, 8);
    assert_string_equal(out, "/012345");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_equal), cmocka_unit_test(bearer), cmocka_unit_test(addr_parse),
        cmocka_unit_test(hosts), cmocka_unit_test(origin), cmocka_unit_test(uri_for_log),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
