/* bootstrap.h: the two stages that start an agent on a far Python
 * (docs/contexts.md, "Bootstrap"): stage 1, a command line that reads the
 * agent from fd 0 and runs it, and stage 2, the agent itself
 * (python/limpet/_agent.py) at zlib level 9, compressed at build time
 * (agent_blob.c, made by gen_agent_blob.py). */
#ifndef LP_CONTEXT_BOOTSTRAP_H
#define LP_CONTEXT_BOOTSTRAP_H

#include <stddef.h>

/* The agent, zlib-compressed (generated at build time): as source, for any
 * far Python; and compiled by the Python the extension is built for
 * (marshal), for a far Python whose stage 1 says it has the same bytecode:
 * lp_agent_code_tag, "CACHE_TAG MAGIC_HEX". */
extern const unsigned char lp_agent_blob[];
extern const size_t lp_agent_blob_len;
extern const unsigned char lp_agent_code_blob[];
extern const size_t lp_agent_code_blob_len;
extern const char lp_agent_code_tag[];
/* The same two forms of an environment's agent (limpet serve): the agent,
 * python/limpet/_completion.py and _session.py as one module, which offers
 * the REPL sessions of protocol.md section 8 (capability `session`). */
extern const unsigned char lp_agent_session_blob[];
extern const size_t lp_agent_session_blob_len;
extern const unsigned char lp_agent_session_code_blob[];
extern const size_t lp_agent_session_code_blob_len;

/* The code of stage 1 (what follows `python -c`): it writes the line
 * "limpet-stage1 CACHE_TAG MAGIC_HEX\n" on stdout, then reads a 9-byte header
 * from fd 0 ('c' for marshalled code or 's' for source, then 8 decimal digits
 * of length) and that many bytes of zlib-compressed agent, and runs it. Only
 * characters that need no quoting inside single quotes. */
const char *lp_context_stage1(void);

/* Stage 1's last argument: how ps shows the agent, limpet:USER@HOST:PID;
 * the agent writes its PID into the spaces kept for it. */
#define LP_CONTEXT_TAG_FMT "limpet:%s:       "

#endif
