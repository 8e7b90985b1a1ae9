/* engine.h: the kernel server's environments as an lp_engine_t, for the
 * framed protocol's server (src/session/server.h). */
#ifndef LP_SERVE_ENGINE_H
#define LP_SERVE_ENGINE_H

#include "serve/serve.h"
#include "session/server.h"

/* Fills *out with the engine over sv (its ctx); its main environment is
 * the one named LP_ENV_MAIN ("main"). */
void lp_serve_engine(lp_serve_t *sv, lp_engine_t *out);

#endif
