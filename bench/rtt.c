/* rtt.c: round trips of a trivial evaluation against a running limpet
 * server, measured by a C client so that the figure is the server's and the
 * wire's, not a Python client's.
 *
 *   rtt SOCKET [N] [CODE]    N evals of CODE (default 20000 of "1+1",
 *                            interactive) in one session; prints the median
 *                            and p99 round trip in microseconds, as JSON.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "wire/frame.h"
#include "wire/handshake.h"
#include "wire/msg.h"

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "rtt: %s\n", what);
    exit(1);
}

/* Reads until one frame is decoded into *f. */
static void read_frame(int fd, lp_buf_t *in, lp_frame_t *f)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    uint8_t *dst;
    ssize_t n;

    while (lp_frame_decode(in, &lim, f) == LP_WIRE_EAGAIN) {
        if (lp_buf_reserve(in, 65536, &dst) != 0 || (n = read(fd, dst, 65536)) <= 0)
            die("the server closed the connection");
        lp_buf_commit(in, (size_t)n);
    }
}

/* Sends header h (consumed) with payload; reads frames until done or error
 * for id, returning the final header (caller frees). */
static json_t *request(int fd, lp_buf_t *in, json_t *h, const char *payload, int64_t id)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    lp_buf_t *out = lp_buf_new(SIZE_MAX);

    if (lp_frame_encode(out, h, payload, payload ? strlen(payload) : 0, &lim) != 0 ||
        write(fd, lp_buf_data(out), lp_buf_len(out)) != (ssize_t)lp_buf_len(out))
        die("cannot send");
    lp_buf_free(out);
    json_decref(h);
    for (;;) {
        lp_frame_t f = {0};
        const char *op;

        read_frame(fd, in, &f);
        op = json_string_value(json_object_get(f.header, "op"));
        if (json_integer_value(json_object_get(f.header, "re")) == id &&
            (strcmp(op, "done") == 0 || strcmp(op, "error") == 0)) {
            json_t *r = json_incref(f.header);

            lp_frame_clear(&f);
            return r;
        }
        lp_frame_clear(&f);
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = argc > 2 ? atoi(argv[2]) : 20000, warm = n / 10 + 100;
    const char *code = argc > 3 ? argv[3] : "1+1";
    lp_buf_t *in = lp_buf_new(SIZE_MAX), *out = lp_buf_new(SIZE_MAX);
    uint64_t *rtt = calloc((size_t)n, sizeof(*rtt));
    lp_hs_t hs = {0};
    lp_welcome_t w;
    char session[80];
    json_t *r;
    int fd, rc;

    if (argc < 2)
        die("usage: rtt SOCKET [N] [CODE]");
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
    if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
        connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
        die(strerror(errno));
    lp_hs_client_hello(out, "limpet-bench-rtt", 0, NULL, false);
    if (write(fd, lp_buf_data(out), lp_buf_len(out)) != (ssize_t)lp_buf_len(out))
        die("cannot send hello");
    while ((rc = lp_hs_client_read(&hs, in, &w)) == LP_WIRE_EAGAIN) {
        uint8_t *dst;
        ssize_t k;

        if (lp_buf_reserve(in, 65536, &dst) != 0 || (k = read(fd, dst, 65536)) <= 0)
            die("handshake failed");
        lp_buf_commit(in, (size_t)k);
    }
    if (rc != 0)
        die("refused");
    lp_welcome_clear(&w);
    r = request(fd, in, json_pack("{s:s,s:i}", "op", "clone", "id", 1), NULL, 1);
    snprintf(session, sizeof(session), "%s", json_string_value(json_object_get(r, "session")));
    json_decref(r);
    for (int i = -warm; i < n; i++) {
        int64_t id = 10 + i + warm;
        json_t *h = json_pack("{s:s,s:I,s:s,s:b}", "op", "eval", "id", (json_int_t)id, "session",
                              session, "interactive", 1);
        uint64_t t0 = now_ns();

        r = request(fd, in, h, code, id);
        if (i >= 0)
            rtt[i] = now_ns() - t0;
        json_decref(r);
    }
    qsort(rtt, (size_t)n, sizeof(*rtt), cmp_u64);
    printf("{\"n\": %d, \"median_us\": %.2f, \"p99_us\": %.2f}\n", n, (double)rtt[n / 2] / 1000.0,
           (double)rtt[n * 99 / 100] / 1000.0);
    close(fd);
    lp_buf_free(in);
    lp_buf_free(out);
    free(rtt);
    return 0;
}
