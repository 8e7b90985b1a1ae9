/* threading.c: what each threading model costs on the request path.
 *
 * A client process sends a 64-byte request over a Unix socketpair and waits
 * for a 64-byte reply; the server process answers it in one of these ways:
 *   raw       one thread reads and replies (the floor: two wake-ups per trip)
 *   handoff   a reader thread hands the request to an executor thread
 *             (condition variable), which replies
 *   watcher   one thread reads and replies, but registers its socket with a
 *             shared epoll watcher before the work and removes it after (the
 *             design for "execute inline, let a watcher read meanwhile")
 *   follower  one thread reads and replies, but wakes a follower thread on
 *             each request, as leader/followers does to pass on the socket
 *   raw-pipe  raw over two pipes, as a child's stdin and stdout
 * Prints the median and p99 round trip of each, and its ratio to raw, all
 * measured in one run. Build: cc -O2 -pthread threading.c -o threading
 * Usage: pingpong [ROUNDS (max 16)] [ROUND TRIPS] [MODEL: only it and raw] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../timing.h"

#define MSG 64
#define WARMUP 2000

static int iters = 20000;

static int full_read(int fd, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* --- server models ------------------------------------------------------ */

/* Echoes each request from rfd to wfd: one fd for a socket, two for pipes. */
static void echo(int rfd, int wfd)
{
    char buf[MSG];

    while (full_read(rfd, buf, MSG) == 0)
        if (write(wfd, buf, MSG) != MSG)
            return;
}

static void serve_raw(int fd)
{
    echo(fd, fd);
}

struct handoff {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, done, fd;
    char buf[MSG];
};

static void *executor(void *arg)
{
    struct handoff *h = arg;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->pending && !h->done)
            pthread_cond_wait(&h->cv, &h->mu);
        if (h->done)
            break;
        h->pending = 0;
        pthread_mutex_unlock(&h->mu);
        if (write(h->fd, h->buf, MSG) != MSG)
            exit(1);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void serve_handoff(int fd)
{
    struct handoff h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, fd, {0}};
    pthread_t t;
    char buf[MSG];

    pthread_create(&t, NULL, executor, &h);
    while (full_read(fd, buf, MSG) == 0) {
        pthread_mutex_lock(&h.mu);
        memcpy(h.buf, buf, MSG);
        h.pending = 1;
        pthread_cond_signal(&h.cv);
        pthread_mutex_unlock(&h.mu);
    }
    pthread_mutex_lock(&h.mu);
    h.done = 1;
    pthread_cond_signal(&h.cv);
    pthread_mutex_unlock(&h.mu);
    pthread_join(t, NULL);
}

static void *watcher(void *arg)
{
    struct epoll_event ev[8];
    int ep = *(int *)arg;

    for (;;)
        if (epoll_wait(ep, ev, 8, -1) < 0)
            return NULL;
}

static void serve_watcher(int fd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    pthread_t t;
    char buf[MSG];

    pthread_create(&t, NULL, watcher, &ep);
    while (full_read(fd, buf, MSG) == 0) {
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        if (write(fd, buf, MSG) != MSG)
            break;
    }
    _exit(0); /* the watcher sleeps forever */
}

struct follow {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
};

static void *follower(void *arg)
{
    struct follow *f = arg;
    int seen = 0;

    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->turn == seen)
            pthread_cond_wait(&f->cv, &f->mu);
        seen = f->turn;
    }
    return NULL;
}

static void serve_follower(int fd)
{
    struct follow f = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    pthread_t t;
    char buf[MSG];

    pthread_create(&t, NULL, follower, &f);
    while (full_read(fd, buf, MSG) == 0) {
        pthread_mutex_lock(&f.mu);
        f.turn++;
        pthread_cond_signal(&f.cv);
        pthread_mutex_unlock(&f.mu);
        if (write(fd, buf, MSG) != MSG)
            break;
    }
    _exit(0);
}

/* --- client --------------------------------------------------------------- */

struct result {
    const char *name;
    double median_us, p99_us;
};

/* A connected TCP pair over loopback, Nagle off: the raw TCP limit. */
static void tcp_pair(int sv[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    bind(l, (struct sockaddr *)&a, sizeof(a));
    listen(l, 1);
    getsockname(l, (struct sockaddr *)&a, &len);
    sv[0] = socket(AF_INET, SOCK_STREAM, 0);
    connect(sv[0], (struct sockaddr *)&a, sizeof(a));
    sv[1] = accept(l, NULL, NULL);
    close(l);
    setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

enum transport { UNIX, TCP, PIPE };

static struct result run(const char *name, void (*serve)(int), enum transport how)
{
    int sv[2], up[2], down[2], rfd, wfd;   /* pipes: up to the server, down from it */
    uint64_t *rtt = malloc(sizeof(*rtt) * (size_t)iters);
    char buf[MSG] = {0};
    struct result res = {name, 0, 0};
    pid_t pid;

    if (how == PIPE) {
        if (pipe(up) != 0 || pipe(down) != 0)
            exit(1);
        if ((pid = fork()) == 0) {
            close(up[1]);
            close(down[0]);
            echo(up[0], down[1]);
            _exit(0);
        }
        close(up[0]);
        close(down[1]);
        rfd = down[0], wfd = up[1];
    } else {
        if (how == TCP)
            tcp_pair(sv);
        else
            socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
        if ((pid = fork()) == 0) {
            close(sv[0]);
            serve(sv[1]);
            _exit(0);
        }
        close(sv[1]);
        rfd = wfd = sv[0];
    }
    for (int i = -WARMUP; i < iters; i++) {
        uint64_t t0 = now_ns();

        if (write(wfd, buf, MSG) != MSG || full_read(rfd, buf, MSG) != 0)
            exit(1);
        if (i >= 0)
            rtt[i] = now_ns() - t0;
    }
    close(rfd);
    if (wfd != rfd)
        close(wfd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    qsort(rtt, (size_t)iters, sizeof(*rtt), cmp_u64);
    res.median_us = (double)rtt[iters / 2] / 1000.0;
    res.p99_us = (double)rtt[iters * 99 / 100] / 1000.0;
    free(rtt);
    return res;
}

int main(int argc, char **argv)
{
    struct { const char *name; void (*serve)(int); enum transport how; } models[] = {
        {"raw", serve_raw, UNIX}, {"handoff", serve_handoff, UNIX},
        {"watcher", serve_watcher, UNIX}, {"follower", serve_follower, UNIX},
        {"raw-tcp", serve_raw, TCP}, {"raw-pipe", NULL, PIPE},
    };
    enum { N_MODELS = sizeof(models) / sizeof(models[0]) };
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    const char *only = argc > 3 ? argv[3] : NULL;   /* one model, and raw to compare */
    struct result all[N_MODELS][16];

    if (argc > 2)
        iters = atoi(argv[2]);
    if (rounds < 1 || rounds > 16 || iters < 1)
        return 2;
    /* interleave rounds so that drift in machine load hits every model alike */
    for (int r = 0; r < rounds; r++)
        for (int m = 0; m < N_MODELS; m++)
            if (only == NULL || m == 0 || strcmp(only, models[m].name) == 0)
                all[m][r] = run(models[m].name, models[m].serve, models[m].how);
    printf("%-10s %12s %12s %10s   (%d rounds x %d round trips, 64-byte messages)\n",
           "model", "median us", "p99 us", "vs raw", rounds, iters);
    for (int m = 0; m < N_MODELS; m++) {
        double med[16], p99[16];

        if (only != NULL && m != 0 && strcmp(only, models[m].name) != 0)
            continue;
        for (int r = 0; r < rounds; r++) {
            med[r] = all[m][r].median_us;
            p99[r] = all[m][r].p99_us;
        }
        /* median over rounds of each round's median */
        for (int i = 0; i < rounds; i++)
            for (int j = i + 1; j < rounds; j++) {
                if (med[j] < med[i]) { double x = med[i]; med[i] = med[j]; med[j] = x; }
                if (p99[j] < p99[i]) { double x = p99[i]; p99[i] = p99[j]; p99[j] = x; }
            }
        all[m][0].median_us = med[rounds / 2];
        all[m][0].p99_us = p99[rounds / 2];
    }
    for (int m = 0; m < N_MODELS; m++)
        if (only == NULL || m == 0 || strcmp(only, models[m].name) == 0)
            printf("%-10s %12.1f %12.1f %9.2fx\n", models[m].name, all[m][0].median_us,
               all[m][0].p99_us, all[m][0].median_us / all[0][0].median_us);
    return 0;
}
