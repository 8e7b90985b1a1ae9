/* state.h: the limpet._limpet module's state and the py layer's internals. */
#ifndef LP_PY_STATE_H
#define LP_PY_STATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "session/server.h"

/* Per-module state (no process-wide C statics: the module lives in other
 * people's processes). */
typedef struct lp_modstate {
    Py_tss_t current;          /* this thread's lp_session_t *, or NULL */
    PyTypeObject *router_type; /* Router: sys.stdout / sys.stderr */
    PyTypeObject *server_type; /* Server */
    PyTypeObject *call_type;   /* SessionCall: a thread target carrying its session */
    PyObject *saved;           /* dict: what install replaced (stdout, stderr, ...) and
                                  the replacements; the last install's, kept after it */
    int installed;             /* servers that need the routers installed */
} lp_modstate_t;

/* The state of the module that defined type t. */
lp_modstate_t *lp_py_state_of_type(PyTypeObject *t);
/* The module state, from the module object. */
lp_modstate_t *lp_py_state(PyObject *module);

/* router.c */
int lp_py_router_types(PyObject *module, lp_modstate_t *st);
/* Installs the routers for the first server: sys.stdout, sys.stderr,
 * sys.stdin, sys.displayhook, the thread starters. Returns 0, or -1 with
 * an exception set and nothing replaced. */
int lp_py_routers_install(PyObject *module);
/* The last server gone: puts back what install replaced, where nobody
 * replaced it since. Never raises (a failure goes to sys.unraisablehook);
 * keeps an exception the caller had set. */
void lp_py_routers_uninstall(PyObject *module);
/* Makes s (may be NULL) this thread's current session, the previous one in
 * *prev. Returns 0, or -1 with MemoryError set and the session unchanged;
 * once it worked on a thread, it cannot fail there again. */
int lp_py_current_swap(lp_modstate_t *st, lp_session_t *s, lp_session_t **prev);
/* lp_py_current_swap for callers that cannot fail (engine.c, until it
 * checks): a failure goes to sys.unraisablehook. Returns the previous. */
lp_session_t *lp_py_set_current(lp_modstate_t *st, lp_session_t *s);
/* Flushes s (GIL released meanwhile) when r, a queueing call's result,
 * says so; returns the final result. */
int lp_py_flush_if(lp_session_t *s, int r);
/* Sends text (or bytes) written by session code to the session s. The GIL
 * is held on entry and exit; it is released while a send may block. */
int lp_py_session_output(lp_session_t *s, lp_stream_t stream, const char *data, Py_ssize_t len);

/* engine.c */
/* Fills e with the CPython engine for namespace env (new reference kept). */
int lp_py_engine_init(lp_engine_t *e, PyObject *module, PyObject *env, PyObject *transform);
/* Frees what lp_py_engine_init made; the GIL must be held. */
void lp_py_engine_free(lp_engine_t *e);
/* The display hook for session threads; NULL when s is not a session's. */
PyObject *lp_py_display(lp_modstate_t *st, lp_session_t *s, PyObject *value);

/* server_obj.c */
int lp_py_server_type(PyObject *module, lp_modstate_t *st);

extern PyMethodDef lp_py_session_methods[];

/* context_funcs.c */
extern PyMethodDef lp_py_context_methods[];

/* wire_funcs.c */
extern PyMethodDef lp_py_wire_methods[];

#endif
