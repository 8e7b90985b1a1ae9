/* clock.c: the one clock (io.h). */
#include "io/io.h"

#include <errno.h>
#include <limits.h>
#include <time.h>

uint64_t lp_clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t lp_clock_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t lp_clock_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
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

int lp_clock_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int r;

    if ((r = pthread_condattr_init(&a)) != 0)
        return -r;
    if ((r = pthread_condattr_setclock(&a, CLOCK_MONOTONIC)) == 0)
        r = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return -r;
}

int lp_clock_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline)
{
    struct timespec until;
    int left = lp_clock_left_ms(deadline);

    if (left < 0)
        return -pthread_cond_wait(cv, mu);
    if (left == 0)
        return -ETIMEDOUT;
    /* the coarse clock decides whether time is left; the wait itself is on
     * the precise one, which the coarse one trails by a tick at most */
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += left / 1000;
    until.tv_nsec += (long)(left % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(cv, mu, &until) == ETIMEDOUT && lp_clock_left_ms(deadline) == 0
               ? -ETIMEDOUT
               : 0;
}
