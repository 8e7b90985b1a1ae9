/* internal.h: the kernel server core's state, shared by its files: env.c
 * (the table of environments and their processes), run.c (a run's record
 * and output), agent.c (frames to and from the environments' agents),
 * journal.c (the audit journal). Lock order: sv->mu, then a run's mu. */
#ifndef LP_SERVE_INTERNAL_H
#define LP_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "context/broker.h"
#include "serve/serve.h"

#define LP_ENV_NAME_MAX 64
#define LP_SERVE_REQ_BASE ((int64_t)1 << 40) /* ids of our other requests: never a run's */
#define LP_DEADLINE_GRACE_MS 5000 /* a run interrupted for its deadline and still going past
                                     this ends its environment */

typedef enum lp_env_state {
    LP_ENV_STARTING,
    LP_ENV_READY,
    LP_ENV_DEAD,
    LP_ENV_STOPPING,
} lp_env_state_t;

/* One piece of a run's output (run.c). */
typedef struct lp_chunk {
    struct lp_chunk *next;
    uint64_t offset;
    int stream;
    size_t len;
    const char *type;          /* LP_RUN_STREAM_VALUE: the value's type, in data after len */
    char data[];
} lp_chunk_t;

struct lp_run {
    int refs;                  /* under mu */
    pthread_mutex_t mu;        /* guards everything below but the fixed fields */
    pthread_cond_t cv;         /* output, input, or the end */
    /* fixed at creation */
    uint64_t id;
    lp_run_mode_t mode;
    bool input;
    size_t output_max;         /* bytes of output kept */
    size_t code_bytes;
    char code_sha256[65];      /* of the code, hex: the journal's */
    char *who;
    int timeout_ms;
    uint64_t started_wall_ms;  /* when it was submitted (epoch ms) */
    struct lp_run *next;       /* in its env's inflight or kept list (under sv->mu) */
    lp_serve_t *sv;            /* for interrupts and input answers */
    char env[LP_ENV_NAME_MAX + 1];
    /* state */
    lp_run_status_t status;
    uint64_t run_start_us;     /* when it began running (monotonic), 0 before */
    uint64_t duration_us;
    bool deadline_hit;         /* the interrupt was ours, for its timeout */
    uint64_t deadline_hit_us;  /* when (lp_clock_us) */
    lp_chunk_t *head, *tail;   /* kept output, oldest first */
    lp_chunk_t **tail_at;      /* the link that points to tail (&head, or its predecessor's) */
    size_t kept;               /* bytes of the chunks, their records included */
    uint64_t total;            /* offset after the last byte ever written */
    char *value_type, *value_repr;
    char *exc_type, *exc_message, *traceback;
    char *prompt;              /* an input() waiting, or NULL */
    bool password;
    lp_run_watch_t *watchers;  /* lp_run_watch's, waiting */
};

typedef struct lp_senv {
    struct lp_senv *next;      /* in sv->envs, creation order */
    int refs;                  /* under sv->mu: the table's, and users' */
    char name[LP_ENV_NAME_MAX + 1];
    char *target, *python;
    lp_env_limits_t limits;
    uint64_t created_ms;       /* epoch ms */
    lp_env_state_t state;
    char why[256];             /* state DEAD: why */
    pid_t pid;                 /* its process, 0 when none */
    uint32_t link;             /* its broker link, 0 when none */
    json_t *agent;             /* its hello's agent object */
    pthread_mutex_t send_mu;   /* evals go out in the order they join inflight */
    pthread_mutex_t life_mu;   /* one start, restart or delete at a time (before sv->mu):
                                * two at once started a process that nothing stopped */
    uint64_t next_run;         /* the last run id given */
    unsigned runs_total;
    lp_run_t *inflight, **inflight_tail; /* sent, not done: the head runs */
    lp_run_t *kept;            /* finished, newest first */
    unsigned nkept;
    bool deleted;
} lp_senv_t;

struct lp_serve {
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* the ticker: a deadline moved, or stop */
    lp_serve_config_t cfg;
    lp_broker_t *broker;
    lp_senv_t *envs;
    unsigned nenvs;
    int64_t next_req;          /* our other requests' ids, from LP_SERVE_REQ_BASE */
    bool draining, stopping;
    pthread_t ender, ticker;
    bool threads;
    pthread_mutex_t journal_mu;
    int journal_fd;
};

/* env.c */
/* The env named name with a reference (lp_senv_unref), or NULL. */
lp_senv_t *lp_senv_find(lp_serve_t *sv, const char *name);
void lp_senv_unref(lp_serve_t *sv, lp_senv_t *e);
/* The env whose link is link (under sv->mu), or NULL. */
lp_senv_t *lp_senv_by_link_locked(lp_serve_t *sv, uint32_t link);
/* Marks e dead (under sv->mu): its runs in flight end killed. */
void lp_senv_died_locked(lp_serve_t *sv, lp_senv_t *e, const char *why);

/* run.c */
/* A new run (one reference) of env in sv. */
lp_run_t *lp_run_new(lp_serve_t *sv, const char *env, uint64_t id, const lp_run_req_t *req,
                     size_t output_max);
/* Called by agent.c as frames come (each takes r->mu). */
void lp_run_started(lp_run_t *r);
void lp_run_output(lp_run_t *r, int stream, const void *data, size_t len);
void lp_run_set_value(lp_run_t *r, const char *type, const void *repr, size_t len);
void lp_run_set_exception(lp_run_t *r, const char *type, const char *message,
                          const void *tb, size_t len);
void lp_run_set_input(lp_run_t *r, const char *prompt, bool password);
/* Ends r with st (deadline_hit turns interrupted into deadline-exceeded). */
void lp_run_end(lp_run_t *r, lp_run_status_t st);
/* Takes the waiting input() off r (it was answered): true when there was one. */
bool lp_run_take_input(lp_run_t *r);

/* agent.c */
/* Starts the broker, its handler, the ender and the ticker. */
int lp_agents_start(lp_serve_t *sv);
void lp_agents_stop(lp_serve_t *sv);
/* Sends one frame to e's agent: header (JSON text) and payload. */
int lp_agent_send(lp_serve_t *sv, uint32_t link, const char *hdr, size_t hlen,
                  const void *payload, size_t len);
/* Sends the request hdr (which has "id": id) with payload[0..len) and
 * waits up to timeout_ms for its done: 0 with *done (a new reference);
 * LP_WIRE_* / -errno. */
int lp_agent_request(lp_serve_t *sv, uint32_t link, int64_t id, const char *hdr, size_t hlen,
                     const void *payload, size_t len, int timeout_ms, json_t **done);
/* A fresh id for lp_agent_request. */
int64_t lp_agent_next_id(lp_serve_t *sv);
/* Sends run r's eval to link (under sv->mu is fine: never waits long). */
int lp_agent_eval(lp_serve_t *sv, uint32_t link, lp_run_t *r, const lp_run_req_t *req);
/* Asks the agent to interrupt eval id. */
int lp_agent_interrupt(lp_serve_t *sv, uint32_t link, uint64_t id);
/* Wakes the ticker: a run started or a deadline changed. */
void lp_agents_tick(lp_serve_t *sv);

/* journal.c */
int lp_journal_open(lp_serve_t *sv);
void lp_journal_close(lp_serve_t *sv);
/* One line for a finished run. */
void lp_journal_run(lp_serve_t *sv, const char *env, lp_run_t *r);

#endif
