/* test_session.c: sessions with no socket: a fake port (lp_port_t) takes
 * the bytes, so what a session queues, when it sends, and what it refuses
 * are checked directly (issue 10: sessions independent of sockets). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "session/internal.h"
#include "session/sink.h"
#include "wire/ops.h"

/* A port that keeps what it is sent. */
struct fake_port {
    lp_port_t port;   /* first: the session sees only this */
    lp_buf_t *got;    /* every byte sent */
    int sends;        /* how many send calls */
    bool congested;   /* what congested() says */
    int pokes;        /* input() asked */
};

static int fake_send(lp_port_t *p, const void *data, size_t len)
{
    struct fake_port *f = (struct fake_port *)p;

    f->sends++;
    return lp_buf_put(f->got, data, len);
}

static bool fake_congested(lp_port_t *p) { return ((struct fake_port *)p)->congested; }
static void fake_poke(lp_port_t *p) { ((struct fake_port *)p)->pokes++; }

static int engine_closed;
static void fake_session_close(void *ctx, void *tls, void *data)
{
    engine_closed++;
    free(data);
}

struct fixture {
    lp_server_t srv;
    lp_env_t env;
    struct fake_port port;
    lp_session_t *s;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    pthread_mutex_init(&fx->srv.mu, NULL);
    pthread_cond_init(&fx->srv.cv, NULL);
    fx->srv.max_sessions = 4;
    fx->srv.engine.session_close = fake_session_close;
    strcpy(fx->env.name, "main");
    fx->env.sessions = 1;
    fx->port.port = (lp_port_t){fake_send, fake_congested, fake_poke, LP_CAP_PAGE,
                                LP_LIMITS_DEFAULT};
    fx->port.got = lp_buf_new(SIZE_MAX);
    assert_int_equal(lp_session_new(&fx->srv, &fx->env, &lp_sink_frames, &fx->port.port, &fx->s),
                     0);
    fx->s->data = malloc(1);
    engine_closed = 0;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    if (fx->s != NULL)
        lp_session_close(fx->s, NULL);
    while (fx->srv.flush_list != NULL) { /* the flusher's references: no flusher runs here */
        lp_session_t *s = fx->srv.flush_list;

        fx->srv.flush_list = s->flush_next;
        lp_session_unref(s);
    }
    lp_buf_free(fx->port.got);
    pthread_mutex_destroy(&fx->srv.mu);
    pthread_cond_destroy(&fx->srv.cv);
    free(fx);
    return 0;
}

/* Decodes every frame the port got; returns how many, ops in ops[]. */
static int frames(struct fixture *fx, const char **ops, json_t **heads, int max)
{
    const lp_limits_t lim = {LP_WIRE_HEADER_MAX, LP_WIRE_PAYLOAD_CEILING};
    int n = 0;

    while (lp_buf_len(fx->port.got) > 0 && n < max) {
        lp_frame_t f = {0};

        assert_int_equal(lp_frame_decode(fx->port.got, &lim, &f), 0);
        heads[n] = json_incref(f.header);
        ops[n] = json_string_value(json_object_get(f.header, "op"));
        n++;
        lp_frame_clear(&f);
    }
    return n;
}

static void clear(json_t **heads, int n)
{
    for (int i = 0; i < n; i++)
        json_decref(heads[i]);
}

static void an_eval_leaves_in_one_send(void **state)
{
    struct fixture *fx = *state;
    const char *ops[8];
    json_t *h[8];
    int n;

    assert_int_equal(lp_session_begin(fx->s, 7), 0);
    assert_true(lp_session_write(fx->s, LP_STDOUT, "hi", 2) >= 0);
    assert_int_equal(lp_session_value(fx->s, "int", "42", 2), 0);
    lp_session_end(fx->s);
    assert_int_equal(fx->port.sends, 0); /* nothing leaves before done */
    assert_int_equal(lp_session_reply_done(fx->s, 7, "ok", -1), 0);
    assert_int_equal(fx->port.sends, 1); /* output, value and done: one send */
    n = frames(fx, ops, h, 8);
    assert_int_equal(n, 3);
    assert_string_equal(ops[0], "out");
    assert_string_equal(ops[1], "value");
    assert_string_equal(ops[2], "done");
    assert_int_equal(json_integer_value(json_object_get(h[2], "re")), 7);
    clear(h, n);
}

static void a_busy_session_refuses_a_second_eval(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(lp_session_begin(fx->s, 1), 0);
    assert_int_equal(lp_session_begin(fx->s, 2), LP_WIRE_EBUSY);
    lp_session_end(fx->s);
    assert_int_equal(lp_session_begin(fx->s, 3), 0);
    lp_session_end(fx->s);
}

static void a_congested_port_keeps_the_queue(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(lp_session_begin(fx->s, 1), 0);
    assert_true(lp_session_write(fx->s, LP_STDOUT, "x", 1) >= 0);
    fx->port.congested = true;
    assert_int_equal(lp_session_try_flush(fx->s), LP_WIRE_EBUSY);
    assert_int_equal(fx->port.sends, 0);
    fx->port.congested = false;
    assert_int_equal(lp_session_try_flush(fx->s), 0);
    assert_int_equal(fx->port.sends, 1);
    lp_session_end(fx->s);
}

static void pages_follow_the_peers_caps_and_limits(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(lp_session_page(fx->s, "text", 4), 1); /* idle: printed, not paged */
    assert_int_equal(lp_session_begin(fx->s, 1), 0);
    assert_int_equal(lp_session_page(fx->s, "text", 4), 0);
    fx->port.port.caps = 0;
    assert_int_equal(lp_session_page(fx->s, "text", 4), 1);
    fx->port.port.caps = LP_CAP_PAGE;
    fx->port.port.limits.payload_max = 3;
    assert_int_equal(lp_session_page(fx->s, "text", 4), 1);
    lp_session_end(fx->s);
}

struct asker {
    lp_session_t *s;
    int r;
    uint8_t *data;
    size_t len;
};

static void *ask(void *arg)
{
    struct asker *a = arg;

    a->r = lp_session_input(a->s, "name? ", true, &a->data, &a->len);
    return NULL;
}

static void input_asks_through_the_port_and_takes_the_answer(void **state)
{
    struct fixture *fx = *state;
    struct asker a = {fx->s, -1, NULL, 0};
    pthread_t t;

    assert_int_equal(lp_session_begin(fx->s, 5), 0);
    assert_int_equal(pthread_create(&t, NULL, ask, &a), 0);
    while (lp_session_give_input(fx->s, (const uint8_t *)"ann\n", 4, false) != 0)
        ; /* until input() waits */
    pthread_join(t, NULL);
    assert_int_equal(a.r, 0);
    assert_int_equal(a.len, 4);
    assert_memory_equal(a.data, "ann\n", 4);
    free(a.data);
    assert_int_equal(fx->port.pokes, 1); /* typed-ahead answers are looked for */
    lp_session_end(fx->s);
}

static void closing_drops_output_and_frees_the_engine_state(void **state)
{
    struct fixture *fx = *state;

    lp_session_ref(fx->s); /* a job's thread still holds it */
    lp_session_close(fx->s, NULL);
    assert_int_equal(engine_closed, 1);
    assert_int_equal(fx->env.sessions, 0);
    assert_int_equal(lp_session_write(fx->s, LP_STDOUT, "late", 4), 0); /* dropped */
    assert_int_equal(lp_session_flush(fx->s), 0);
    assert_int_equal(fx->port.sends, 0);
    lp_session_unref(fx->s);
    fx->s = NULL;
}

static void the_session_limit_holds(void **state)
{
    struct fixture *fx = *state;
    lp_session_t *more[3];

    for (int i = 0; i < 3; i++)
        assert_int_equal(lp_session_new(&fx->srv, &fx->env, &lp_sink_text, &fx->port.port,
                                         &more[i]), 0);
    assert_int_equal(lp_session_new(&fx->srv, &fx->env, &lp_sink_text, &fx->port.port, &more[0]),
                     LP_WIRE_ETOOMANY);
    for (int i = 0; i < 3; i++) {
        fx->env.sessions++; /* lp_env_acquire's count, which close gives back */
        lp_session_close(more[i], NULL);
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(an_eval_leaves_in_one_send),
        T(a_busy_session_refuses_a_second_eval),
        T(a_congested_port_keeps_the_queue),
        T(pages_follow_the_peers_caps_and_limits),
        T(input_asks_through_the_port_and_takes_the_answer),
        T(closing_drops_output_and_frees_the_engine_state),
        T(the_session_limit_holds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
