/* kernel.h: `limpet kernel run`: a Jupyter kernel (message spec 5.3) whose
 * code runs in a live process, through one session of its limpet server
 * (docs/jupyter.md). One thread: one zmq_poll over the five Jupyter
 * sockets, the limpet connection and a signalfd. */
#ifndef LP_JUPYTER_KERNEL_H
#define LP_JUPYTER_KERNEL_H

#include <stdbool.h>

#include "client/client.h"

typedef struct lp_kernel_opts {
    const char *conn_file;  /* -f FILE: the front end's connection file */
    const char *target;     /* as the user gave it: for messages and the banner */
    const char *env;        /* --env NAME, or NULL: the server's main environment */
    bool iopub_welcome;     /* JEP 65's iopub_welcome to each subscription */
} lp_kernel_opts_t;

/* Serves the front end on c, a connection with a session open
 * (c->welcome.session), until shutdown, a signal, or the host going away;
 * closes c. The exit status: 0 after a shutdown or SIGTERM, 1 when the
 * host went away or a socket could not be bound, 2 for a bad connection
 * file. Says why on stderr. */
int lp_kernel_run(const lp_kernel_opts_t *o, lp_client_t *c);

#endif
