/* park.c: a connection set aside while its run has nothing for it
 * (docs/serve.md, "Threads"): suspended (MHD_suspend_connection), and
 * resumed exactly once by the first of: the run's watcher (lp_run_watch,
 * from the broker's thread), the timer (a stream's keep-alive), the stop.
 * No thread blocks per waiting request. Lock order: a run's lock, then
 * h->park_mu, then libmicrohttpd's own. */
#include "http/internal.h"

#include <stdlib.h>
#include <time.h>

#include "io/io.h"

#define STOP_ANSWER_MS 1000 /* at a stop, how long resumed requests get to answer */

/* Resumes p (under park_mu, p parked). */
static void resume_locked(lp_http_t *h, lp_http_park_t *p)
{
    p->parked = false;
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        h->parked = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
    MHD_resume_connection(p->c);
}

/* The watcher: the run has something (under the run's lock). */
static void wake(void *arg)
{
    lp_http_park_t *p = arg;
    lp_http_t *h = p->h;

    pthread_mutex_lock(&h->park_mu);
    if (p->parked)
        resume_locked(h, p);
    pthread_mutex_unlock(&h->park_mu);
}

bool lp_http_park(lp_http_park_t *p, lp_http_t *h, struct MHD_Connection *c, lp_run_t *r,
                  uint64_t since, uint64_t deadline_ms)
{
    pthread_mutex_lock(&h->park_mu);
    if (h->park_closed) {
        pthread_mutex_unlock(&h->park_mu);
        return false;
    }
    p->h = h;
    p->c = c;
    p->r = r;
    p->deadline_ms = deadline_ms;
    p->parked = true;
    p->prev = NULL;
    p->next = h->parked;
    if (h->parked != NULL)
        h->parked->prev = p;
    h->parked = p;
    if (deadline_ms < h->timer_next) /* sooner than the timer wakes: tell it */
        pthread_cond_signal(&h->park_cv);
    /* Suspended before it is watched: the watcher always finds it so. */
    MHD_suspend_connection(c);
    pthread_mutex_unlock(&h->park_mu);
    p->w = (lp_run_watch_t){.since = since, .fn = wake, .arg = p};
    if (lp_run_watch(r, &p->w) == 1) /* it came meanwhile */
        wake(p);
    return true;
}

void lp_http_unpark(lp_http_park_t *p)
{
    lp_http_t *h = p->h;

    if (p->r == NULL)
        return;
    lp_run_unwatch(p->r, &p->w);
    pthread_mutex_lock(&h->park_mu);
    if (p->parked) /* only at a stop: libmicrohttpd closes it without resuming */
        resume_locked(h, p);
    pthread_mutex_unlock(&h->park_mu);
    p->r = NULL;
}

/* The timer: resumes the parked connections whose deadline passed. */
static void *timer_main(void *arg)
{
    lp_http_t *h = arg;

    pthread_mutex_lock(&h->park_mu);
    while (!h->park_closed) {
        uint64_t now = lp_clock_ms(), next = LP_CLOCK_NEVER;

        for (lp_http_park_t *p = h->parked, *n; p != NULL; p = n) {
            n = p->next;
            if (p->deadline_ms <= now)
                resume_locked(h, p);
            else if (p->deadline_ms < next)
                next = p->deadline_ms;
        }
        h->timer_next = next;
        lp_clock_cond_wait(&h->park_cv, &h->park_mu, next);
    }
    pthread_mutex_unlock(&h->park_mu);
    return NULL;
}

int lp_http_park_start(lp_http_t *h)
{
    int rc;

    pthread_mutex_init(&h->park_mu, NULL);
    if ((rc = lp_clock_cond_init(&h->park_cv)) != 0) {
        pthread_mutex_destroy(&h->park_mu);
        return rc;
    }
    h->timer_next = LP_CLOCK_NEVER;
    if ((rc = lp_thread_spawn(&h->timer, timer_main, h, 64 << 10)) != 0) {
        pthread_cond_destroy(&h->park_cv);
        pthread_mutex_destroy(&h->park_mu);
        return rc;
    }
    h->park_started = true;
    return 0;
}

void lp_http_park_close(lp_http_t *h)
{
    uint64_t deadline = lp_clock_deadline(STOP_ANSWER_MS);
    struct timespec ts = {0, 5 * 1000 * 1000};

    if (!h->park_started)
        return;
    pthread_mutex_lock(&h->park_mu);
    h->park_closed = true; /* no more parking: libmicrohttpd may stop */
    while (h->parked != NULL)
        resume_locked(h, h->parked);
    pthread_cond_signal(&h->park_cv);
    pthread_mutex_unlock(&h->park_mu);
    pthread_join(h->timer, NULL);
    /* The resumed requests answer (503), and their answers are sent (counted until
     * libmicrohttpd says they completed), before libmicrohttpd closes them. */
    while (atomic_load(&h->waiting) > 0 && lp_clock_left_ms(deadline) > 0)
        nanosleep(&ts, NULL);
}

void lp_http_park_free(lp_http_t *h)
{
    if (!h->park_started)
        return;
    pthread_cond_destroy(&h->park_cv);
    pthread_mutex_destroy(&h->park_mu);
}

enum MHD_Result lp_http_wait(lp_http_req_t *rq, struct MHD_Connection *c, lp_run_t *r,
                             lp_http_done_t done)
{
    rq->waiting = r;
    rq->done = done;
    rq->counted = true;
    atomic_fetch_add(&rq->h->waiting, 1);
    return lp_http_wait_again(rq, c);
}

enum MHD_Result lp_http_wait_again(lp_http_req_t *rq, struct MHD_Connection *c)
{
    lp_run_t *r = rq->waiting;
    enum MHD_Result ret;
    bool ended;

    lp_http_unpark(&rq->park);
    /* Output does not wake this wait (nothing is ever past UINT64_MAX):
     * only the run's end. Parking is refused only once the server stops. */
    ended = lp_run_ended(r);
    if (!ended && lp_http_park(&rq->park, rq->h, c, r, UINT64_MAX, LP_CLOCK_NEVER))
        return MHD_YES; /* called again once it ends */
    rq->waiting = NULL; /* still counted: a stop waits until its answer is sent */
    ret = rq->done(rq, c, r, ended);
    lp_run_unref(r);
    return ret;
}

void lp_http_wait_drop(lp_http_req_t *rq)
{
    if (rq->waiting != NULL) {
        lp_http_unpark(&rq->park);
        lp_run_unref(rq->waiting);
        rq->waiting = NULL;
    }
    if (rq->counted) { /* completed: its answer was sent, or its connection closed */
        rq->counted = false;
        atomic_fetch_sub(&rq->h->waiting, 1);
    }
}
