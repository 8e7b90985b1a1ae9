/* broker.c: the broker's links and its API (broker.h): adding, sending,
 * ending, closing; the table of links; fork. */
#include "context/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The bytes of the largest frame the limits allow, prefix included. */
static size_t frame_max(const lp_broker_config_t *cfg)
{
    return LP_WIRE_PREFIX_LEN + (size_t)cfg->limits.header_max + cfg->limits.payload_max;
}

void lp_broker_msg_free(lp_broker_msg_t *m)
{
    while (m != NULL) {
        lp_broker_msg_t *next = m->next;

        lp_frame_clear(&m->frame);
        free(m);
        m = next;
    }
}

int lp_broker_new(const lp_broker_config_t *cfg, lp_broker_t **out)
{
    static const lp_broker_config_t defaults = LP_BROKER_CONFIG_DEFAULT;
    lp_broker_t *b = calloc(1, sizeof(*b));
    int r;

    *out = NULL;
    if (b == NULL)
        return LP_WIRE_ENOMEM;
    b->cfg = cfg != NULL ? *cfg : defaults;
    b->next_id = 1;
    b->epfd = b->wakefd = -1;
    b->ev_tail = &b->ev_head;
    if ((r = lp_clock_cond_init(&b->ev_cv)) != 0) {
        free(b);
        return r;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->room_cv, NULL);
    *out = b;
    return 0;
}

/* Closes l's fds and frees its reader and writer (under mu; refs == 0). */
static void link_close_fds(lp_broker_t *b, lp_link_t *l)
{
    l->want_out = false;
    lp_link_arm(b, l); /* ended: epoll lets go of both before they close */
    if (l->wfd >= 0 && l->wfd != l->rfd)
        close(l->wfd);
    if (l->rfd >= 0)
        close(l->rfd);
    l->rfd = l->wfd = -1;
    if (l->writer_ok)
        lp_writer_destroy(&l->writer);
    l->writer_ok = false;
    lp_buf_free(l->in);
    l->in = NULL;
}

static void link_free(lp_link_t *l)
{
    lp_broker_msg_free(l->end_msg);
    free(l);
}

size_t lp_link_index(lp_broker_t *b, uint32_t id)
{
    size_t lo = 0, hi = b->nlinks;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (b->links[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

lp_link_t *lp_link_find(lp_broker_t *b, uint32_t id)
{
    size_t i = lp_link_index(b, id);

    return i < b->nlinks && b->links[i]->id == id ? b->links[i] : NULL;
}

/* Closes the fds of an ended link nobody uses; frees the record once its
 * owner closed it too (under mu). l may be gone on return. */
static void link_release_if_idle(lp_broker_t *b, lp_link_t *l)
{
    size_t i;

    if (!l->ended || l->refs > 0)
        return;
    if (l->rfd >= 0 || l->wfd >= 0 || l->in != NULL)
        link_close_fds(b, l);
    if (!l->owner_closed)
        return;
    i = lp_link_index(b, l->id);
    memmove(&b->links[i], &b->links[i + 1], (b->nlinks - i - 1) * sizeof(*b->links));
    b->nlinks--;
    link_free(l);
}

void lp_link_put(lp_broker_t *b, lp_link_t *l)
{
    l->refs--;
    link_release_if_idle(b, l);
}

void lp_link_reason(int err, char reason[LP_BROKER_REASON_MAX])
{
    if (err == LP_EEOF)
        snprintf(reason, LP_BROKER_REASON_MAX, "the far side closed the link");
    else if (err == -ECANCELED)
        snprintf(reason, LP_BROKER_REASON_MAX, "the link was closed here");
    else if (lp_wire_err_code(err) != NULL)
        snprintf(reason, LP_BROKER_REASON_MAX, "protocol error: %s (%s)", lp_wire_err_code(err),
                 lp_wire_strerror(err));
    else
        snprintf(reason, LP_BROKER_REASON_MAX, "%s", lp_wire_strerror(err));
}

void lp_link_end(lp_broker_t *b, lp_link_t *l, int err, const char *reason)
{
    lp_broker_msg_t *m = l->end_msg;

    if (l->ended)
        return;
    l->ended = true;
    l->err = err;
    if (reason != NULL)
        snprintf(l->reason, sizeof(l->reason), "%s", reason);
    else
        lp_link_reason(err, l->reason);
    if (l->writer_ok)
        lp_writer_kill(&l->writer); /* a sender inside it fails at once */
    lp_link_arm(b, l);
    l->end_msg = NULL;
    m->link = l->id;
    m->err = err;
    memcpy(m->reason, l->reason, sizeof(m->reason));
    lp_route_end(b, m);
    if (b->room_waiters > 0)
        pthread_cond_broadcast(&b->room_cv);
    link_release_if_idle(b, l);
}

/* Makes epoll watch want on fd (registered for *cur now) with data. */
static int watch(lp_broker_t *b, int fd, uint32_t *cur, uint32_t want, uint64_t data)
{
    struct epoll_event ev = {.events = want, .data.u64 = data};
    int op = *cur == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

    if (want == *cur)
        return 0;
    if (epoll_ctl(b->epfd, op, fd, &ev) != 0)
        return -errno;
    *cur = want;
    return 0;
}

int lp_link_arm(lp_broker_t *b, lp_link_t *l)
{
    uint32_t r = !l->ended && !l->paused && l->rfd >= 0 ? EPOLLIN : 0;
    uint32_t w = !l->ended && l->want_out && l->wfd >= 0 ? EPOLLOUT : 0;
    int e;

    if (b->epfd < 0)
        return 0;
    if (l->rfd == l->wfd)
        return watch(b, l->rfd, &l->rmask, r | w, l->id);
    if ((e = watch(b, l->rfd, &l->rmask, r, l->id)) != 0)
        return e;
    return watch(b, l->wfd, &l->wmask, w, (uint64_t)l->id | (1ull << 32));
}

/* A new link record over rfd and wfd holding initial (not yet in the
 * table): 0 or a negative code, with nothing left allocated. */
static int link_new(lp_broker_t *b, int rfd, int wfd, const void *initial, size_t n,
                    lp_link_t **out)
{
    lp_link_t *l = calloc(1, sizeof(*l));
    int r = LP_WIRE_ENOMEM;

    if (l == NULL)
        return r;
    l->rfd = rfd;
    l->wfd = wfd;
    if ((l->end_msg = calloc(1, sizeof(*l->end_msg))) == NULL ||
        (l->in = lp_buf_new(frame_max(&b->cfg))) == NULL ||
        (r = lp_buf_put(l->in, initial, n)) != 0 ||
        (r = lp_writer_init(&l->writer, wfd, b->cfg.send_max + frame_max(&b->cfg),
                            b->cfg.stuck_ms)) != 0) {
        lp_buf_free(l->in);
        link_free(l);
        return r;
    }
    l->writer_ok = true;
    l->reader = (lp_reader_t){.fd = rfd, .in = l->in};
    l->paused = true; /* the I/O thread parses initial first, then watches rfd */
    *out = l;
    return 0;
}

/* Appends l to the table (ids only grow: the end keeps it sorted). */
static int links_append(lp_broker_t *b, lp_link_t *l)
{
    if (b->nlinks == b->links_cap) {
        size_t cap = b->links_cap ? b->links_cap * 2 : 16;
        lp_link_t **p = realloc(b->links, cap * sizeof(*p));

        if (p == NULL)
            return LP_WIRE_ENOMEM;
        b->links = p;
        b->links_cap = cap;
    }
    b->links[b->nlinks++] = l;
    return 0;
}

int lp_broker_add(lp_broker_t *b, int rfd, int wfd, const void *initial, size_t n,
                  uint32_t *link)
{
    lp_link_t *l = NULL;
    int r;

    if (rfd < 0 || wfd < 0 || fcntl(rfd, F_GETFD) < 0 || fcntl(wfd, F_GETFD) < 0 ||
        n > frame_max(&b->cfg) || (n > 0 && initial == NULL))
        return LP_WIRE_EINVAL;
    if ((r = link_new(b, rfd, wfd, initial, n, &l)) != 0)
        return r;
    pthread_mutex_lock(&b->mu);
    if (b->next_id == 0)
        r = -EMFILE; /* 2^32 - 1 links in one process */
    if (r == 0 && (r = lp_loop_start(b)) == 0 && (r = links_append(b, l)) == 0) {
        /* children started later must not hold the link open */
        fcntl(rfd, F_SETFD, FD_CLOEXEC);
        fcntl(wfd, F_SETFD, FD_CLOEXEC);
        l->id = *link = b->next_id++;
        b->resume = true;
        lp_loop_wake(b);
    }
    pthread_mutex_unlock(&b->mu);
    if (r != 0) {
        lp_writer_destroy(&l->writer);
        lp_buf_free(l->in);
        link_free(l);
    }
    return r;
}

/* The code for a link that is not in the table: closed, or never made. */
static int gone_err(lp_broker_t *b, uint32_t id)
{
    return id != 0 && id < b->next_id ? -ECANCELED : -ENOENT;
}

/* Waits (under mu, holding a reference) for l's turn to write and for
 * room in its queue: 0, or l's end code. The I/O thread (a handler's
 * answer) never waits for room: only it makes room, so it would wait for
 * itself, and every link with it; it gets -EAGAIN. */
static int send_turn(lp_broker_t *b, lp_link_t *l)
{
    while (!l->ended && (l->sending || lp_writer_queued(&l->writer) > b->cfg.send_max)) {
        if (!l->sending && b->running && pthread_equal(pthread_self(), b->thread))
            return -EAGAIN;
        b->room_waiters++;
        pthread_cond_wait(&b->room_cv, &b->mu);
        b->room_waiters--;
    }
    return l->ended ? l->err : 0;
}

int lp_broker_send(lp_broker_t *b, uint32_t link, const void *data, size_t n)
{
    lp_link_t *l;
    int r;

    if (n > frame_max(&b->cfg))
        return LP_WIRE_ETOOLARGE; /* more than the writer's hard maximum could take */
    pthread_mutex_lock(&b->mu);
    if ((l = lp_link_find(b, link)) == NULL) {
        r = gone_err(b, link);
        pthread_mutex_unlock(&b->mu);
        return r;
    }
    l->refs++;
    if ((r = send_turn(b, l)) == 0) {
        l->sending = true;
        pthread_mutex_unlock(&b->mu);
        r = lp_writer_write(&l->writer, data, n, false);
        bool congested = r == 0 && lp_writer_congested(&l->writer);
        pthread_mutex_lock(&b->mu);
        l->sending = false;
        if (b->room_waiters > 0)
            pthread_cond_broadcast(&b->room_cv);
        if (r != 0) {
            lp_link_end(b, l, r, NULL);
            r = l->err;
        } else if (congested && !l->want_out) {
            l->want_out = true; /* the I/O thread writes the rest when the pipe has room */
            if ((r = lp_link_arm(b, l)) != 0)
                lp_link_end(b, l, r, NULL);
            if (!b->ticking) {
                b->ticking = true; /* the I/O thread also counts how long it is stuck */
                lp_loop_wake(b);
            }
        }
    }
    lp_link_put(b, l);
    pthread_mutex_unlock(&b->mu);
    return r;
}

/* The owner is done with l: end it here if it has not ended, free it once no
 * thread uses it (under mu). */
static void link_close(lp_broker_t *b, lp_link_t *l)
{
    l->owner_closed = true;
    if (l->ended)
        link_release_if_idle(b, l);
    else
        lp_link_end(b, l, -ECANCELED, NULL);
}

void lp_broker_close(lp_broker_t *b, uint32_t link)
{
    lp_link_t *l;

    pthread_mutex_lock(&b->mu);
    if ((l = lp_link_find(b, link)) != NULL && !l->owner_closed)
        link_close(b, l);
    pthread_mutex_unlock(&b->mu);
}

void lp_broker_free(lp_broker_t *b)
{
    if (b == NULL)
        return;
    lp_loop_stop(b);
    pthread_mutex_lock(&b->mu);
    while (b->nlinks > 0)
        link_close(b, b->links[0]);
    pthread_mutex_unlock(&b->mu);
    lp_route_free_all(b);
    if (b->epfd >= 0)
        close(b->epfd);
    if (b->wakefd >= 0)
        close(b->wakefd);
    free(b->links);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->ev_cv);
    pthread_cond_destroy(&b->room_cv);
    free(b);
}

void lp_broker_fork_prepare(lp_broker_t *b)
{
    pthread_mutex_lock(&b->mu); /* the child then sees the table whole */
}

void lp_broker_fork_parent(lp_broker_t *b)
{
    pthread_mutex_unlock(&b->mu);
}

void lp_broker_fork_child(lp_broker_t *b)
{
    /* Only this thread exists here. The fds are the child's copies: closing
     * them ends nothing in the parent, and the parent's epoll set is left
     * alone (no epoll_ctl: the child shares that set with the parent). */
    for (size_t i = 0; i < b->nlinks; i++) {
        lp_link_t *l = b->links[i];

        if (l->wfd >= 0 && l->wfd != l->rfd)
            close(l->wfd);
        if (l->rfd >= 0)
            close(l->rfd);
    }
    if (b->epfd >= 0)
        close(b->epfd);
    if (b->wakefd >= 0)
        close(b->wakefd);
    /* everything else stays allocated and locked: a parent thread may have
     * held a writer's lock or slept on a condition variable in it */
}

uint32_t lp_broker_next_id(lp_broker_t *b)
{
    return b->next_id;
}

void lp_broker_first_id(lp_broker_t *b, uint32_t id)
{
    pthread_mutex_lock(&b->mu);
    if (b->nlinks == 0 && id > b->next_id)
        b->next_id = id;
    pthread_mutex_unlock(&b->mu);
}

void lp_broker_set_handler(lp_broker_t *b, lp_broker_handler_t fn, void *arg)
{
    pthread_mutex_lock(&b->mu);
    b->handler = fn;
    b->handler_arg = arg;
    pthread_mutex_unlock(&b->mu);
}
