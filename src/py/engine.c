/* engine.c: the CPython engine of the server (lp_engine_t): thread states,
 * per-session compilers, running code, showing values and tracebacks. */
#include "py/state.h"

/* Shared by all sessions of one server. */
typedef struct engine {
    PyInterpreterState *interp; /* where server threads run */
    PyObject *module;           /* limpet._limpet (for its state) */
    PyObject *env;              /* the namespace given to start() */
    PyObject *transform;        /* source transform, or None */
    PyObject *underscore;       /* "_", the name the display hook binds */
    PyObject *compile_name;     /* "compile", looked up in builtins */
    PyObject *filters_name;     /* "filters", warnings' list */
    PyObject *compiler_name;    /* "compiler", codeop's inside CommandCompiler */
    PyObject *flags_name;       /* "flags", its __future__ flags: read on every line */
    PyObject *warnings;         /* the warnings module, once a compile needed it */
    PyObject *limpet_filter;    /* error_filter("<limpet>"): the usual filename's, made once */
    PyObject *ast_expr;         /* ast.Expr and ast.Expression, once a cell needed them */
    PyObject *ast_expression;
    PyObject *empty_code;       /* an empty module: the rest of a cell that is one expression */
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
    PyObject *env;      /* the namespace its code runs in (its environment's) */
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

static int session_open(void *ctx, void *tls, lp_session_t *s, void *env, void **data)
{
    pysession_t *ps = PyMem_RawCalloc(1, sizeof(*ps));
    engine_t *e = ctx;
    PyObject *codeop;
    int r = -1;

    if (ps == NULL)
        return -1;
    ps->engine = ctx;
    PyEval_RestoreThread(tls);
    ps->env = Py_NewRef(env != NULL ? (PyObject *)env : e->env);
    if ((codeop = PyImport_ImportModule("codeop")) == NULL ||
        (ps->compiler = PyObject_CallMethod(codeop, "CommandCompiler", NULL)) == NULL ||
        (ps->pending = PyList_New(0)) == NULL)
        goto out;
    r = 0;
out:
    Py_XDECREF(codeop);
    if (r != 0) {
        PyErr_Print(); /* a bug in limpet, or no memory: say so on the host's stderr */
        Py_XDECREF(ps->compiler);
        Py_XDECREF(ps->env);
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
    Py_XDECREF(ps->env);
    PyEval_SaveThread();
    PyMem_RawFree(ps);
}

/* Forgets the interactive lines not yet complete: 0, or -1 with an
 * exception set. */
static int drop_pending(pysession_t *ps)
{
    return PyList_SetSlice(ps->pending, 0, PyList_GET_SIZE(ps->pending), NULL);
}

static void reset(void *ctx, void *tls, void *data)
{
    pysession_t *ps = data;

    PyEval_RestoreThread(tls);
    if (drop_pending(ps) != 0)
        PyErr_WriteUnraisable(ps->pending);
    PyEval_SaveThread();
    (void)ctx;
}

/* "module.Qualname" of an exception or value type ("ValueError" for
 * builtins); new reference. A type whose names cannot be read is named by
 * its tp_name; NULL (exception set) only when memory runs out. */
static PyObject *type_name(PyTypeObject *t)
{
    PyObject *mod = NULL, *qual = NULL, *name = NULL;

    if ((mod = PyObject_GetAttrString((PyObject *)t, "__module__")) == NULL ||
        (qual = PyObject_GetAttrString((PyObject *)t, "__qualname__")) == NULL ||
        !PyUnicode_Check(mod) || !PyUnicode_Check(qual))
        goto out;
    if (PyUnicode_CompareWithASCIIString(mod, "builtins") != 0)
        name = PyUnicode_FromFormat("%U.%U", mod, qual);
    else
        name = Py_NewRef(qual);
out:
    Py_XDECREF(mod);
    Py_XDECREF(qual);
    if (name == NULL) {
        PyErr_Clear(); /* a metaclass whose __module__ raises, say */
        name = PyUnicode_FromString(t->tp_name);
    }
    return name;
}

/* str(obj) as UTF-8 bytes (lone surrogates escaped, as sys.stderr does),
 * NUL-free for C; a new reference, or NULL with an exception set. */
static PyObject *str_utf8(PyObject *obj)
{
    PyObject *str = PyObject_Str(obj), *b;

    if (str == NULL)
        return NULL;
    b = PyUnicode_AsEncodedString(str, "utf-8", "backslashreplace");
    Py_DECREF(str);
    if (b != NULL && strlen(PyBytes_AS_STRING(b)) != (size_t)PyBytes_GET_SIZE(b))
        PyBytes_AS_STRING(b)[strlen(PyBytes_AS_STRING(b))] = 0; /* cut at a NUL: C text ends there */
    return b;
}

/* Sends the exception exc (or NULL: none could be had) to s as python3's
 * REPL prints it: with its traceback and chain or, when only is set (an
 * error in compiling), the error alone. Text that is not UTF-8 (lone
 * surrogates) is escaped, as sys.stderr does. */
static void report(lp_session_t *s, PyObject *exc, int only)
{
    PyObject *tbmod = NULL, *lines = NULL, *empty = NULL, *text = NULL, *utf8 = NULL;
    PyObject *name = NULL, *msg = NULL;
    const char *u = NULL, *tn = NULL, *m = NULL;
    Py_ssize_t n = 0;

    if (exc == NULL)
        goto out;
    if ((tbmod = PyImport_ImportModule("traceback")) == NULL ||
        (lines = PyObject_CallMethod(tbmod, only ? "format_exception_only" : "format_exception",
                                     "O", exc)) == NULL ||
        (empty = PyUnicode_FromString("")) == NULL ||
        (text = PyUnicode_Join(empty, lines)) == NULL ||
        (utf8 = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace")) == NULL)
        goto out;
    u = PyBytes_AS_STRING(utf8);
    n = PyBytes_GET_SIZE(utf8);
    if ((name = type_name(Py_TYPE(exc))) == NULL || (tn = PyUnicode_AsUTF8(name)) == NULL)
        PyErr_Clear(); /* the client does without the type's name */
    if ((msg = str_utf8(exc)) != NULL)
        m = PyBytes_AS_STRING(msg);
    else
        PyErr_Clear(); /* a __str__ that raises: no message, as traceback says "<exception str() failed>" */
out:
    if (u == NULL) {
        PyErr_Clear();
        u = "limpet: the traceback could not be formatted\n";
        n = (Py_ssize_t)strlen(u);
    }
    lp_py_flush_if(s, lp_session_exception(s, tn, m, u, (size_t)n));
    Py_XDECREF(msg);
    Py_XDECREF(tbmod);
    Py_XDECREF(lines);
    Py_XDECREF(empty);
    Py_XDECREF(text);
    Py_XDECREF(utf8);
    Py_XDECREF(name);
}

/* The raised exception, normalized, with its traceback attached; new
 * reference, or NULL when none was set (3.12 has PyErr_GetRaisedException
 * for this). */
static PyObject *take_exception(void)
{
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL && PyException_SetTraceback(value, tb) != 0)
        PyErr_Clear(); /* not a traceback: the exception is shown without one */
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

/* What python3 prints when the SystemExit exc ends it: its code and a
 * newline, unless the code is None or a number. */
static void say_exit(lp_session_t *s, PyObject *exc)
{
    PyObject *code = NULL, *text = NULL;
    const char *u;
    Py_ssize_t n;

    if (exc == NULL || (code = PyObject_GetAttrString(exc, "code")) == NULL ||
        code == Py_None || PyLong_Check(code))
        goto out;
    if ((text = PyUnicode_FromFormat("%S\n", code)) == NULL ||
        (u = PyUnicode_AsUTF8AndSize(text, &n)) == NULL)
        goto out;
    (void)lp_py_session_output(s, LP_STDERR, u, n); /* a client that is gone hears nothing */
out:
    PyErr_Clear(); /* a code whose str() fails: python3 says nothing either */
    Py_XDECREF(code);
    Py_XDECREF(text);
}

/* builtins.compile(src, filename, mode, flags, dont_inherit=True): a code
 * object, or NULL with an exception set. */
static PyObject *builtin_compile(engine_t *e, PyObject *src, const char *filename,
                                 const char *mode, int flags)
{
    PyObject *compile = PyDict_GetItemWithError(PyEval_GetBuiltins(), e->compile_name);
    PyObject *code;

    if (compile == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_NameError, "name 'compile' is not defined");
        return NULL;
    }
    Py_INCREF(compile); /* borrowed from a dict that the call may change */
    code = PyObject_CallFunction(compile, "Ossii", src, filename, mode, flags, 1);
    Py_DECREF(compile);
    return code;
}

/* Applies the user's source transform to source: a code object, or NULL
 * with an exception set. The transform may return source text, an AST or
 * a code object. */
static PyObject *compile_source(engine_t *e, PyObject *source, const char *filename,
                                const char *mode, int flags)
{
    PyObject *src = Py_NewRef(source), *code;

    if (e->transform != Py_None) {
        Py_SETREF(src, PyObject_CallFunction(e->transform, "Oss", source, filename, mode));
        if (src == NULL || PyCode_Check(src))
            return src;
    }
    code = builtin_compile(e, src, filename, mode, flags);
    Py_DECREF(src);
    return code;
}

/* codeop's compiler inside ps's CommandCompiler, which holds its flags: a
 * new reference, or NULL with an exception set. */
static PyObject *inner_compiler(pysession_t *ps)
{
    return PyObject_GetAttr(ps->compiler, ps->engine->compiler_name);
}

/* The flags of the REPL compiler of ps (codeop's own, and the __future__
 * features it has seen) in *flags: 0, or -1 with an exception set. */
static int compiler_flags(pysession_t *ps, int *flags)
{
    PyObject *inner = NULL, *f = NULL;
    long v;
    int r = -1;

    if ((inner = inner_compiler(ps)) == NULL ||
        (f = PyObject_GetAttr(inner, ps->engine->flags_name)) == NULL)
        goto out;
    if ((v = PyLong_AsLong(f)) == -1 && PyErr_Occurred())
        goto out;
    if (v < 0 || v > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "limpet: codeop's compiler flags are out of range");
        goto out;
    }
    *flags = (int)v;
    r = 0;
out:
    Py_XDECREF(inner);
    Py_XDECREF(f);
    return r;
}

/* Records in the REPL compiler of ps, whose flags were old, the __future__
 * features a compile found (in found), as codeop does after its own
 * compiles: 0, or -1 with an exception set. */
static int compiler_add_flags(pysession_t *ps, int old, int found)
{
    PyObject *inner = NULL, *f = NULL;
    int flags = old | (found & PyCF_MASK), r = -1;

    if (flags == old)
        return 0;
    if ((inner = inner_compiler(ps)) == NULL || (f = PyLong_FromLong(flags)) == NULL ||
        PyObject_SetAttr(inner, ps->engine->flags_name, f) != 0)
        goto out;
    r = 0;
out:
    Py_XDECREF(inner);
    Py_XDECREF(f);
    return r;
}

/* A warnings filter that makes an error of every warning the compiler
 * gives about filename; new reference, or NULL with an exception set. The
 * compiler's warnings name as their module the filename without ".py"
 * (_warnings' normalize_module), and a str module matches exactly: the
 * filter cannot touch any other code's warnings. */
static PyObject *error_filter(const char *filename)
{
    size_t n = strlen(filename);
    PyObject *module, *filter;

    if (n >= 3 && strcmp(filename + n - 3, ".py") == 0)
        n -= 3;
    module = n > 0 ? PyUnicode_DecodeFSDefaultAndSize(filename, (Py_ssize_t)n)
                   : PyUnicode_FromString("<unknown>");
    if (module == NULL)
        return NULL;
    filter = Py_BuildValue("(sOOOi)", "error", Py_None, PyExc_Warning, module, 0);
    Py_DECREF(module);
    return filter;
}

/* Compiles src as one interactive statement with cf, but fails, printing
 * nothing, where the compiler would print a warning: a code object, or
 * NULL with an exception set. The GIL is held throughout and Python code
 * seldom runs meanwhile (a first non-ASCII name imports unicodedata), so
 * the filter is looked for by identity, not assumed first, as it goes. */
static PyObject *compile_silently(engine_t *e, const char *src, const char *filename,
                                  PyCompilerFlags *cf)
{
    PyObject *warnings = NULL, *filters = NULL, *filter = NULL, *code = NULL;
    PyObject *type, *value, *tb;

    /* where _warnings looks for its filters; found once (a lookup in
     * sys.modules per line was a fiftieth of the request) */
    if (e->warnings == NULL && (e->warnings = PyImport_ImportModule("warnings")) == NULL)
        goto out;
    warnings = Py_NewRef(e->warnings);
    /* the filter of the usual filename is made once: building it cost a
     * tenth of the request (docs/performance.md, issue 10) */
    filter = strcmp(filename, "<limpet>") == 0 ? Py_NewRef(e->limpet_filter)
                                               : error_filter(filename);
    if (filter == NULL || (filters = PyObject_GetAttr(warnings, e->filters_name)) == NULL)
        goto out;
    if (!PyList_Check(filters)) {
        PyErr_SetString(PyExc_TypeError, "warnings.filters is not a list");
        goto out;
    }
    if (PyList_Insert(filters, 0, filter) != 0)
        goto out;
    code = Py_CompileStringExFlags(src, filename, Py_single_input, cf, -1);
    PyErr_Fetch(&type, &value, &tb);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(filters); i++) {
        if (PyList_GET_ITEM(filters, i) == filter) {
            if (PyList_SetSlice(filters, i, i + 1, NULL) != 0)
                PyErr_WriteUnraisable(filters);
            break;
        }
    }
    PyErr_Restore(type, value, tb);
out:
    Py_XDECREF(warnings);
    Py_XDECREF(filters);
    Py_XDECREF(filter);
    return code;
}

/* The common case, without codeop's Python-level work (two compiles and a
 * warnings context, about 15 us): complete, valid input compiles at once
 * with the flags codeop itself uses, and any __future__ import it makes is
 * recorded where codeop keeps them. NULL, with no exception set, when the
 * input needs codeop's judgement: incomplete, invalid, blank, or with a
 * warning to print (codeop prints it once, when the input is complete). */
static PyObject *compile_fast(pysession_t *ps, PyObject *source, const char *filename)
{
    PyCompilerFlags cf = {0, PY_MINOR_VERSION};
    PyObject *code = NULL;
    const char *src;
    Py_ssize_t n;
    int flags;

    if (compiler_flags(ps, &flags) != 0 || (src = PyUnicode_AsUTF8AndSize(source, &n)) == NULL)
        goto out;
    if (strlen(src) != (size_t)n)
        goto out; /* a NUL, which compile() refuses and C would stop at */
    /* the text is UTF-8 whatever coding cookie it carries, as for compile() */
    cf.cf_flags =
        flags | PyCF_DONT_IMPLY_DEDENT | PyCF_ALLOW_INCOMPLETE_INPUT | PyCF_IGNORE_COOKIE;
    if ((code = compile_silently(ps->engine, src, filename, &cf)) != NULL &&
        compiler_add_flags(ps, flags, cf.cf_flags) != 0)
        Py_CLEAR(code);
out:
    PyErr_Clear(); /* codeop decides, and says why */
    return code;
}

/* Input that is not Python until the transform has run (macros): the
 * transformed text goes through the REPL's rules; an AST or code object is
 * taken as complete. Same results as compile_interactive. */
static PyObject *compile_transformed(engine_t *e, pysession_t *ps, PyObject *source,
                                     const char *filename)
{
    PyObject *t = PyObject_CallFunction(e->transform, "Oss", source, filename, "single");
    PyObject *code = NULL;
    int flags;

    if (t == NULL || PyCode_Check(t))
        return t;
    if (PyUnicode_Check(t))
        code = PyObject_CallFunction(ps->compiler, "Oss", t, filename, "single");
    else if (compiler_flags(ps, &flags) == 0)
        code = builtin_compile(e, t, filename, "single", flags);
    Py_DECREF(t);
    return code;
}

/* The pending lines are done with (the input was complete or invalid):
 * forgets them, keeping the exception set, if any. Returns code, or NULL
 * with an exception set. */
static PyObject *end_input(pysession_t *ps, PyObject *code)
{
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    if (drop_pending(ps) != 0) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        Py_XDECREF(code);
        return NULL;
    }
    PyErr_Restore(type, value, tb);
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
    PyObject *nl = NULL, *source = NULL, *code = NULL;
    int flags;

    if ((nl = PyUnicode_FromString("\n")) == NULL || PyList_Append(ps->pending, text) != 0 ||
        (source = PyUnicode_Join(nl, ps->pending)) == NULL)
        goto out;
    if (e->transform != Py_None || (code = compile_fast(ps, source, filename)) == NULL)
        code = PyObject_CallFunction(ps->compiler, "Oss", source, filename, "single");
    if (e->transform != Py_None) {
        if (code == NULL && PyErr_ExceptionMatches(PyExc_SyntaxError)) {
            PyErr_Clear();
            code = compile_transformed(e, ps, source, filename);
        } else if (code != NULL && code != Py_None) {
            Py_SETREF(code, compiler_flags(ps, &flags) == 0
                                ? compile_source(e, source, filename, "single", flags)
                                : NULL);
        }
    }
out:
    if (code != Py_None)
        code = end_input(ps, code);
    Py_XDECREF(nl);
    Py_XDECREF(source);
    return code;
}

/* The AST node types a cell is split with, found once: 0, or -1 with an
 * exception set. */
static int ast_types(engine_t *e)
{
    PyObject *ast;

    if (e->ast_expression != NULL)
        return 0;
    if ((ast = PyImport_ImportModule("ast")) == NULL)
        return -1;
    e->ast_expr = PyObject_GetAttrString(ast, "Expr");
    e->ast_expression = e->ast_expr != NULL ? PyObject_GetAttrString(ast, "Expression") : NULL;
    Py_DECREF(ast);
    if (e->ast_expression == NULL ||
        (e->empty_code = Py_CompileString("", "<limpet>", Py_file_input)) == NULL) {
        Py_CLEAR(e->ast_expr);
        Py_CLEAR(e->ast_expression);
        return -1;
    }
    return 0;
}

/* The common one-line cell, an expression (`df.head()`, `x`): compiled in
 * eval mode at once, without the AST's round trip through Python objects
 * (a third of the request). NULL, with no exception set, when it is not
 * one: the cell then goes the AST's way, which says what is wrong. */
static PyObject *compile_expression(engine_t *e, PyObject *text, const char *filename, int flags)
{
    Py_ssize_t n = PyUnicode_GetLength(text);
    PyObject *code;

    if (n <= 0 || PyUnicode_FindChar(text, '\n', 0, n - 1, 1) != -1)
        return NULL; /* several lines: statements, mostly */
    code = builtin_compile(e, text, filename, "eval", flags);
    PyErr_Clear();
    return code;
}

/* A cell (eval mode "cell", docs/jupyter.md 5): the whole text compiled
 * as a module, but a last expression statement split off and compiled on
 * its own, in *last, so that its value can be shown as a `single` line's
 * is; *last stays NULL when the cell ends otherwise. The session's
 * __future__ flags apply, and the source transform, as for a script. The
 * module's code, or NULL with an exception set. */
static PyObject *compile_cell(engine_t *e, pysession_t *ps, PyObject *text, const char *filename,
                              PyObject **last)
{
    PyObject *tree = NULL, *body = NULL, *expr = NULL, *code = NULL, *src = Py_NewRef(text);
    Py_ssize_t n;
    int flags;

    *last = NULL;
    if (e->transform != Py_None) {
        Py_SETREF(src, PyObject_CallFunction(e->transform, "Oss", text, filename, "exec"));
        if (src == NULL || PyCode_Check(src))
            return src; /* the transform compiled it: run as it is, no value */
    }
    if (ast_types(e) != 0 || compiler_flags(ps, &flags) != 0)
        goto out;
    flags &= PyCF_MASK; /* its __future__ features; not codeop's own flags for REPL input */
    if (e->transform == Py_None && (*last = compile_expression(e, src, filename, flags)) != NULL) {
        code = Py_NewRef(e->empty_code);
        goto out;
    }
    if ((tree = builtin_compile(e, src, filename, "exec", flags | PyCF_ONLY_AST)) == NULL ||
        (body = PyObject_GetAttrString(tree, "body")) == NULL)
        goto out;
    if (!PyList_Check(body)) {
        PyErr_SetString(PyExc_TypeError, "limpet: a module's body is not a list");
        goto out;
    }
    n = PyList_GET_SIZE(body);
    if (n > 0 && Py_IS_TYPE(PyList_GET_ITEM(body, n - 1), (PyTypeObject *)e->ast_expr)) {
        PyObject *value = PyObject_GetAttrString(PyList_GET_ITEM(body, n - 1), "value");

        if (value == NULL || PyList_SetSlice(body, n - 1, n, NULL) != 0 ||
            (expr = PyObject_CallOneArg(e->ast_expression, value)) == NULL ||
            (*last = builtin_compile(e, expr, filename, "eval", flags)) == NULL) {
            Py_XDECREF(value);
            goto out;
        }
        Py_DECREF(value);
    }
    code = builtin_compile(e, tree, filename, "exec", flags);
out:
    if (code == NULL)
        Py_CLEAR(*last);
    Py_XDECREF(src);
    Py_XDECREF(tree);
    Py_XDECREF(body);
    Py_XDECREF(expr);
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

/* Runs code in env, then evaluates last (a cell's final expression, or
 * NULL) and shows its value through sys.displayhook, as a `single` line's
 * value is shown: the result, or NULL with an exception set. */
static PyObject *exec_cell(PyObject *env, PyObject *code, PyObject *last)
{
    PyObject *r = PyEval_EvalCode(code, env, env), *v, *hook;

    if (r == NULL || last == NULL)
        return r;
    Py_DECREF(r);
    if ((v = PyEval_EvalCode(last, env, env)) == NULL)
        return NULL;
    if ((hook = PySys_GetObject("displayhook")) == NULL) { /* borrowed */
        PyErr_SetString(PyExc_RuntimeError, "lost sys.displayhook");
        r = NULL;
    } else {
        Py_INCREF(hook);
        r = PyObject_CallOneArg(hook, v);
        Py_DECREF(hook);
    }
    Py_DECREF(v);
    return r;
}

/* Runs code (and a cell's last expression, or NULL) in the environment;
 * reports what it raised. */
static int run(engine_t *e, lp_session_t *s, PyObject *env, PyObject *code, PyObject *last,
               evalctx_t *ec)
{
    PyObject *r = exec_cell(env, code, last);
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
    if (PyErr_ExceptionMatches(PyExc_SystemExit))
        status = LP_EVAL_CLOSED; /* exit(), quit(), sys.exit(): the session ends, never the host */
    else if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) && lp_session_was_interrupted(s))
        status = LP_EVAL_INTERRUPTED;
    else
        status = LP_EVAL_EXCEPTION;
    exc = take_exception();
    if (status == LP_EVAL_CLOSED)
        say_exit(s, exc);
    else
        report(s, exc, 0);
    Py_XDECREF(exc);
    return status;
}

/* Compiles and runs req; the GIL is held. */
static int eval_locked(engine_t *e, lp_session_t *s, pysession_t *ps, const lp_eval_req_t *req,
                       evalctx_t *ec)
{
    /* an interactive line may come with the newline that ended it */
    bool single = req->mode == LP_MODE_SINGLE;
    size_t len = single && req->len > 0 && req->code[req->len - 1] == '\n' ? req->len - 1
                                                                           : req->len;
    PyObject *text = PyUnicode_DecodeUTF8(req->code, (Py_ssize_t)len, "strict");
    PyObject *code = NULL, *last = NULL, *exc;
    int status, only;

    if (text != NULL && req->mode == LP_MODE_CELL)
        code = compile_cell(e, ps, text, req->filename, &last);
    else if (text != NULL)
        code = single ? compile_interactive(e, ps, text, req->filename)
                      : compile_source(e, text, req->filename, "exec", 0);
    Py_XDECREF(text);
    if (code == Py_None) {
        Py_DECREF(code);
        return LP_EVAL_MORE;
    }
    if (code == NULL) {
        /* as python3 and code.InteractiveConsole: an error in compiling is
         * shown alone, without the frames (codeop's) that compiled it */
        only = PyErr_ExceptionMatches(PyExc_SyntaxError) ||
               PyErr_ExceptionMatches(PyExc_OverflowError) ||
               PyErr_ExceptionMatches(PyExc_ValueError);
        exc = take_exception();
        report(s, exc, only);
        Py_XDECREF(exc);
        return LP_EVAL_EXCEPTION;
    }
    status = run(e, s, ps->env, code, last, ec);
    Py_DECREF(code);
    Py_XDECREF(last);
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
    PyObject *exc;
    int status;

    PyEval_RestoreThread(ts);
    st = lp_py_state(e->module);
    if (lp_py_current_swap(st, s, &prev) != 0) {
        /* the thread cannot say whose output it writes: nothing runs */
        exc = take_exception();
        report(s, exc, 0);
        Py_XDECREF(exc);
        PyEval_SaveThread();
        return LP_EVAL_EXCEPTION;
    }
    ps->running = 1;
    ps->cur = &ec;
    if (lp_session_take_interrupt(s)) {
        /* interrupted before it could start: as at python3's "... ",
         * Ctrl+C drops the pending block too */
        if (drop_pending(data) != 0)
            PyErr_WriteUnraisable(NULL);
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        exc = take_exception();
        report(s, exc, 0);
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
    (void)PyThreadState_SetAsyncExc((unsigned long)ts->thread_id, NULL);
    lp_py_set_current(st, prev); /* cannot fail: it worked on this thread */
    PyEval_SaveThread();
    return status;
}

static int64_t detach(void *ctx, void *tls, void *target_tls, void *data)
{
    pysession_t *ps = data;
    PyThreadState *target = target_tls;
    PyObject *mod = NULL, *job = NULL, *id = NULL;
    long long n;
    int64_t r = -1;

    PyEval_RestoreThread(tls);
    if (ps == NULL || ps->cur == NULL)
        goto out;
    if ((mod = PyImport_ImportModule("limpet._jobs")) == NULL ||
        (job = PyObject_CallMethod(mod, "detached", "ks", (unsigned long)target->thread_id,
                                   ps->cur->code)) == NULL ||
        (id = PyObject_GetAttrString(job, "id")) == NULL)
        goto out;
    if ((n = PyLong_AsLongLong(id)) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "limpet: a job id is a number from 0");
        goto out;
    }
    ps->cur->job = Py_NewRef(job);
    ps->cur->detached = 1;
    ps->cur = NULL;
    ps->running = 0;
    r = n;
out:
    if (PyErr_Occurred())
        PyErr_WriteUnraisable(NULL);
    Py_XDECREF(mod);
    Py_XDECREF(job);
    Py_XDECREF(id);
    PyEval_SaveThread();
    (void)ctx;
    return r;
}

static void interrupt(void *ctx, void *tls, void *target_tls, void *data)
{
    pysession_t *ps = data;
    PyThreadState *target = target_tls;

    PyEval_RestoreThread(tls);
    if (ps != NULL && ps->running)
        (void)PyThreadState_SetAsyncExc((unsigned long)target->thread_id, PyExc_KeyboardInterrupt);
    PyEval_SaveThread();
    (void)ctx;
}

/* Binds `_` to v in the environment, as IPython does, unless the user has
 * a `_` of their own there (gettext's, say): 0, or -1 with an exception
 * set. */
static int bind_underscore(pysession_t *ps, PyObject *v)
{
    engine_t *e = ps->engine;
    PyObject *old = PyDict_GetItemWithError(ps->env, e->underscore); /* borrowed */

    if (old == NULL && PyErr_Occurred())
        return -1;
    if (old != NULL && old != ps->last)
        return 0;
    if (PyDict_SetItem(ps->env, e->underscore, v) != 0)
        return -1;
    Py_XSETREF(ps->last, Py_NewRef(v));
    return 0;
}

PyObject *lp_py_display(lp_modstate_t *st, lp_session_t *s, PyObject *value)
{
    pysession_t *ps = lp_session_data(s);
    PyObject *repr = NULL, *name = NULL, *r = NULL;
    const char *u, *tn = NULL;
    Py_ssize_t n;

    if (value == Py_None)
        Py_RETURN_NONE;
    /* as sys.displayhook: `_` is None while repr() runs, and stays so if
     * it fails */
    if (ps != NULL && bind_underscore(ps, Py_None) != 0)
        goto out;
    if ((repr = PyObject_Repr(value)) == NULL || (u = PyUnicode_AsUTF8AndSize(repr, &n)) == NULL)
        goto out;
    if (ps != NULL && bind_underscore(ps, value) != 0)
        goto out;
    if ((name = type_name(Py_TYPE(value))) == NULL || (tn = PyUnicode_AsUTF8(name)) == NULL)
        PyErr_Clear(); /* the client does without the type's name */
    lp_py_flush_if(s, lp_session_value(s, tn, u, (size_t)n));
    r = Py_NewRef(Py_None);
out:
    Py_XDECREF(repr);
    Py_XDECREF(name);
    (void)st;
    return r;
}

/* The completion engine: limpet._completion.complete, in Python because it
 * is introspection through and through. A bug there is printed on the
 * host's stderr, and the client gets no matches. */
static json_t *complete(void *ctx, void *tls, void *data, const char *text, size_t len,
                        size_t cursor, size_t *start)
{
    PyObject *mod = NULL, *r = NULL, *matches;
    json_t *out = NULL;
    Py_ssize_t at;

    PyEval_RestoreThread(tls);
    if ((mod = PyImport_ImportModule("limpet._completion")) == NULL ||
        (r = PyObject_CallMethod(mod, "complete", "Oy#n", ((pysession_t *)data)->env, text,
                                 (Py_ssize_t)len,
                                 (Py_ssize_t)cursor)) == NULL)
        goto out;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2 ||
        !PyList_Check(matches = PyTuple_GET_ITEM(r, 1))) {
        PyErr_SetString(PyExc_TypeError, "limpet: complete() must return (start, [str, ...])");
        goto out;
    }
    if ((at = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 0))) < 0 || (size_t)at > cursor) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "limpet: complete() gave a start after the cursor");
        goto out;
    }
    if ((out = json_array()) == NULL) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(matches); i++) {
        const char *m = PyUnicode_AsUTF8(PyList_GET_ITEM(matches, i));

        if (m == NULL || json_array_append_new(out, json_string(m)) != 0) {
            if (!PyErr_Occurred())
                PyErr_NoMemory();
            json_decref(out);
            out = NULL;
            goto out;
        }
    }
    *start = (size_t)at;
out:
    if (PyErr_Occurred())
        PyErr_Print(); /* a bug in limpet: say so on the host's stderr */
    Py_XDECREF(mod);
    Py_XDECREF(r);
    PyEval_SaveThread();
    (void)data;
    return out;
}

/* check (capability check): limpet._completion.check with the session's
 * compiler flags (its __future__ features), so the answer is what its
 * interactive input would get. */
static json_t *check(void *ctx, void *tls, void *data, const char *code, size_t len)
{
    PyObject *mod = NULL, *r = NULL;
    const char *status, *indent;
    json_t *out = NULL;
    int flags;

    PyEval_RestoreThread(tls);
    if (compiler_flags(data, &flags) != 0 ||
        (mod = PyImport_ImportModule("limpet._completion")) == NULL ||
        (r = PyObject_CallMethod(mod, "check", "s#i", len > 0 ? code : "", (Py_ssize_t)len,
                                 flags)) == NULL) /* s# makes None of NULL */
        goto out;
    if (!PyArg_ParseTuple(r, "ss;limpet: check() must return (str, str)", &status, &indent))
        goto out;
    if ((out = json_pack("{s:s,s:s}", "complete", status, "indent", indent)) == NULL)
        PyErr_NoMemory();
out:
    if (PyErr_Occurred())
        PyErr_Print(); /* a bug in limpet: say so on the host's stderr */
    Py_XDECREF(mod);
    Py_XDECREF(r);
    PyEval_SaveThread();
    (void)ctx;
    return out;
}

/* inspect (capability inspect): limpet._completion.describe, which finds
 * the name as complete does (no property, no __getattr__ runs). */
static json_t *inspect(void *ctx, void *tls, void *data, const char *text, size_t len,
                       size_t cursor, int detail, size_t max, char **doc, size_t *doc_len)
{
    PyObject *mod = NULL, *r = NULL;
    const char *u;
    Py_ssize_t n;
    json_t *out = NULL;
    int found;

    *doc = NULL;
    *doc_len = 0;
    PyEval_RestoreThread(tls);
    if ((mod = PyImport_ImportModule("limpet._completion")) == NULL ||
        (r = PyObject_CallMethod(mod, "describe", "Oy#nin", ((pysession_t *)data)->env, text,
                                 (Py_ssize_t)len, (Py_ssize_t)cursor, detail,
                                 (Py_ssize_t)(max < PY_SSIZE_T_MAX ? max : PY_SSIZE_T_MAX))) == NULL)
        goto out;
    if (!PyArg_ParseTuple(r, "ps#;limpet: describe() must return (bool, str)", &found, &u, &n))
        goto out;
    if ((size_t)n > max) {
        PyErr_SetString(PyExc_ValueError, "limpet: describe() gave more than it was allowed");
        goto out;
    }
    if ((*doc = malloc((size_t)n + 1)) == NULL ||
        (out = json_pack("{s:b}", "found", found)) == NULL) {
        free(*doc);
        *doc = NULL;
        PyErr_NoMemory();
        goto out;
    }
    memcpy(*doc, u, (size_t)n);
    *doc_len = (size_t)n;
out:
    if (PyErr_Occurred())
        PyErr_Print(); /* a bug in limpet: say so on the host's stderr */
    Py_XDECREF(mod);
    Py_XDECREF(r);
    PyEval_SaveThread();
    (void)ctx;
    return out;
}

int lp_py_engine_init(lp_engine_t *eng, PyObject *module, PyObject *env, PyObject *transform)
{
    engine_t *e = PyMem_RawCalloc(1, sizeof(*e));

    if (e == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if ((e->underscore = PyUnicode_InternFromString("_")) == NULL ||
        (e->compile_name = PyUnicode_InternFromString("compile")) == NULL ||
        (e->filters_name = PyUnicode_InternFromString("filters")) == NULL ||
        (e->compiler_name = PyUnicode_InternFromString("compiler")) == NULL ||
        (e->flags_name = PyUnicode_InternFromString("flags")) == NULL ||
        (e->limpet_filter = error_filter("<limpet>")) == NULL) {
        Py_XDECREF(e->underscore);
        Py_XDECREF(e->compile_name);
        Py_XDECREF(e->filters_name);
        Py_XDECREF(e->compiler_name);
        Py_XDECREF(e->flags_name);
        PyMem_RawFree(e);
        return -1;
    }
    e->interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    e->module = Py_NewRef(module);
    e->env = Py_NewRef(env);
    e->transform = Py_NewRef(transform != NULL ? transform : Py_None);
    *eng = (lp_engine_t){e,    thread_enter, thread_exit, session_open, session_close,
                         eval, reset,        interrupt,   complete,
                         detach,       NULL,         NULL,
                         NULL, check, inspect};
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
    Py_DECREF(e->underscore);
    Py_DECREF(e->compile_name);
    Py_DECREF(e->filters_name);
    Py_DECREF(e->compiler_name);
    Py_DECREF(e->flags_name);
    Py_DECREF(e->limpet_filter);
    Py_XDECREF(e->warnings);
    Py_XDECREF(e->ast_expr);
    Py_XDECREF(e->ast_expression);
    Py_XDECREF(e->empty_code);
    PyMem_RawFree(e);
    eng->ctx = NULL;
}
