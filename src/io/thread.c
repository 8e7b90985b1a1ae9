/* thread.c: the one thread spawner (io.h). */
#include "io/io.h"

#include <errno.h>
#include <limits.h>

int lp_thread_spawn(pthread_t *t, void *(*fn)(void *), void *arg, size_t stack_size)
{
    pthread_attr_t attr;
    pthread_t ignored;
    int r;

    if (fn == NULL)
        return -EINVAL;
    if ((r = pthread_attr_init(&attr)) != 0)
        return -r;
    if (t == NULL)
        r = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (r == 0 && stack_size > 0)
        r = pthread_attr_setstacksize(&attr, stack_size < (size_t)PTHREAD_STACK_MIN
                                                 ? (size_t)PTHREAD_STACK_MIN : stack_size);
    if (r == 0)
        r = pthread_create(t != NULL ? t : &ignored, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return -r;
}
