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

lp_session_t *lp_py_set_current(lp_modstate_t *st, lp_session_t *s)
{
    lp_session_t *prev = PyThread_tss_get(&st->current);

    PyThread_tss_set(&st->current, s);
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
 * surrogateescape'd bytes) passed through as the bytes they stand for. */
static PyObject *session_write_text(lp_session_t *s, RouterObject *r, PyObject *text)
{
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(text, &n);
    PyObject *b = NULL;

    if (u == NULL) {
        PyErr_Clear();
        if ((b = PyUnicode_AsEncodedString(text, "utf-8", "surrogateescape")) == NULL)
            return NULL;
        u = PyBytes_AS_STRING(b);
        n = PyBytes_GET_SIZE(b);
    }
    lp_py_session_output(s, r->stream, u, n);
    Py_XDECREF(b);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(text));
}

static PyObject *router_write(RouterObject *self, PyObject *arg)
{
    lp_session_t *s = current((PyObject *)self);
    Py_buffer view;

    if (s == NULL) {
        if (self->orig == Py_None)
            return PyLong_FromSsize_t(PyObject_Length(arg));
        return PyObject_CallMethod(self->orig, "write", "O", arg);
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
    lp_py_session_output(s, self->stream, view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(view.len);
}

static PyObject *router_flush(RouterObject *self, PyObject *unused)
{
    lp_session_t *s = current((PyObject *)self);

    if (s != NULL) {
        Py_BEGIN_ALLOW_THREADS
        lp_session_flush(s);
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
    if (current((PyObject *)self) != NULL) {
        PyObject *io = PyImport_ImportModule("io");
        PyObject *unsupported = io != NULL ? PyObject_GetAttrString(io, "UnsupportedOperation") : NULL;

        Py_XDECREF(io);
        if (unsupported != NULL) {
            PyErr_SetString(unsupported, "limpet: a session's streams have no file descriptor");
            Py_DECREF(unsupported);
        }
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
    if (r == LP_INPUT_INTERRUPTED) {
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
    if (self->orig != Py_None && (orig_buf = PyObject_GetAttrString(self->orig, "buffer")) == NULL)
        PyErr_Clear();
    if (orig_buf == NULL)
        orig_buf = Py_NewRef(Py_None);
    if ((b = PyObject_GC_New(RouterObject, t)) == NULL) {
        Py_DECREF(orig_buf);
        return NULL;
    }
    b->orig = orig_buf;
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
    lp_session_t *s = self->s, *prev;
    PyObject *r;

    self->s = NULL; /* a thread target runs once */
    prev = lp_py_set_current(st, s);
    r = PyObject_Call(self->func, args, kw);
    lp_py_set_current(st, prev);
    if (s != NULL) {
        /* what the thread printed last must not wait for the flusher */
        Py_BEGIN_ALLOW_THREADS
        lp_session_flush(s);
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
    lp_py_flush_if(s, 1); /* what was printed before the question, first */
    Py_BEGIN_ALLOW_THREADS
    r = lp_session_input(s, prompt, echo != 0, &data, &len);
    Py_END_ALLOW_THREADS
    if (r == LP_INPUT_INTERRUPTED) {
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

    if (s == NULL)
        Py_RETURN_FALSE;
    if ((text = PyUnicode_AsUTF8AndSize(arg, &len)) == NULL) {
        PyErr_Clear(); /* lone surrogates: print it, bytes and all */
        Py_RETURN_FALSE;
    }
    lp_py_flush_if(s, 1); /* what was printed before it, first */
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
    st->router_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &router_spec, NULL);
    st->call_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &call_spec, NULL);
    return st->router_type != NULL && st->call_type != NULL ? 0 : -1;
}

/* --- the replacements and their installation ----------------------------- */

static RouterObject *new_router(lp_modstate_t *st, PyObject *orig, lp_stream_t stream)
{
    RouterObject *r = PyObject_GC_New(RouterObject, st->router_type);

    if (r == NULL)
        return NULL;
    r->orig = Py_NewRef(orig != NULL ? orig : Py_None);
    r->stream = stream;
    r->raw = 0;
    PyObject_GC_Track(r);
    return r;
}

/* sys.displayhook: a session's values go to its client. */
static PyObject *displayhook(PyObject *module, PyObject *value)
{
    lp_modstate_t *st = lp_py_state(module);
    lp_session_t *s = PyThread_tss_get(&st->current);
    PyObject *orig;

    if (s != NULL)
        return lp_py_display(st, s, value);
    if ((orig = PyDict_GetItemString(st->saved, "displayhook")) == NULL)
        Py_RETURN_NONE;
    return PyObject_CallOneArg(orig, value);
}

/* _thread.start_new_thread: a thread started by session code writes to
 * that session, and so do the threads it starts. */
static PyObject *start_new_thread(PyObject *module, PyObject *args)
{
    lp_modstate_t *st = lp_py_state(module);
    lp_session_t *s = PyThread_tss_get(&st->current);
    PyObject *orig = PyDict_GetItemString(st->saved, "start_new_thread");
    PyObject *func, *head, *rest, *call_args, *r;
    CallObject *call;

    if (orig == NULL)
        return PyErr_Format(PyExc_RuntimeError, "limpet: the thread starter is gone");
    if (s == NULL || PyTuple_GET_SIZE(args) < 1)
        return PyObject_Call(orig, args, NULL);
    func = PyTuple_GET_ITEM(args, 0);
    if ((call = PyObject_GC_New(CallObject, st->call_type)) == NULL)
        return NULL;
    call->func = Py_NewRef(func);
    call->s = s;
    lp_session_ref(s);
    PyObject_GC_Track(call);
    head = PyTuple_Pack(1, call);
    rest = PyTuple_GetSlice(args, 1, PyTuple_GET_SIZE(args));
    call_args = head != NULL && rest != NULL ? PySequence_Concat(head, rest) : NULL;
    Py_XDECREF(head);
    Py_XDECREF(rest);
    Py_DECREF(call);
    if (call_args == NULL)
        return NULL;
    r = PyObject_Call(orig, call_args, NULL);
    Py_DECREF(call_args);
    return r;
}

static PyMethodDef displayhook_def = {
    "displayhook", displayhook, METH_O,
    "displayhook(value, /)\n--\n\nShow a value: in a session, to its client."};
static PyMethodDef start_thread_def = {
    "start_new_thread", start_new_thread, METH_VARARGS,
    "start_new_thread(function, args, kwargs={}, /)\n--\n\n"
    "Start a thread; one started by session code writes to that session."};

/* Replaces module.attr with value, remembering the old one under key. */
static int replace_attr(PyObject *saved, const char *modname, const char *attr, PyObject *value,
                        const char *key)
{
    PyObject *mod = PyImport_ImportModule(modname);
    PyObject *old = mod != NULL ? PyObject_GetAttrString(mod, attr) : NULL;
    int r = -1;

    if (old != NULL && PyDict_SetItemString(saved, key, old) == 0)
        r = PyObject_SetAttrString(mod, attr, value);
    Py_XDECREF(old);
    Py_XDECREF(mod);
    return r;
}

/* Puts back module.attr from saved[key] if it is still value. */
static void restore_attr(PyObject *saved, const char *modname, const char *attr, const char *key,
                         PyObject *value)
{
    PyObject *mod = PyImport_ImportModule(modname);
    PyObject *old = PyDict_GetItemString(saved, key);
    PyObject *now = mod != NULL ? PyObject_GetAttrString(mod, attr) : NULL;

    if (now != NULL && old != NULL && (value == NULL || now == value))
        PyObject_SetAttrString(mod, attr, old);
    PyErr_Clear();
    Py_XDECREF(now);
    Py_XDECREF(mod);
}

int lp_py_routers_install(PyObject *module)
{
    lp_modstate_t *st = lp_py_state(module);
    static const char *const names[] = {"stdout", "stderr", "stdin"};
    PyObject *hook = NULL, *starter = NULL;
    int r = -1;

    if (st->installed++ > 0)
        return 0;
    if ((st->saved = PyDict_New()) == NULL)
        goto out;
    for (int i = 0; i < 3; i++) {
        PyObject *orig = PySys_GetObject(names[i]); /* borrowed, may be NULL */
        RouterObject *router = new_router(st, orig, (lp_stream_t)i);
        char key[32];

        snprintf(key, sizeof(key), "%s_router", names[i]);
        if (router == NULL || PyDict_SetItemString(st->saved, names[i], router->orig) != 0 ||
            PyDict_SetItemString(st->saved, key, (PyObject *)router) != 0 ||
            PySys_SetObject(names[i], (PyObject *)router) != 0) {
            Py_XDECREF(router);
            goto out;
        }
        Py_DECREF(router);
    }
    if ((hook = PyCFunction_NewEx(&displayhook_def, module, NULL)) == NULL ||
        (starter = PyCFunction_NewEx(&start_thread_def, module, NULL)) == NULL ||
        replace_attr(st->saved, "sys", "displayhook", hook, "displayhook") != 0 ||
        replace_attr(st->saved, "_thread", "start_new_thread", starter, "start_new_thread") != 0 ||
        replace_attr(st->saved, "threading", "_start_new_thread", starter, "threading_start") != 0 ||
        PyDict_SetItemString(st->saved, "hook", hook) != 0 ||
        PyDict_SetItemString(st->saved, "starter", starter) != 0)
        goto out;
    r = 0;
out:
    Py_XDECREF(hook);
    Py_XDECREF(starter);
    if (r != 0)
        st->installed--;
    return r;
}

int lp_py_routers_uninstall(PyObject *module)
{
    lp_modstate_t *st = lp_py_state(module);
    static const char *const names[] = {"stdout", "stderr", "stdin"};

    if (st->installed == 0 || --st->installed > 0)
        return 0;
    for (int i = 0; i < 3; i++) {
        char key[32];

        snprintf(key, sizeof(key), "%s_router", names[i]);
        restore_attr(st->saved, "sys", names[i], names[i], PyDict_GetItemString(st->saved, key));
    }
    restore_attr(st->saved, "sys", "displayhook", "displayhook",
                 PyDict_GetItemString(st->saved, "hook"));
    restore_attr(st->saved, "_thread", "start_new_thread", "start_new_thread",
                 PyDict_GetItemString(st->saved, "starter"));
    restore_attr(st->saved, "threading", "_start_new_thread", "threading_start",
                 PyDict_GetItemString(st->saved, "starter"));
    /* saved stays: threads started under the routers still look up their
     * originals through it */
    return 0;
}
