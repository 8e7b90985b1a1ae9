/* test_server_fake_engine.c: a real server (src/session) on a Unix socket in
 * a temporary directory, with an engine written here in C instead of
 * Python: its eval writes the code back as output, then gives it back as
 * the value. A plain client socket does the handshake with the codec
 * (wire/handshake.h), then clone, eval and close, and checks every frame:
 * sessions and the transport, without Python. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "io/io.h"
#include "session/server.h"
#include "wire/handshake.h"

static const lp_limits_t lim = LP_LIMITS_DEFAULT;

#define TRACEBACK "Traceback (most recent call last):\nValueError: nope\n" /* of "raise" */

/* --- the fake engine ------------------------------------------------------ */

/* What the engine saw: the test checks the server called it as documented. */
struct fake {
    atomic_int threads;  /* thread_enter less thread_exit */
    atomic_int sessions; /* session_open less session_close */
    atomic_int evals;    /* eval calls */
};

static int fake_thread_enter(void *ctx, void **tls)
{
    struct fake *f = ctx;

    atomic_fetch_add(&f->threads, 1);
    *tls = f; /* anything not NULL */
    return 0;
}

static void fake_thread_exit(void *ctx, void *tls)
{
    struct fake *f = ctx;

    (void)tls;
    atomic_fetch_sub(&f->threads, 1);
}

static int fake_session_open(void *ctx, void *tls, lp_session_t *s, void *env, void **data)
{
    struct fake *f = ctx;

    (void)tls;
    (void)s;
    if ((*data = malloc(16)) == NULL) /* valgrind sees it freed by session_close */
        return -1;
    atomic_fetch_add(&f->sessions, 1);
    return 0;
}

static void fake_session_close(void *ctx, void *tls, void *data)
{
    struct fake *f = ctx;

    (void)tls;
    free(data);
    atomic_fetch_sub(&f->sessions, 1);
}

/* Writes data to stdout of s the way the CPython engine does. */
static void fake_print(lp_session_t *s, const char *data, size_t len)
{
    int r = lp_session_write(s, LP_STDOUT, data, len);

    if (r == 1)
        lp_session_flush(s);
    else if (r == 2)
        lp_session_send(s, LP_STDOUT, data, len);
}

/* "raise": an exception; "exit": the code closes its session; anything
 * else: the code as output, then as a str value. */
static int fake_eval(void *ctx, void *tls, lp_session_t *s, void *data, const lp_eval_req_t *req)
{
    struct fake *f = ctx;

    (void)tls;
    (void)data;
    atomic_fetch_add(&f->evals, 1);
    if (strcmp(req->code, "raise") == 0) {
        if (lp_session_exception(s, "ValueError", "nope", TRACEBACK, strlen(TRACEBACK)) == 1)
            lp_session_flush(s);
        return LP_EVAL_EXCEPTION;
    }
    if (strcmp(req->code, "raise-long") == 0) {
        /* a message of 2000 three-byte characters: cut within 4 KiB, between characters */
        char *m = malloc(6001);

        for (int i = 0; m != NULL && i < 2000; i++)
            memcpy(m + 3 * i, "\xe2\x82\xac", 3);
        if (m != NULL) {
            m[6000] = 0;
            if (lp_session_exception(s, "ValueError", m, TRACEBACK, strlen(TRACEBACK)) == 1)
                lp_session_flush(s);
        }
        free(m);
        return LP_EVAL_EXCEPTION;
    }
    if (strcmp(req->code, "exit") == 0)
        return LP_EVAL_CLOSED;
    fake_print(s, req->code, req->len);
    if (lp_session_value(s, "str", req->code, req->len) == 1)
        lp_session_flush(s);
    return LP_EVAL_OK;
}

static void fake_reset(void *ctx, void *tls, void *data)
{
    (void)ctx;
    (void)tls;
    (void)data;
}

static void fake_interrupt(void *ctx, void *tls, void *target_tls, void *data)
{
    (void)ctx;
    (void)tls;
    (void)target_tls;
    (void)data;
}

static json_t *fake_complete(void *ctx, void *tls, void *data, const char *text, size_t len,
                             size_t cursor, size_t *start)
{
    (void)ctx;
    (void)tls;
    (void)data;
    (void)text;
    (void)len;
    *start = cursor;
    return json_pack("[s]", "echo");
}

static int64_t fake_detach(void *ctx, void *tls, void *target_tls, void *data)
{
    (void)ctx;
    (void)tls;
    (void)target_tls;
    (void)data;
    return -1;
}

/* --- the fixture: a server in a temporary directory, a client on it ------ */

struct world {
    char dir[64];        /* the temporary directory: the socket and the runtime dir */
    char path[128];      /* the socket */
    char *old_xdg;       /* XDG_RUNTIME_DIR before the test (malloc'd), or NULL */
    struct fake fake;    /* the engine's counters */
    lp_server_t *srv;    /* running */
    json_t *identity;    /* the hello reply's "server" */
    int fd;              /* the client's socket */
    lp_reader_t r;       /* reads it */
};

static int setup(void **state)
{
    struct world *w = calloc(1, sizeof(*w));
    lp_engine_t engine = {
        .thread_enter = fake_thread_enter, .thread_exit = fake_thread_exit,
        .session_open = fake_session_open, .session_close = fake_session_close,
        .eval = fake_eval, .reset = fake_reset, .interrupt = fake_interrupt,
        .complete = fake_complete, .detach = fake_detach,
    };
    lp_server_config_t cfg = {0};
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (w == NULL)
        return -1;
    snprintf(w->dir, sizeof(w->dir), "/tmp/limpet-test-XXXXXX");
    if (mkdtemp(w->dir) == NULL)
        return -1;
    snprintf(w->path, sizeof(w->path), "%s/s.sock", w->dir);
    /* the discovery record goes to <dir>/limpet, not to the user's */
    w->old_xdg = xdg != NULL ? strdup(xdg) : NULL;
    setenv("XDG_RUNTIME_DIR", w->dir, 1);
    engine.ctx = &w->fake;
    w->identity = json_pack("{s:s,s:i}", "name", "fake", "pid", (int)getpid());
    cfg.path = w->path;
    cfg.identity = w->identity;
    if (lp_server_start(&cfg, &engine, &w->srv) != 0)
        return -1;
    if (strcmp(lp_server_address(w->srv), w->path) != 0)
        return -1;
    memcpy(sa.sun_path, w->path, strlen(w->path) + 1);
    if ((w->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(w->fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    w->r = (lp_reader_t){.fd = w->fd, .in = lp_buf_new(1u << 24)};
    *state = w;
    return w->r.in != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    struct world *w = *state;
    char rec[160];

    if (w->srv != NULL)
        lp_server_stop(w->srv, 5000);
    close(w->fd);
    lp_buf_free(w->r.in);
    json_decref(w->identity);
    snprintf(rec, sizeof(rec), "%s/limpet", w->dir);
    rmdir(rec);
    rmdir(w->dir);
    if (w->old_xdg != NULL)
        setenv("XDG_RUNTIME_DIR", w->old_xdg, 1);
    else
        unsetenv("XDG_RUNTIME_DIR");
    free(w->old_xdg);
    free(w);
    return 0;
}

static void send_all(struct world *w, const void *data, size_t len)
{
    assert_int_equal(write(w->fd, data, len), (ssize_t)len);
}

/* Sends the request frame of header h (consumed) and payload. */
static void request(struct world *w, json_t *h, const char *payload)
{
    lp_buf_t *b = lp_buf_new(SIZE_MAX);

    assert_non_null(h);
    assert_int_equal(lp_frame_encode(b, h, payload, payload ? strlen(payload) : 0, &lim), 0);
    send_all(w, lp_buf_data(b), lp_buf_len(b));
    json_decref(h);
    lp_buf_free(b);
}

/* The next frame from the server, within 5 s. */
static void next(struct world *w, lp_frame_t *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(lp_reader_next(&w->r, &lim, f, 5000), 0);
}

static const char *str(const lp_frame_t *f, const char *key)
{
    return json_string_value(json_object_get(f->header, key));
}

static int64_t num(const lp_frame_t *f, const char *key)
{
    const json_t *v = json_object_get(f->header, key);

    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* The next frame must be op for request re, with payload. */
static void expect(struct world *w, const char *op, int64_t re, const char *payload,
                   lp_frame_t *f)
{
    next(w, f);
    assert_string_equal(str(f, "op"), op);
    assert_int_equal(num(f, "re"), re);
    assert_int_equal(f->payload_len, strlen(payload));
    if (f->payload_len > 0)
        assert_memory_equal(f->payload, payload, f->payload_len);
}

/* The next frame must be done for re, with status. */
static void expect_done(struct world *w, int64_t re, const char *status)
{
    lp_frame_t f;

    expect(w, "done", re, "", &f);
    assert_string_equal(str(&f, "status"), status);
    lp_frame_clear(&f);
}

/* Says hello (asking for a first session when want_session) and reads the
 * welcome: the first session's id goes to sid ("" when none). */
static void handshake(struct world *w, bool want_session, char *sid, size_t size)
{
    lp_buf_t *out = lp_buf_new(SIZE_MAX);
    lp_hs_t hs = {0};
    lp_welcome_t wel = {0};
    int r;

    assert_int_equal(lp_hs_client_hello(out, "test_server_fake_engine", 0, NULL, want_session, 0),
                     0);
    send_all(w, lp_buf_data(out), lp_buf_len(out));
    lp_buf_free(out);
    while ((r = lp_hs_client_read(&hs, w->r.in, &wel)) == LP_WIRE_EAGAIN)
        assert_int_equal(lp_reader_fill(&w->r, 5000), 0);
    assert_int_equal(r, 0);
    assert_int_equal(wel.version, 1);
    assert_true(json_equal(wel.server, w->identity));
    assert_int_equal(hs.skipped, 0); /* no text before a framed reply */
    snprintf(sid, size, "%s", wel.session);
    lp_welcome_clear(&wel);
}

static json_t *eval_req(int64_t id, const char *sid)
{
    return json_pack("{s:s,s:I,s:s}", "op", "eval", "id", (json_int_t)id, "session", sid);
}

/* Evaluates code in sid as request id: its output, its value, done ok. */
static void eval_echo(struct world *w, int64_t id, const char *sid, const char *code)
{
    lp_frame_t f;

    request(w, eval_req(id, sid), code);
    expect(w, "out", id, code, &f);
    assert_string_equal(str(&f, "session"), sid);
    assert_string_equal(str(&f, "stream"), "stdout");
    lp_frame_clear(&f);
    expect(w, "value", id, code, &f);
    assert_string_equal(str(&f, "session"), sid);
    assert_string_equal(str(&f, "type"), "str");
    lp_frame_clear(&f);
    expect_done(w, id, "ok");
}

/* --- tests ---------------------------------------------------------------- */

static void hello_opens_a_first_session(void **state)
{
    struct world *w = *state;
    char sid[LP_WIRE_SESSION_ID_MAX + 1];

    handshake(w, true, sid, sizeof(sid));
    assert_true(sid[0] != 0);
    eval_echo(w, 1, sid, "1+1");
    assert_int_equal(atomic_load(&w->fake.sessions), 1);
    assert_int_equal(atomic_load(&w->fake.evals), 1);
}

static void clone_eval_close(void **state)
{
    struct world *w = *state;
    char first[LP_WIRE_SESSION_ID_MAX + 1], sid[LP_WIRE_SESSION_ID_MAX + 1];
    lp_frame_t f;

    handshake(w, false, first, sizeof(first));
    assert_string_equal(first, "");
    request(w, json_pack("{s:s,s:i}", "op", "clone", "id", 1), NULL);
    expect(w, "done", 1, "", &f);
    assert_string_equal(str(&f, "status"), "ok");
    snprintf(sid, sizeof(sid), "%s", str(&f, "session"));
    lp_frame_clear(&f);
    assert_true(sid[0] != 0);
    assert_int_equal(atomic_load(&w->fake.sessions), 1);
    eval_echo(w, 2, sid, "print('hello')");
    eval_echo(w, 3, sid, "x = \"\xc3\xa9\"\n"); /* UTF-8, a newline: bytes as they are */
    /* an exception: its traceback, then done "exception" */
    request(w, eval_req(4, sid), "raise");
    expect(w, "exception", 4, TRACEBACK, &f);
    assert_string_equal(str(&f, "type"), "ValueError");
    assert_string_equal(str(&f, "message"), "nope");
    assert_string_equal(str(&f, "session"), sid);
    lp_frame_clear(&f);
    expect_done(w, 4, "exception");
    request(w, eval_req(40, sid), "raise-long");
    expect(w, "exception", 40, TRACEBACK, &f);
    assert_int_equal(strlen(str(&f, "message")), 4095); /* 1365 whole characters */
    assert_int_equal(lp_utf8_check_text((const uint8_t *)str(&f, "message"), 4095), 0);
    lp_frame_clear(&f);
    expect_done(w, 40, "exception");
    /* close: the engine's session_close runs, the id is no more */
    request(w, json_pack("{s:s,s:i,s:s}", "op", "close", "id", 5, "session", sid), NULL);
    expect_done(w, 5, "ok");
    assert_int_equal(atomic_load(&w->fake.sessions), 0);
    request(w, eval_req(6, sid), "1");
    expect(w, "error", 6, "", &f);
    assert_string_equal(str(&f, "code"), "no-session");
    lp_frame_clear(&f);
    assert_int_equal(atomic_load(&w->fake.evals), 4); /* the last one never ran */
}

static void sessions_are_separate(void **state)
{
    struct world *w = *state;
    char a[LP_WIRE_SESSION_ID_MAX + 1], b[LP_WIRE_SESSION_ID_MAX + 1];
    lp_frame_t f;

    handshake(w, true, a, sizeof(a));
    request(w, json_pack("{s:s,s:i}", "op", "clone", "id", 1), NULL);
    expect(w, "done", 1, "", &f);
    snprintf(b, sizeof(b), "%s", str(&f, "session"));
    lp_frame_clear(&f);
    assert_string_not_equal(a, b);
    assert_int_equal(atomic_load(&w->fake.sessions), 2);
    eval_echo(w, 2, a, "in a");
    eval_echo(w, 3, b, "in b");
    /* the code closes its own session: done "closed", the other lives on */
    request(w, eval_req(4, a), "exit");
    expect_done(w, 4, "closed");
    request(w, eval_req(5, a), "1"); /* served after the close, which follows the done */
    expect(w, "error", 5, "", &f);
    assert_string_equal(str(&f, "code"), "no-session");
    lp_frame_clear(&f);
    assert_int_equal(atomic_load(&w->fake.sessions), 1);
    eval_echo(w, 6, b, "still here");
}

/* Output larger than a chunk comes as out frames of at most LP_WIRE_CHUNK,
 * in order, before the value. */
static void large_output_in_chunks(void **state)
{
    struct world *w = *state;
    size_t n = 3 * LP_WIRE_CHUNK + 123, got = 0;
    char sid[LP_WIRE_SESSION_ID_MAX + 1], *code = malloc(n + 1);
    lp_frame_t f;

    for (size_t i = 0; i < n; i++)
        code[i] = (char)('a' + i % 26);
    code[n] = 0;
    handshake(w, true, sid, sizeof(sid));
    request(w, eval_req(1, sid), code);
    while (got < n) {
        next(w, &f);
        assert_string_equal(str(&f, "op"), "out");
        assert_int_equal(num(&f, "re"), 1);
        assert_true(f.payload_len <= LP_WIRE_CHUNK);
        assert_true(f.payload_len <= n - got);
        assert_memory_equal(f.payload, code + got, f.payload_len);
        got += f.payload_len;
        lp_frame_clear(&f);
    }
    expect(w, "value", 1, code, &f);
    lp_frame_clear(&f);
    expect_done(w, 1, "ok");
    free(code);
}

static void ping_and_bad_requests(void **state)
{
    struct world *w = *state;
    char sid[LP_WIRE_SESSION_ID_MAX + 1];
    lp_frame_t f;

    handshake(w, true, sid, sizeof(sid));
    request(w, json_pack("{s:s,s:i}", "op", "ping", "id", 1), "echo me");
    expect(w, "done", 1, "echo me", &f);
    lp_frame_clear(&f);
    request(w, json_pack("{s:s,s:i}", "op", "no-such-op", "id", 2), NULL);
    next(w, &f);
    assert_string_equal(str(&f, "op"), "error");
    assert_int_equal(num(&f, "re"), 2);
    lp_frame_clear(&f);
    request(w, eval_req(3, "no-such-session"), "1");
    expect(w, "error", 3, "", &f);
    assert_string_equal(str(&f, "code"), "no-session");
    lp_frame_clear(&f);
    /* the connection is still served */
    eval_echo(w, 4, sid, "after");
}

/* Stopping says bye to the client, closes it, and closes its sessions. */
static void stop_says_bye(void **state)
{
    struct world *w = *state;
    char sid[LP_WIRE_SESSION_ID_MAX + 1];
    lp_frame_t f;
    struct stat st;

    handshake(w, true, sid, sizeof(sid));
    eval_echo(w, 1, sid, "x");
    assert_int_equal(lp_server_stop(w->srv, 5000), 0);
    w->srv = NULL;
    next(w, &f);
    assert_string_equal(str(&f, "op"), "bye");
    assert_string_equal(str(&f, "code"), "shutdown");
    lp_frame_clear(&f);
    assert_int_equal(lp_reader_next(&w->r, &lim, &f, 5000), -ECONNRESET);
    assert_int_equal(atomic_load(&w->fake.sessions), 0);
    assert_int_equal(atomic_load(&w->fake.threads), 0);
    assert_int_equal(stat(w->path, &st), -1); /* the socket file is gone */
}

/* Reads plain text until it ends with want (5 s at most); the bytes read
 * stay in w->r.in. */
static void read_text_until(struct world *w, const char *want)
{
    size_t n = strlen(want);

    while (lp_buf_len(w->r.in) < n ||
           memcmp(lp_buf_data(w->r.in) + lp_buf_len(w->r.in) - n, want, n) != 0)
        assert_int_equal(lp_reader_fill(&w->r, 5000), 0);
}

/* A peer that sends a line, not the preamble, gets plain text: a banner
 * line, a prompt, and the session's events through the text sink. */
static void plain_text_mode(void **state)
{
    struct world *w = *state;
    const uint8_t *p, *nl;
    lp_frame_t f;

    w->r.raw = true;
    send_all(w, "1+1\n", 4);
    read_text_until(w, "1+11+1\n>>> ");
    p = lp_buf_data(w->r.in);
    assert_memory_equal(p, "limpet ", 7);
    nl = memchr(p, '\n', lp_buf_len(w->r.in));
    assert_non_null(nl);
    assert_non_null(memmem(p, (size_t)(nl - p), "(fake)", 6)); /* the identity's name */
    /* after the banner, exactly: the prompt, the output, the value, the prompt */
    assert_int_equal(lp_buf_len(w->r.in) - (size_t)(nl + 1 - p), 15);
    assert_memory_equal(nl + 1, ">>> 1+11+1\n>>> ", 15);
    lp_buf_reset(w->r.in);
    /* an exception: its traceback and a prompt */
    send_all(w, "raise\n", 6);
    read_text_until(w, ">>> ");
    assert_int_equal(lp_buf_len(w->r.in), strlen(TRACEBACK ">>> "));
    assert_memory_equal(lp_buf_data(w->r.in), TRACEBACK ">>> ", strlen(TRACEBACK ">>> "));
    lp_buf_reset(w->r.in);
    /* the code closes the session: no prompt, and the connection ends */
    send_all(w, "exit\n", 5);
    assert_int_equal(lp_reader_next(&w->r, &lim, &f, 5000), -ECONNRESET);
    assert_int_equal(lp_buf_len(w->r.in), 0);
    assert_int_equal(atomic_load(&w->fake.evals), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hello_opens_a_first_session, setup, teardown),
        cmocka_unit_test_setup_teardown(clone_eval_close, setup, teardown),
        cmocka_unit_test_setup_teardown(sessions_are_separate, setup, teardown),
        cmocka_unit_test_setup_teardown(large_output_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(ping_and_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_says_bye, setup, teardown),
        cmocka_unit_test_setup_teardown(plain_text_mode, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
