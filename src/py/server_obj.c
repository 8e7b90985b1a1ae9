/* server_obj.c: limpet._limpet.Server, the running embedded server as a
 * Python object. limpet.start() (python/limpet/__init__.py) wraps it. */
#include "py/state.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define GRACE_MAX_S 3600          /* grace=: seconds, at most */
#define STOP_TIMEOUT_MAX_S 86400  /* stop(timeout=): seconds, at most */

typedef struct {
    PyObject_HEAD
    lp_server_t *srv;    /* NULL once stopped */
    lp_engine_t engine;  /* its CPython engine */
    PyObject *module;    /* limpet._limpet */
    PyObject *address;   /* str */
} ServerObject;

/* Raises OSError for a negative errno r, with what was being done. */
static void raise_errno(int r, const char *what, const char *path)
{
    PyErr_Format(PyExc_OSError, "limpet: cannot %s '%s': %s", what, path ? path : "",
                 strerror(r < 0 ? -r : r));
}

/* A limit argument, name=v, in *out: None is 0 (the server's default),
 * else an integer from 1 to UINT_MAX. Returns 0, or -1 with TypeError or
 * ValueError set. */
static int limit_arg(PyObject *v, const char *name, unsigned *out)
{
    unsigned long long n;

    *out = 0;
    if (v == Py_None)
        return 0;
    if (PyBool_Check(v) || !PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "limpet: %s must be an int or None, not %.100s", name,
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    n = PyLong_AsUnsignedLongLong(v);
    if (n == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear(); /* negative, or too big: said below */
    } else if (n >= 1 && n <= UINT_MAX) {
        *out = (unsigned)n;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "limpet: %s must be between 1 and %u, not %R", name,
                 UINT_MAX, v);
    return -1;
}

static PyObject *server_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"namespace",    "path",  "identity", "transform",
                                         "max_connections", "max_sessions", "grace",
                                         "tcp",          "token", "allow_remote", NULL};
    PyObject *env, *transform = Py_None, *module, *max_conn = Py_None, *max_sess = Py_None;
    const char *path = NULL, *identity, *tcp = NULL, *token = NULL;
    int allow_remote = 0;
    double grace = 0;
    json_error_t jerr;
    lp_server_config_t cfg = {0};
    ServerObject *self;
    int r;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!zs|$OOOdzzp", (char **)kwlist, &PyDict_Type,
                                     &env, &path, &identity, &transform, &max_conn, &max_sess,
                                     &grace, &tcp, &token, &allow_remote))
        return NULL;
    if (!(grace >= 0 && grace <= GRACE_MAX_S)) /* NaN too */
        return PyErr_Format(PyExc_ValueError, "grace must be between 0 and %d seconds",
                            GRACE_MAX_S);
    if (transform != Py_None && !PyCallable_Check(transform))
        return PyErr_Format(PyExc_TypeError, "transform must be callable or None");
    if (limit_arg(max_conn, "max_connections", &cfg.max_connections) != 0 ||
        limit_arg(max_sess, "max_sessions", &cfg.max_sessions) != 0)
        return NULL;
    if ((module = PyType_GetModule(type)) == NULL) /* borrowed */
        return NULL;
    if ((self = (ServerObject *)type->tp_alloc(type, 0)) == NULL)
        return NULL;
    self->module = Py_NewRef(module);
    if ((cfg.identity = json_loads(identity, 0, &jerr)) == NULL || !json_is_object(cfg.identity)) {
        PyErr_Format(PyExc_ValueError, "identity must be a JSON object");
        goto error;
    }
    cfg.path = path;
    cfg.grace_ms = (int)(grace * 1000);
    cfg.main_env = env; /* the engine holds its reference: environment "main" */
    cfg.tcp = tcp;
    cfg.token = token;
    cfg.allow_remote = allow_remote != 0;
    if (lp_py_engine_init(&self->engine, module, env, transform) != 0 ||
        lp_py_routers_install(module) != 0)
        goto error;
    if ((r = lp_server_start(&cfg, &self->engine, &self->srv)) != 0) {
        lp_py_routers_uninstall(module);
        raise_errno(r, "listen on", tcp != NULL ? tcp : path);
        goto error;
    }
    /* from here self->srv owns the routers' install: dealloc stops it */
    if ((self->address = PyUnicode_FromString(lp_server_address(self->srv))) == NULL)
        goto error;
    json_decref(cfg.identity);
    return (PyObject *)self;
error:
    json_decref(cfg.identity);
    if (self->srv == NULL)
        lp_py_engine_free(&self->engine);
    Py_DECREF(self); /* keeps the exception set: see lp_py_routers_uninstall */
    return NULL;
}

/* Stops the server: threads joined (the GIL released meanwhile). */
static int stop(ServerObject *self, int timeout_ms)
{
    lp_server_t *srv = self->srv;
    int r;

    if (srv == NULL)
        return 0;
    self->srv = NULL;
    Py_BEGIN_ALLOW_THREADS
    r = lp_server_stop(srv, timeout_ms);
    Py_END_ALLOW_THREADS
    lp_py_routers_uninstall(self->module);
    if (r == 0)
        lp_py_engine_free(&self->engine); /* else busy threads still use it */
    return r;
}

static PyObject *server_stop(ServerObject *self, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"timeout", NULL};
    double timeout = 5.0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|d", (char **)kwlist, &timeout))
        return NULL;
    if (!(timeout >= 0 && timeout <= STOP_TIMEOUT_MAX_S)) /* NaN too */
        return PyErr_Format(PyExc_ValueError, "limpet: timeout must be between 0 and %d seconds",
                            STOP_TIMEOUT_MAX_S);
    if (stop(self, (int)(timeout * 1000)) == -ETIMEDOUT)
        return PyErr_Format(PyExc_TimeoutError,
                            "limpet: evaluations still running after %d ms were left behind",
                            (int)(timeout * 1000));
    Py_RETURN_NONE;
}

static PyObject *server_forget(ServerObject *self, PyObject *unused)
{
    if (self->srv != NULL) {
        lp_server_forget_after_fork(self->srv);
        self->srv = NULL;
        self->engine.ctx = NULL; /* the parent's; never freed here */
        lp_py_routers_uninstall(self->module);
    }
    Py_RETURN_NONE;
}

static PyObject *server_running(ServerObject *self, void *closure)
{
    return PyBool_FromLong(self->srv != NULL);
}

static PyObject *server_address(ServerObject *self, void *closure)
{
    return Py_NewRef(self->address != NULL ? self->address : Py_None);
}

static int server_traverse(ServerObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->module);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void server_dealloc(ServerObject *self)
{
    PyTypeObject *t = Py_TYPE(self);

    PyObject_GC_UnTrack(self);
    stop(self, 5000);
    Py_CLEAR(self->module);
    Py_CLEAR(self->address);
    t->tp_free(self);
    Py_DECREF(t);
}

static PyMethodDef server_methods[] = {
    {"stop", (PyCFunction)(void (*)(void))server_stop, METH_VARARGS | METH_KEYWORDS,
     "stop(timeout=5.0)\n--\n\nDisconnect every client, join every thread, remove the socket."},
    {"_forget_after_fork", (PyCFunction)server_forget, METH_NOARGS,
     "_forget_after_fork()\n--\n\nIn a forked child: drop the parent's server."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef server_getset[] = {
    {"address", (getter)server_address, NULL, "the socket path clients connect to", NULL},
    {"running", (getter)server_running, NULL, "True until stopped", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot server_slots[] = {
    {Py_tp_doc, (void *)"Server(namespace, path, identity, *, transform=None, "
                "max_connections=None, max_sessions=None, grace=0.0, tcp=None, token=None, "
                "allow_remote=False)\n--\n\n"
                "The embedded server; use limpet.start()."},
    {Py_tp_new, server_new},
    {Py_tp_methods, server_methods},
    {Py_tp_getset, server_getset},
    {Py_tp_traverse, server_traverse},
    {Py_tp_dealloc, server_dealloc},
    {0, NULL},
};

static PyType_Spec server_spec = {
    .name = "limpet._limpet.Server",
    .basicsize = sizeof(ServerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = server_slots,
};

int lp_py_server_type(PyObject *module, lp_modstate_t *st)
{
    st->server_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &server_spec, NULL);
    if (st->server_type == NULL)
        return -1;
    return PyModule_AddType(module, st->server_type);
}
