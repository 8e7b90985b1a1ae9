/* writer.c: an ordered, bounded output queue over any descriptor
 * (writer.h). Every send under the lock is non-blocking; only a blocking
 * writer waits, in poll(), with the lock released. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/io.h"
#include "wire/wire.h"

int lp_writer_init(lp_writer_t *w, int fd, size_t pending_max, int timeout_ms)
{
    struct stat st;
    int flags;

    w->fd = fd;
    w->wake_fd = -1;
    w->socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    if (!w->socket) {
        /* a pipe: write() must not block (sockets use MSG_DONTWAIT), and
         * kill needs a way into poll (shutdown() does nothing to a pipe) */
        if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
            (w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            return -errno;
    }
    w->timeout_ms = timeout_ms;
    w->busy = w->dead = false;
    w->stuck_since = 0;
    if ((w->pending = lp_buf_new(pending_max)) == NULL) {
        if (w->wake_fd >= 0)
            close(w->wake_fd);
        return LP_WIRE_ENOMEM;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    return 0;
}

void lp_writer_destroy(lp_writer_t *w)
{
    if (w == NULL || w->pending == NULL)
        return;
    lp_buf_free(w->pending);
    w->pending = NULL;
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->wake_fd = -1;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* write() to a pipe without SIGPIPE: the signal is blocked in this thread
 * around the call, and one that the call raised is taken back, so that a
 * closed reader is -EPIPE here and never kills the host. */
static ssize_t pipe_write(int fd, const void *p, size_t n)
{
    sigset_t pipe, old, pending;
    ssize_t k;
    int e;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;

    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    k = write(fd, p, n);
    e = errno;
    if (k < 0 && e == EPIPE && !was_pending) {
        const struct timespec zero = {0, 0};

        while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return k;
}

/* Writes what the descriptor takes now: the bytes written (0 when it is
 * full), or a negative errno. */
static long put_some(lp_writer_t *w, const void *p, size_t n)
{
    ssize_t k;

    do
        k = w->socket ? send(w->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT) : pipe_write(w->fd, p, n);
    while (k < 0 && errno == EINTR);
    if (k >= 0)
        return (long)k;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

/* Marks w dead (under mu) and wakes every writer. Returns err. */
static int fail_locked(lp_writer_t *w, int err)
{
    uint64_t one = 1;

    if (!w->dead && w->socket)
        shutdown(w->fd, SHUT_RDWR);
    else if (!w->dead && w->wake_fd >= 0 && write(w->wake_fd, &one, sizeof(one)) < 0)
        err = err != 0 ? err : -errno; /* cannot happen: the counter is far from full */
    w->dead = true;
    lp_buf_reset(w->pending);
    pthread_cond_broadcast(&w->cv);
    return err;
}

/* Writes queued bytes without blocking (under mu): 0 when the queue is
 * empty, 1 when the descriptor is full, or a negative errno. */
static int drain_locked(lp_writer_t *w)
{
    while (lp_buf_len(w->pending) > 0) {
        long k = put_some(w, lp_buf_data(w->pending), lp_buf_len(w->pending));

        if (k < 0)
            return (int)k;
        if (k == 0) {
            if (w->stuck_since == 0)
                w->stuck_since = lp_clock_ms();
            return 1;
        }
        lp_buf_consume(w->pending, (size_t)k);
        w->stuck_since = 0;
    }
    return 0;
}

/* The non-blocking write (under mu): what does not go now is queued. */
static int write_nowait_locked(lp_writer_t *w, const uint8_t *p, size_t len)
{
    int r = 0;

    /* straight out only when nobody is ahead of us */
    if (!w->busy && (r = drain_locked(w)) == 0) {
        long k = put_some(w, p, len);

        if (k < 0)
            return fail_locked(w, (int)k);
        p += k;
        len -= (size_t)k;
    }
    if (r < 0)
        return fail_locked(w, r);
    if (len > 0 && (r = lp_buf_put(w->pending, p, len)) != 0)
        return fail_locked(w, r); /* its peer has read nothing for a long time */
    if (len > 0 && w->stuck_since == 0)
        w->stuck_since = lp_clock_ms();
    return 0;
}

/* Waits (mu released) until fd takes bytes: 0, -ETIMEDOUT, -EPIPE. */
static int wait_writable_unlocked(lp_writer_t *w)
{
    struct pollfd p[2] = {{w->fd, POLLOUT, 0}, {w->wake_fd, POLLIN, 0}};
    int n;

    pthread_mutex_unlock(&w->mu);
    do
        n = poll(p, w->wake_fd >= 0 ? 2 : 1, w->timeout_ms);
    while (n < 0 && errno == EINTR);
    pthread_mutex_lock(&w->mu);
    if (w->dead)
        return -EPIPE;
    if (n == 0)
        return -ETIMEDOUT;
    return n < 0 ? -errno : 0;
}

/* The blocking write (under mu, holding the turn): first what was queued
 * before us, then all of ours, never anything in the middle of ours. */
static int write_wait_locked(lp_writer_t *w, const uint8_t *p, size_t len)
{
    bool ours = false; /* the queue ahead of us is out; ours has begun */
    int r;

    for (;;) {
        if (!ours) {
            if ((r = drain_locked(w)) < 0)
                return r;
            ours = r == 0;
        }
        while (ours && len > 0) {
            long k = put_some(w, p, len);

            if (k <= 0) {
                if (k < 0)
                    return (int)k;
                break;
            }
            p += k;
            len -= (size_t)k;
        }
        if (ours && len == 0)
            return drain_locked(w) < 0 ? -EPIPE : 0; /* what others queued meanwhile, if it goes */
        if ((r = wait_writable_unlocked(w)) != 0)
            return r;
    }
}

int lp_writer_write(lp_writer_t *w, const void *data, size_t len, bool wait)
{
    int r;

    pthread_mutex_lock(&w->mu);
    if (w->dead) {
        r = -EPIPE;
    } else if (!wait) {
        r = write_nowait_locked(w, data, len);
    } else {
        while (w->busy && !w->dead)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->dead) {
            r = -EPIPE;
        } else {
            w->busy = true;
            r = write_wait_locked(w, data, len);
            w->busy = false;
            if (r != 0)
                fail_locked(w, r);
            pthread_cond_broadcast(&w->cv);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return r;
}

int lp_writer_kick(lp_writer_t *w)
{
    int r = 0;

    pthread_mutex_lock(&w->mu);
    if (w->dead)
        r = -EPIPE;
    else if (!w->busy && (r = drain_locked(w)) < 0)
        fail_locked(w, r);
    else if (r == 1 && w->timeout_ms >= 0 && lp_clock_ms() - w->stuck_since >= (uint64_t)w->timeout_ms)
        r = fail_locked(w, -ETIMEDOUT); /* its peer reads nothing */
    pthread_mutex_unlock(&w->mu);
    return r < 0 ? r : 0;
}

bool lp_writer_congested(lp_writer_t *w)
{
    bool c;

    pthread_mutex_lock(&w->mu);
    c = w->busy || lp_buf_len(w->pending) > 0;
    pthread_mutex_unlock(&w->mu);
    return c;
}

void lp_writer_kill(lp_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    fail_locked(w, -EPIPE);
    pthread_mutex_unlock(&w->mu);
}

size_t lp_writer_queued(lp_writer_t *w)
{
    size_t n;

    pthread_mutex_lock(&w->mu);
    n = lp_buf_len(w->pending);
    pthread_mutex_unlock(&w->mu);
    return n;
}

bool lp_writer_dead(lp_writer_t *w)
{
    bool d;

    pthread_mutex_lock(&w->mu);
    d = w->dead;
    pthread_mutex_unlock(&w->mu);
    return d;
}
