/* broker.h: the caller's side of execution contexts: one broker per process
 * multiplexes every context's link (a pipe pair to a child, or one socket)
 * on ONE I/O thread (epoll), and hands each reply straight to the thread
 * that waits for it (docs/architecture.md, "The context broker").
 *
 * A link starts after the handshake (done by the caller on the raw fds).
 * Frames from the far side are routed by a key: their `re` field when it
 * is an integer, else their `channel` field when it is an integer, else
 * none. A frame whose key a thread expects (lp_broker_expect) goes to that
 * waiter's queue and wakes it (its own condition variable: one wake-up per
 * reply); every other frame, and every link end, goes to the one event
 * queue (lp_broker_next_event).
 *
 * Pure C: no Python. Functions return 0 or a negative code of the one
 * error space (wire/wire.h). A link that ended answers with its end code:
 * LP_EEOF (the far side closed it), a protocol error (LP_WIRE_ETOOLARGE,
 * LP_WIRE_EHEADER), -ECANCELED (closed here, or made before a fork) or
 * another -errno, and a reason text:
 *   "the far side closed the link", "protocol error: <what>", an errno text. */
#ifndef LP_CONTEXT_BROKER_H
#define LP_CONTEXT_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include "wire/frame.h"

typedef struct lp_broker lp_broker_t;

/* The bounds of a broker; LP_BROKER_CONFIG_DEFAULT gives the reasons. */
typedef struct lp_broker_config {
    lp_limits_t limits; /* the most one frame from a far side may hold */
    size_t events_max;  /* payload bytes queued as events before links pause */
    size_t send_max;    /* bytes queued on one link before lp_broker_send waits */
    int stuck_ms;       /* a link whose queued output has not moved this long ends */
} lp_broker_config_t;

/* 64 KiB headers and 64 MiB payloads (a 10 MB result must come back);
 * 64 MiB of unread events; 16 MiB queued per link; 60 s without a byte
 * taken by a far side that has output waiting for it. */
#define LP_BROKER_CONFIG_DEFAULT {{65536u, 64u << 20}, 64u << 20, 16u << 20, 60000}

/* How long a reason text may be, NUL included. */
#define LP_BROKER_REASON_MAX 160

/* What the broker hands out: a frame (frame.header set), or a link end
 * (frame.header NULL, err and reason set). Lists are chained by next. */
typedef struct lp_broker_msg {
    struct lp_broker_msg *next; /* the next in its list, or NULL */
    uint32_t link;              /* the link it came from */
    lp_frame_t frame;           /* owned header and payload; header NULL for an end */
    int err;                    /* an end's code (see above); 0 for a frame */
    uint64_t seq;               /* an event: its number (from 1, in the order posted); a
                                 * frame for a waiter: how many events were posted before it,
                                 * so that a caller can let the service thread catch up (the
                                 * log lines a call wrote come before its answer) */
    char reason[LP_BROKER_REASON_MAX]; /* an end's reason; "" for a frame */
} lp_broker_msg_t;

/* Frees a list of messages; NULL is accepted. */
void lp_broker_msg_free(lp_broker_msg_t *m);

/* A new broker with cfg's bounds (NULL: the defaults); its I/O thread
 * starts with the first link. 0, LP_WIRE_ENOMEM or -errno. */
int lp_broker_new(const lp_broker_config_t *cfg, lp_broker_t **out);
/* Stops the I/O thread, closes every link's fds and frees everything. No
 * other thread may use b any more; NULL is accepted. */
void lp_broker_free(lp_broker_t *b);

/* Adds a link over rfd (read) and wfd (write; the same fd for a socket),
 * made close-on-exec, wfd non-blocking. initial: n bytes already read from
 * rfd past the handshake, parsed before anything read later. On 0 the
 * broker owns the fds (it closes them when the link ends) and *link is the
 * new id (never reused by this broker). Else the caller keeps them:
 * LP_WIRE_EINVAL (bad fd, n over a frame's limit), LP_WIRE_ENOMEM, -errno. */
int lp_broker_add(lp_broker_t *b, int rfd, int wfd, const void *initial, size_t n,
                  uint32_t *link);

/* Queues n bytes (whole encoded frames) on link's writer, in order, never
 * waiting for the pipe. When more than send_max bytes are already queued,
 * waits (the caller holds no lock) until the I/O thread has drained the
 * queue below that or the link ended; called on the I/O thread itself (a
 * handler), it does not wait: -EAGAIN, nothing queued. 0; the link's end
 * code; -ENOENT for an unknown link; LP_WIRE_ETOOLARGE when n could never
 * be queued. */
int lp_broker_send(lp_broker_t *b, uint32_t link, const void *data, size_t n);

/* Registers a waiter for key on link, before the request is sent: frames
 * routed to key are kept for it from now on. 0, LP_WIRE_ENOMEM, or
 * -EEXIST when key is expected already. A waiter on a link that has ended
 * (or is unknown) is registered anyway: lp_broker_wait reports the end. */
int lp_broker_expect(lp_broker_t *b, uint32_t link, int64_t key);
/* Waits up to timeout_ms (-1: no end) for frames routed to key, then hands
 * the caller ALL queued ones in arrival order (*out, a list the caller
 * frees). 0; -ETIMEDOUT; -ENOENT when key is not expected (or was
 * forgotten meanwhile); the link's end code with its reason in
 * reason[LP_BROKER_REASON_MAX] once it ended and nothing is queued. */
int lp_broker_wait(lp_broker_t *b, uint32_t link, int64_t key, int timeout_ms,
                   lp_broker_msg_t **out, char *reason);
/* Drops the waiter for key and what is queued for it; a thread waiting on
 * it returns -ENOENT. Frames that come for key later are events. */
void lp_broker_forget(lp_broker_t *b, uint32_t link, int64_t key);

/* The next event (frames no waiter expected, in arrival order, and link
 * ends) within timeout_ms (-1: no end): 0 with *ev (the caller frees it);
 * -ETIMEDOUT. While more than events_max payload bytes wait here, the links
 * that produce events are not read (backpressure). */
int lp_broker_next_event(lp_broker_t *b, int timeout_ms, lp_broker_msg_t **ev);

/* 0 while link lives; else its end code, with its reason in
 * reason[LP_BROKER_REASON_MAX] (-ECANCELED for a link closed here or
 * unknown: "the link was closed here"). */
int lp_broker_state(lp_broker_t *b, uint32_t link, char *reason);

/* Ends link (if it has not ended: code -ECANCELED, "the link was closed
 * here"), wakes its waiters, posts its end event once, closes its fds and
 * forgets it. Idempotent; unknown links are ignored. */
void lp_broker_close(lp_broker_t *b, uint32_t link);

/* Frames that no waiter expects go to fn, called on the I/O thread
 * (without the broker's lock), instead of to the event queue; link ends
 * still go to the queue. fn owns m (lp_broker_msg_free). It must be quick
 * and never wait for the I/O thread: an lp_broker_send of a small answer
 * is fine (it fails with -EAGAIN rather than wait for room), a wait is
 * not. Set it before the first link. */
typedef void (*lp_broker_handler_t)(void *arg, lp_broker_msg_t *m);
void lp_broker_set_handler(lp_broker_t *b, lp_broker_handler_t fn, void *arg);
/* Fork: call prepare before fork() and parent after it in the parent
 * (pthread_atfork); child in the child: every link is then gone from b
 * (their fds closed: they belong to the parent), b must never be used
 * again (it is left allocated: a lock a parent thread held cannot be
 * freed), and the child makes a new broker if it wants one. */
void lp_broker_fork_prepare(lp_broker_t *b);
void lp_broker_fork_parent(lp_broker_t *b);
void lp_broker_fork_child(lp_broker_t *b);
/* The id the next link of b would get: a child's new broker starts there
 * (lp_broker_new then lp_broker_first_id) so ids stay unique in the process. */
uint32_t lp_broker_next_id(lp_broker_t *b);
void lp_broker_first_id(lp_broker_t *b, uint32_t id);

#endif
