/* test_reader.c: the framed reader (src/io/reader.c), the clock and the
 * thread spawner, over a socketpair and over a pipe: every test runs on
 * both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/io.h"

static const lp_limits_t lim = LP_LIMITS_DEFAULT;

enum { SOCKETPAIR, PIPE };

/* One transport: we write on wr, the reader reads rd. */
struct pair {
    int rd, wr;        /* the two ends */
    lp_reader_t r;     /* over rd, with a 1 MiB buffer */
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    int fds[2];

    if (p == NULL)
        return -1;
    if (*(int *)*state == SOCKETPAIR) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
            return -1;
    } else if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    p->rd = fds[0];
    p->wr = fds[1];
    p->r = (lp_reader_t){.fd = p->rd, .in = lp_buf_new(1u << 20)};
    *state = p;
    return p->r.in != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    struct pair *p = *state;

    close(p->rd);
    if (p->wr >= 0)
        close(p->wr);
    lp_buf_free(p->r.in);
    free(p);
    return 0;
}

/* A frame {"op":op,"session":"s1","re":re} with the payload text. */
static lp_buf_t *frame(const char *op, int64_t re, const char *payload)
{
    lp_buf_t *b = lp_buf_new(SIZE_MAX);
    json_t *h = json_pack("{s:s,s:s,s:I}", "op", op, "session", "s1", "re", (json_int_t)re);

    assert_int_equal(lp_frame_encode(b, h, payload, strlen(payload), &lim), 0);
    json_decref(h);
    return b;
}

static void put(struct pair *p, const void *data, size_t len)
{
    assert_int_equal(write(p->wr, data, len), (ssize_t)len);
}

static void assert_frame(const lp_frame_t *f, const char *op, int64_t re, const char *payload)
{
    assert_string_equal(json_string_value(json_object_get(f->header, "op")), op);
    assert_int_equal(json_integer_value(json_object_get(f->header, "re")), re);
    assert_int_equal(f->payload_len, strlen(payload));
    assert_memory_equal(f->payload, payload, f->payload_len);
}

static void split_at_every_byte(void **state)
{
    struct pair *p = *state;
    lp_buf_t *b = frame("out", 7, "hello, world");
    size_t n = lp_buf_len(b);

    for (size_t k = 1; k < n; k++) {
        lp_frame_t f = {0};

        put(p, lp_buf_data(b), k);
        assert_int_equal(lp_reader_next(&p->r, &lim, &f, 0), -ETIMEDOUT);
        assert_int_equal(lp_buf_len(p->r.in), k); /* kept for the next call */
        put(p, lp_buf_data(b) + k, n - k);
        assert_int_equal(lp_reader_next(&p->r, &lim, &f, 1000), 0);
        assert_frame(&f, "out", 7, "hello, world");
        assert_int_equal(lp_buf_len(p->r.in), 0);
        lp_frame_clear(&f);
    }
    lp_buf_free(b);
}

static void two_frames_in_one_read(void **state)
{
    struct pair *p = *state;
    lp_buf_t *b = frame("out", 1, "a");
    lp_buf_t *c = frame("done", 1, "");
    lp_frame_t f = {0};

    assert_int_equal(lp_buf_put(b, lp_buf_data(c), lp_buf_len(c)), 0);
    put(p, lp_buf_data(b), lp_buf_len(b));
    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 1000), 0);
    assert_frame(&f, "out", 1, "a");
    assert_int_equal(lp_buf_len(p->r.in), lp_buf_len(c)); /* the second came with it */
    lp_frame_clear(&f);
    close(p->wr); /* the second needs no read: end of input changes nothing */
    p->wr = -1;
    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 0), 0);
    assert_frame(&f, "done", 1, "");
    lp_frame_clear(&f);
    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 0), -ECONNRESET);
    lp_buf_free(b);
    lp_buf_free(c);
}

static void eof_mid_frame(void **state)
{
    struct pair *p = *state;
    lp_buf_t *b = frame("out", 3, "cut short");
    lp_frame_t f = {0};

    put(p, lp_buf_data(b), lp_buf_len(b) - 2);
    close(p->wr);
    p->wr = -1;
    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 1000), -ECONNRESET);
    assert_null(f.header);
    lp_buf_free(b);
}

static void timeout_is_a_deadline(void **state)
{
    struct pair *p = *state;
    lp_frame_t f = {0};
    uint64_t t0 = lp_clock_ms();

    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 0), -ETIMEDOUT);
    assert_int_equal(lp_reader_fill(&p->r, 0), -ETIMEDOUT);
    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 60), -ETIMEDOUT);
    assert_true(lp_clock_ms() - t0 >= 50); /* the coarse clock ticks every few ms */
    assert_true(lp_clock_ms() - t0 < 1000);
}

/* A prefix announcing payload_len bytes after a 2-byte header. */
static void put_prefix(struct pair *p, uint32_t payload_len)
{
    lp_buf_t *b = lp_buf_new(64);

    assert_int_equal(lp_buf_put_u32(b, 2), 0);
    assert_int_equal(lp_buf_put_u32(b, payload_len), 0);
    assert_int_equal(lp_buf_put(b, "{}", 2), 0);
    put(p, lp_buf_data(b), lp_buf_len(b));
    lp_buf_free(b);
}

static void over_the_limit_refused_from_its_prefix(void **state)
{
    struct pair *p = *state;
    const lp_limits_t small = {LP_WIRE_HEADER_MAX, 1000};
    lp_frame_t f = {0};

    /* over the buffer's max: the fill refuses before reading the body */
    assert_int_equal(lp_buf_set_max(p->r.in, 4096), 0);
    put_prefix(p, 5000);
    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 1000), LP_WIRE_ELIMIT);
    assert_int_equal(lp_reader_fill(&p->r, 0), LP_WIRE_ELIMIT);
    assert_int_equal(lp_buf_len(p->r.in), 10); /* nothing consumed */
    /* over the decoder's limit: its own error, from the prefix too */
    assert_int_equal(lp_reader_next(&p->r, &small, &f, 1000), LP_WIRE_ETOOLARGE);
    assert_null(f.header);
}

static void large_frame_fills_its_need(void **state)
{
    struct pair *p = *state;
    size_t n = 3 * LP_IO_READ_CHUNK;
    char *payload = malloc(n + 1);
    lp_buf_t *b;
    int fills = 0;

    memset(payload, 'x', n);
    payload[n] = 0;
    b = frame("out", 9, payload);
    /* a writer thread would be needed past the pipe's capacity: the
     * prefix alone first, then the reader asks for the whole rest */
    put(p, lp_buf_data(b), LP_WIRE_PREFIX_LEN);
    assert_int_equal(lp_reader_fill(&p->r, 1000), 0);
    assert_int_equal(lp_buf_len(p->r.in), LP_WIRE_PREFIX_LEN);
    for (size_t off = LP_WIRE_PREFIX_LEN; off < lp_buf_len(b);) {
        size_t k = lp_buf_len(b) - off < 32768 ? lp_buf_len(b) - off : 32768;

        put(p, lp_buf_data(b) + off, k);
        off += k;
        while (lp_buf_len(p->r.in) < off) {
            assert_int_equal(lp_reader_fill(&p->r, 1000), 0);
            fills++;
        }
    }
    assert_true(fills >= 1);
    {
        lp_frame_t f = {0};

        assert_int_equal(lp_reader_next(&p->r, &lim, &f, 0), 0);
        assert_frame(&f, "out", 9, payload);
        lp_frame_clear(&f);
    }
    lp_buf_free(b);
    free(payload);
}

static volatile sig_atomic_t signals_seen;

static void on_signal(int sig)
{
    (void)sig;
    signals_seen++;
}

struct late_writer {
    pthread_t reader;  /* the thread to interrupt */
    struct pair *p;    /* where to write */
    lp_buf_t *frame;   /* what to write, after the signal */
};

static void *late_writer_main(void *arg)
{
    struct late_writer *w = arg;

    usleep(50 * 1000);
    pthread_kill(w->reader, SIGUSR1);
    usleep(50 * 1000);
    put(w->p, lp_buf_data(w->frame), lp_buf_len(w->frame));
    return NULL;
}

static void eintr_does_not_end_a_read(void **state)
{
    struct pair *p = *state;
    struct sigaction sa = {.sa_handler = on_signal}, old; /* no SA_RESTART */
    struct late_writer w = {.reader = pthread_self(), .p = p, .frame = frame("out", 5, "late")};
    lp_frame_t f = {0};
    pthread_t t;

    signals_seen = 0;
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    assert_int_equal(lp_thread_spawn(&t, late_writer_main, &w, 64 * 1024), 0);
    assert_int_equal(lp_reader_next(&p->r, &lim, &f, 5000), 0);
    assert_frame(&f, "out", 5, "late");
    assert_int_equal(signals_seen, 1);
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &old, NULL);
    lp_frame_clear(&f);
    lp_buf_free(w.frame);
}

static void peek_routes_without_consuming(void **state)
{
    struct pair *p = *state;
    lp_buf_t *b = frame("value", 12, "42");
    lp_frame_view_t v;
    lp_route_t rt;

    assert_int_equal(lp_buf_put(p->r.in, lp_buf_data(b), lp_buf_len(b) - 1), 0);
    assert_int_equal(lp_reader_peek(&p->r, &lim, &v, &rt), LP_WIRE_EAGAIN);
    put(p, lp_buf_data(b) + lp_buf_len(b) - 1, 1);
    assert_int_equal(lp_reader_fill(&p->r, 1000), 0);
    assert_int_equal(lp_reader_peek(&p->r, &lim, &v, &rt), 0);
    assert_string_equal(rt.op, "value");
    assert_string_equal(rt.session, "s1");
    assert_null(rt.to);
    assert_int_equal(rt.re, 12);
    assert_int_equal(v.payload_len, 2);
    assert_memory_equal(v.payload, "42", 2);
    assert_ptr_equal(v.payload, lp_buf_data(p->r.in) + lp_buf_len(b) - 2); /* in place */
    lp_reader_drop(&p->r, &v);
    assert_null(v.header);
    assert_int_equal(lp_buf_len(p->r.in), 0);
    lp_buf_free(b);
}

static void *returns_arg(void *arg)
{
    return arg;
}

static void thread_and_clock(void **state)
{
    pthread_t t;
    void *out = NULL;
    int x = 0;

    assert_int_equal(lp_thread_spawn(&t, returns_arg, &x, 0), 0);
    assert_int_equal(pthread_join(t, &out), 0);
    assert_ptr_equal(out, &x);
    assert_int_equal(lp_thread_spawn(NULL, returns_arg, NULL, 1), 0); /* detached, tiny stack raised */
    assert_int_equal(lp_thread_spawn(&t, NULL, NULL, 0), -EINVAL);
    assert_int_equal(lp_clock_left_ms(LP_CLOCK_NEVER), -1);
    assert_int_equal(lp_clock_left_ms(0), 0);
    assert_int_equal(lp_clock_deadline(-1), LP_CLOCK_NEVER);
    assert_true(lp_clock_left_ms(lp_clock_deadline(10000)) > 9000);
}

static int socketpair_kind = SOCKETPAIR, pipe_kind = PIPE;

#define BOTH(fn)                                                                    \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &socketpair_kind), \
        cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &pipe_kind)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(split_at_every_byte),
        BOTH(two_frames_in_one_read),
        BOTH(eof_mid_frame),
        BOTH(timeout_is_a_deadline),
        BOTH(over_the_limit_refused_from_its_prefix),
        BOTH(large_frame_fills_its_need),
        BOTH(eintr_does_not_end_a_read),
        BOTH(peek_routes_without_consuming),
        cmocka_unit_test(thread_and_clock),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
