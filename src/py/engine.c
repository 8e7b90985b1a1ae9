/* engine.c: the CPython engine of the server (lp_engine_t): thread states,
 * per-session compilers, running code, showing values and tracebacks. */
#include "py/state.h"

/* Shared by all sessions of one server. */
typedef struct engine {
    PyInterpreterState *interp; /* where server threads run */
    PyObject *module;           /* limpet._limpet (for its state) */
    PyObject *env;              /* the namespace given to start() */
    PyObject *transform;        /* source transform, or None */
} engine_t;

/* One running eval, on its thread's C stack; the session points at it
 * while it runs (under the GIL). */
typedef struct evalctx {
    int detached;       /* it became a job: do not touch the session's state */
    PyObject *job;      /* that job (limpet._jobs.Job), once detached */
    const char *code;   /* the source, for the job's description */
} evalctx_t;

/* One session's Python state. */
typedef struct pysession {
    evalctx_t *cur;     /* the running eval, or NULL */
    engine_t *engine;   /* the server's engine */
    PyObject *compiler; /* codeop.CommandCompiler: REPL rules, __future__ flags */
    PyObject *pending;  /* list of str: interactive lines not yet complete */
    PyObject *last;     /* the value last bound to `_`, or NULL */
    int running;        /* code runs (under the GIL): an interrupt may land */
} pysession_t;

static int thread_enter(void *ctx, void **tls)
{
    engine_t *e = ctx;
    PyThreadState *ts = PyThreadState_New(e->interp);

    if (ts == NULL)
        return -1;
    *tls = ts;
    return 0;
}

static void thread_exit(void *ctx, void *tls)
{
    PyThreadState *ts = tls;

    PyEval_RestoreThread(ts);
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
}

static int session_open(void *ctx, void *tls, lp_session_t *s, void **data)
{
    pysession_t *ps = PyMem_RawCalloc(1, sizeof(*ps));
    PyObject *codeop;
    int r = -1;

    if (ps == NULL)
        return -1;
    ps->engine = ctx;
    PyEval_RestoreThread(tls);
    if ((codeop = PyImport_ImportModule("codeop")) != NULL &&
        (ps->compiler = PyObject_CallMethod(codeop, "CommandCompiler", NULL)) != NULL &&
        (ps->pending = PyList_New(0)) != NULL)
        r = 0;
    Py_XDECREF(codeop);
    if (r != 0) {
        PyErr_Print();
        Py_XDECREF(ps->compiler);
        PyMem_RawFree(ps);
        ps = NULL;
    }
    PyEval_SaveThread();
    *data = ps;
    return r;
}

static void session_close(void *ctx, void *tls, void *data)
{
    pysession_t *ps = data;

    PyEval_RestoreThread(tls);
    Py_XDECREF(ps->compiler);
    Py_XDECREF(ps->pending);
    Py_XDECREF(ps->last);
    PyEval_SaveThread();
    PyMem_RawFree(ps);
}

static void reset(void *ctx, void *tls, void *data)
{
    pysession_t *ps = data;

    PyEval_RestoreThread(tls);
    PyList_SetSlice(ps->pending, 0, PyList_GET_SIZE(ps->pending), NULL);
    PyEval_SaveThread();
}

/* "module.Qualname" of an exception or value type ("ValueError" for
 * builtins); new reference. */
static PyObject *type_name(PyTypeObject *t)
{
    PyObject *mod = PyObject_GetAttrString((PyObject *)t, "__module__");
    PyObject *qual = PyObject_GetAttrString((PyObject *)t, "__qualname__");
    PyObject *name = NULL;

    if (mod != NULL && qual != NULL) {
        if (PyUnicode_Check(mod) && PyUnicode_CompareWithASCIIString(mod, "builtins") != 0)
            name = PyUnicode_FromFormat("%U.%U", mod, qual);
        else
            name = Py_NewRef(qual);
    }
    PyErr_Clear();
    Py_XDECREF(mod);
    Py_XDECREF(qual);
    return name != NULL ? name : PyUnicode_FromString(t->tp_name);
}

/* Sends the exception exc as the standard REPL prints it. */
static void report(lp_session_t *s, PyObject *exc)
{
    PyObject *tbmod = exc != NULL ? PyImport_ImportModule("traceback") : NULL;
    PyObject *lines = tbmod != NULL ? PyObject_CallMethod(tbmod, "format_exception", "O", exc) : NULL;
    PyObject *empty = PyUnicode_FromString("");
    PyObject *text = lines != NULL && empty != NULL ? PyUnicode_Join(empty, lines) : NULL;
    PyObject *name = exc != NULL ? type_name(Py_TYPE(exc)) : NULL;
    Py_ssize_t n = 0;
    const char *u = text != NULL ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    const char *tn = name != NULL ? PyUnicode_AsUTF8(name) : NULL;

    if (u == NULL) {
        PyErr_Clear();
        u = "limpet: the traceback could not be formatted\n";
        n = (Py_ssize_t)strlen(u);
    }
    lp_py_flush_if(s, lp_session_exception(s, tn, u, (size_t)n));
    PyErr_Clear();
    Py_XDECREF(tbmod);
    Py_XDECREF(lines);
    Py_XDECREF(empty);
    Py_XDECREF(text);
    Py_XDECREF(name);
}

/* The raised exception, normalized, with its traceback attached; new
 * reference (3.12 has PyErr_GetRaisedException for this). */
static PyObject *take_exception(void)
{
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* Applies the user's source transform to source: a code object, or NULL
 * with an exception set. The transform may return source text, an AST or
 * a code object. */
static PyObject *compile_source(engine_t *e, PyObject *source, const char *filename,
                                const char *mode, int flags)
{
    PyObject *builtins = PyEval_GetBuiltins(); /* borrowed */
    PyObject *compile = PyDict_GetItemString(builtins, "compile");
    PyObject *src = Py_NewRef(source), *code;

    if (e->transform != Py_None) {
        Py_SETREF(src, PyObject_CallFunction(e->transform, "Oss", source, filename, mode));
        if (src == NULL)
            return NULL;
        if (PyCode_Check(src))
            return src;
    }
    code = compile != NULL ? PyObject_CallFunction(compile, "Ossii", src, filename, mode, flags, 1)
                           : NULL;
    Py_DECREF(src);
    return code;
}

/* The __future__ flags the REPL compiler of ps has collected so far. */
static int future_flags(pysession_t *ps)
{
    PyObject *inner = PyObject_GetAttrString(ps->compiler, "compiler");
    PyObject *flags = inner != NULL ? PyObject_GetAttrString(inner, "flags") : NULL;
    int f = flags != NULL ? (int)PyLong_AsLong(flags) : 0;

    PyErr_Clear();
    Py_XDECREF(inner);
    Py_XDECREF(flags);
    return f;
}

/* The common case, without codeop's Python-level work (two compiles and a
 * warnings context, about 15 us): complete, valid input compiles at once
 * with the flags codeop itself uses, and any __future__ import it makes is
 * recorded where codeop keeps them. NULL, with no exception set, when the
 * input needs codeop's judgement (incomplete, invalid, blank). */
static PyObject *compile_fast(pysession_t *ps, PyObject *source, const char *filename)
{
    PyObject *inner = PyObject_GetAttrString(ps->compiler, "compiler");
    PyObject *flags = inner != NULL ? PyObject_GetAttrString(inner, "flags") : NULL;
    PyCompilerFlags cf = {0, PY_MINOR_VERSION};
    const char *src = PyUnicode_AsUTF8(source);
    PyObject *code = NULL, *newflags = NULL;

    if (flags != NULL && src != NULL) {
        cf.cf_flags = (int)PyLong_AsLong(flags) | PyCF_DONT_IMPLY_DEDENT |
                      PyCF_ALLOW_INCOMPLETE_INPUT;
        code = Py_CompileStringExFlags(src, filename, Py_single_input, &cf, -1);
    }
    if (code != NULL && PyLong_AsLong(flags) != cf.cf_flags &&
        ((newflags = PyLong_FromLong(cf.cf_flags)) == NULL ||
         PyObject_SetAttrString(inner, "flags", newflags) != 0))
        Py_CLEAR(code);
    Py_XDECREF(newflags);
    PyErr_Clear();
    Py_XDECREF(inner);
    Py_XDECREF(flags);
    return code;
}

/* Input that is not Python until the transform has run (macros): the
 * transformed text goes through the REPL's rules; an AST or code object is
 * taken as complete. Same results as compile_interactive. */
static PyObject *compile_transformed(engine_t *e, pysession_t *ps, PyObject *source,
                                     const char *filename)
{
    PyObject *t = PyObject_CallFunction(e->transform, "Oss", source, filename, "single");
    PyObject *builtins, *compile, *code;

    if (t == NULL || PyCode_Check(t))
        return t;
    if (PyUnicode_Check(t)) {
        code = PyObject_CallFunction(ps->compiler, "Oss", t, filename, "single");
        Py_DECREF(t);
        return code;
    }
    builtins = PyEval_GetBuiltins();
    compile = PyDict_GetItemString(builtins, "compile");
    code = compile != NULL ? PyObject_CallFunction(compile, "Ossii", t, filename, "single",
                                                   future_flags(ps), 1)
                           : NULL;
    Py_DECREF(t);
    return code;
}

/* Interactive input: appends it to the pending lines and compiles them by
 * the REPL's rules. A code object; Py_None when incomplete; NULL with an
 * exception set when invalid (the pending lines are then dropped). With a
 * transform, complete input is compiled again through it, and input that
 * only the transform makes valid is given to it. */
static PyObject *compile_interactive(engine_t *e, pysession_t *ps, PyObject *text,
                                     const char *filename)
{
    PyObject *nl = PyUnicode_FromString("\n"), *source = NULL, *code = NULL;

    if (nl == NULL || PyList_Append(ps->pending, text) != 0 ||
        (source = PyUnicode_Join(nl, ps->pending)) == NULL)
        goto out;
    if (e->transform != Py_None || (code = compile_fast(ps, source, filename)) == NULL)
        code = PyObject_CallFunction(ps->compiler, "Oss", source, filename, "single");
    if (e->transform != Py_None) {
        if (code == NULL && PyErr_ExceptionMatches(PyExc_SyntaxError)) {
            PyErr_Clear();
            code = compile_transformed(e, ps, source, filename);
        } else if (code != NULL && code != Py_None) {
            Py_SETREF(code, compile_source(e, source, filename, "single", future_flags(ps)));
        }
    }
    if (code != Py_None)
        PyList_SetSlice(ps->pending, 0, PyList_GET_SIZE(ps->pending), NULL);
out:
    Py_XDECREF(nl);
    Py_XDECREF(source);
    return code;
}

/* A detached eval ended: its result or exception goes to its job. */
static int finish_job(evalctx_t *ec, PyObject *result)
{
    PyObject *exc = result == NULL ? take_exception() : NULL;
    PyObject *r = PyObject_CallMethod(ec->job, "_finish", "OO", result ? result : Py_None,
                                      exc ? exc : Py_None);

    if (r == NULL)
        PyErr_WriteUnraisable(ec->job);
    Py_XDECREF(r);
    Py_XDECREF(exc);
    return LP_EVAL_DETACHED;
}

/* Runs code in the environment; reports what it raised. */
static int run(engine_t *e, lp_session_t *s, PyObject *code, evalctx_t *ec)
{
    PyObject *r = PyEval_EvalCode(code, e->env, e->env);
    PyObject *exc;
    int status;

    if (ec->detached) {
        status = finish_job(ec, r);
        Py_XDECREF(r);
        return status;
    }
    if (r != NULL) {
        Py_DECREF(r);
        return LP_EVAL_OK;
    }
    if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
        /* exit(), quit(), sys.exit(): the session ends, never the host */
        PyErr_Clear();
        return LP_EVAL_CLOSED;
    }
    status = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) && lp_session_was_interrupted(s)
                 ? LP_EVAL_INTERRUPTED
                 : LP_EVAL_EXCEPTION;
    exc = take_exception();
    report(s, exc);
    Py_XDECREF(exc);
    return status;
}

/* Compiles and runs req; the GIL is held. */
static int eval_locked(engine_t *e, lp_session_t *s, pysession_t *ps, const lp_eval_req_t *req,
                       evalctx_t *ec)
{
    /* an interactive line may come with the newline that ended it */
    size_t len = req->interactive && req->len > 0 && req->code[req->len - 1] == '\n' ? req->len - 1
                                                                                    : req->len;
    PyObject *text = PyUnicode_DecodeUTF8(req->code, (Py_ssize_t)len, "strict");
    PyObject *code = NULL, *exc;
    int status;

    if (text != NULL)
        code = req->interactive ? compile_interactive(e, ps, text, req->filename)
                                : compile_source(e, text, req->filename, "exec", 0);
    Py_XDECREF(text);
    if (code == Py_None) {
        Py_DECREF(code);
        return LP_EVAL_MORE;
    }
    if (code == NULL) {
        exc = take_exception();
        report(s, exc);
        Py_XDECREF(exc);
        return LP_EVAL_EXCEPTION;
    }
    status = run(e, s, code, ec);
    Py_DECREF(code);
    return status;
}

static int eval(void *ctx, void *tls, lp_session_t *s, void *data, const lp_eval_req_t *req)
{
    engine_t *e = ctx;
    pysession_t *ps = data;
    PyThreadState *ts = tls;
    evalctx_t ec = {0, NULL, req->code};
    lp_modstate_t *st;
    lp_session_t *prev;
    int status;

    PyEval_RestoreThread(ts);
    st = lp_py_state(e->module);
    prev = lp_py_set_current(st, s);
    ps->running = 1;
    ps->cur = &ec;
    if (lp_session_take_interrupt(s)) {
        /* interrupted before it could start */
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        PyObject *exc = take_exception();
        report(s, exc);
        Py_XDECREF(exc);
        status = LP_EVAL_INTERRUPTED;
    } else {
        status = eval_locked(e, s, data, req, &ec);
    }
    if (ec.detached) {
        /* a job now: ps may be gone, and the session is someone else's */
        Py_XDECREF(ec.job);
        lp_py_set_current(st, prev);
        PyEval_SaveThread();
        return LP_EVAL_DETACHED;
    }
    ps->cur = NULL;
    ps->running = 0;
    /* an interrupt that came as the code ended must not hit the next one */
    PyThreadState_SetAsyncExc((unsigned long)ts->thread_id, NULL);
    lp_py_set_current(st, prev);
    PyEval_SaveThread();
    return status;
}

static int64_t detach(void *ctx, void *tls, void *target_tls, void *data)
{
    pysession_t *ps = data;
    PyThreadState *target = target_tls;
    PyObject *mod = NULL, *job = NULL, *id = NULL;
    int64_t r = -1;

    PyEval_RestoreThread(tls);
    if (ps != NULL && ps->cur != NULL &&
        (mod = PyImport_ImportModule("limpet._jobs")) != NULL &&
        (job = PyObject_CallMethod(mod, "detached", "ks", (unsigned long)target->thread_id,
                                   ps->cur->code)) != NULL &&
        (id = PyObject_GetAttrString(job, "id")) != NULL) {
        r = PyLong_AsLongLong(id);
        ps->cur->job = Py_NewRef(job);
        ps->cur->detached = 1;
        ps->cur = NULL;
        ps->running = 0;
    }
    if (PyErr_Occurred())
        PyErr_WriteUnraisable(NULL);
    Py_XDECREF(mod);
    Py_XDECREF(job);
    Py_XDECREF(id);
    PyEval_SaveThread();
    return r;
}

static void interrupt(void *ctx, void *tls, void *target_tls, void *data)
{
    pysession_t *ps = data;
    PyThreadState *target = target_tls;

    PyEval_RestoreThread(tls);
    if (ps != NULL && ps->running)
        PyThreadState_SetAsyncExc((unsigned long)target->thread_id, PyExc_KeyboardInterrupt);
    PyEval_SaveThread();
}

PyObject *lp_py_display(lp_modstate_t *st, lp_session_t *s, PyObject *value)
{
    pysession_t *ps = lp_session_data(s);
    PyObject *repr, *name, *old;
    const char *u, *tn;
    Py_ssize_t n;

    if (value == Py_None)
        Py_RETURN_NONE;
    if ((repr = PyObject_Repr(value)) == NULL)
        return NULL;
    if ((u = PyUnicode_AsUTF8AndSize(repr, &n)) == NULL) {
        Py_DECREF(repr);
        return NULL;
    }
    if (ps != NULL) {
        /* `_` as in IPython: bound in the environment, unless the user has
         * a `_` of their own there (gettext's, say) */
        old = PyDict_GetItemString(ps->engine->env, "_");
        if (old == NULL || old == ps->last) {
            PyDict_SetItemString(ps->engine->env, "_", value);
            Py_XSETREF(ps->last, Py_NewRef(value));
        }
    }
    name = type_name(Py_TYPE(value));
    tn = name != NULL ? PyUnicode_AsUTF8(name) : NULL;
    PyErr_Clear();
    lp_py_flush_if(s, lp_session_value(s, tn, u, (size_t)n));
    Py_XDECREF(name);
    Py_DECREF(repr);
    Py_RETURN_NONE;
}

/* The completion engine: limpet._completion.complete, in Python because it
 * is introspection through and through. */
static json_t *complete(void *ctx, void *tls, void *data, const char *text, size_t len,
                        size_t cursor, size_t *start)
{
    engine_t *e = ctx;
    PyObject *mod, *r = NULL, *matches;
    json_t *out = NULL;

    PyEval_RestoreThread(tls);
    if ((mod = PyImport_ImportModule("limpet._completion")) != NULL)
        r = PyObject_CallMethod(mod, "complete", "Oy#n", e->env, text, (Py_ssize_t)len,
                                (Py_ssize_t)cursor);
    if (r != NULL && PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 2 &&
        PyList_Check(matches = PyTuple_GET_ITEM(r, 1)) && (out = json_array()) != NULL) {
        *start = (size_t)PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 0));
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(matches); i++) {
            const char *m = PyUnicode_AsUTF8(PyList_GET_ITEM(matches, i));

            if (m != NULL)
                json_array_append_new(out, json_string(m));
        }
    }
    if (PyErr_Occurred())
        PyErr_Print(); /* a bug in limpet: say so on the host's stderr */
    Py_XDECREF(mod);
    Py_XDECREF(r);
    PyEval_SaveThread();
    (void)data;
    return out;
}

int lp_py_engine_init(lp_engine_t *eng, PyObject *module, PyObject *env, PyObject *transform)
{
    engine_t *e = PyMem_RawCalloc(1, sizeof(*e));

    if (e == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    e->interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    e->module = Py_NewRef(module);
    e->env = Py_NewRef(env);
    e->transform = Py_NewRef(transform != NULL ? transform : Py_None);
    *eng = (lp_engine_t){e,    thread_enter, thread_exit, session_open, session_close,
                         eval, reset,        interrupt,   complete,
                         detach};
    return 0;
}

void lp_py_engine_free(lp_engine_t *eng)
{
    engine_t *e = eng->ctx;

    if (e == NULL)
        return;
    Py_DECREF(e->module);
    Py_DECREF(e->env);
    Py_DECREF(e->transform);
    PyMem_RawFree(e);
    eng->ctx = NULL;
}
