/* target.h: an environment's target as the command that starts its far
 * Python (stage 1 at its end). */
#ifndef LP_SERVE_TARGET_H
#define LP_SERVE_TARGET_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lp_target_argv {
    char **argv;   /* NULL-terminated, owned */
    int argc;
    bool compiled; /* stage 2 may be the compiled agent (not over ssh) */
    bool local;    /* the process started is the far Python itself (limits apply) */
} lp_target_argv_t;

/* target: NULL or "local", "sudo:USER", "ssh://[user@]host[:port]";
 * python: the far interpreter. 0, or -EINVAL with msg, -ENOMEM. */
int lp_target_argv(const char *target, const char *python, lp_target_argv_t *t, char *msg,
                   size_t msg_size);
void lp_target_free(lp_target_argv_t *t);

#endif
