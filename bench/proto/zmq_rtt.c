/* zmq_rtt.c: the floor of one ZeroMQ hop in C, for docs/jupyter.md: a
 * DEALER in this process sends a 6-part message the size of an
 * execute_request to a ROUTER in a forked child (tcp loopback, or ipc),
 * which sends it straight back; N round trips, median and p90 in us.
 * Also the same with the ROUTER answering from a second thread fed over
 * an inproc PAIR (what a kernel whose zmq thread hands requests to a
 * client thread would pay).
 *
 *   zmq_rtt [N] [tcp|ipc] [inproc]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Relays every multipart message from a to b. */
static void relay(void *a, void *b)
{
    zmq_msg_t m;
    int more;
    do {
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, a, 0) < 0)
            exit(0);
        more = zmq_msg_more(&m);
        zmq_msg_send(&m, b, more ? ZMQ_SNDMORE : 0);
    } while (more);
}

static void *ctx_g;

static void *worker(void *arg)
{
    (void)arg;
    void *p = zmq_socket(ctx_g, ZMQ_PAIR);
    zmq_connect(p, "inproc://w");
    for (;;)
        relay(p, p);
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    const char *tr = argc > 2 ? argv[2] : "tcp";
    int hand = argc > 3 && strcmp(argv[3], "inproc") == 0;
    char ep[128];
    if (strcmp(tr, "ipc") == 0)
        snprintf(ep, sizeof ep, "ipc:///tmp/zmq_rtt.%d", (int)getpid());
    else
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", 20000 + getpid() % 20000);
    pid_t child = fork();
    if (child == 0) {
        void *ctx = zmq_ctx_new();
        void *r = zmq_socket(ctx, ZMQ_ROUTER);
        if (zmq_bind(r, ep) != 0)
            return 1;
        if (hand) {
            pthread_t t;
            ctx_g = ctx;
            void *p = zmq_socket(ctx, ZMQ_PAIR);
            zmq_bind(p, "inproc://w");
            pthread_create(&t, NULL, worker, NULL);
            for (;;) {
                relay(r, p);
                relay(p, r);
            }
        }
        for (;;)
            relay(r, r);
    }
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    zmq_connect(d, ep);
    char hdr[200], pad[64], body[120];
    memset(hdr, 'h', sizeof hdr), memset(pad, '0', sizeof pad), memset(body, 'c', sizeof body);
    double *xs = calloc((size_t)n, sizeof *xs);
    for (int i = -200; i < n; i++) {
        double t0 = now();
        zmq_send(d, "<IDS|MSG>", 9, ZMQ_SNDMORE);
        zmq_send(d, pad, sizeof pad, ZMQ_SNDMORE);
        zmq_send(d, hdr, sizeof hdr, ZMQ_SNDMORE);
        zmq_send(d, "{}", 2, ZMQ_SNDMORE);
        zmq_send(d, "{}", 2, ZMQ_SNDMORE);
        zmq_send(d, body, sizeof body, 0);
        char buf[512];
        int more;
        size_t sz = sizeof more;
        do {
            zmq_recv(d, buf, sizeof buf, 0);
            zmq_getsockopt(d, ZMQ_RCVMORE, &more, &sz);
        } while (more);
        if (i >= 0)
            xs[i] = now() - t0;
    }
    qsort(xs, (size_t)n, sizeof *xs, cmp);
    printf("libzmq DEALER->ROUTER echo %s%s n=%d median %.1f us p90 %.1f us\n", tr,
           hand ? " (+inproc hand-off to a 2nd thread)" : "", n, xs[n / 2] * 1e6,
           xs[n * 9 / 10] * 1e6);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
