/* test_broker.c: the context broker (src/context) over pipes and
 * socketpairs, with the far side played by this test (and its threads):
 * routing by re and channel, events, deadlines, ends, hostile bytes,
 * bounded output and events, many links on one thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "context/broker.h"
#include "io/io.h"

/* The far side of one link: it reads r (what the broker wrote) and
 * writes w (what the broker reads). */
struct far {
    int r, w;
};

static uint32_t link_pipes(lp_broker_t *b, struct far *f)
{
    int out[2], in[2];
    uint32_t id = 0;

    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(lp_broker_add(b, in[0], out[1], NULL, 0, &id), 0);
    f->r = out[0];
    f->w = in[1];
    return id;
}

static uint32_t link_socket(lp_broker_t *b, struct far *f)
{
    int sv[2];
    uint32_t id = 0;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(lp_broker_add(b, sv[0], sv[0], NULL, 0, &id), 0);
    f->r = f->w = sv[1];
    return id;
}

static void far_close(struct far *f)
{
    if (f->w >= 0 && f->w != f->r)
        close(f->w);
    if (f->r >= 0)
        close(f->r);
    f->r = f->w = -1;
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = write(fd, c, n);

        assert_true(k > 0);
        c += k;
        n -= (size_t)k;
    }
}

/* One encoded frame: header JSON text, payload. */
static lp_buf_t *frame(const char *json, const void *payload, size_t n)
{
    const lp_limits_t any = {65536, 1u << 30};
    lp_buf_t *o = lp_buf_new(SIZE_MAX);
    json_t *h = json_loads(json, 0, NULL);

    assert_non_null(h);
    assert_int_equal(lp_frame_encode(o, h, payload, n, &any), 0);
    json_decref(h);
    return o;
}

static void far_send(int fd, const char *json, const void *payload, size_t n)
{
    lp_buf_t *o = frame(json, payload, n);

    write_all(fd, lp_buf_data(o), lp_buf_len(o));
    lp_buf_free(o);
}

static int64_t field(const lp_broker_msg_t *m, const char *name)
{
    return (int64_t)json_integer_value(json_object_get(m->frame.header, name));
}

static lp_broker_t *new_broker(const lp_broker_config_t *cfg)
{
    lp_broker_t *b = NULL;

    assert_int_equal(lp_broker_new(cfg, &b), 0);
    return b;
}

static void test_reply_goes_to_its_waiter_by_re(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    struct far f;
    uint32_t id = link_pipes(b, &f);
    lp_broker_msg_t *m = NULL;
    char why[LP_BROKER_REASON_MAX];

    assert_int_equal(lp_broker_expect(b, id, 7), 0);
    assert_int_equal(lp_broker_expect(b, id, 7), -EEXIST);
    far_send(f.w, "{\"op\":\"done\",\"re\":7}", "abc", 3);
    assert_int_equal(lp_broker_wait(b, id, 7, 5000, &m, why), 0);
    assert_non_null(m);
    assert_null(m->next);
    assert_int_equal(m->link, id);
    assert_int_equal(field(m, "re"), 7);
    assert_int_equal(m->frame.payload_len, 3);
    assert_memory_equal(m->frame.payload, "abc", 3);
    lp_broker_msg_free(m);
    lp_broker_forget(b, id, 7);
    assert_int_equal(lp_broker_wait(b, id, 7, 0, &m, why), -ENOENT);
    far_close(&f);
    lp_broker_free(b);
}

static void test_channel_frames_queue_for_their_waiter(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    struct far f;
    uint32_t id = link_socket(b, &f);
    char why[LP_BROKER_REASON_MAX];
    int got = 0;

    assert_int_equal(lp_broker_expect(b, id, 3), 0);
    for (int i = 0; i < 5; i++)
        far_send(f.w, "{\"op\":\"channel-data\",\"channel\":3}", "x", 1);
    while (got < 5) {
        lp_broker_msg_t *m = NULL;

        assert_int_equal(lp_broker_wait(b, id, 3, 5000, &m, why), 0);
        for (lp_broker_msg_t *p = m; p != NULL; p = p->next, got++)
            assert_int_equal(field(p, "channel"), 3);
        lp_broker_msg_free(m);
    }
    assert_int_equal(got, 5);
    far_close(&f);
    lp_broker_free(b);
}

static void test_unexpected_frames_are_events_in_order(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    struct far f;
    (void)link_pipes(b, &f);
    lp_broker_msg_t *m = NULL;

    far_send(f.w, "{\"op\":\"log\",\"level\":20}", "hello", 5);
    far_send(f.w, "{\"op\":\"done\",\"re\":99}", NULL, 0);
    far_send(f.w, "{\"op\":\"module-get\",\"id\":4}", NULL, 0);
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_string_equal(json_string_value(json_object_get(m->frame.header, "op")), "log");
    assert_memory_equal(m->frame.payload, "hello", 5);
    lp_broker_msg_free(m);
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_int_equal(field(m, "re"), 99);
    lp_broker_msg_free(m);
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_int_equal(field(m, "id"), 4);
    lp_broker_msg_free(m);
    assert_int_equal(lp_broker_next_event(b, 20, &m), -ETIMEDOUT);
    assert_null(m);
    far_close(&f);
    lp_broker_free(b);
}

static void test_a_wait_ends_at_its_deadline(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    struct far f;
    uint32_t id = link_pipes(b, &f);
    lp_broker_msg_t *m = NULL;
    char why[LP_BROKER_REASON_MAX];
    uint64_t t0 = lp_clock_ms();

    assert_int_equal(lp_broker_expect(b, id, 1), 0);
    assert_int_equal(lp_broker_wait(b, id, 1, 100, &m, why), -ETIMEDOUT);
    assert_true(lp_clock_ms() - t0 >= 90);
    assert_true(lp_clock_ms() - t0 < 2000);
    assert_null(m);
    far_close(&f);
    lp_broker_free(b);
}

struct waiter_arg {
    lp_broker_t *b;
    uint32_t link;
    int64_t key;
    int r;
    char why[LP_BROKER_REASON_MAX];
};

static void *wait_forever(void *arg)
{
    struct waiter_arg *w = arg;
    lp_broker_msg_t *m = NULL;

    w->r = lp_broker_wait(w->b, w->link, w->key, -1, &m, w->why);
    lp_broker_msg_free(m);
    return NULL;
}

static void test_the_far_side_closing_wakes_every_waiter(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    struct far f;
    uint32_t id = link_pipes(b, &f);
    struct waiter_arg w[3];
    pthread_t t[3];
    lp_broker_msg_t *m = NULL;

    for (int i = 0; i < 3; i++) {
        w[i] = (struct waiter_arg){.b = b, .link = id, .key = i + 1};
        assert_int_equal(lp_broker_expect(b, id, i + 1), 0);
        assert_int_equal(lp_thread_spawn(&t[i], wait_forever, &w[i], 0), 0);
    }
    usleep(50000);
    far_close(&f);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].r, LP_EEOF);
        assert_string_equal(w[i].why, "the far side closed the link");
    }
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_null(m->frame.header);
    assert_int_equal(m->link, id);
    assert_int_equal(m->err, LP_EEOF);
    lp_broker_msg_free(m);
    assert_int_equal(lp_broker_send(b, id, "x", 1), LP_EEOF);
    lp_broker_close(b, id);
    lp_broker_close(b, id); /* idempotent */
    assert_int_equal(lp_broker_send(b, id, "x", 1), -ECANCELED);
    assert_int_equal(lp_broker_next_event(b, 20, &m), -ETIMEDOUT); /* one end event only */
    lp_broker_free(b);
}

static void test_close_here_wakes_a_waiter(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    struct far f;
    uint32_t id = link_socket(b, &f);
    struct waiter_arg w = {.b = b, .link = id, .key = 5};
    pthread_t t;
    char buf[8];

    assert_int_equal(lp_broker_expect(b, id, 5), 0);
    assert_int_equal(lp_thread_spawn(&t, wait_forever, &w, 0), 0);
    usleep(20000);
    lp_broker_close(b, id);
    pthread_join(t, NULL);
    assert_int_equal(w.r, -ECANCELED);
    assert_string_equal(w.why, "the link was closed here");
    assert_int_equal(read(f.r, buf, sizeof(buf)), 0); /* its fd is closed */
    far_close(&f);
    lp_broker_free(b);
}

/* Sends bytes on a new link and returns the reason its end gives. */
static void end_reason(const lp_broker_config_t *cfg, const void *bytes, size_t n, int want,
                       const char *prefix)
{
    lp_broker_t *b = new_broker(cfg);
    struct far f;
    uint32_t id = link_pipes(b, &f);
    lp_broker_msg_t *m = NULL;
    char why[LP_BROKER_REASON_MAX];

    assert_int_equal(lp_broker_expect(b, id, 1), 0);
    write_all(f.w, bytes, n);
    assert_int_equal(lp_broker_wait(b, id, 1, 5000, &m, why), want);
    assert_int_equal(strncmp(why, prefix, strlen(prefix)), 0);
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_int_equal(m->err, want);
    lp_broker_msg_free(m);
    far_close(&f);
    lp_broker_free(b);
}

static void test_garbage_is_a_protocol_error(void **state)
{
    static const char junk[] = "garbage, not frames: \xff\xfe\x01\x02 and more garbage here";

    /* "garb" read as a length is 1.7 GB: refused from the prefix alone */
    end_reason(NULL, junk, sizeof(junk), LP_WIRE_ETOOLARGE, "protocol error: frame-too-large");
    end_reason(NULL, "\0\0\0\x04\0\0\0\0\xff\xfe{}", 12, LP_WIRE_EHEADER,
               "protocol error: bad-header");
}

static void test_a_frame_over_the_limit_is_a_protocol_error(void **state)
{
    const lp_broker_config_t small = {{1024, 4096}, 1u << 20, 1u << 20, 60000};
    const uint8_t prefix[8] = {0, 0, 0, 2, 0, 0x10, 0, 0}; /* "{}" and 1 MiB */
    const uint8_t p2[8] = {0, 0, 0x08, 0, 0, 0, 0, 0};      /* 2 KiB of header */
    lp_buf_t *hb = lp_buf_new(SIZE_MAX);
    char big[2048];

    end_reason(&small, prefix, sizeof(prefix), LP_WIRE_ETOOLARGE, "protocol error: frame-too-large");
    /* a header over its limit too, even with the frame all there */
    memset(big, ' ', sizeof(big));
    big[0] = '{';
    big[sizeof(big) - 1] = '}';
    lp_buf_put(hb, p2, 8);
    lp_buf_put(hb, big, sizeof(big));
    end_reason(&small, lp_buf_data(hb), lp_buf_len(hb), LP_WIRE_ETOOLARGE,
               "protocol error: frame-too-large");
    lp_buf_free(hb);
}

static void test_a_lie_about_lengths_is_a_protocol_error(void **state)
{
    /* the prefix says 5 bytes of header: "{\"op\"" is not a header */
    static const char lie[] = "\0\0\0\x05\0\0\0\0{\"op\":\"done\",\"re\":1}";

    end_reason(NULL, lie, sizeof(lie) - 1, LP_WIRE_EHEADER, "protocol error: bad-header");
}

static void test_initial_bytes_are_parsed_first(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    lp_buf_t *o = frame("{\"op\":\"log\"}", "early", 5);
    int out[2], in[2];
    uint32_t id;
    lp_broker_msg_t *m = NULL;

    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(lp_broker_add(b, in[0], out[1], lp_buf_data(o), lp_buf_len(o), &id), 0);
    far_send(in[1], "{\"op\":\"log\"}", "later", 5);
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_memory_equal(m->frame.payload, "early", 5);
    lp_broker_msg_free(m);
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_memory_equal(m->frame.payload, "later", 5);
    lp_broker_msg_free(m);
    close(out[0]);
    close(in[1]);
    lp_buf_free(o);
    assert_int_equal(lp_broker_add(b, -1, 3, NULL, 0, &id), LP_WIRE_EINVAL);
    lp_broker_free(b);
}

struct sender {
    lp_broker_t *b;
    uint32_t link;
    int frames;   /* how many 16 KiB frames to send */
    int sent;     /* how many went */
    int r;        /* the first failure */
};

static void *send_many(void *arg)
{
    struct sender *s = arg;
    lp_buf_t *o;
    char *blob = calloc(1, 16384);

    o = frame("{\"op\":\"call\",\"id\":1}", blob, 16384);
    for (s->sent = 0; s->sent < s->frames; s->sent++)
        if ((s->r = lp_broker_send(s->b, s->link, lp_buf_data(o), lp_buf_len(o))) != 0)
            break;
    lp_buf_free(o);
    free(blob);
    return NULL;
}

static void test_send_waits_while_the_queue_is_full_then_goes_on(void **state)
{
    const lp_broker_config_t cfg = {{65536, 1u << 20}, 1u << 20, 64u << 10, 60000};
    lp_broker_t *b = new_broker(&cfg);
    struct far f;
    uint32_t id = link_pipes(b, &f);
    struct sender s = {.b = b, .link = id, .frames = 64};
    pthread_t t;
    size_t want = 0, got = 0;
    char buf[65536];
    ssize_t k;

    assert_int_equal(lp_thread_spawn(&t, send_many, &s, 0), 0);
    usleep(200000);
    /* the pipe (64 KiB) and the queue (64 KiB and one frame) are full:
     * the sender waits rather than queue 1 MiB */
    assert_true(s.sent < 16);
    assert_int_equal(s.r, 0);
    want = (size_t)s.frames * (16384 + 8 + strlen("{\"op\":\"call\",\"id\":1}"));
    while (got < want && (k = read(f.r, buf, sizeof(buf))) > 0)
        got += (size_t)k;
    pthread_join(t, NULL);
    assert_int_equal(s.r, 0);
    assert_int_equal(s.sent, 64);
    assert_int_equal(got, want);
    far_close(&f);
    lp_broker_free(b);
}

static void test_a_far_side_that_never_reads_ends_the_link(void **state)
{
    const lp_broker_config_t cfg = {{65536, 1u << 20}, 1u << 20, 64u << 10, 300};
    lp_broker_t *b = new_broker(&cfg);
    struct far f;
    uint32_t id = link_socket(b, &f);
    struct sender s = {.b = b, .link = id, .frames = 1000};
    pthread_t t;
    lp_broker_msg_t *m = NULL;

    assert_int_equal(lp_thread_spawn(&t, send_many, &s, 0), 0);
    pthread_join(t, NULL); /* within about stuck_ms and a tick */
    assert_true(s.sent < 1000);
    assert_int_equal(s.r, -ETIMEDOUT);
    assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
    assert_null(m->frame.header);
    assert_string_equal(m->reason, "the far side read nothing for too long (stuck output)");
    lp_broker_msg_free(m);
    far_close(&f);
    lp_broker_free(b);
}

struct flood {
    int fd;
    int frames;
    int written;   /* frames written before the pipe was full, then all */
};

static void *flood_events(void *arg)
{
    struct flood *fl = arg;
    char payload[1024] = {0};
    lp_buf_t *o = frame("{\"op\":\"log\"}", payload, sizeof(payload));

    for (fl->written = 0; fl->written < fl->frames; fl->written++)
        write_all(fl->fd, lp_buf_data(o), lp_buf_len(o));
    lp_buf_free(o);
    return NULL;
}

static void test_events_over_their_bound_stop_reading_the_link(void **state)
{
    const lp_broker_config_t cfg = {{65536, 1u << 20}, 16u << 10, 1u << 20, 60000};
    lp_broker_t *b = new_broker(&cfg);
    struct far f;
    uint32_t id = link_pipes(b, &f);
    struct flood fl = {.fd = f.w, .frames = 1000};
    pthread_t t;
    int n = 0;

    assert_int_equal(lp_thread_spawn(&t, flood_events, &fl, 0), 0);
    usleep(300000);
    /* what is held: the pipe (64 KiB), one read (64 KiB), the events (16 KiB
     * and a frame): nowhere near the 1 MiB the far side wants to send */
    assert_true(fl.written < 200);
    while (n < 1000) {
        lp_broker_msg_t *m = NULL;

        assert_int_equal(lp_broker_next_event(b, 5000, &m), 0);
        assert_int_equal(m->link, id);
        lp_broker_msg_free(m);
        n++;
    }
    pthread_join(t, NULL);
    assert_int_equal(fl.written, 1000);
    far_close(&f);
    lp_broker_free(b);
}

static int threads_now(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 2; /* . and .. */
}

static void test_a_hundred_links_share_one_thread(void **state)
{
    enum { N = 100 };
    lp_broker_t *b = new_broker(NULL);
    struct far f[N];
    uint32_t id[N];
    int before = threads_now();
    char why[LP_BROKER_REASON_MAX];
    char req[64];

    for (int i = 0; i < N; i++)
        id[i] = i % 2 ? link_pipes(b, &f[i]) : link_socket(b, &f[i]);
    assert_int_equal(threads_now(), before + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(lp_broker_expect(b, id[i], 1000 + i), 0);
        snprintf(req, sizeof(req), "{\"op\":\"done\",\"re\":%d}", 1000 + i);
        far_send(f[i].w, req, &i, sizeof(i));
    }
    for (int i = N - 1; i >= 0; i--) {
        lp_broker_msg_t *m = NULL;

        assert_int_equal(lp_broker_wait(b, id[i], 1000 + i, 5000, &m, why), 0);
        assert_int_equal(field(m, "re"), 1000 + i);
        assert_memory_equal(m->frame.payload, &i, sizeof(i));
        lp_broker_msg_free(m);
    }
    for (int i = 0; i < N; i++) {
        lp_broker_close(b, id[i]);
        far_close(&f[i]);
    }
    lp_broker_free(b);
    assert_int_equal(threads_now(), before);
}

static void test_bytes_sent_arrive_in_order(void **state)
{
    lp_broker_t *b = new_broker(NULL);
    struct far f;
    uint32_t id = link_socket(b, &f);
    lp_buf_t *o1 = frame("{\"op\":\"call\",\"id\":1}", "one", 3);
    lp_buf_t *o2 = frame("{\"op\":\"call\",\"id\":2}", "two", 3);
    lp_buf_t *in = lp_buf_new(1u << 20);
    lp_reader_t r = {.fd = f.r, .in = in};
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_frame_t fr = {0};

    assert_int_equal(lp_broker_send(b, id, lp_buf_data(o1), lp_buf_len(o1)), 0);
    assert_int_equal(lp_broker_send(b, id, lp_buf_data(o2), lp_buf_len(o2)), 0);
    assert_int_equal(lp_reader_next(&r, &lim, &fr, 5000), 0);
    assert_memory_equal(fr.payload, "one", 3);
    lp_frame_clear(&fr);
    assert_int_equal(lp_reader_next(&r, &lim, &fr, 5000), 0);
    assert_memory_equal(fr.payload, "two", 3);
    lp_frame_clear(&fr);
    assert_int_equal(lp_broker_send(b, 12345, "x", 1), -ENOENT);
    lp_buf_free(o1);
    lp_buf_free(o2);
    lp_buf_free(in);
    far_close(&f);
    lp_broker_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_goes_to_its_waiter_by_re),
        cmocka_unit_test(test_channel_frames_queue_for_their_waiter),
        cmocka_unit_test(test_unexpected_frames_are_events_in_order),
        cmocka_unit_test(test_a_wait_ends_at_its_deadline),
        cmocka_unit_test(test_the_far_side_closing_wakes_every_waiter),
        cmocka_unit_test(test_close_here_wakes_a_waiter),
        cmocka_unit_test(test_garbage_is_a_protocol_error),
        cmocka_unit_test(test_a_frame_over_the_limit_is_a_protocol_error),
        cmocka_unit_test(test_a_lie_about_lengths_is_a_protocol_error),
        cmocka_unit_test(test_initial_bytes_are_parsed_first),
        cmocka_unit_test(test_send_waits_while_the_queue_is_full_then_goes_on),
        cmocka_unit_test(test_a_far_side_that_never_reads_ends_the_link),
        cmocka_unit_test(test_events_over_their_bound_stop_reading_the_link),
        cmocka_unit_test(test_a_hundred_links_share_one_thread),
        cmocka_unit_test(test_bytes_sent_arrive_in_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
