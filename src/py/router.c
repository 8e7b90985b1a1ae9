/* router.c: where the output of a thread goes. sys.stdout and sys.stderr
 * become Routers: a write from a thread running a session's code (found in
 * thread-specific storage) goes to that session; every other thread's write
 * goes, untouched, to the stream that was there before. The display hook and
 * the thread starters are wrapped the same way, so that threads started by
 * session code write to the session too. */
#include "py/state.h"

#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *orig;     /* the stream replaced; may be None */
    lp_stream_t stream; /* which one this is */
    int raw;            /* 1: the .buffer side, which takes bytes */
} RouterObject;

int lp_py_current_swap(lp_modstate_t *st, lp_session_t *s, lp_session_t **prev)
{
    *prev = PyThread_tss_get(&st->current);
    if (PyThread_tss_set(&st->current, s) != 0) {
        PyErr_NoMemory(); /* pthread_setspecific fails only for want of memory */
        return -1;
    }
    return 0;
}

lp_session_t *lp_py_set_current(lp_modstate_t *st, lp_session_t *s)
{
    lp_session_t *prev;

    /* on failure the thread keeps its session, prev: its output goes
     * where it went before */
    if (lp_py_current_swap(st, s, &prev) != 0)
        PyErr_WriteUnraisable(NULL);
    return prev;
}

int lp_py_flush_if(lp_session_t *s, int r)
{
    if (r == 1) {
        Py_BEGIN_ALLOW_THREADS
        r = lp_session_flush(s);
        Py_END_ALLOW_THREADS
    }
    return r;
}

int lp_py_session_output(lp_session_t *s, lp_stream_t stream, const char *data, Py_ssize_t len)
{
    int r = lp_session_write(s, stream, data, (size_t)len);

    if (r == 1) {
        Py_BEGIN_ALLOW_THREADS
        r = lp_session_flush(s);
        Py_END_ALLOW_THREADS
    } else if (r == 2) {
        Py_BEGIN_ALLOW_THREADS
        r = lp_session_send(s, stream, data, (size_t)len);
        Py_END_ALLOW_THREADS
    }
    return r;
}

/* The session of the calling thread, or NULL. */
static lp_session_t *current(PyObject *self)
{
    return PyThread_tss_get(&lp_py_state_of_type(Py_TYPE(self))->current);
}

/* Text written by a session: UTF-8, with lone surrogates (from
 * surrogateescape'd bytes) passed through as the bytes they stand for.
 * Returns the number of characters written (new reference), or NULL. */
static PyObject *session_write_text(lp_session_t *s, RouterObject *r, PyObject *text)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(text, &n);
    PyObject *b = NULL;

    if (u == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return NULL;
        PyErr_Clear();
        if ((b = PyUnicode_AsEncodedString(text, "utf-8", "surrogateescape")) == NULL)
            return NULL;
        u = PyBytes_AS_STRING(b);
        n = PyBytes_GET_SIZE(b);
    }
    /* a client gone, or too slow, loses its output; the writer goes on */
    (void)lp_py_session_output(s, r->stream, u, n);
    Py_XDECREF(b);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(text));
}

static PyObject *router_write(RouterObject *self, PyObject *arg)
{
    lp_session_t *s = current((PyObject *)self);
    Py_buffer view;
    Py_ssize_t n;

    if (s == NULL) {
        if (self->orig != Py_None)
            return PyObject_CallMethod(self->orig, "write", "O", arg);
        /* no stream here (a daemon's closed stdout): written to nowhere */
        if ((n = PyObject_Length(arg)) < 0)
            return NULL;
        return PyLong_FromSsize_t(n);
    }
    if (self->stream == LP_STDIN) {
        PyErr_SetString(PyExc_OSError, "limpet: stdin is not writable");
        return NULL;
    }
    if (!self->raw) {
        if (!PyUnicode_Check(arg))
            return PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                                Py_TYPE(arg)->tp_name);
        return session_write_text(s, self, arg);
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) != 0)
        return NULL;
    (void)lp_py_session_output(s, self->stream, view.buf, view.len); /* as above */
    n = view.len;
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(n);
}

static PyObject *router_flush(RouterObject *self, PyObject *unused)
{
    lp_session_t *s = current((PyObject *)self);

    if (s != NULL) {
        Py_BEGIN_ALLOW_THREADS
        (void)lp_session_flush(s); /* a client gone loses its output */
        Py_END_ALLOW_THREADS
        Py_RETURN_NONE;
    }
    if (self->orig == Py_None)
        Py_RETURN_NONE;
    return PyObject_CallMethod(self->orig, "flush", NULL);
}

static PyObject *router_isatty(RouterObject *self, PyObject *unused)
{
    if (current((PyObject *)self) != NULL || self->orig == Py_None)
        Py_RETURN_FALSE;
    return PyObject_CallMethod(self->orig, "isatty", NULL);
}

static PyObject *router_writable(RouterObject *self, PyObject *unused)
{
    return PyBool_FromLong(self->stream != LP_STDIN);
}

static PyObject *router_readable(RouterObject *self, PyObject *unused)
{
    return PyBool_FromLong(self->stream == LP_STDIN);
}

/* Calls method on the replaced stream with args; for host threads. */
static PyObject *delegate(RouterObject *self, const char *method, PyObject *args)
{
    PyObject *m, *r;

    if (self->orig == Py_None)
        return PyErr_Format(PyExc_OSError, "limpet: this process has no %s",
                            self->stream == LP_STDIN ? "stdin" : "such stream");
    if ((m = PyObject_GetAttrString(self->orig, method)) == NULL)
        return NULL;
    r = PyObject_Call(m, args, NULL);
    Py_DECREF(m);
    return r;
}

/* A session's streams are not the host's file descriptors: input() must not
 * take the host's terminal, nor os.write() its fd. */
static PyObject *router_fileno(RouterObject *self, PyObject *args)
{
    PyObject *io = NULL, *unsupported = NULL;

    if (current((PyObject *)self) != NULL) {
        /* io.UnsupportedOperation, as a stream with no descriptor raises;
         * else whatever stopped us from raising it */
        if ((io = PyImport_ImportModule("io")) != NULL &&
            (unsupported = PyObject_GetAttrString(io, "UnsupportedOperation")) != NULL)
            PyErr_SetString(unsupported, "limpet: a session's streams have no file descriptor");
        Py_XDECREF(unsupported);
        Py_XDECREF(io);
        return NULL;
    }
    return delegate(self, "fileno", args);
}

/* A line from the client of session s, for input() and sys.stdin reads:
 * "" at end of input; KeyboardInterrupt when interrupted. */
static PyObject *session_readline(lp_session_t *s)
{
    uint8_t *data = NULL;
    size_t len = 0;
    PyObject *line;
    int r;

    Py_BEGIN_ALLOW_THREADS
    r = lp_session_input(s, "", true, &data, &len);
    Py_END_ALLOW_THREADS
    if (r == LP_EINTERRUPTED) {
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        return NULL;
    }
    if (r != 0)
        return PyUnicode_FromString("");
    /* input() strips one newline: a line always ends with one */
    if (len == 0 || data[len - 1] != '\n')
        data[len++] = '\n'; /* lp_session_give_input left room for it */
    line = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, "surrogateescape");
    free(data);
    return line;
}

/* Reading sys.stdin: for a session, a line from its client (input() asks
 * through the protocol); for the host, its own stdin. */
static PyObject *router_read_any(RouterObject *self, PyObject *args, const char *method)
{
    lp_session_t *s = current((PyObject *)self);

    if (s != NULL)
        return session_readline(s);
    return delegate(self, method, args);
}

static PyObject *router_readline(RouterObject *self, PyObject *args)
{
    return router_read_any(self, args, "readline");
}

static PyObject *router_read(RouterObject *self, PyObject *args)
{
    return router_read_any(self, args, "read");
}

/* exit() closes sys.stdin before raising SystemExit: from a session that
 * must not close the host's stdin. */
static PyObject *router_close(RouterObject *self, PyObject *args)
{
    if (current((PyObject *)self) != NULL)
        Py_RETURN_NONE;
    return delegate(self, "close", args);
}

/* Anything else (encoding, fileno, ...) is the replaced stream's. */
static PyObject *router_getattro(RouterObject *self, PyObject *name)
{
    PyObject *v = PyObject_GenericGetAttr((PyObject *)self, name);

    if (v != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError) || self->orig == Py_None)
        return v;
    PyErr_Clear();
    return PyObject_GetAttr(self->orig, name);
}

static PyObject *router_buffer(RouterObject *self, void *closure)
{
    PyTypeObject *t = Py_TYPE(self);
    RouterObject *b;
    PyObject *orig_buf = NULL;

    if (self->raw)
        return Py_NewRef(self);
    if (self->orig != Py_None &&
        (orig_buf = PyObject_GetAttrString(self->orig, "buffer")) == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear(); /* a text stream with no binary side (io.StringIO) */
    }
    if (orig_buf == NULL)
        orig_buf = Py_NewRef(Py_None);
    if ((b = PyObject_GC_New(RouterObject, t)) == NULL) {
        Py_DECREF(orig_buf);
        return NULL;
    }
    b->orig = orig_buf; /* the new router's reference */
    b->stream = self->stream;
    b->raw = 1;
    PyObject_GC_Track(b);
    return (PyObject *)b;
}

static int router_traverse(RouterObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->orig);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int router_clear(RouterObject *self)
{
    Py_CLEAR(self->orig);
    return 0;
}

static void router_dealloc(RouterObject *self)
{
    PyTypeObject *t = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    router_clear(self);
    t->tp_free(self);
    Py_DECREF(t);
}

static PyMethodDef router_methods[] = {
    {"write", (PyCFunction)router_write, METH_O, "write(s, /)\n--\n\nWrite to this thread's stream."},
    {"flush", (PyCFunction)router_flush, METH_NOARGS, "flush()\n--\n\nSend what is buffered."},
    {"isatty", (PyCFunction)router_isatty, METH_NOARGS, "isatty()\n--\n\n"},
    {"writable", (PyCFunction)router_writable, METH_NOARGS, "writable()\n--\n\n"},
    {"readable", (PyCFunction)router_readable, METH_NOARGS, "readable()\n--\n\n"},
    {"fileno", (PyCFunction)router_fileno, METH_VARARGS, "fileno()\n--\n\n"},
    {"readline", (PyCFunction)router_readline, METH_VARARGS, "readline(size=-1, /)\n--\n\n"},
    {"read", (PyCFunction)router_read, METH_VARARGS, "read(size=-1, /)\n--\n\n"},
    {"close", (PyCFunction)router_close, METH_VARARGS, "close()\n--\n\n"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef router_getset[] = {
    {"buffer", (getter)router_buffer, NULL, "the binary side of the stream", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef router_members[] = {
    {"replaced", T_OBJECT, offsetof(RouterObject, orig), READONLY, "the stream replaced"},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot router_slots[] = {
    {Py_tp_doc, (void *)"Routes each thread's writes: session code to its session, the rest as before."},
    {Py_tp_methods, router_methods},
    {Py_tp_getset, router_getset},
    {Py_tp_members, router_members},
    {Py_tp_getattro, router_getattro},
    {Py_tp_traverse, router_traverse},
    {Py_tp_clear, router_clear},
    {Py_tp_dealloc, router_dealloc},
    {0, NULL},
};

static PyType_Spec router_spec = {
    .name = "limpet._limpet.Router",
    .basicsize = sizeof(RouterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = router_slots,
};

/* --- SessionCall: a thread target that carries its session -------------- */

typedef struct {
    PyObject_HEAD
    PyObject *func;    /* the thread's target */
    lp_session_t *s;   /* a reference, dropped when the call ends */
} CallObject;

static PyObject *call_call(CallObject *self, PyObject *args, PyObject *kw)
{
    lp_modstate_t *st = lp_py_state_of_type(Py_TYPE(self));
    lp_session_t *s = self->s, *prev = NULL, *mine;
    PyObject *r = NULL;

    self->s = NULL; /* a thread target runs once; its reference to s is ours now */
    if (lp_py_current_swap(st, s, &prev) == 0) {
        r = PyObject_Call(self->func, args, kw);
        if (lp_py_current_swap(st, prev, &mine) != 0) {
            /* not after the key was set once on this thread; if it were,
             * the thread would still point at s: s must then outlive it */
            Py_CLEAR(r);
            s = NULL;
        }
    }
    if (s != NULL) {
        /* what the thread printed last must not wait for the flusher */
        Py_BEGIN_ALLOW_THREADS
        (void)lp_session_flush(s);
        lp_session_unref(s);
        Py_END_ALLOW_THREADS
    }
    return r;
}

static int call_traverse(CallObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->func);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int call_clear(CallObject *self)
{
    Py_CLEAR(self->func);
    return 0;
}

static void call_dealloc(CallObject *self)
{
    PyTypeObject *t = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    call_clear(self);
    if (self->s != NULL)
        lp_session_unref(self->s);
    t->tp_free(self);
    Py_DECREF(t);
}

static PyType_Slot call_slots[] = {
    {Py_tp_call, call_call},
    {Py_tp_traverse, call_traverse},
    {Py_tp_clear, call_clear},
    {Py_tp_dealloc, call_dealloc},
    {0, NULL},
};

static PyType_Spec call_spec = {
    .name = "limpet._limpet.SessionCall",
    .basicsize = sizeof(CallObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = call_slots,
};

/* _limpet.in_session(): True in a thread running a session's code. */
static PyObject *in_session(PyObject *module, PyObject *unused)
{
    return PyBool_FromLong(PyThread_tss_get(&lp_py_state(module)->current) != NULL);
}

/* _limpet.session_input(prompt, echo): a line from the session's client,
 * asked with an input frame carrying prompt (getpass: echo False). */
static PyObject *session_input(PyObject *module, PyObject *args)
{
    lp_session_t *s = PyThread_tss_get(&lp_py_state(module)->current);
    const char *prompt;
    int echo, r;
    uint8_t *data = NULL;
    size_t len = 0;
    PyObject *line;

    if (!PyArg_ParseTuple(args, "sp", &prompt, &echo))
        return NULL;
    if (s == NULL)
        return PyErr_Format(PyExc_RuntimeError, "limpet: not in a session");
    (void)lp_py_flush_if(s, 1); /* what was printed before the question, first */
    Py_BEGIN_ALLOW_THREADS
    r = lp_session_input(s, prompt, echo != 0, &data, &len);
    Py_END_ALLOW_THREADS
    if (r == LP_EINTERRUPTED) {
        PyErr_SetNone(PyExc_KeyboardInterrupt);
        return NULL;
    }
    if (r != 0) {
        PyErr_SetNone(PyExc_EOFError);
        return NULL;
    }
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    line = PyUnicode_DecodeUTF8((const char *)data, (Py_ssize_t)len, "surrogateescape");
    free(data);
    return line;
}

/* _limpet.session_page(text): True when text went to the session's client
 * for its pager; False when the caller must print it. */
static PyObject *session_page(PyObject *module, PyObject *arg)
{
    lp_session_t *s = PyThread_tss_get(&lp_py_state(module)->current);
    Py_ssize_t len;
    const char *text;
    int r;

    if (!PyUnicode_Check(arg))
        return PyErr_Format(PyExc_TypeError, "session_page() argument must be str, not %.100s",
                            Py_TYPE(arg)->tp_name);
    if (s == NULL)
        Py_RETURN_FALSE;
    if ((text = PyUnicode_AsUTF8AndSize(arg, &len)) == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return NULL;
        PyErr_Clear(); /* lone surrogates: print it, bytes and all */
        Py_RETURN_FALSE;
    }
    (void)lp_py_flush_if(s, 1); /* what was printed before it, first */
    Py_BEGIN_ALLOW_THREADS
    r = lp_session_page(s, text, (size_t)len);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(r == 0);
}

PyMethodDef lp_py_session_methods[] = {
    {"session_page", session_page, METH_O,
     "session_page(text, /)\n--\n\nShow text in this session's client's pager; False if it has none."},
    {"in_session", in_session, METH_NOARGS,
     "in_session()\n--\n\nTrue in a thread that runs a session's code."},
    {"session_input", session_input, METH_VARARGS,
     "session_input(prompt, echo, /)\n--\n\nAsk this session's client for a line."},
    {NULL, NULL, 0, NULL},
};

int lp_py_router_types(PyObject *module, lp_modstate_t *st)
{
    /* the module state owns both; limpet_clear drops them */
    st->router_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &router_spec, NULL);
    if (st->router_type == NULL)
        return -1;
    st->call_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &call_spec, NULL);
    return st->call_type != NULL ? 0 : -1;
}

/* --- the replacements and their installation ----------------------------- */

/* What install replaces: module.attr, with saved[key] the original and
 * saved[ours] the replacement. The streams come first, in lp_stream_t
 * order; a missing one counts as None (a daemon with no stdin). */
static const struct replaced {
    const char *module; /* imported by install */
    const char *attr;   /* replaced there */
    const char *key;    /* saved[key]: the original */
    const char *ours;   /* saved[ours]: what install put there */
} replaced[] = {
    {"sys", "stdout", "stdout", "stdout_router"},
    {"sys", "stderr", "stderr", "stderr_router"},
    {"sys", "stdin", "stdin", "stdin_router"},
    {"sys", "displayhook", "displayhook", "hook"},
    {"_thread", "start_new_thread", "start_new_thread", "starter"},
    {"threading", "_start_new_thread", "threading_start", "starter"},
};
#define NREPLACED (sizeof(replaced) / sizeof(replaced[0]))
#define NSTREAMS 3 /* replaced[0..2]: stdout, stderr, stdin */

/* A Router over orig (a new reference), or NULL. */
static PyObject *new_router(lp_modstate_t *st, PyObject *orig, lp_stream_t stream)
{
    RouterObject *r = PyObject_GC_New(RouterObject, st->router_type);

    if (r == NULL)
        return NULL;
    r->orig = Py_NewRef(orig); /* the router's reference */
    r->stream = stream;
    r->raw = 0;
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

/* dict[key] as a new reference in *out, NULL when it is absent (or dict
 * is NULL). Returns 0, or -1 with an exception set. */
static int dict_get(PyObject *dict, const char *key, PyObject **out)
{
    PyObject *k;

    *out = NULL;
    if (dict == NULL)
        return 0;
    if ((k = PyUnicode_FromString(key)) == NULL)
        return -1;
    *out = Py_XNewRef(PyDict_GetItemWithError(dict, k));
    Py_DECREF(k);
    return *out == NULL && PyErr_Occurred() ? -1 : 0;
}

/* saved[key], the original that the hook or thread starter stands in
 * for, as a new reference: a reinstall may replace saved while it runs.
 * NULL with an exception set when it is not there. */
static PyObject *saved_original(lp_modstate_t *st, const char *key)
{
    PyObject *orig;

    if (dict_get(st->saved, key, &orig) != 0)
        return NULL;
    if (orig == NULL)
        PyErr_Format(PyExc_RuntimeError, "limpet: the original %s is gone", key);
    return orig;
}

/* sys.displayhook: a session's values go to its client. */
static PyObject *displayhook(PyObject *module, PyObject *value)
{
    lp_modstate_t *st = lp_py_state(module);
    lp_session_t *s = PyThread_tss_get(&st->current);
    PyObject *orig, *r;

    if (s != NULL)
        return lp_py_display(st, s, value);
    if ((orig = saved_original(st, "displayhook")) == NULL)
        return NULL;
    r = PyObject_CallOneArg(orig, value);
    Py_DECREF(orig);
    return r;
}

/* _thread.start_new_thread: a thread started by session code writes to
 * that session, and so do the threads it starts. */
static PyObject *start_new_thread(PyObject *module, PyObject *args)
{
    lp_modstate_t *st = lp_py_state(module);
    lp_session_t *s = PyThread_tss_get(&st->current);
    PyObject *orig, *head = NULL, *rest = NULL, *call_args = NULL, *r = NULL;
    CallObject *call = NULL;

    if ((orig = saved_original(st, "start_new_thread")) == NULL)
        return NULL;
    if (s != NULL && PyTuple_GET_SIZE(args) >= 1) {
        /* the same arguments, the target wrapped in a SessionCall */
        if ((call = PyObject_GC_New(CallObject, st->call_type)) == NULL)
            goto error;
        call->func = Py_NewRef(PyTuple_GET_ITEM(args, 0));
        call->s = s;
        lp_session_ref(s); /* the call's, dropped when it has run */
        PyObject_GC_Track(call);
        if ((head = PyTuple_Pack(1, call)) == NULL ||
            (rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args))) == NULL ||
            (call_args = PySequence_Concat(head, rest)) == NULL)
            goto error;
    }
    r = PyObject_Call(orig, call_args != NULL ? call_args : args, NULL);
error:
    Py_XDECREF(call_args);
    Py_XDECREF(rest);
    Py_XDECREF(head);
    Py_XDECREF(call);
    Py_DECREF(orig);
    return r;
}

static PyMethodDef displayhook_def = {
    "displayhook", displayhook, METH_O,
    "displayhook(value, /)\n--\n\nShow a value: in a session, to its client."};
static PyMethodDef start_thread_def = {
    "start_new_thread", start_new_thread, METH_VARARGS,
    "start_new_thread(function, args, kwargs={}, /)\n--\n\n"
    "Start a thread; one started by session code writes to that session."};

/* Records replaced[i]'s original in saved and, for a stream, the Router
 * that replaces it. Returns 0, or -1 with an exception set. */
static int save_original(lp_modstate_t *st, PyObject *saved, size_t i)
{
    const struct replaced *e = &replaced[i];
    PyObject *mod, *old = NULL, *router = NULL;
    int r = -1;

    if ((mod = PyImport_ImportModule(e->module)) == NULL)
        goto error;
    if ((old = PyObject_GetAttrString(mod, e->attr)) == NULL) {
        if (i >= NSTREAMS || !PyErr_ExceptionMatches(PyExc_AttributeError))
            goto error;
        PyErr_Clear();
        old = Py_NewRef(Py_None);
    }
    if (PyDict_SetItemString(saved, e->key, old) != 0)
        goto error;
    if (i < NSTREAMS && ((router = new_router(st, old, (lp_stream_t)i)) == NULL ||
                         PyDict_SetItemString(saved, e->ours, router) != 0))
        goto error;
    r = 0;
error:
    Py_XDECREF(router);
    Py_XDECREF(old);
    Py_XDECREF(mod);
    return r;
}

/* Sets replaced[i] to its replacement, saved[ours]. Returns 0, or -1 with
 * an exception set. */
static int replace_one(PyObject *saved, size_t i)
{
    const struct replaced *e = &replaced[i];
    PyObject *mod, *ours = NULL;
    int r = -1;

    if ((mod = PyImport_ImportModule(e->module)) == NULL || dict_get(saved, e->ours, &ours) != 0)
        goto error;
    if (ours == NULL) {
        PyErr_Format(PyExc_SystemError, "limpet: nothing to put in %s.%s", e->module, e->attr);
        goto error;
    }
    r = PyObject_SetAttrString(mod, e->attr, ours);
error:
    Py_XDECREF(ours);
    Py_XDECREF(mod);
    return r;
}

/* Puts replaced[i] back to its original if it still holds our replacement:
 * whoever replaced it since keeps theirs, and a module no longer in
 * sys.modules has nothing to put back. Returns 0, or -1 with an exception
 * set. */
static int restore_one(PyObject *saved, size_t i)
{
    const struct replaced *e = &replaced[i];
    PyObject *name, *mod = NULL, *old = NULL, *ours = NULL, *now = NULL;
    int r = -1;

    if ((name = PyUnicode_FromString(e->module)) == NULL || dict_get(saved, e->key, &old) != 0 ||
        dict_get(saved, e->ours, &ours) != 0)
        goto error;
    if ((mod = PyImport_GetModule(name)) == NULL && PyErr_Occurred())
        goto error;
    if (mod != NULL && old != NULL && ours != NULL &&
        (now = PyObject_GetAttrString(mod, e->attr)) == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            goto error;
        PyErr_Clear(); /* deleted since: not ours to put back */
    }
    if (now != NULL && now == ours && PyObject_SetAttrString(mod, e->attr, old) != 0)
        goto error;
    r = 0;
error:
    Py_XDECREF(now);
    Py_XDECREF(ours);
    Py_XDECREF(old);
    Py_XDECREF(mod);
    Py_XDECREF(name);
    return r;
}

/* Puts back everything install replaced, as far as it can: a failure goes
 * to sys.unraisablehook and the rest is still put back. An exception the
 * caller had set is kept (this runs in error paths and deallocators). */
static void restore_all(PyObject *saved)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *pending = PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
#endif
    for (size_t i = 0; i < NREPLACED; i++)
        if (restore_one(saved, i) != 0)
            PyErr_WriteUnraisable(NULL);
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(pending);
#else
    PyErr_Restore(type, value, tb);
#endif
}

int lp_py_routers_install(PyObject *module)
{
    lp_modstate_t *st = lp_py_state(module);
    PyObject *saved = NULL, *hook = NULL, *starter = NULL;
    int r = -1;

    if (st->installed > 0) {
        st->installed++;
        return 0;
    }
    if ((saved = PyDict_New()) == NULL ||
        (hook = PyCFunction_NewEx(&displayhook_def, module, NULL)) == NULL ||
        (starter = PyCFunction_NewEx(&start_thread_def, module, NULL)) == NULL ||
        PyDict_SetItemString(saved, "hook", hook) != 0 ||
        PyDict_SetItemString(saved, "starter", starter) != 0)
        goto error;
    for (size_t i = 0; i < NREPLACED; i++)
        if (save_original(st, saved, i) != 0)
            goto error;
    /* The last install's originals, kept after its uninstall for the
     * hooks and starters still in use, give way to these: the hooks look
     * them up at each call. */
    Py_XSETREF(st->saved, Py_NewRef(saved));
    for (size_t i = 0; i < NREPLACED; i++) {
        if (replace_one(saved, i) != 0) {
            restore_all(saved);
            goto error;
        }
    }
    st->installed = 1;
    r = 0;
error:
    Py_XDECREF(starter);
    Py_XDECREF(hook);
    Py_XDECREF(saved);
    return r;
}

void lp_py_routers_uninstall(PyObject *module)
{
    lp_modstate_t *st = lp_py_state(module);

    if (st->installed == 0 || --st->installed > 0)
        return;
    /* saved stays: hooks and thread starters that code still holds look up
     * their originals in it (the next install replaces it) */
    restore_all(st->saved);
}
