/* test_target.c: the client library's parts that need no socket: TARGET
 * kinds and resolution (src/client/target.c), ssh:// parsing
 * (src/client/ssh.c), and the discovery records' reading side
 * (src/net/discovery.c), over a temporary runtime directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/ssh.h"
#include "client/target.h"
#include "net/discovery.h"

static void kinds(void **state)
{
    assert_int_equal(lp_target_kind(NULL), LP_TARGET_ONLY);
    assert_int_equal(lp_target_kind("ssh://host/app"), LP_TARGET_SSH);
    assert_int_equal(lp_target_kind("/run/user/1/limpet/1.sock"), LP_TARGET_PATH);
    assert_int_equal(lp_target_kind("./app.sock"), LP_TARGET_PATH);
    assert_int_equal(lp_target_kind("app"), LP_TARGET_NAME);
    assert_int_equal(lp_target_kind("1234"), LP_TARGET_NAME);
    assert_int_equal(lp_target_kind("127.0.0.1:8000"), LP_TARGET_NAME);
    assert_int_equal(lp_target_kind("[::1]:8000"), LP_TARGET_NAME);
    assert_int_equal(lp_target_kind("odd/path:with-colon"), LP_TARGET_NAME);
}

static void ssh_urls(void **state)
{
    static const struct {
        const char *url, *user, *host, *port, *target, *why; /* why NULL: valid */
    } cases[] = {
        {"ssh://host", "", "host", "", "", NULL},
        {"ssh://me@host:2222/app", "me", "host", "2222", "app", NULL},
        {"ssh://[::1]:22/1234", "", "::1", "22", "1234", NULL},
        {"ssh://host/a/b.sock", "", "host", "", "a/b.sock", NULL},
        {"ssh://", NULL, NULL, NULL, NULL, "no host"},
        {"ssh://@host", NULL, NULL, NULL, NULL, "no host"},
        {"ssh://-oProxyCommand=x", NULL, NULL, NULL, NULL, "no host"},
        {"ssh://host:0", NULL, NULL, NULL, NULL, "the port is not a number from 1 to 65535"},
        {"ssh://host:65536", NULL, NULL, NULL, NULL, "the port is not a number from 1 to 65535"},
        {"ssh://host:2x", NULL, NULL, NULL, NULL, "the port is not a number from 1 to 65535"},
        {"ssh://[::1", NULL, NULL, NULL, NULL, "no ']' after an IPv6 address"},
        {"ssh://[::1]x", NULL, NULL, NULL, NULL, "junk after ']'"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lp_ssh_url_t u;
        const char *why = "unset";
        int r = lp_ssh_parse(cases[i].url, &u, &why);

        assert_true(lp_ssh_is_url(cases[i].url));
        if (cases[i].why != NULL) {
            assert_int_equal(r, -EINVAL);
            assert_string_equal(why, cases[i].why);
            continue;
        }
        assert_int_equal(r, 0);
        assert_null(why);
        assert_string_equal(u.user, cases[i].user);
        assert_string_equal(u.host, cases[i].host);
        assert_string_equal(u.port, cases[i].port);
        assert_string_equal(u.target, cases[i].target);
    }
    assert_false(lp_ssh_is_url(NULL));
    assert_false(lp_ssh_is_url("ssh:/host"));
}

/* A temporary runtime directory. */
struct rundir {
    char path[64]; /* its name */
};

static int make_dir(void **state)
{
    struct rundir *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return -1;
    snprintf(d->path, sizeof(d->path), "/tmp/limpet-test-target-XXXXXX");
    *state = d;
    return mkdtemp(d->path) != NULL ? 0 : -1;
}

static int remove_dir(void **state)
{
    struct rundir *d = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
    free(d);
    return system(cmd) == 0 ? 0 : -1;
}

static long long now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Writes a record for pid, started at started_ms, with a token if given. */
static void put_record(const struct rundir *d, pid_t pid, const char *name, long long started_ms,
                       const char *token)
{
    char address[128];
    json_t *rec;

    snprintf(address, sizeof(address), "%s/%ld.sock", d->path, (long)pid);
    rec = json_pack("{s:I,s:s,s:[s],s:s,s:I}", "pid", (json_int_t)pid, "name", name, "argv",
                    "python3", "address", address, "started", (json_int_t)started_ms);
    assert_int_equal(lp_discovery_write(d->path, pid, rec), 0);
    json_decref(rec);
    if (token != NULL)
        assert_int_equal(lp_discovery_write_text(d->path, pid, "token", token), 0);
}

/* The pid of a process that has just exited. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();

    if (pid == 0)
        _exit(0);
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static bool exists(const struct rundir *d, pid_t pid, const char *ext)
{
    char path[256];

    assert_int_equal(lp_discovery_path(path, sizeof(path), d->path, pid, ext), 0);
    return access(path, F_OK) == 0;
}

static void records_live_and_stale(void **state)
{
    struct rundir *d = *state;
    pid_t me = getpid(), parent = getppid(), gone = dead_pid();
    char path[256];
    FILE *f;
    json_t *recs;

    put_record(d, me, "app", now_ms(), "s3cret");
    put_record(d, parent, "older", now_ms() - 1000, NULL);
    put_record(d, gone, "ghost", now_ms(), "t");
    snprintf(path, sizeof(path), "%s/%ld.sock", d->path, (long)gone);
    assert_non_null(f = fopen(path, "w"));
    fclose(f);
    snprintf(path, sizeof(path), "%s/notes.json", d->path); /* not a record: left alone */
    assert_non_null(f = fopen(path, "w"));
    fputs("[1, 2]\n", f);
    fclose(f);

    assert_non_null(recs = lp_discovery_list(d->path));
    assert_int_equal(json_array_size(recs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 0), "name")),
                        "older"); /* oldest first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 1), "name")),
                        "app");
    json_decref(recs);
    assert_false(exists(d, gone, "json"));
    assert_false(exists(d, gone, "token"));
    assert_false(exists(d, gone, "sock"));
    assert_int_equal(access(path, F_OK), 0);
    assert_true(exists(d, me, "json"));

    /* a pid that a younger process took: the record said it started earlier */
    put_record(d, me, "app", now_ms() - 3600 * 1000, NULL);
    assert_non_null(recs = lp_discovery_list(d->path));
    assert_int_equal(json_array_size(recs), 1);
    json_decref(recs);
    assert_false(exists(d, me, "json"));
    assert_false(exists(d, me, "token"));

    lp_discovery_remove(d->path, parent);
    assert_non_null(recs = lp_discovery_list("/nonexistent/limpet"));
    assert_int_equal(json_array_size(recs), 0);
    json_decref(recs);
}

static void resolve(void **state)
{
    struct rundir *d = *state;
    pid_t me = getpid(), parent = getppid();
    char pid[32], address[128];
    lp_target_t t;

    snprintf(pid, sizeof(pid), "%ld", (long)me);
    snprintf(address, sizeof(address), "%s/%ld.sock", d->path, (long)me);

    assert_int_equal(lp_target_resolve(&t, NULL, d->path), -ENOENT);
    assert_string_equal(t.message, "no server is running for this user");
    assert_int_equal(lp_target_resolve(&t, "app", d->path), -ENOENT);
    assert_string_equal(t.message, "no server named 'app' (see 'limpet list')");

    put_record(d, me, "app", now_ms(), "s3cret");
    assert_int_equal(lp_target_resolve(&t, NULL, d->path), 0);
    assert_string_equal(t.address, address);
    assert_string_equal(t.token, "s3cret");
    assert_int_equal(lp_target_resolve(&t, "app", d->path), 0);
    assert_string_equal(t.address, address);
    assert_int_equal(lp_target_resolve(&t, pid, d->path), 0);
    assert_string_equal(t.token, "s3cret");
    assert_int_equal(lp_target_resolve(&t, address, d->path), 0); /* a path: no records read */
    assert_string_equal(t.token, "");
    assert_int_equal(lp_target_resolve(&t, "127.0.0.1:9", d->path), 0);
    assert_string_equal(t.address, "127.0.0.1:9");
    assert_int_equal(lp_target_resolve(&t, "ssh://h/app", d->path), 0);
    assert_string_equal(t.address, "ssh://h/app");

    put_record(d, parent, "app", now_ms() - 1000, NULL);
    assert_int_equal(lp_target_resolve(&t, NULL, d->path), -ENOTUNIQ);
    assert_string_equal(t.message, "2 servers are running; choose one by pid or name:");
    assert_int_equal(json_array_size(t.matches), 2);
    lp_target_clear(&t);
    assert_int_equal(lp_target_resolve(&t, "app", d->path), -ENOTUNIQ);
    assert_string_equal(t.message, "2 servers match 'app'; choose one by pid or name:");
    lp_target_clear(&t);
    assert_int_equal(lp_target_resolve(&t, pid, d->path), 0); /* a pid is unique */
    assert_string_equal(t.address, address);
    assert_null(t.matches);
}

static void resolve_too_long(void **state)
{
    char *longpath = malloc(LP_TARGET_ADDRESS_MAX + 2);
    lp_target_t t;

    memset(longpath, 'a', LP_TARGET_ADDRESS_MAX + 1);
    longpath[0] = '/';
    longpath[LP_TARGET_ADDRESS_MAX + 1] = 0;
    assert_int_equal(lp_target_resolve(&t, longpath, "/nonexistent"), -ENAMETOOLONG);
    assert_non_null(strstr(t.message, "too long"));
    free(longpath);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kinds),
        cmocka_unit_test(ssh_urls),
        cmocka_unit_test_setup_teardown(records_live_and_stale, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(resolve, make_dir, remove_dir),
        cmocka_unit_test(resolve_too_long),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
