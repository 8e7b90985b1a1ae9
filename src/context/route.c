/* route.c: where a frame from a far side goes (broker.h): to the thread
 * that expects its key, woken on its own condition variable, or to the one
 * event queue; and the calls that register, wait and forget. */
#include "context/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What one queued event counts against events_max: its payload, and a
 * share for the record and header, so that empty frames count too. */
#define EVENT_OVERHEAD 512u

static size_t event_cost(const lp_broker_msg_t *m)
{
    return m->frame.payload_len + EVENT_OVERHEAD;
}

static size_t bucket(const lp_broker_t *b, uint32_t link, int64_t key)
{
    uint64_t x = ((uint64_t)link << 40) ^ (uint64_t)key;

    x *= 0x9E3779B97F4A7C15ull; /* Fibonacci hashing: the high bits are well mixed */
    return (size_t)(x >> 32) & (b->waiters_cap - 1);
}

/* The slot that points at the waiter for (link, key), or at the NULL that
 * ends its chain (under mu; the table exists). */
static lp_waiter_t **waiter_slot(lp_broker_t *b, uint32_t link, int64_t key)
{
    lp_waiter_t **p = &b->waiters[bucket(b, link, key)];

    while (*p != NULL && ((*p)->link != link || (*p)->key != key))
        p = &(*p)->next;
    return p;
}

static lp_waiter_t *waiter_find(lp_broker_t *b, uint32_t link, int64_t key)
{
    return b->waiters_cap == 0 ? NULL : *waiter_slot(b, link, key);
}

static void waiter_free(lp_waiter_t *w)
{
    lp_broker_msg_free(w->head);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* Doubles the table when it is as full as it is wide (under mu). */
static int waiters_grow(lp_broker_t *b)
{
    size_t old = b->waiters_cap, cap = old ? old * 2 : 64;
    lp_waiter_t **t, **prev = b->waiters;

    if (b->nwaiters < old)
        return 0;
    if ((t = calloc(cap, sizeof(*t))) == NULL)
        return LP_WIRE_ENOMEM;
    b->waiters = t;
    b->waiters_cap = cap;
    for (size_t i = 0; i < old; i++) {
        for (lp_waiter_t *w = prev[i], *next; w != NULL; w = next) {
            next = w->next;
            w->next = NULL;
            *waiter_slot(b, w->link, w->key) = w;
        }
    }
    free(prev);
    return 0;
}

int lp_broker_expect(lp_broker_t *b, uint32_t link, int64_t key)
{
    lp_waiter_t *w = calloc(1, sizeof(*w));
    int r;

    if (w == NULL)
        return LP_WIRE_ENOMEM;
    if ((r = lp_clock_cond_init(&w->cv)) != 0) {
        free(w);
        return r;
    }
    w->link = link;
    w->key = key;
    w->tail = &w->head;
    pthread_mutex_lock(&b->mu);
    if (waiter_find(b, link, key) != NULL)
        r = -EEXIST;
    else if ((r = waiters_grow(b)) == 0) {
        *waiter_slot(b, link, key) = w;
        b->nwaiters++;
    }
    pthread_mutex_unlock(&b->mu);
    if (r != 0)
        waiter_free(w);
    return r;
}

/* 0 while link lives; else its end code and reason (under mu). */
static int link_state(lp_broker_t *b, uint32_t link, char *reason)
{
    lp_link_t *l = lp_link_find(b, link);

    if (l != NULL && !l->ended)
        return 0;
    if (l != NULL) {
        memcpy(reason, l->reason, LP_BROKER_REASON_MAX);
        return l->err;
    }
    lp_link_reason(-ECANCELED, reason); /* closed here (or before a fork) */
    return -ECANCELED;
}

int lp_broker_state(lp_broker_t *b, uint32_t link, char *reason)
{
    int r;

    pthread_mutex_lock(&b->mu);
    r = link_state(b, link, reason);
    pthread_mutex_unlock(&b->mu);
    return r;
}

int lp_broker_wait(lp_broker_t *b, uint32_t link, int64_t key, int timeout_ms,
                   lp_broker_msg_t **out, char *reason)
{
    uint64_t deadline = lp_clock_deadline(timeout_ms);
    lp_waiter_t *w;
    bool late = false;
    int r;

    *out = NULL;
    reason[0] = '\0';
    pthread_mutex_lock(&b->mu);
    if ((w = waiter_find(b, link, key)) == NULL) {
        pthread_mutex_unlock(&b->mu);
        return -ENOENT;
    }
    for (;;) {
        if (w->head != NULL) {
            *out = w->head;
            w->head = NULL;
            w->tail = &w->head;
            r = 0;
            break;
        }
        if (w->forgotten) {
            r = -ENOENT;
            break;
        }
        if ((r = link_state(b, link, reason)) != 0)
            break;
        if (late) {
            r = -ETIMEDOUT;
            break;
        }
        w->sleepers++;
        late = lp_clock_cond_wait(&w->cv, &b->mu, deadline) == -ETIMEDOUT;
        w->sleepers--;
    }
    if (w->forgotten && w->sleepers == 0)
        waiter_free(w);
    pthread_mutex_unlock(&b->mu);
    return r;
}

void lp_broker_forget(lp_broker_t *b, uint32_t link, int64_t key)
{
    lp_waiter_t **p, *w;

    pthread_mutex_lock(&b->mu);
    if (b->waiters_cap > 0 && (w = *(p = waiter_slot(b, link, key))) != NULL) {
        *p = w->next;
        b->nwaiters--;
        if (w->sleepers == 0) {
            waiter_free(w);
        } else {
            /* its sleepers see it, and the last one frees it */
            w->forgotten = true;
            lp_broker_msg_free(w->head);
            w->head = NULL;
            w->tail = &w->head;
            pthread_cond_broadcast(&w->cv);
        }
    }
    pthread_mutex_unlock(&b->mu);
}

/* Appends m to the event queue and wakes the service thread (under mu). */
static void event_post(lp_broker_t *b, lp_broker_msg_t *m)
{
    m->next = NULL;
    m->seq = ++b->ev_seq;
    *b->ev_tail = m;
    b->ev_tail = &m->next;
    b->ev_bytes += event_cost(m);
    pthread_cond_signal(&b->ev_cv);
}

bool lp_route_expected(lp_broker_t *b, uint32_t link, int64_t key)
{
    return waiter_find(b, link, key) != NULL;
}

bool lp_route_frame(lp_broker_t *b, lp_broker_msg_t *m, bool has_key, int64_t key)
{
    lp_waiter_t *w = has_key ? waiter_find(b, m->link, key) : NULL;

    if (w == NULL) {
        event_post(b, m);
        return b->ev_bytes > b->cfg.events_max;
    }
    m->next = NULL;
    m->seq = b->ev_seq;
    *w->tail = m;
    w->tail = &m->next;
    pthread_cond_signal(&w->cv); /* the one wake-up of this reply */
    return false;
}

void lp_route_end(lp_broker_t *b, lp_broker_msg_t *m)
{
    for (size_t i = 0; i < b->waiters_cap; i++)
        for (lp_waiter_t *w = b->waiters[i]; w != NULL; w = w->next)
            if (w->link == m->link)
                pthread_cond_broadcast(&w->cv);
    event_post(b, m);
}

int lp_broker_next_event(lp_broker_t *b, int timeout_ms, lp_broker_msg_t **ev)
{
    uint64_t deadline = lp_clock_deadline(timeout_ms);
    bool late = false;
    lp_broker_msg_t *m;

    *ev = NULL;
    pthread_mutex_lock(&b->mu);
    while (b->ev_head == NULL && !late)
        late = lp_clock_cond_wait(&b->ev_cv, &b->mu, deadline) == -ETIMEDOUT;
    if ((m = b->ev_head) != NULL) {
        if ((b->ev_head = m->next) == NULL)
            b->ev_tail = &b->ev_head;
        m->next = NULL;
        b->ev_bytes -= event_cost(m);
        /* links paused for this queue are read again once half of it is gone */
        if (b->ev_bytes + event_cost(m) > b->cfg.events_max / 2 &&
            b->ev_bytes <= b->cfg.events_max / 2) {
            b->resume = true;
            lp_loop_wake(b);
        }
    }
    pthread_mutex_unlock(&b->mu);
    *ev = m;
    return m != NULL ? 0 : -ETIMEDOUT;
}

void lp_route_free_all(lp_broker_t *b)
{
    for (size_t i = 0; i < b->waiters_cap; i++) {
        for (lp_waiter_t *w = b->waiters[i], *next; w != NULL; w = next) {
            next = w->next;
            waiter_free(w);
        }
    }
    free(b->waiters);
    b->waiters = NULL;
    b->waiters_cap = b->nwaiters = 0;
    lp_broker_msg_free(b->ev_head);
    b->ev_head = NULL;
    b->ev_tail = &b->ev_head;
    b->ev_bytes = 0;
}
