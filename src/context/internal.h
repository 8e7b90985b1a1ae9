/* internal.h: the broker's state, shared by its files: broker.c (links and
 * the API), route.c (waiters, events, where a frame goes), loop.c (the I/O
 * thread). One mutex, mu, guards everything below it; it is never held
 * across a read, a wait for the pipe, or a call out. */
#ifndef LP_CONTEXT_INTERNAL_H
#define LP_CONTEXT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "context/broker.h"
#include "io/io.h"

/* One link. Its fds are closed (and its reader and writer freed) once it
 * has ended and no thread uses it outside mu (refs == 0); the record is
 * freed when its owner closes it as well. */
typedef struct lp_link {
    uint32_t id;               /* never reused */
    int rfd, wfd;              /* owned; -1 once closed; equal for a socket */
    lp_buf_t *in;              /* what was read, not yet routed (the I/O thread's) */
    lp_reader_t reader;        /* over rfd and in */
    lp_writer_t writer;        /* over wfd */
    bool writer_ok;            /* writer initialized, not yet destroyed */
    int refs;                  /* threads using fds, reader or writer without mu */
    bool ended;                /* err and reason are set; nothing more is read */
    bool owner_closed;         /* lp_broker_close was called: free once released */
    bool paused;               /* not read: events are over their bound, or frames wait in in */
    bool want_out;             /* output is queued: watch wfd for room */
    uint32_t rmask, wmask;     /* what epoll watches on rfd and wfd (0: not registered) */
    bool sending;              /* a sender holds the turn on writer */
    lp_broker_msg_t *end_msg;  /* made with the link, so that posting its end cannot fail */
    int err;                   /* the end code */
    char reason[LP_BROKER_REASON_MAX]; /* the end reason */
} lp_link_t;

/* A thread's registration for one key of one link. */
typedef struct lp_waiter {
    struct lp_waiter *next;    /* hash chain */
    uint32_t link;             /* with key: what it waits for */
    int64_t key;
    pthread_cond_t cv;         /* signalled once per frame queued, and at the link's end */
    lp_broker_msg_t *head;     /* queued frames, oldest first */
    lp_broker_msg_t **tail;    /* where the next one goes */
    int sleepers;              /* threads inside lp_broker_wait on it */
    bool forgotten;            /* out of the table: the last sleeper frees it */
} lp_waiter_t;

struct lp_broker {
    pthread_mutex_t mu;        /* guards everything below */
    lp_broker_config_t cfg;    /* bounds, fixed at creation */
    lp_link_t **links;         /* live link records, sorted by id */
    size_t nlinks, links_cap;
    uint32_t next_id;          /* the next link's id */
    lp_waiter_t **waiters;     /* hash table of waiters, waiters_cap buckets (a power of 2) */
    size_t nwaiters, waiters_cap;
    lp_broker_msg_t *ev_head;  /* the event queue, oldest first */
    lp_broker_msg_t **ev_tail;
    size_t ev_bytes;           /* payload bytes in the event queue */
    uint64_t ev_seq;           /* events posted so far */
    pthread_cond_t ev_cv;      /* an event was queued */
    pthread_cond_t room_cv;    /* a link's queue went below send_max, a turn was given
                                  back, or a link ended */
    int room_waiters;          /* senders waiting on room_cv */
    int epfd;                  /* the I/O thread's epoll set; -1 until it starts */
    int wakefd;                /* eventfd: the I/O thread has something to look at */
    pthread_t thread;          /* the I/O thread, once running */
    bool running;              /* the I/O thread was started */
    bool stop;                 /* lp_broker_free: the I/O thread leaves */
    bool resume;               /* some link is paused and may be read again */
    bool ticking;              /* the I/O thread wakes every second (output is stuck) */
    lp_broker_handler_t handler; /* frames no waiter expects, or NULL: the event queue */
    void *handler_arg;
};

/* broker.c */
/* The index of the first link whose id is id or more (under mu). */
size_t lp_link_index(lp_broker_t *b, uint32_t id);
/* The link with id, or NULL (under mu). */
lp_link_t *lp_link_find(lp_broker_t *b, uint32_t id);
/* Ends l with err and a reason (under mu): nothing more is read from it,
 * its waiters wake, its end event is posted. Does nothing if it ended. */
void lp_link_end(lp_broker_t *b, lp_link_t *l, int err, const char *reason);
/* Drops a reference taken under mu (under mu); closes the fds of an ended
 * link nobody uses and frees the record once its owner closed it too. */
void lp_link_put(lp_broker_t *b, lp_link_t *l);
/* Makes epoll watch what l needs now (under mu): rfd unless ended or
 * paused, wfd while output waits. 0 or -errno. */
int lp_link_arm(lp_broker_t *b, lp_link_t *l);
/* The text for an end code. */
void lp_link_reason(int err, char reason[LP_BROKER_REASON_MAX]);

/* route.c */
/* Queues m (a frame of m->link, routing key key, or has_key false) for its
 * waiter or as an event; returns true when events are over their bound
 * (the caller pauses the link). Under mu; takes m. */
bool lp_route_frame(lp_broker_t *b, lp_broker_msg_t *m, bool has_key, int64_t key);
/* True when a waiter expects key on link (under mu). */
bool lp_route_expected(lp_broker_t *b, uint32_t link, int64_t key);
/* Posts m (an end) to the event queue and wakes link's waiters. Under mu. */
void lp_route_end(lp_broker_t *b, lp_broker_msg_t *m);
/* Frees every waiter and event (lp_broker_free). */
void lp_route_free_all(lp_broker_t *b);

/* loop.c */
/* Starts the I/O thread if it is not running (under mu). 0 or -errno. */
int lp_loop_start(lp_broker_t *b);
/* Wakes the I/O thread (any thread, mu held or not). */
void lp_loop_wake(lp_broker_t *b);
/* Stops and joins the I/O thread (mu not held). */
void lp_loop_stop(lp_broker_t *b);

#endif
