/* clock.c: the one clock (io.h). */
#include "io/io.h"

#include <limits.h>
#include <time.h>

uint64_t lp_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t lp_clock_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? LP_CLOCK_NEVER : lp_clock_ms() + (uint64_t)timeout_ms;
}

int lp_clock_left_ms(uint64_t deadline)
{
    uint64_t now;

    if (deadline == LP_CLOCK_NEVER)
        return -1;
    now = lp_clock_ms();
    if (now >= deadline)
        return 0;
    return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}
