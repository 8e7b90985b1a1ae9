/* rawbulk.c: the raw limit for bulk transfer: 10 MB through a Unix
 * socketpair from a child process, in 64 KiB writes, read in 64 KiB reads
 * and dropped, as bench/rtt's client drops limpet's output.
 *
 *   rawbulk [--pipe] [ROUNDS]    prints the median MB/s of ROUNDS (default 20) as JSON
 *
 * --pipe: through a pipe (a second pipe carries the requests), as a child's stdout is read.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

#define TOTAL 10000000
#define CHUNK 65536

/* The link: mine[0] reads what the child writes on its[1]; mine[1] asks, its[0] hears. */
static int link_open(int pipes, int mine[2], int its[2])
{
    int sv[2], req[2], data[2];

    if (!pipes) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            return -1;
        mine[0] = mine[1] = sv[0];
        its[0] = its[1] = sv[1];
        return 0;
    }
    if (pipe(req) != 0 || pipe(data) != 0)
        return -1;
    mine[0] = data[0], mine[1] = req[1];
    its[0] = req[0], its[1] = data[1];
    return 0;
}

int main(int argc, char **argv)
{
    int pipes = argc > 1 && strcmp(argv[1], "--pipe") == 0;
    int rounds = argc > 1 + pipes ? atoi(argv[1 + pipes]) : 20, mine[2], its[2];
    uint64_t *ns = calloc((size_t)(rounds > 0 ? rounds : 1), sizeof(*ns));
    static char buf[CHUNK];
    pid_t pid;

    if (rounds <= 0 || ns == NULL || link_open(pipes, mine, its) != 0)
        return 2;
    if ((pid = fork()) == 0) { /* the writer: a round each time it is asked */
        close(mine[0]);
        if (mine[1] != mine[0])
            close(mine[1]);
        while (read(its[0], buf, 1) == 1)
            for (size_t sent = 0; sent < TOTAL;) {
                size_t n = TOTAL - sent < CHUNK ? TOTAL - sent : CHUNK;
                ssize_t w = write(its[1], buf, n);

                if (w <= 0)
                    _exit(1);
                sent += (size_t)w;
            }
        _exit(0);
    }
    close(its[0]);
    if (its[1] != its[0])
        close(its[1]);
    for (int r = -2; r < rounds; r++) { /* two rounds of warm-up */
        uint64_t t0 = now_ns();
        size_t got = 0;
        ssize_t n;

        if (write(mine[1], "g", 1) != 1)
            return 1;
        while (got < TOTAL && (n = read(mine[0], buf, CHUNK)) > 0)
            got += (size_t)n;
        if (r >= 0)
            ns[r] = now_ns() - t0;
    }
    close(mine[0]);
    if (mine[1] != mine[0])
        close(mine[1]);
    waitpid(pid, NULL, 0);
    printf("{\"mb_per_s\": %.0f}\n", (double)TOTAL / (quantile_us(ns, (size_t)rounds, 0.5)));
    free(ns);
    return 0;
}
