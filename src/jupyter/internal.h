/* internal.h: the kernel's state, shared by its files: loop.c (sockets,
 * poll, send), shell.c (Jupyter requests), host.c (limpet's frames),
 * history.c. One thread owns all of it: no locks. */
#ifndef LP_JUPYTER_INTERNAL_H
#define LP_JUPYTER_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "client/client.h"
#include "jupyter/codec.h"
#include "jupyter/conn_file.h"
#include "jupyter/kernel.h"
#include "jupyter/text.h"

#define K_PENDING_MAX 16          /* limpet requests in flight at once */
#define K_STREAM_MAX (64u << 10)  /* text in one stream message */
#define K_PING_IDLE_MS 5000       /* a ping after this long without a frame... */
#define K_PING_WAIT_MS 5000       /* ...and the host is gone if it is not answered in this */
#define K_CLOSE_WAIT_MS 2000      /* how long a shutdown waits for the session's close */

/* A Jupyter request kept until it is answered: its routing identities
 * (copied: the zmq frames are gone by then) and its header, the parent of
 * every message it causes. */
typedef struct kreq {
    int ch;                  /* LP_JCH_* it came on */
    size_t n_ids;
    uint8_t *ids;            /* the identities, end to end */
    size_t id_len[LP_JMSG_IDS_MAX];
    json_t *header;          /* owned */
    json_t *content;         /* owned */
    const char *type;        /* msg_type, borrowed from header */
} kreq_t;

/* What a limpet request in flight is for: its final reply ends it. */
typedef enum kwhat {
    K_FREE = 0,
    K_EXECUTE,   /* eval of an execute_request (the shell's request) */
    K_COMPLETE,  /* complete_request */
    K_INSPECT,   /* inspect_request */
    K_CHECK,     /* is_complete_request */
    K_REOPEN,    /* clone after the code closed the session; ends its execute */
    K_INTERRUPT, /* interrupt_request: answered after the eval's end */
    K_CLOSE,     /* shutdown_request */
    K_PING,      /* liveness of an idle link */
    K_IGNORE,    /* stdin answers, a SIGINT's interrupt: nothing to answer */
} kwhat_t;

typedef struct kpending {
    kwhat_t what;
    int64_t id;          /* the limpet request's id */
    kreq_t req;          /* the Jupyter request it answers (empty for K_IGNORE, K_PING) */
    uint64_t since_ms;   /* when sent */
} kpending_t;

/* The execute in flight (at most one: shell is served one at a time). */
typedef struct kexec {
    bool active;
    bool silent, store_history, allow_stdin, stop_on_error;
    int64_t count;       /* its execution_count */
    json_t *error;       /* the error content (ename, evalue, traceback), once seen */
    char *page;          /* help() text for the reply's payload */
    size_t page_len;
    char *result;        /* the execute_result's text, for history's output */
} kexec_t;

typedef struct kernel {
    const lp_kernel_opts_t *opts;
    lp_jconn_t conn;
    void *zctx;
    void *sock[LP_JCH__COUNT];
    int sigfd;
    lp_jsign_t *sign;
    lp_jreplay_t *replay;
    lp_jenc_t enc;

    lp_client_t *lc;                 /* the limpet connection */
    char session[LP_WIRE_SESSION_ID_MAX + 1];
    unsigned caps;                   /* LP_CAP_* the server serves us */
    kpending_t pending[K_PENDING_MAX];
    uint64_t last_rx_ms;             /* the last frame from the host */

    bool shell_busy;                 /* a shell request waits for the host */
    bool aborting;                   /* answering queued executes "aborted" */
    kexec_t exec;
    int64_t exec_count;              /* execution_count of the last counted execute */
    json_t *last_parent;             /* the last execute's header: parent of stray output */

    /* output of one stream gathered while draining the host's frames */
    char *stream;
    size_t stream_len, stream_cap;
    int stream_name;                 /* 0 stdout, 1 stderr, -1 none */
    json_t *stream_parent;           /* borrowed: the parent it goes out under */
    lp_jstream_t dec[2];

    json_t *history;                 /* [[session, line, input, output], ...] */
    int64_t history_session;

    bool quit;
    int exit_code;
    uint64_t quit_by_ms;             /* a shutdown's deadline for the close's answer */
    uint64_t log_window_ms;
    unsigned log_count;
} kernel_t;

/* loop.c */

/* Sends a message on channel ch: to req's identities (shell, control,
 * stdin), or as a topic on iopub (req may then be NULL); parent the
 * request's header (or NULL); takes metadata's and content's references.
 * Never blocks. */
void k_send(kernel_t *k, int ch, const kreq_t *req, const json_t *parent, const char *type,
            json_t *metadata, json_t *content);
/* iopub status busy / idle under parent. */
void k_status(kernel_t *k, const json_t *parent, const char *state);
/* A reply on req's channel, then idle: the end of every request. */
void k_reply(kernel_t *k, const kreq_t *req, const char *type, json_t *content);
/* Reads, checks and serves one message waiting on ch. */
void k_on_request(kernel_t *k, int ch);
/* One line on stderr, at most 10 a second. */
void k_log(kernel_t *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* shell.c */

/* A string value, or dflt when v is not a string. */
const char *k_str_or(const json_t *v, const char *dflt);
/* The string at o[key], or dflt. */
const char *k_str(const json_t *o, const char *key, const char *dflt);
/* shutdown_reply's restart: the request's, as a new boolean. */
json_t *k_restart(const json_t *content);

/* Serves one decoded Jupyter request that came on ch (shell, control or
 * stdin); takes the message's parts. */
void k_request(kernel_t *k, int ch, lp_jmsg_t *m);
/* Frees what req holds. */
void k_req_clear(kreq_t *req);
/* Sends a limpet request (takes header's reference) and records what it
 * is for (moving req into the record): the id, or -1 when the link is
 * broken (the kernel then leaves). */
int64_t k_host_send(kernel_t *k, json_t *header, const void *payload, size_t len, kwhat_t what,
                    kreq_t *req);
/* The pending record of limpet request id, or NULL. */
kpending_t *k_pending_find(kernel_t *k, int64_t id);
/* The record for a kind in flight, or NULL. */
kpending_t *k_pending_of(kernel_t *k, kwhat_t what);
void k_pending_free(kpending_t *p);
/* Ends the execute in flight with its reply (and the queue's abort after
 * an error); status from the host's done. */
void k_execute_end(kernel_t *k, kpending_t *p, const char *status, const json_t *done);
/* Aborts the execute_requests already waiting on shell (stop_on_error). */
void k_abort_queue(kernel_t *k);
/* The host is gone: answers what is in flight and makes the loop leave. */
void k_host_gone(kernel_t *k, const char *why);

/* host.c */

/* Handles one frame from the host. */
void k_host_frame(kernel_t *k, lp_frame_t *f);
/* Sends the stream text gathered so far, if any. */
void k_stream_flush(kernel_t *k);

/* history.c */

/* Records an execute's input (and output, or NULL) under line count. */
void k_history_add(kernel_t *k, int64_t count, const char *input, const char *output);
/* The history_reply content for a history_request's content. */
json_t *k_history_reply(kernel_t *k, const json_t *content);

#endif
