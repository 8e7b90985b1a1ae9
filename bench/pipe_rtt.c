/* pipe_rtt.c: the raw limit of a round trip to a child over a pipe pair:
 * the parent writes 64 bytes, the child reads them and writes them back.
 * No framing, no threads: what bench/broker_rtt.py compares the broker to.
 *
 *   pipe_rtt [N]   N round trips (default 5000) after N/10 of warm-up;
 *                  prints the median and p99 in microseconds, as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

#define MSG 64

static int full_read(int fd, char *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);

        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000, to[2], from[2];
    uint64_t *ns = calloc((size_t)(n > 0 ? n : 1), sizeof(*ns));
    char buf[MSG] = {0};
    pid_t pid;

    if (n <= 0 || ns == NULL || pipe(to) != 0 || pipe(from) != 0)
        return 1;
    if ((pid = fork()) == 0) {
        close(to[1]);
        close(from[0]);
        while (full_read(to[0], buf, MSG) == 0 && write(from[1], buf, MSG) == MSG)
            ;
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    for (int i = -n / 10; i < n; i++) {
        uint64_t t0 = now_ns();

        if (write(to[1], buf, MSG) != MSG || full_read(from[0], buf, MSG) != 0)
            return 1;
        if (i >= 0)
            ns[i] = now_ns() - t0;
    }
    close(to[1]);
    waitpid(pid, NULL, 0);
    printf("{\"n\": %d, \"median_us\": %.2f, ", n, quantile_us(ns, (size_t)n, 0.5));
    printf("\"p99_us\": %.2f}\n", quantile_us(ns, (size_t)n, 0.99));
    free(ns);
    return 0;
}
