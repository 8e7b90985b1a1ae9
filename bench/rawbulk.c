/* rawbulk.c: the raw limit for bulk transfer: 10 MB through a Unix
 * socketpair from a child process, in 64 KiB writes, read in 64 KiB reads
 * and dropped, as bench/rtt's client drops limpet's output.
 *
 *   rawbulk [ROUNDS]    prints the median MB/s of ROUNDS (default 20) as JSON
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "timing.h"

#define TOTAL 10000000
#define CHUNK 65536

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20, sv[2];
    uint64_t *ns = calloc((size_t)(rounds > 0 ? rounds : 1), sizeof(*ns));
    static char buf[CHUNK];
    pid_t pid;

    if (rounds <= 0 || ns == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 2;
    if ((pid = fork()) == 0) { /* the writer: a round each time it is asked */
        close(sv[0]);
        while (read(sv[1], buf, 1) == 1)
            for (size_t sent = 0; sent < TOTAL;) {
                size_t n = TOTAL - sent < CHUNK ? TOTAL - sent : CHUNK;
                ssize_t w = write(sv[1], buf, n);

                if (w <= 0)
                    _exit(1);
                sent += (size_t)w;
            }
        _exit(0);
    }
    close(sv[1]);
    for (int r = -2; r < rounds; r++) { /* two rounds of warm-up */
        uint64_t t0 = now_ns();
        size_t got = 0;
        ssize_t n;

        if (write(sv[0], "g", 1) != 1)
            return 1;
        while (got < TOTAL && (n = read(sv[0], buf, CHUNK)) > 0)
            got += (size_t)n;
        if (r >= 0)
            ns[r] = now_ns() - t0;
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    printf("{\"mb_per_s\": %.0f}\n", (double)TOTAL / (quantile_us(ns, (size_t)rounds, 0.5)));
    free(ns);
    return 0;
}
