/* watcher.c: while a connection's thread runs an evaluation, the watcher
 * reads that connection's socket, so that an interrupt, the answer to an
 * input() or a ping is served at once; other requests wait for the eval.
 * One epoll thread per server. It is lazy, to keep system calls off the
 * request path: a starting eval is only put on a list (a mutex, no system
 * call); the watcher, ticking every LP_WATCH_LAZY_MS while evals come,
 * adds the socket to its epoll set once the eval has run that long. Short
 * evals never touch epoll (docs/architecture.md, docs/performance.md).
 *
 * srv->wmu guards the list only. The watcher serves a connection with the
 * lock released, the connection pinned (c->wpins), so that taking the GIL
 * for an interrupt never holds up another connection's eval; its sends
 * never block (lp_conn_thread_never_blocks), so a client that reads
 * nothing costs only itself. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "session/internal.h"
#include "wire/msg.h"
#include "wire/ops.h"

#define WATCH_EVENTS 16 /* events taken per epoll_wait */

/* Is c registered? The caller holds srv->wmu. */
static bool is_watched(lp_server_t *srv, lp_conn_t *c)
{
    for (lp_conn_t *w = srv->watched; w != NULL; w = w->wnext)
        if (w == c)
            return true;
    return false;
}

/* Takes c for the calling thread: waits until no other thread serves it.
 * The caller holds srv->wmu. */
static void pin(lp_server_t *srv, lp_conn_t *c)
{
    while (c->wpins > 0)
        pthread_cond_wait(&srv->wcv, &srv->wmu);
    c->wpins++;
}

/* Gives c back. The caller holds srv->wmu. */
static void unpin(lp_server_t *srv, lp_conn_t *c)
{
    c->wpins--;
    pthread_cond_broadcast(&srv->wcv);
}

/* Serves every complete frame in c->in. The caller has c to itself: c is
 * pinned, or not on the watched list yet. */
static int serve_buffered(lp_conn_t *c, void *tls)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;

    if (c->text)
        return lp_text_watch_serve(c, tls);
    for (;;) {
        lp_frame_t f = {0};
        int r = lp_frame_decode(c->in, &lim, &f);

        if (r == LP_WIRE_EAGAIN)
            return 0;
        if (r != 0) {
            lp_conn_send_error(c, r, -1, NULL, NULL);
            return r;
        }
        lp_watch_serve(c, &f, tls);
    }
}

/* The client left, or broke the protocol, while its eval runs: stop
 * reading, and interrupt the eval (its output has nowhere to go). */
static void drop_peer(lp_conn_t *c, void *tls)
{
    lp_server_t *srv = c->srv;

    if (c->polled)
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->polled = false;
    c->no_poll = true;
    c->peer_gone = true;
    lp_writer_kill(&c->out);
    if (c->running != NULL)
        lp_session_interrupt(c->running, -1, c, tls);
}

/* The client shut down its sending side (Ctrl+D, `nc -N`): no more
 * requests, but it still reads. Stop watching; the eval goes on, and an
 * input() that waits gets end of input. */
static void peer_done_sending(lp_conn_t *c)
{
    if (c->polled)
        epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->polled = false;
    c->no_poll = true;
    if (c->running != NULL)
        lp_session_give_input(c->running, NULL, 0, true);
}

/* Reads what is waiting on c's socket and serves it. events: from epoll;
 * EPOLLHUP means both directions are closed, the client is gone. */
static void on_readable(lp_conn_t *c, uint32_t events, void *tls)
{
    if (c->peer_gone || !c->polled)
        return;
    if (events & (EPOLLHUP | EPOLLERR)) {
        drop_peer(c, tls);
        return;
    }
    for (;;) {
        int r = lp_conn_fill(c, 0);

        if (r == -ETIMEDOUT) /* all read */
            return;
        if (r == -ECONNRESET) {
            serve_buffered(c, tls);
            peer_done_sending(c);
            return;
        }
        if (r != 0 || serve_buffered(c, tls) != 0) {
            drop_peer(c, tls); /* over the frame limit, or broken */
            return;
        }
    }
}

/* Adds c's socket to the epoll set (its eval has run LP_WATCH_LAZY_MS). */
static void poll_conn(lp_conn_t *c)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};

    if (c->polled || c->no_poll || c->wpins > 0)
        return;
    if (epoll_ctl(c->srv->epfd, EPOLL_CTL_ADD, c->fd, &ev) == 0)
        c->polled = true;
    else
        c->no_poll = true;
}

/* Wakes the watcher if it sleeps longer than a tick: it must tick while
 * evals run. One eventfd write after an idle spell, none in a busy one. */
static void wake_watcher(lp_server_t *srv)
{
    uint64_t one = 1;

    if (srv->watcher_asleep) {
        srv->watcher_asleep = false;
        if (write(srv->wwake_fd, &one, sizeof(one)) != sizeof(one))
            return; /* a full eventfd counter: it is awake anyway */
    }
}

void lp_watch(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;

    /* requests that came in with the eval (an interrupt sent right after
     * it) are served now, by this thread, before the watcher can see c */
    if (lp_buf_len(c->in) > 0 && serve_buffered(c, c->tls) != 0)
        drop_peer(c, c->tls);
    pthread_mutex_lock(&srv->wmu);
    c->watched = true;
    c->wnext = srv->watched;
    srv->watched = c;
    c->watch_since = lp_clock_ms();
    srv->watch_busy_until = c->watch_since + LP_WATCH_IDLE_MS;
    wake_watcher(srv);
    pthread_mutex_unlock(&srv->wmu);
}

void lp_watch_poke(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;
    bool go;

    pthread_mutex_lock(&srv->wmu);
    go = c->watched && !c->peer_gone;
    if (go)
        pin(srv, c);
    pthread_mutex_unlock(&srv->wmu);
    if (!go)
        return;
    if (lp_buf_len(c->in) > 0 && serve_buffered(c, NULL) != 0)
        drop_peer(c, NULL);
    pthread_mutex_lock(&srv->wmu);
    unpin(srv, c);
    pthread_mutex_unlock(&srv->wmu);
}

void lp_unwatch(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;

    pthread_mutex_lock(&srv->wmu);
    for (lp_conn_t **p = &srv->watched; *p != NULL; p = &(*p)->wnext) {
        if (*p == c) {
            *p = c->wnext;
            break;
        }
    }
    c->watched = false;
    while (c->wpins > 0) /* the watcher is serving c: it soon lets go */
        pthread_cond_wait(&srv->wcv, &srv->wmu);
    if (c->polled)
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->polled = false;
    pthread_mutex_unlock(&srv->wmu);
}

/* When the eval running on c was first interrupted, or 0. */
static uint64_t interrupted_at(lp_conn_t *c)
{
    uint64_t at = 0;

    if (c->running != NULL) {
        pthread_mutex_lock(&c->running->qmu);
        at = c->running->intr_at_ms;
        pthread_mutex_unlock(&c->running->qmu);
    }
    return at;
}

/* When the first interrupted eval of a watched connection runs out of
 * grace, as an epoll_wait timeout in ms (-1: none is waiting). The caller
 * holds srv->wmu. */
static int next_deadline(lp_server_t *srv)
{
    uint64_t now = lp_clock_ms();
    int timeout = now < srv->watch_busy_until ? LP_WATCH_LAZY_MS : -1;

    for (lp_conn_t *c = srv->watched; c != NULL; c = c->wnext) {
        uint64_t at = interrupted_at(c), due;

        if (at == 0)
            continue;
        due = at + (uint64_t)srv->grace_ms;
        if (due <= now)
            return 0;
        if (timeout < 0 || due - now < (uint64_t)timeout)
            timeout = (int)(due - now);
    }
    return timeout;
}

/* The eval on c was interrupted and is still stuck past its grace period
 * (a blocking call no interrupt reaches): the session gets its reply and
 * is free again, the eval goes on as a job, and a new thread takes over
 * the connection. c is pinned, srv->wmu not held. 0 when c went to that
 * new thread (the caller must not touch it again), or -1 when the eval
 * ended meanwhile (c stays pinned). */
static int detach(lp_conn_t *c)
{
    lp_server_t *srv = c->srv;
    lp_engine_t *e = &srv->engine;
    lp_session_t *s = c->running;
    int64_t re, job;

    if (srv->wtls == NULL || (job = e->detach(e->ctx, srv->wtls, c->tls, s->data)) < 0)
        return -1; /* it ended meanwhile: nothing to do */
    lp_session_ref(s); /* for the job's thread, which still writes to s */
    pthread_mutex_lock(&srv->wmu);
    for (lp_conn_t **p = &srv->watched; *p != NULL; p = &(*p)->wnext) {
        if (*p == c) {
            *p = c->wnext;
            break;
        }
    }
    if (c->polled)
        epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->watched = false;
    c->polled = false;
    unpin(srv, c); /* nobody else waits for c: its old thread never comes back to it */
    pthread_mutex_unlock(&srv->wmu);
    c->running = NULL;
    c->tls = NULL; /* the job's thread keeps its own; the next one makes one */
    pthread_mutex_lock(&s->qmu);
    re = s->cur_re;
    pthread_mutex_unlock(&s->qmu);
    lp_session_end(s);
    lp_session_reply_done(s, re, "detached", job);
    lp_session_answer_interrupts(s, c);
    if (lp_conn_resume(c) != 0)
        drop_peer(c, NULL);
    return 0;
}

/* Polls the sockets of evals that ran LP_WATCH_LAZY_MS; detaches every
 * eval whose grace has run out, with srv->wmu released meanwhile. The
 * caller holds srv->wmu. */
static void tick(lp_server_t *srv)
{
    uint64_t now = lp_clock_ms();

    for (lp_conn_t *w = srv->watched; w != NULL; w = w->wnext)
        if (now - w->watch_since >= LP_WATCH_LAZY_MS)
            poll_conn(w);
    srv->ticks++;
    for (;;) {
        lp_conn_t *due = NULL;

        for (lp_conn_t *c = srv->watched; c != NULL && due == NULL; c = c->wnext) {
            uint64_t at = interrupted_at(c);

            if (at != 0 && at + (uint64_t)srv->grace_ms <= now && c->wpins == 0 &&
                c->detach_tick != srv->ticks)
                due = c;
        }
        if (due == NULL)
            return;
        due->detach_tick = srv->ticks; /* once a tick: its eval may be ending */
        pin(srv, due);
        pthread_mutex_unlock(&srv->wmu);
        if (detach(due) == 0) { /* due is no longer ours */
            pthread_mutex_lock(&srv->wmu);
            continue;
        }
        pthread_mutex_lock(&srv->wmu);
        unpin(srv, due);
    }
}

static bool watcher_stopping(lp_server_t *srv)
{
    bool stop;

    pthread_mutex_lock(&srv->mu);
    stop = srv->stopping;
    pthread_mutex_unlock(&srv->mu);
    return stop;
}

void *lp_watcher_main(void *arg)
{
    lp_server_t *srv = arg;
    lp_engine_t *e = &srv->engine;
    struct epoll_event ev[WATCH_EVENTS];

    lp_conn_thread_never_blocks(); /* it serves every client */
    if (e->thread_enter(e->ctx, &srv->wtls) != 0)
        srv->wtls = NULL; /* interrupts then only reach input() waits */
    for (;;) {
        int timeout, n;

        pthread_mutex_lock(&srv->wmu);
        timeout = next_deadline(srv);
        /* not ticking: a new eval must wake it, or its socket would wait
         * until this timeout (an interrupted eval's grace, up to 1 s) */
        srv->watcher_asleep = timeout < 0 || timeout > LP_WATCH_LAZY_MS;
        pthread_mutex_unlock(&srv->wmu);
        n = epoll_wait(srv->epfd, ev, WATCH_EVENTS, timeout);
        pthread_mutex_lock(&srv->wmu);
        srv->watcher_asleep = false;
        tick(srv);
        pthread_mutex_unlock(&srv->wmu);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        for (int i = 0; i < n; i++) {
            lp_conn_t *c = ev[i].data.ptr;
            bool mine;

            if (c == NULL) { /* the eventfd: evals began after a quiet spell, or stop */
                uint64_t count;

                if (read(srv->wwake_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
                    goto out;
                if (watcher_stopping(srv))
                    goto out;
                continue;
            }
            pthread_mutex_lock(&srv->wmu);
            mine = is_watched(srv, c); /* else its eval ended meanwhile: not ours */
            if (mine)
                pin(srv, c);
            pthread_mutex_unlock(&srv->wmu);
            if (!mine)
                continue;
            on_readable(c, ev[i].events, srv->wtls);
            pthread_mutex_lock(&srv->wmu);
            unpin(srv, c);
            pthread_mutex_unlock(&srv->wmu);
        }
    }
out:
    if (srv->wtls != NULL)
        e->thread_exit(e->ctx, srv->wtls);
    return NULL;
}
