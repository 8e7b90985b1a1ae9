/* test_writer.c: the one output queue (src/io/writer.c), over a socketpair
 * and over a pipe: every test runs on both. The descriptors' buffers are
 * made small (4 KiB) so that "full" comes quickly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/io.h"

enum { SOCKETPAIR, PIPE };

#define SMALL 4096 /* the descriptors' buffer, as small as the kernel allows */

/* One transport: the writer writes on wr, the test reads rd. */
struct pair {
    int kind;       /* SOCKETPAIR or PIPE */
    int rd, wr;     /* the two ends; -1 once closed */
};

static int setup(void **state)
{
    struct pair *p = calloc(1, sizeof(*p));
    int fds[2], small = SMALL;

    if (p == NULL)
        return -1;
    p->kind = *(int *)*state;
    if (p->kind == SOCKETPAIR) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
            return -1;
        setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    } else {
        if (pipe2(fds, O_CLOEXEC) != 0)
            return -1;
        fcntl(fds[1], F_SETPIPE_SZ, small);
    }
    p->rd = fds[0];
    p->wr = fds[1];
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;

    if (p->rd >= 0)
        close(p->rd);
    if (p->wr >= 0)
        close(p->wr);
    free(p);
    return 0;
}

/* Writes into fd, past the writer, until it takes no more: the bytes
 * written. The bytes are 'f'. */
static size_t fill(int fd)
{
    char junk[512];
    size_t n = 0;
    int fl = fcntl(fd, F_GETFL);

    memset(junk, 'f', sizeof(junk));
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        ssize_t k = write(fd, junk, sizeof(junk));

        if (k <= 0)
            break;
        n += (size_t)k;
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    fcntl(fd, F_SETFL, fl);
    return n;
}

/* True when nothing more is readable on fd right now. */
static bool nothing_more(int fd)
{
    struct pollfd pf = {fd, POLLIN, 0};

    return poll(&pf, 1, 0) == 0;
}

/* --- reading on another thread ------------------------------------------ */

struct drain {
    int fd;          /* what to read */
    size_t want;     /* stop after this many bytes */
    uint8_t *got;    /* what was read (malloc'd, want bytes) */
    size_t len;      /* bytes read */
    int delay_ms;    /* wait this long before reading */
    pthread_t t;     /* the thread */
};

static void *drain_main(void *arg)
{
    struct drain *d = arg;

    if (d->delay_ms > 0)
        usleep((useconds_t)d->delay_ms * 1000);
    while (d->len < d->want) {
        struct pollfd pf = {d->fd, POLLIN, 0};
        ssize_t k;

        if (poll(&pf, 1, 10000) != 1)
            break;
        if ((k = read(d->fd, d->got + d->len, d->want - d->len)) <= 0)
            break;
        d->len += (size_t)k;
    }
    return NULL;
}

static void drain_start(struct drain *d, int fd, size_t want, int delay_ms)
{
    *d = (struct drain){.fd = fd, .want = want, .got = malloc(want ? want : 1),
                        .delay_ms = delay_ms};
    assert_non_null(d->got);
    assert_int_equal(lp_thread_spawn(&d->t, drain_main, d, 0), 0);
}

/* Waits for the reader; every byte it wanted must have come. */
static void drain_join(struct drain *d)
{
    assert_int_equal(pthread_join(d->t, NULL), 0);
    assert_int_equal(d->len, d->want);
}

/* --- records: units that must arrive whole and in each writer's order --- */

#define WRITERS 4
#define RECORDS 60
#define RECORD_HEAD 12 /* 'R', writer digit, 6-digit sequence, 4-digit length */

/* The length of writer i's record number seq: 1 to ~3000 bytes, most of
 * them bigger than half the descriptor's buffer. */
static size_t record_len(int i, int seq)
{
    return 1 + (size_t)((seq * 977 + i * 131) % 3000);
}

/* Writes writer i's record seq into out: the bytes written. */
static size_t record_make(char *out, int i, int seq)
{
    size_t len = record_len(i, seq);

    snprintf(out, RECORD_HEAD + 1, "R%d%06d%04zu", i, seq, len);
    memset(out + RECORD_HEAD, 'a' + i, len);
    return RECORD_HEAD + len;
}

struct writer_thread {
    lp_writer_t *w;  /* shared */
    int i;           /* which writer: even ones block, odd ones never do... */
    pthread_t t;
    int err;         /* the first failure */
};

static void *writer_main(void *arg)
{
    struct writer_thread *wt = arg;
    char *rec = malloc(RECORD_HEAD + 3001);

    for (int seq = 0; seq < RECORDS && rec != NULL; seq++) {
        size_t n = record_make(rec, wt->i, seq);
        /* ...and writer 3 mixes both */
        bool wait = wt->i % 2 == 0 || (wt->i == 3 && seq % 3 == 0);
        int r = lp_writer_write(wt->w, rec, n, wait);

        if (r != 0 && wt->err == 0)
            wt->err = r;
    }
    free(rec);
    return NULL;
}

static size_t records_total(void)
{
    size_t n = 0;

    for (int i = 0; i < WRITERS; i++)
        for (int seq = 0; seq < RECORDS; seq++)
            n += RECORD_HEAD + record_len(i, seq);
    return n;
}

/* Parses the stream: every record whole, each writer's in its order. */
static void records_check(const uint8_t *p, size_t n)
{
    int next[WRITERS] = {0};
    size_t off = 0;

    while (off < n) {
        char head[RECORD_HEAD + 1];
        int i, seq;
        size_t len;

        assert_true(n - off >= RECORD_HEAD);
        memcpy(head, p + off, RECORD_HEAD);
        head[RECORD_HEAD] = 0;
        assert_int_equal(head[0], 'R');
        assert_int_equal(sscanf(head + 1, "%1d%6d%4zu", &i, &seq, &len), 3);
        assert_in_range(i, 0, WRITERS - 1);
        assert_int_equal(seq, next[i]);
        assert_int_equal(len, record_len(i, seq));
        assert_true(n - off - RECORD_HEAD >= len);
        for (size_t k = 0; k < len; k++)
            assert_int_equal(p[off + RECORD_HEAD + k], 'a' + i);
        next[i]++;
        off += RECORD_HEAD + len;
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(next[i], RECORDS);
}

static void many_writers_records_whole_and_in_order(void **state)
{
    struct pair *p = *state;
    struct writer_thread wt[WRITERS];
    struct drain d;
    lp_writer_t w;
    uint64_t t0;

    assert_int_equal(lp_writer_init(&w, p->wr, 4u << 20, 5000), 0);
    drain_start(&d, p->rd, records_total(), 0);
    for (int i = 0; i < WRITERS; i++) {
        wt[i] = (struct writer_thread){.w = &w, .i = i};
        assert_int_equal(lp_thread_spawn(&wt[i].t, writer_main, &wt[i], 0), 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(pthread_join(wt[i].t, NULL), 0);
        assert_int_equal(wt[i].err, 0);
    }
    /* what the non-blocking writers left queued goes with kicks */
    t0 = lp_clock_ms();
    while (lp_writer_congested(&w)) {
        assert_int_equal(lp_writer_kick(&w), 0);
        assert_true(lp_clock_ms() - t0 < 5000);
        usleep(1000);
    }
    drain_join(&d);
    records_check(d.got, d.len);
    assert_true(nothing_more(p->rd));
    assert_false(lp_writer_dead(&w));
    free(d.got);
    lp_writer_destroy(&w);
}

static void nowait_into_full_queues_then_wait_drains_first(void **state)
{
    struct pair *p = *state;
    size_t filled = fill(p->wr);
    char *big = malloc(3 * SMALL);
    struct drain d;
    lp_writer_t w;
    uint64_t t0;

    assert_int_equal(lp_writer_init(&w, p->wr, 1u << 20, 5000), 0);
    assert_false(lp_writer_congested(&w));
    /* the descriptor is full: it is all queued, and the call returns at once */
    for (size_t k = 0; k < 3 * SMALL; k++)
        big[k] = (char)('0' + k % 10);
    t0 = lp_clock_ms();
    assert_int_equal(lp_writer_write(&w, "abc", 3, false), 0);
    assert_int_equal(lp_writer_write(&w, big, 3 * SMALL, false), 0);
    assert_true(lp_clock_ms() - t0 < 500);
    assert_int_equal(lp_buf_len(w.pending), 3 + 3 * SMALL);
    assert_true(lp_writer_congested(&w));
    /* a blocking write: the queue goes first, then its own bytes */
    drain_start(&d, p->rd, filled + 3 + 3 * SMALL + 4, 50);
    assert_int_equal(lp_writer_write(&w, "TAIL", 4, true), 0);
    assert_false(lp_writer_congested(&w));
    assert_int_equal(lp_buf_len(w.pending), 0);
    drain_join(&d);
    for (size_t k = 0; k < filled; k++)
        assert_int_equal(d.got[k], 'f');
    assert_memory_equal(d.got + filled, "abc", 3);
    assert_memory_equal(d.got + filled + 3, big, 3 * SMALL);
    assert_memory_equal(d.got + filled + 3 + 3 * SMALL, "TAIL", 4);
    assert_true(nothing_more(p->rd));
    free(d.got);
    free(big);
    lp_writer_destroy(&w);
}

static void overflow_kills_the_writer(void **state)
{
    struct pair *p = *state;
    char chunk[1000];
    lp_writer_t w;

    memset(chunk, 'x', sizeof(chunk));
    fill(p->wr);
    assert_int_equal(lp_writer_init(&w, p->wr, 2500, 5000), 0);
    assert_int_equal(lp_writer_write(&w, chunk, sizeof(chunk), false), 0);
    assert_int_equal(lp_writer_write(&w, chunk, sizeof(chunk), false), 0);
    assert_int_equal(lp_buf_len(w.pending), 2000);
    assert_false(lp_writer_dead(&w));
    /* 3000 would be queued: over pending_max */
    assert_int_equal(lp_writer_write(&w, chunk, sizeof(chunk), false), LP_WIRE_ELIMIT);
    assert_true(lp_writer_dead(&w));
    assert_int_equal(lp_buf_len(w.pending), 0); /* the queue was dropped */
    assert_int_equal(lp_writer_write(&w, "x", 1, false), -EPIPE);
    assert_int_equal(lp_writer_write(&w, "x", 1, true), -EPIPE);
    assert_int_equal(lp_writer_kick(&w), -EPIPE);
    lp_writer_destroy(&w);
}

struct blocked {
    lp_writer_t *w;   /* shared */
    const void *data; /* what to write, blocking */
    size_t len;
    int r;            /* what the write returned */
    uint64_t done_ms; /* when */
    pthread_t t;
};

static void *blocked_main(void *arg)
{
    struct blocked *b = arg;

    b->r = lp_writer_write(b->w, b->data, b->len, true);
    b->done_ms = lp_clock_ms();
    return NULL;
}

static void kill_wakes_a_blocked_writer(void **state)
{
    struct pair *p = *state;
    struct blocked b = {.data = "stuck", .len = 5, .r = 1};
    lp_writer_t w;
    uint64_t t0;

    fill(p->wr);
    assert_int_equal(lp_writer_init(&w, p->wr, 1u << 20, 3000), 0);
    b.w = &w;
    assert_int_equal(lp_thread_spawn(&b.t, blocked_main, &b, 0), 0);
    usleep(100 * 1000);
    assert_true(lp_writer_congested(&w)); /* it holds the turn, waiting */
    assert_int_equal(b.done_ms, 0);
    t0 = lp_clock_ms();
    lp_writer_kill(&w);
    assert_int_equal(pthread_join(b.t, NULL), 0);
    assert_true(b.r < 0);
    assert_true(b.done_ms - t0 < 1000); /* woken, not timed out after 3 s */
    assert_true(lp_writer_dead(&w));
    assert_int_equal(lp_writer_write(&w, "x", 1, true), -EPIPE);
    lp_writer_destroy(&w);
}

static void wait_times_out_when_nothing_is_read(void **state)
{
    struct pair *p = *state;
    lp_writer_t w;
    uint64_t t0;

    fill(p->wr);
    assert_int_equal(lp_writer_init(&w, p->wr, 1u << 20, 100), 0);
    t0 = lp_clock_ms();
    assert_int_equal(lp_writer_write(&w, "late", 4, true), -ETIMEDOUT);
    assert_true(lp_clock_ms() - t0 >= 90); /* the coarse clock ticks every few ms */
    assert_true(lp_clock_ms() - t0 < 2000);
    assert_true(lp_writer_dead(&w));
    assert_int_equal(lp_writer_write(&w, "x", 1, false), -EPIPE);
    lp_writer_destroy(&w);
}

static void kick_drains_once_the_reader_reads(void **state)
{
    struct pair *p = *state;
    size_t n = 4 * SMALL, filled = fill(p->wr), got = 0;
    char *data = malloc(n), *in = malloc(filled + n);
    lp_writer_t w;
    uint64_t t0;

    for (size_t k = 0; k < n; k++)
        data[k] = (char)('A' + k % 26);
    assert_int_equal(lp_writer_init(&w, p->wr, 1u << 20, 2000), 0);
    assert_int_equal(lp_writer_write(&w, data, n, false), 0);
    assert_int_equal(lp_buf_len(w.pending), n);
    /* nobody reads: a kick moves nothing, and is no failure yet */
    assert_int_equal(lp_writer_kick(&w), 0);
    assert_int_equal(lp_buf_len(w.pending), n);
    assert_true(lp_writer_congested(&w));
    /* the reader reads: kicks drain the queue, in order */
    t0 = lp_clock_ms();
    while (got < filled + n) {
        struct pollfd pf = {p->rd, POLLIN, 0};
        ssize_t k;

        assert_int_equal(poll(&pf, 1, 5000), 1);
        k = read(p->rd, in + got, filled + n - got);
        assert_true(k > 0);
        got += (size_t)k;
        assert_int_equal(lp_writer_kick(&w), 0);
        assert_true(lp_clock_ms() - t0 < 5000);
    }
    assert_false(lp_writer_congested(&w));
    assert_memory_equal(in + filled, data, n);
    assert_true(nothing_more(p->rd));
    assert_false(lp_writer_dead(&w));
    free(data);
    free(in);
    lp_writer_destroy(&w);
}

static void kick_kills_after_timeout_without_progress(void **state)
{
    struct pair *p = *state;
    lp_writer_t w;
    uint64_t t0, t1;

    fill(p->wr);
    assert_int_equal(lp_writer_init(&w, p->wr, 1u << 20, 300), 0);
    t0 = lp_clock_ms();
    assert_int_equal(lp_writer_write(&w, "queued", 6, false), 0);
    t1 = lp_clock_ms(); /* the queue got stuck between t0 and t1 */
    assert_int_equal(lp_writer_kick(&w), 0);
    assert_false(lp_writer_dead(&w));
    usleep(50 * 1000); /* not yet */
    assert_true(lp_clock_ms() - t0 < 250);
    assert_int_equal(lp_writer_kick(&w), 0);
    assert_false(lp_writer_dead(&w));
    assert_int_equal(lp_buf_len(w.pending), 6);
    while (lp_clock_ms() - t1 < 320) /* now it is */
        usleep(5000);
    assert_int_equal(lp_writer_kick(&w), -ETIMEDOUT);
    assert_true(lp_writer_dead(&w));
    assert_int_equal(lp_writer_kick(&w), -EPIPE);
    assert_int_equal(lp_writer_write(&w, "x", 1, false), -EPIPE);
    lp_writer_destroy(&w);
}

static void epipe_when_the_reader_closed(void **state)
{
    struct pair *p = *state;
    void (*old)(int) = signal(SIGPIPE, SIG_IGN); /* a pipe raises it: see the report */
    lp_writer_t w;

    close(p->rd);
    p->rd = -1;
    assert_int_equal(lp_writer_init(&w, p->wr, 1u << 20, 1000), 0);
    assert_int_equal(lp_writer_write(&w, "gone", 4, true), -EPIPE);
    assert_true(lp_writer_dead(&w));
    assert_int_equal(lp_writer_write(&w, "gone", 4, false), -EPIPE);
    lp_writer_destroy(&w);
    /* a non-blocking write finds it out too */
    assert_int_equal(lp_writer_init(&w, p->wr, 1u << 20, 1000), 0);
    assert_int_equal(lp_writer_write(&w, "gone", 4, false), -EPIPE);
    assert_true(lp_writer_dead(&w));
    lp_writer_destroy(&w);
    signal(SIGPIPE, old);
}

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}

/* The writer's own words: -EPIPE, never SIGPIPE (net.h says the same of
 * sockets). A handler counts the signals that a process keeping SIGPIPE's
 * default action would die of. */
static void epipe_not_sigpipe(void **state)
{
    struct pair *p = *state;
    struct sigaction sa = {.sa_handler = on_sigpipe}, old;
    lp_writer_t w;

    close(p->rd);
    p->rd = -1;
    sigpipes = 0;
    assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
    assert_int_equal(lp_writer_init(&w, p->wr, 4096, 1000), 0);
    assert_int_equal(lp_writer_write(&w, "gone", 4, true), -EPIPE);
    lp_writer_destroy(&w);
    assert_int_equal(lp_writer_init(&w, p->wr, 4096, 1000), 0);
    assert_int_equal(lp_writer_write(&w, "gone", 4, false), -EPIPE);
    lp_writer_destroy(&w);
    sigaction(SIGPIPE, &old, NULL);
    assert_int_equal(sigpipes, 0);
}

static void destroy_accepts_null(void **state)
{
    (void)state;
    lp_writer_destroy(NULL);
}

static int socketpair_kind = SOCKETPAIR, pipe_kind = PIPE;

#define SOCKETPAIR_ONLY(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &socketpair_kind)
#define PIPE_ONLY(fn) cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, &pipe_kind)
#define BOTH(fn) SOCKETPAIR_ONLY(fn), PIPE_ONLY(fn)

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(many_writers_records_whole_and_in_order),
        BOTH(nowait_into_full_queues_then_wait_drains_first),
        BOTH(overflow_kills_the_writer),
        /* over a pipe, through the writer's eventfd (no shutdown() there) */
        BOTH(kill_wakes_a_blocked_writer),
        BOTH(wait_times_out_when_nothing_is_read),
        BOTH(kick_drains_once_the_reader_reads),
        BOTH(kick_kills_after_timeout_without_progress),
        BOTH(epipe_when_the_reader_closed),
        BOTH(epipe_not_sigpipe),
        cmocka_unit_test(destroy_accepts_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
