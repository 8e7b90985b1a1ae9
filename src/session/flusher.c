/* flusher.c: sends output that has waited LP_FLUSH_MS, so that a burst of
 * small writes leaves in a few frames and the last of it is never held back
 * waiting for a write that does not come. */
#include <time.h>

#include "session/internal.h"

void lp_flusher_request(lp_session_t *s)
{
    lp_server_t *srv = s->srv;

    lp_session_ref(s);
    pthread_mutex_lock(&srv->mu);
    s->flush_next = srv->flush_list;
    srv->flush_list = s;
    if (s->flush_next == NULL)
        pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

/* Puts s (whose reference moves with it) back on the list for the next
 * tick. */
static void retry(lp_session_t *s)
{
    lp_server_t *srv = s->srv;

    pthread_mutex_lock(&srv->mu);
    s->flush_next = srv->flush_list;
    srv->flush_list = s;
    pthread_mutex_unlock(&srv->mu);
}

/* Flushes and releases every session on list. */
static void flush_all(lp_session_t *list)
{
    while (list != NULL) {
        lp_session_t *s = list;

        list = s->flush_next;
        if (lp_session_try_flush(s) != LP_WIRE_EBUSY) {
            pthread_mutex_lock(&s->qmu);
            s->flush_pending = false;
            pthread_mutex_unlock(&s->qmu);
            lp_session_unref(s);
        } else {
            retry(s); /* its own thread is sending: later */
        }
    }
}

void *lp_flusher_main(void *arg)
{
    lp_server_t *srv = arg;
    const struct timespec wait = {0, LP_FLUSH_MS * 1000000L};

    lp_conn_thread_never_blocks(); /* it serves every client */
    pthread_mutex_lock(&srv->mu);
    for (;;) {
        lp_session_t *list;
        bool kick;

        while (srv->flush_list == NULL && !srv->kick && !srv->stopping)
            pthread_cond_wait(&srv->cv, &srv->mu);
        if (srv->flush_list == NULL && !srv->kick)
            break;
        pthread_mutex_unlock(&srv->mu);
        nanosleep(&wait, NULL); /* let the burst gather */
        pthread_mutex_lock(&srv->mu);
        list = srv->flush_list;
        srv->flush_list = NULL;
        kick = srv->kick;
        srv->kick = false;
        pthread_mutex_unlock(&srv->mu);
        flush_all(list);
        if (kick && lp_conn_kick_all(srv)) {
            pthread_mutex_lock(&srv->mu);
            srv->kick = true; /* still queued: try again next tick */
            pthread_mutex_unlock(&srv->mu);
        }
        pthread_mutex_lock(&srv->mu);
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}
