/* timing.h: what the bench programs share: a monotonic clock in ns and
 * sorting of samples for medians and percentiles. */
#ifndef LP_BENCH_TIMING_H
#define LP_BENCH_TIMING_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Sorts the n samples and returns the q-quantile (0.5: median), in us. */
static inline double quantile_us(uint64_t *v, size_t n, double q)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    return (double)v[(size_t)((double)n * q)] / 1000.0;
}

#endif
