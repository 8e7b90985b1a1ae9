/* test_run.c: a run's record (src/serve/run.c): output kept in order and
 * bounded, read from any offset, turned into JSON that holds any bytes,
 * the waits that front ends block in, and the watchers that wake the ones
 * that do not block. */
#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include "serve/internal.h"

static lp_run_t *new_run(size_t output_max)
{
    lp_run_req_t req = {.code = "x = 1", .len = 5, .mode = LP_RUN_CELL, .who = "uid:0"};
    lp_run_t *r = lp_run_new(NULL, "exp1", 7, &req, output_max);

    assert_non_null(r);
    return r;
}

static int count(void *arg, const lp_run_chunk_t *c)
{
    size_t *n = arg;

    *n += c->len;
    return 0;
}

static void test_output_in_order_with_offsets(void **state)
{
    lp_run_t *r = new_run(1 << 20);
    json_t *j;
    uint64_t next;
    bool dropped;
    size_t n = 0;

    (void)state;
    lp_run_started(r);
    lp_run_output(r, 0, "42\n", 3);
    lp_run_output(r, 1, "warn\n", 5);
    lp_run_output(r, 0, "43\n", 3);
    lp_run_set_value(r, "builtins.int", "21", 2);
    lp_run_end(r, LP_RUN_OK);
    j = lp_run_json(r, 0);
    assert_string_equal(json_string_value(json_object_get(j, "stdout")), "42\n43\n");
    assert_string_equal(json_string_value(json_object_get(j, "stderr")), "warn\n");
    assert_string_equal(json_string_value(json_object_get(j, "value")), "21");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_int_equal(json_integer_value(json_object_get(j, "next")), 11);
    json_decref(j);
    /* from an offset inside the second piece: it is cut there */
    j = lp_run_json(r, 4);
    assert_string_equal(json_string_value(json_object_get(j, "stderr")), "arn\n");
    assert_string_equal(json_string_value(json_object_get(j, "stdout")), "43\n");
    assert_false(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    lp_run_chunks(r, 9, count, &n, &next, &dropped);
    assert_int_equal(n, 2);
    assert_int_equal(next, 11);
    lp_run_unref(r);
}

static void test_ring_keeps_the_last_bytes_and_counts_all(void **state)
{
    lp_run_t *r = new_run(10000);
    char block[5000];
    json_t *j;
    size_t n = 0;
    uint64_t next;
    bool dropped;

    (void)state;
    memset(block, 'a', sizeof(block));
    for (int i = 0; i < 10; i++)
        lp_run_output(r, 0, block, sizeof(block));
    lp_run_chunks(r, 0, count, &n, &next, &dropped);
    assert_true(dropped);
    assert_true(n <= 10000 && n >= 5000);
    assert_int_equal(next, 50000);
    j = lp_run_json(r, 0);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    lp_run_end(r, LP_RUN_OK);
    lp_run_unref(r);
}

/* Keeps the first byte of the chunks it sees and how many bytes. */
struct firsts {
    size_t n;
    char first;
    uint64_t offset;
};

static int first(void *arg, const lp_run_chunk_t *c)
{
    struct firsts *f = arg;

    if (f->n == 0) {
        f->first = c->data[0];
        f->offset = c->offset;
    }
    f->n += c->len;
    return 0;
}

static void test_one_write_past_the_bound_keeps_only_its_last_bytes(void **state)
{
    lp_run_t *r = new_run(1000);
    char *big = malloc(1 << 20);
    struct firsts f = {0};
    uint64_t next;
    bool dropped;

    (void)state;
    assert_non_null(big);
    for (int i = 0; i < 1 << 20; i++)
        big[i] = (char)(i % 251);
    lp_run_output(r, 0, big, 1 << 20);
    lp_run_chunks(r, 0, first, &f, &next, &dropped);
    assert_true(dropped);
    assert_true(f.n <= 1000 && f.n >= 900); /* the bound counts the chunk's record too */
    assert_int_equal(f.offset, (1 << 20) - f.n); /* the last bytes */
    assert_int_equal(f.first, big[f.offset]);
    assert_int_equal(next, 1 << 20);
    lp_run_output(r, 1, "tail", 4); /* it goes on from there */
    memset(&f, 0, sizeof(f));
    lp_run_chunks(r, 0, first, &f, &next, &dropped);
    assert_true(f.n <= 1000 && f.n >= 4);
    assert_int_equal(next, (1 << 20) + 4);
    free(big);
    lp_run_end(r, LP_RUN_OK);
    lp_run_unref(r);
}

static int chunks(void *arg, const lp_run_chunk_t *c)
{
    (void)c;
    (*(size_t *)arg)++;
    return 0;
}

static void test_tiny_writes_that_alternate_streams_stay_within_the_bound(void **state)
{
    lp_run_t *r = new_run(65536);
    size_t n = 0, bytes = 0;
    uint64_t next;
    bool dropped;

    (void)state;
    /* an agent's 1-byte out frames, stdout and stderr in turn: none grows the last chunk */
    for (int i = 0; i < 200000; i++)
        lp_run_output(r, i % 2, "x", 1);
    lp_run_chunks(r, 0, chunks, &n, &next, &dropped);
    lp_run_chunks(r, 0, count, &bytes, &next, &dropped);
    assert_int_equal(next, 200000);
    /* what is kept, records included, stays near the bound */
    assert_true(n * sizeof(lp_chunk_t) + bytes <= 65536 + 2 * sizeof(lp_chunk_t));
    lp_run_end(r, LP_RUN_OK);
    lp_run_unref(r);
}

static void test_bytes_that_are_not_utf8_become_replacement_characters(void **state)
{
    lp_run_t *r = new_run(1 << 20);
    json_t *j;

    (void)state;
    lp_run_output(r, 0, "a\xff" "b\xc3\xa9", 5);
    lp_run_end(r, LP_RUN_OK);
    j = lp_run_json(r, 0);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "stdout")), "a\xef\xbf\xbd" "b\xc3\xa9");
    json_decref(j);
    lp_run_unref(r);
}

static void test_waits_end_on_output_input_and_end(void **state)
{
    lp_run_t *r = new_run(1 << 20);
    char *prompt = NULL;
    bool pw = true;

    (void)state;
    assert_int_equal(lp_run_wait(r, 0, 20), 0); /* nothing yet: a timeout */
    lp_run_output(r, 0, "x", 1);
    assert_int_equal(lp_run_wait(r, 0, 20), 1);
    assert_int_equal(lp_run_wait(r, 1, 20), 0);
    lp_run_set_input(r, "name? ", false);
    assert_int_equal(lp_run_wait(r, 1, 20), 1);
    assert_int_equal(lp_run_input_pending(r, &prompt, &pw), 1);
    assert_string_equal(prompt, "name? ");
    assert_false(pw);
    free(prompt);
    assert_true(lp_run_take_input(r));
    assert_false(lp_run_take_input(r));
    lp_run_end(r, LP_RUN_INTERRUPTED);
    assert_int_equal(lp_run_wait(r, 1, -1), 1);
    assert_int_equal(lp_run_status(r), LP_RUN_INTERRUPTED);
    lp_run_unref(r);
}

static void test_a_deadline_interrupt_ends_deadline_exceeded(void **state)
{
    lp_run_t *r = new_run(1 << 20);
    char *vt, *vr, *et, *em, *tb;

    (void)state;
    assert_int_equal(lp_run_result(r, &vt, &vr, &et, &em, &tb), -EAGAIN);
    r->deadline_hit = true;
    lp_run_set_exception(r, "KeyboardInterrupt", "stop", "Traceback...\n", 13);
    lp_run_end(r, LP_RUN_INTERRUPTED);
    assert_string_equal(lp_run_status_name(lp_run_status(r)), "deadline-exceeded");
    assert_int_equal(lp_run_result(r, &vt, &vr, &et, &em, &tb), 0);
    assert_null(vr);
    assert_string_equal(et, "KeyboardInterrupt");
    assert_string_equal(em, "stop");
    assert_string_equal(tb, "Traceback...\n");
    free(et);
    free(em);
    free(tb);
    assert_int_equal(strlen(r->code_sha256), 64);
    lp_run_unref(r);
}

static void bump(void *arg)
{
    (*(int *)arg)++;
}

static void test_watchers_fire_once_at_the_first_change_past_since(void **state)
{
    lp_run_t *r = new_run(1 << 20);
    int a = 0, b = 0, c = 0, d = 0;
    lp_run_watch_t wa = {.since = 0, .fn = bump, .arg = &a};
    lp_run_watch_t wb = {.since = 3, .fn = bump, .arg = &b};
    lp_run_watch_t wc = {.since = UINT64_MAX, .fn = bump, .arg = &c};
    lp_run_watch_t wd = {.since = UINT64_MAX, .input = true, .fn = bump, .arg = &d};

    (void)state;
    assert_int_equal(lp_run_watch(r, &wa), 0);
    assert_int_equal(lp_run_watch(r, &wb), 0);
    assert_int_equal(lp_run_watch(r, &wc), 0);
    assert_int_equal(lp_run_watch(r, &wd), 0);
    lp_run_output(r, 0, "abc", 3); /* past 0, not past 3 */
    assert_int_equal(a, 1);
    assert_int_equal(b, 0);
    lp_run_output(r, 0, "d", 1);
    assert_int_equal(a, 1); /* once: it was forgotten when it fired */
    assert_int_equal(b, 1);
    assert_false(lp_run_unwatch(r, &wa));
    lp_run_set_input(r, "? ", false); /* only the watcher that asked for input */
    assert_int_equal(c, 0);
    assert_int_equal(d, 1);
    /* something there already: 1, nothing registered, fn not called */
    assert_int_equal(lp_run_watch(r, &wa), 1);
    assert_int_equal(lp_run_watch(r, &wd), 1);
    assert_int_equal(a + d, 2);
    lp_run_take_input(r);
    lp_run_end(r, LP_RUN_OK); /* the end wakes every watcher left */
    assert_int_equal(c, 1);
    assert_int_equal(lp_run_watch(r, &wc), 1);
    assert_int_equal(c, 1);
    lp_run_unref(r);
}

static void test_unwatch_forgets_a_waiting_watcher(void **state)
{
    lp_run_t *r = new_run(1 << 20);
    int n[3] = {0, 0, 0};
    lp_run_watch_t w[3];

    (void)state;
    for (int i = 0; i < 3; i++) {
        w[i] = (lp_run_watch_t){.since = 0, .fn = bump, .arg = &n[i]};
        assert_int_equal(lp_run_watch(r, &w[i]), 0);
    }
    assert_true(lp_run_unwatch(r, &w[1])); /* from the middle of the list */
    assert_false(lp_run_unwatch(r, &w[1]));
    lp_run_output(r, 1, "x", 1);
    assert_int_equal(n[0], 1);
    assert_int_equal(n[1], 0);
    assert_int_equal(n[2], 1);
    assert_true(r->watchers == NULL);
    lp_run_end(r, LP_RUN_OK);
    lp_run_unref(r);
}

typedef struct woken {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t by;
    bool done;
} woken_t;

static void wake(void *arg)
{
    woken_t *k = arg;

    pthread_mutex_lock(&k->mu);
    k->by = pthread_self();
    k->done = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static void *later_output(void *arg)
{
    struct timespec ts = {0, 20 * 1000 * 1000};

    nanosleep(&ts, NULL);
    lp_run_output(arg, 0, "late\n", 5);
    return NULL;
}

static void test_a_watcher_is_called_by_the_thread_that_makes_the_change(void **state)
{
    lp_run_t *r = new_run(1 << 20);
    woken_t k = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false};
    lp_run_watch_t w = {.since = 0, .fn = wake, .arg = &k};
    pthread_t t;

    (void)state;
    assert_int_equal(lp_run_watch(r, &w), 0);
    assert_int_equal(pthread_create(&t, NULL, later_output, r), 0);
    pthread_mutex_lock(&k.mu);
    while (!k.done)
        pthread_cond_wait(&k.cv, &k.mu);
    pthread_mutex_unlock(&k.mu);
    assert_true(pthread_equal(k.by, t));
    pthread_join(t, NULL);
    lp_run_end(r, LP_RUN_OK);
    lp_run_unref(r);
}

/* Small writes grow the last chunk through the link to it, while the ring
 * drops chunks from the front: what is kept is always the exact tail. */
static void test_small_writes_and_trimming_keep_the_exact_tail(void **state)
{
    lp_run_t *r = new_run(3000);
    char expect[200000];
    size_t n = 0;
    json_t *j;
    const char *out;

    (void)state;
    for (int i = 0; i < 20000; i++) {
        char w[16];
        int k = snprintf(w, sizeof(w), "%d,", i);

        lp_run_output(r, i % 50 == 0 ? 1 : 0, w, (size_t)k);
        if (i % 50 != 0) {
            memcpy(expect + n, w, (size_t)k);
            n += (size_t)k;
        }
    }
    lp_run_end(r, LP_RUN_OK);
    j = lp_run_json(r, 0);
    out = json_string_value(json_object_get(j, "stdout"));
    assert_non_null(out);
    assert_true(strlen(out) > 1000);
    assert_memory_equal(out, expect + n - strlen(out), strlen(out));
    json_decref(j);
    lp_run_unref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_output_in_order_with_offsets),
        cmocka_unit_test(test_small_writes_and_trimming_keep_the_exact_tail),
        cmocka_unit_test(test_ring_keeps_the_last_bytes_and_counts_all),
        cmocka_unit_test(test_one_write_past_the_bound_keeps_only_its_last_bytes),
        cmocka_unit_test(test_tiny_writes_that_alternate_streams_stay_within_the_bound),
        cmocka_unit_test(test_bytes_that_are_not_utf8_become_replacement_characters),
        cmocka_unit_test(test_waits_end_on_output_input_and_end),
        cmocka_unit_test(test_a_deadline_interrupt_ends_deadline_exceeded),
        cmocka_unit_test(test_watchers_fire_once_at_the_first_change_past_since),
        cmocka_unit_test(test_unwatch_forgets_a_waiting_watcher),
        cmocka_unit_test(test_a_watcher_is_called_by_the_thread_that_makes_the_change),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
