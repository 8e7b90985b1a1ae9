/* test_launch.c: lp_context_launch against fake far sides (small Python and
 * shell scripts, real child processes): stage 1's line and a hello, a prompt
 * answered or refused, commands that fail in every way before the agent
 * starts, silence, garbage. Every failure must leave no child and no fd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "context/bootstrap.h"
#include "context/launch.h"
#include "io/io.h"
#include "wire/wire.h"

/* The far side: argv[1] the tag stage 1 says, argv[2] the mode. It says
 * in its hello which stage 2 it got, then echoes the caller's answer. */
static const char fake[] =
    "import os, sys, struct, json, time\n"
    "tag, mode = sys.argv[1], sys.argv[2]\n"
    "def rd(n):\n"
    "    b = b''\n"
    "    while len(b) < n:\n"
    "        c = os.read(0, n - len(b))\n"
    "        if not c: sys.exit(5)\n"
    "        b += c\n"
    "    return b\n"
    "def line():\n"
    "    b = b''\n"
    "    while not b.endswith(b'\\n'): b += rd(1)\n"
    "    return b\n"
    "if mode.startswith('prompt'):\n"
    "    os.write(2, b'[sudo] password for x: ')\n"
    "    if line() != b'hunter2\\n':\n"
    "        if mode == 'prompt-end':\n"
    "            os.write(2, b'su: Authentication failure\\n'); sys.exit(1)\n"
    "        os.write(2, b'Sorry, try again.\\n[sudo] password for x: '); time.sleep(10)\n"
    "os.write(1, ('limpet-stage1 %s\\n' % tag).encode())\n"
    "h = rd(9); body = rd(int(h[1:]))\n"
    "if mode == 'quit':\n"
    "    os.write(2, b'Traceback\\n  one\\n  two\\nboom\\n'); sys.exit(1)\n"
    "if mode == 'silent':\n"
    "    time.sleep(10)\n"
    "if mode == 'garbage':\n"
    "    os.write(1, b'\\xff' * 64); time.sleep(10)\n"
    "def frame(h):\n"
    "    return struct.pack('>II', len(h), 0) + h\n"
    "if mode == 'huge':\n"
    "    os.write(1, b'\\0limpet\\n' + struct.pack('>II', 1 << 30, 0)); time.sleep(10)\n"
    "if mode == 'badjson':\n"
    "    os.write(1, b'\\0limpet\\n' + frame(b'{\"op\":')); time.sleep(10)\n"
    "caps = ['log'] if mode == 'nocall' else ['call', 'log']\n"
    "hello = json.dumps({'op': 'hello', 'id': 7, 'caps': caps,\n"
    "                    'agent': {'kind': h[:1].decode(), 'len': len(body)}}).encode()\n"
    "os.write(1, b'\\0limpet\\n' + frame(hello) + frame(b'{\"op\":\"log\"}'))\n"
    "rd(8); n, _ = struct.unpack('>II', rd(8)); os.write(1, rd(n))\n"
    "os.read(0, 1)\n";

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

/* Launches the fake (or argv when given); password may be NULL. */
static int run(const char *tag, const char *mode, const char *const *argv, const char *password,
               bool compiled, int timeout_ms, lp_launched_t *out)
{
    const char *const py[] = {"python3", "-c", fake, tag, mode, NULL};
    lp_launch_t opt = {.argv = argv != NULL ? argv : py, .password = password,
                       .password_len = password != NULL ? strlen(password) : 0,
                       .compiled = compiled, .timeout_ms = timeout_ms, .log_level = 20};

    return lp_context_launch(&opt, out);
}

/* A failure: code, error text containing want, no child, no fd left. */
static void fails(int code, const char *want, const char *tag, const char *mode,
                  const char *const *argv, const char *password, int timeout_ms)
{
    lp_launched_t out;
    int fds = count_fds(), r = run(tag, mode, argv, password, true, timeout_ms, &out);

    if (strstr(out.error, want) == NULL || r != code)
        fail_msg("%s: got %d '%s', want %d '%s'", mode, r, out.error, code, want);
    assert_int_equal(out.pid, -1);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* reaped: no child at all */
    assert_int_equal(errno, ECHILD);
    assert_int_equal(count_fds(), fds);
    assert_null(out.agent);
}

static void ok(const char *tag, const char *password, bool compiled, char kind, size_t len)
{
    lp_launched_t out;
    char got[512] = {0};
    size_t n = 0;
    ssize_t k;

    assert_int_equal(run(tag, password != NULL ? "prompt" : "hello", NULL, password, compiled,
                         10000, &out), 0);
    assert_true(out.pid > 0);
    assert_int_equal(json_string_value(json_object_get(out.agent, "kind"))[0], kind);
    assert_int_equal(json_integer_value(json_object_get(out.agent, "len")), len);
    /* what came with the hello in one write is passed on, not lost */
    assert_int_equal(out.initial_len, 8 + 12);
    assert_memory_equal(out.initial + 8, "{\"op\":\"log\"}", 12);
    while (strchr(got, '}') == NULL && (k = read(out.rfd, got + n, sizeof(got) - 1 - n)) > 0)
        n += (size_t)k; /* the fake echoes our answer */
    assert_string_equal(got, "{\"op\":\"done\",\"re\":7,\"status\":\"ok\",\"protocol\":1,"
                             "\"log_level\":20}");
    close(out.wfd); /* its stdin ends: it leaves */
    out.wfd = -1;
    assert_int_equal(lp_context_reap(out.pid, 5000), 0);
    lp_launched_clear(&out);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

static void test_stage1_then_hello(void **state)
{
    ok("cpython-99 00000000", NULL, true, 's', lp_agent_blob_len); /* other bytecode */
}

static void test_compiled_only_for_our_bytecode_and_when_allowed(void **state)
{
    ok(lp_agent_code_tag, NULL, true, 'c', lp_agent_code_blob_len);
    ok(lp_agent_code_tag, NULL, false, 's', lp_agent_blob_len);
}

static void test_a_prompt_is_answered(void **state)
{
    ok("t", "hunter2", true, 's', lp_agent_blob_len);
}

static void test_password_problems(void **state)
{
    fails(-EACCES, "python3 asked for a password", "t", "prompt", NULL, NULL, 10000);
    fails(-EACCES, "python3 asked for a password again: the one given was refused", "t",
          "prompt", NULL, "wrong", 10000);
    fails(-EACCES, "python3 ended after the password was given: [sudo] password for x: "
          "su: Authentication failure", "t", "prompt-end", NULL, "wrong", 10000);
}

static void test_commands_that_fail_before_stage1(void **state)
{
    const char *const nothing[] = {"limpet-no-such-command", NULL};
    const char *const oops[] = {"sh", "-c", "echo one >&2; echo oops >&2; exit 3", NULL};
    const char *const quiet[] = {"sh", "-c", "exit 3", NULL};
    const char *const pieces[] = {"sh", "-c", "printf sudo >&2; sleep 0.02; printf ': ' >&2; "
                            "sleep 0.02; echo 'a password is required' >&2; exit 1", NULL};
    const char *const other[] = {"sh", "-c", "echo hello there; sleep 10", NULL};

    if (RUNNING_ON_VALGRIND) /* its posix_spawn cannot see exec fail: the child exits */
        fails(-ECONNABORTED, "did not start: limpet-no-such-command ended", NULL, NULL, nothing,
              NULL, 10000);
    else
        fails(-ENOEXEC, "did not start: limpet-no-such-command: No such file", NULL, NULL,
              nothing, NULL, 10000);
    fails(-ECONNABORTED, "did not start: sh ended: one\noops", NULL, NULL, oops, NULL, 10000);
    fails(-ECONNABORTED, "did not start: sh ended: exit status 3", NULL, NULL, quiet, NULL,
          10000);
    /* "sudo" ": " "a password is required": no prompt, though it paused at ": " */
    fails(-ECONNABORTED, "did not start: sh ended: sudo: a password is required", NULL, NULL,
          pieces, NULL, 10000);
    fails(-EPROTO, "did not start: sh is not limpet's stage 1: it said 'hello there", NULL, NULL,
          other, NULL, 10000);
}

static void test_silence_ends_at_the_deadline(void **state)
{
    const char *const silent[] = {"sleep", "10", NULL};
    uint64_t t = lp_clock_ms();

    fails(-ETIMEDOUT, "did not start: sleep did not start within 0 s", NULL, NULL, silent,
          NULL, 300);
    assert_true(lp_clock_ms() - t < 2000);
    t = lp_clock_ms();
    fails(-ETIMEDOUT, "did not start within 0 s", "t", "silent", NULL, NULL, 300);
    assert_true(lp_clock_ms() - t < 3000);
}

/* Its stdout ends while a child of its own keeps stderr: why is waited for
 * a bounded time, asleep (a stdout at its end is always readable). */
static void test_a_held_stderr_is_waited_for_not_spun_on(void **state)
{
    const char *const held[] = {"sh", "-c", "exec >&-; echo bye >&2; sleep 3 &", NULL};
    struct rusage before, after;
    uint64_t t = lp_clock_ms();

    getrusage(RUSAGE_SELF, &before);
    fails(-ECONNABORTED, "did not start: sh ended: bye", NULL, NULL, held, NULL, 10000);
    getrusage(RUSAGE_SELF, &after);
    assert_true(lp_clock_ms() - t < 2500);
    assert_true((after.ru_utime.tv_sec - before.ru_utime.tv_sec) * 1000000 +
                    (after.ru_utime.tv_usec - before.ru_utime.tv_usec) +
                    (after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1000000 +
                    (after.ru_stime.tv_usec - before.ru_stime.tv_usec) < 300000);
}

static void test_what_is_not_an_agent(void **state)
{
    fails(-ECONNRESET, "ended before its agent started:   one;   two; boom", "t", "quit", NULL,
          NULL, 10000);
    fails(LP_WIRE_EPREAMBLE, "is not a limpet agent", "t", "garbage", NULL, NULL, 10000);
    fails(LP_WIRE_EHANDSHAKE, "is not a limpet agent", "t", "huge", NULL, NULL, 10000);
    fails(LP_WIRE_EHANDSHAKE, "is not a limpet agent", "t", "badjson", NULL, NULL, 10000);
    fails(LP_WIRE_EHANDSHAKE, "did not say hello as an agent does", "t", "nocall", NULL, NULL,
          10000);
}

static int always(void *arg)
{
    (*(int *)arg)++;
    return 1;
}

static void test_an_interrupt_ends_the_wait(void **state)
{
    const char *const silent[] = {"sleep", "10", NULL};
    int asked = 0;
    lp_launch_t opt = {.argv = silent, .timeout_ms = 10000, .interrupted = always, .arg = &asked};
    lp_launched_t out;

    assert_int_equal(lp_context_launch(&opt, &out), LP_EINTERRUPTED);
    assert_int_equal(asked, 1);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

static void test_reap_kills_at_the_deadline(void **state)
{
    pid_t pid = fork();
    uint64_t t;
    int st;

    if (pid == 0) {
        pause();
        _exit(0);
    }
    t = lp_clock_ms();
    st = lp_context_reap(pid, 200);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    assert_true(lp_clock_ms() - t >= 150 && lp_clock_ms() - t < 2000);
    assert_int_equal(lp_context_reap(pid, 0), -ECHILD); /* once */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage1_then_hello),
        cmocka_unit_test(test_compiled_only_for_our_bytecode_and_when_allowed),
        cmocka_unit_test(test_a_prompt_is_answered),
        cmocka_unit_test(test_password_problems),
        cmocka_unit_test(test_commands_that_fail_before_stage1),
        cmocka_unit_test(test_silence_ends_at_the_deadline),
        cmocka_unit_test(test_a_held_stderr_is_waited_for_not_spun_on),
        cmocka_unit_test(test_what_is_not_an_agent),
        cmocka_unit_test(test_an_interrupt_ends_the_wait),
        cmocka_unit_test(test_reap_kills_at_the_deadline),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
