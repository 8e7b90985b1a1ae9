/* bootstrap.h: the two stages that start an agent on a far Python
 * (docs/contexts.md, "Bootstrap"): stage 1, a command line that reads the
 * agent from fd 0 and runs it, and stage 2, the agent itself
 * (python/limpet/_agent.py) at zlib level 9, compressed at build time
 * (agent_blob.c, made by gen_agent_blob.py). */
#ifndef LP_CONTEXT_BOOTSTRAP_H
#define LP_CONTEXT_BOOTSTRAP_H

#include <stddef.h>

/* The compressed agent and its length (generated). */
extern const unsigned char lp_agent_blob[];
extern const size_t lp_agent_blob_len;

/* Writes the code of stage 1 (what follows `python -c`) for a payload of
 * payload_len bytes into out[size], NUL-terminated. Only characters that
 * need no quoting inside single quotes. Returns its length, or
 * LP_WIRE_ELIMIT when size is too small. */
int lp_context_stage1(char *out, size_t size, size_t payload_len);

#endif
