/* bootstrap.h: the two stages that start an agent on a far Python
 * (docs/contexts.md, "Bootstrap"): stage 1, a command line that reads the
 * agent from fd 0 and runs it, and stage 2, the agent itself
 * (python/limpet/_agent.py) at zlib level 9, compressed at build time
 * (agent_blob.c, made by gen_agent_blob.py). */
#ifndef LP_CONTEXT_BOOTSTRAP_H
#define LP_CONTEXT_BOOTSTRAP_H

#include <stdbool.h>
#include <stddef.h>

/* The compressed agent and its length (generated). */
extern const unsigned char lp_agent_blob[];
extern const size_t lp_agent_blob_len;

/* Writes the code of stage 1 (what follows `python -c`) for a payload of
 * payload_len bytes into out[size], NUL-terminated. Only characters that
 * need no quoting inside single quotes. With ready, it first writes
 * LP_CONTEXT_READY to stderr, so that a command that may ask for a password
 * first (sudo, su) is answered before stage 2 is written. Returns its
 * length, or LP_WIRE_ELIMIT when size is too small. */
int lp_context_stage1(char *out, size_t size, size_t payload_len, bool ready);

/* Stage 1's last argument: how ps shows the agent, limpet:USER@HOST:PID;
 * the agent writes its PID into the spaces kept for it. */
#define LP_CONTEXT_TAG_FMT "limpet:%s:       "

#endif
