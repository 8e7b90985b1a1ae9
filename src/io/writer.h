/* writer.h: the one way bytes leave for a peer: an ordered, bounded output
 * queue over any file descriptor (socket or pipe), shared by threads that
 * may block (a session's own thread, a connection's thread) and threads
 * that must never block (the watcher, the flusher: they serve every
 * client, and one client that stops reading must cost only itself).
 *
 * A write either goes out at once, or waits its turn in the queue; bytes
 * never interleave below the caller's unit (callers write whole frames, or
 * whole text). A blocking writer waits in poll() with no lock held.
 *
 * On a pipe, fd is made O_NONBLOCK (on its open file, which the other end's
 * holders share), and SIGPIPE is never raised: a closed reader is -EPIPE. */
#ifndef LP_IO_WRITER_H
#define LP_IO_WRITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/buf.h"

typedef struct lp_writer {
    int fd;                  /* where the bytes go; not owned */
    int wake_fd;             /* eventfd that kill uses to wake a writer in poll on a pipe
                                (a socket is woken by shutdown instead); -1 for sockets */
    bool socket;             /* send(MSG_NOSIGNAL) rather than write() */
    int timeout_ms;          /* a blocking write that makes no progress this long fails */
    pthread_mutex_t mu;      /* guards what follows; never held while waiting */
    pthread_cond_t cv;       /* the turn was given back */
    lp_buf_t *pending;       /* accepted, not yet written, in order; hard maximum */
    bool busy;               /* a blocking writer holds the turn (it waits in poll) */
    uint64_t stuck_since;    /* when queued bytes last failed to go out (ms), 0 if they went */
    bool dead;               /* a write failed: everything is refused from now on */
} lp_writer_t;

/* Sets w up over fd; pending_max bounds what a non-blocking writer may
 * leave queued. 0, or LP_WIRE_ENOMEM. */
int lp_writer_init(lp_writer_t *w, int fd, size_t pending_max, int timeout_ms);
/* Frees what w owns (not fd); NULL is accepted. */
void lp_writer_destroy(lp_writer_t *w);

/* Writes len bytes after everything written before them.
 * wait: returns once every byte is written (waiting in poll, with no lock
 * held, at most timeout_ms without progress): 0, -ETIMEDOUT, -EPIPE, or
 * another negative errno; any failure makes w dead (and shuts a socket).
 * !wait: never blocks: what the descriptor does not take at once is copied
 * into the queue, and leaves with the next blocking write or
 * lp_writer_kick: 0, -EPIPE when dead, LP_WIRE_ELIMIT when the queue would
 * pass its maximum (w is then dead: its peer reads nothing). */
int lp_writer_write(lp_writer_t *w, const void *data, size_t len, bool wait);
/* Writes what is queued, without blocking: 0 or a negative code as above;
 * -ETIMEDOUT (and w dead) when the queue has not moved for timeout_ms. */
int lp_writer_kick(lp_writer_t *w);
/* True when bytes wait in the queue or a blocking writer waits: a
 * non-blocking caller should keep its own output where it is. */
bool lp_writer_congested(lp_writer_t *w);
/* Refuses every later write and shuts a socket down (a peer that is gone,
 * or a server that stops); a blocking writer wakes and fails. */
void lp_writer_kill(lp_writer_t *w);
/* Bytes accepted and still queued (0 once w is dead): a caller that
 * bounds its own output below the hard maximum waits on this. */
size_t lp_writer_queued(lp_writer_t *w);
/* True once w is dead. */
bool lp_writer_dead(lp_writer_t *w);

#endif
