/* loop.c: the broker's one I/O thread: an epoll set over every link's read
 * fd (and its write fd while output waits), reading with the one reader,
 * routing each frame under the broker's lock, flushing writers. */
#include "context/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOOP_EVENTS 64           /* epoll events taken per wait */
#define LOOP_TICK_MS 1000        /* how often stuck output is looked at */
#define LOOP_WAKE UINT64_MAX     /* epoll data of the wake eventfd */
#define LOOP_STACK (256u << 10)  /* the I/O thread's stack: it calls no user code */
#define LOOP_SHRINK (1u << 20)   /* an input buffer grown past this is given back when empty */

/* The routing key of a frame: re, else channel, else none. */
static bool frame_key(const json_t *header, const lp_route_t *rt, int64_t *key)
{
    const json_t *ch;

    if (rt->re >= 0) {
        *key = rt->re;
        return true;
    }
    ch = json_object_get(header, "channel");
    if (json_is_integer(ch)) {
        *key = (int64_t)json_integer_value(ch);
        return true;
    }
    return false;
}

/* A message holding the peeked frame v: its header (a new reference) and a
 * copy of its payload (the input buffer is reused). NULL without memory. */
static lp_broker_msg_t *msg_of(uint32_t link, const lp_frame_view_t *v)
{
    lp_broker_msg_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    if (v->payload_len > 0 && (m->frame.payload = malloc(v->payload_len)) == NULL) {
        free(m);
        return NULL;
    }
    if (v->payload_len > 0)
        memcpy(m->frame.payload, v->payload, v->payload_len);
    m->frame.payload_len = v->payload_len;
    m->frame.header = json_incref(v->header);
    m->link = link;
    return m;
}

/* Routes the whole frames held in l's input (mu not held; a reference
 * held): 0 when they are all out, 1 when the link must pause (events over
 * their bound), or the code that ends the link. */
static int pump(lp_broker_t *b, lp_link_t *l)
{
    for (;;) {
        lp_frame_view_t v;
        lp_route_t rt;
        lp_broker_msg_t *m;
        int64_t key = 0;
        bool has_key, pause;
        int r = lp_reader_peek(&l->reader, &b->cfg.limits, &v, &rt);

        if (r == LP_WIRE_EAGAIN)
            return 0;
        if (r != 0)
            return r;
        has_key = frame_key(v.header, &rt, &key);
        m = msg_of(l->id, &v);
        lp_reader_drop(&l->reader, &v);
        if (m == NULL)
            return LP_WIRE_ENOMEM;
        if (lp_buf_len(l->in) == 0 && lp_buf_max(l->in) > LOOP_SHRINK &&
            m->frame.payload_len > LOOP_SHRINK) {
            /* a large frame grew the buffer: 100 idle links must not keep 64 MiB each */
            lp_buf_t *fresh = lp_buf_new(lp_buf_max(l->in));

            if (fresh != NULL) {
                lp_buf_free(l->in);
                l->in = l->reader.in = fresh;
            }
        }
        pthread_mutex_lock(&b->mu);
        if (b->handler != NULL && !(has_key && lp_route_expected(b, m->link, key))) {
            pthread_mutex_unlock(&b->mu);
            b->handler(b->handler_arg, m); /* no lock held: it may answer */
            continue;
        }
        pause = lp_route_frame(b, m, has_key, key);
        pthread_mutex_unlock(&b->mu);
        if (pause)
            return 1;
    }
}

/* Settles what pump or a read said (under mu): pauses l or ends it. */
static void settle(lp_broker_t *b, lp_link_t *l, int r)
{
    if (r == 1) {
        l->paused = true;
        if ((r = lp_link_arm(b, l)) == 0)
            return;
    }
    if (r == -ECONNRESET)
        r = LP_EEOF;
    else if (r == LP_WIRE_ELIMIT)
        r = LP_WIRE_ETOOLARGE; /* the frame's prefix announced more than the limits */
    if (r != 0)
        lp_link_end(b, l, r, NULL);
}

/* Reads what rfd holds and routes it (under mu). */
static void link_read(lp_broker_t *b, lp_link_t *l)
{
    int r;

    l->refs++;
    pthread_mutex_unlock(&b->mu);
    r = lp_reader_fill(&l->reader, 0);
    if (r == 0)
        r = pump(b, l);
    else if (r == -ETIMEDOUT)
        r = 0; /* not readable after all */
    pthread_mutex_lock(&b->mu);
    settle(b, l, r);
    lp_link_put(b, l);
}

/* Writes what waits in l's queue (under mu); ends a link whose far side
 * has taken nothing for stuck_ms. */
static void link_flush(lp_broker_t *b, lp_link_t *l)
{
    size_t left;
    int r;

    l->refs++;
    pthread_mutex_unlock(&b->mu);
    r = lp_writer_kick(&l->writer);
    left = lp_writer_queued(&l->writer);
    pthread_mutex_lock(&b->mu);
    if (r == -ETIMEDOUT)
        lp_link_end(b, l, r, "the far side read nothing for too long (stuck output)");
    else if (r != 0)
        lp_link_end(b, l, r, NULL);
    else if (left == 0 && l->want_out && !l->sending) {
        l->want_out = false;
        if ((r = lp_link_arm(b, l)) != 0)
            lp_link_end(b, l, r, NULL);
    }
    if (left <= b->cfg.send_max && b->room_waiters > 0)
        pthread_cond_broadcast(&b->room_cv);
    lp_link_put(b, l);
}

/* Reads again the links that were paused, their held frames first (under
 * mu). A link may pause again at once. Walks by id: the table may change
 * while mu is released. */
static void resume_all(lp_broker_t *b)
{
    size_t i;

    b->resume = false;
    for (uint32_t next = 0; (i = lp_link_index(b, next)) < b->nlinks;) {
        lp_link_t *l = b->links[i];
        int r;

        next = l->id + 1;
        if (!l->paused || l->ended)
            continue;
        l->paused = false;
        l->refs++;
        pthread_mutex_unlock(&b->mu);
        r = pump(b, l);
        pthread_mutex_lock(&b->mu);
        if (r == 0 && (r = lp_link_arm(b, l)) != 0)
            lp_link_end(b, l, r, NULL);
        else
            settle(b, l, r);
        lp_link_put(b, l);
    }
}

/* Kicks every link whose output waits (under mu): the writer ends a link
 * stuck for stuck_ms. Returns whether any output still waits. */
static bool tick(lp_broker_t *b)
{
    bool waiting = false;
    size_t i;

    for (uint32_t next = 0; (i = lp_link_index(b, next)) < b->nlinks;) {
        lp_link_t *l = b->links[i];

        next = l->id + 1;
        if (!l->want_out || l->ended)
            continue;
        link_flush(b, l);
        if ((l = lp_link_find(b, next - 1)) != NULL && l->want_out && !l->ended)
            waiting = true;
    }
    return waiting;
}

/* One event of epoll (under mu). */
static void handle(lp_broker_t *b, const struct epoll_event *ev)
{
    uint64_t data = ev->data.u64, n;
    bool wfd = (data >> 32) != 0;
    lp_link_t *l;

    if (data == LOOP_WAKE) {
        if (read(b->wakefd, &n, sizeof(n)) < 0)
            return; /* EAGAIN: another wake was read already */
        return;
    }
    /* by id, not by pointer: a link may have been freed since epoll_wait */
    if ((l = lp_link_find(b, (uint32_t)data)) == NULL || l->ended)
        return;
    if ((ev->events & EPOLLOUT) || (wfd && (ev->events & (EPOLLERR | EPOLLHUP))))
        link_flush(b, l);
    if (!wfd && (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
        (l = lp_link_find(b, (uint32_t)data)) != NULL && !l->ended && !l->paused)
        link_read(b, l);
}

static void *loop(void *arg)
{
    lp_broker_t *b = arg;
    struct epoll_event evs[LOOP_EVENTS];
    uint64_t last_tick = lp_clock_ms();

    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        int n, wait_ms = b->ticking ? LOOP_TICK_MS : -1;

        pthread_mutex_unlock(&b->mu);
        n = epoll_wait(b->epfd, evs, LOOP_EVENTS, wait_ms);
        pthread_mutex_lock(&b->mu);
        for (int i = 0; i < n; i++)
            handle(b, &evs[i]);
        if (b->resume)
            resume_all(b);
        if (b->ticking && lp_clock_ms() - last_tick >= LOOP_TICK_MS) {
            last_tick = lp_clock_ms();
            b->ticking = tick(b);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int lp_loop_start(lp_broker_t *b)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LOOP_WAKE};
    int r;

    if (b->running)
        return 0;
    if (b->epfd < 0 && (b->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return -errno;
    if (b->wakefd < 0) {
        if ((b->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            return -errno;
        if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->wakefd, &ev) != 0) {
            r = -errno;
            close(b->wakefd);
            b->wakefd = -1;
            return r;
        }
    }
    if ((r = lp_thread_spawn(&b->thread, loop, b, LOOP_STACK)) != 0)
        return r;
    b->running = true;
    return 0;
}

void lp_loop_wake(lp_broker_t *b)
{
    uint64_t one = 1;

    if (b->wakefd >= 0 && write(b->wakefd, &one, sizeof(one)) < 0)
        return; /* the counter is full: a wake is pending anyway */
}

void lp_loop_stop(lp_broker_t *b)
{
    bool running;

    pthread_mutex_lock(&b->mu);
    b->stop = true;
    running = b->running;
    b->running = false;
    lp_loop_wake(b);
    pthread_mutex_unlock(&b->mu);
    if (running)
        pthread_join(b->thread, NULL);
}
