/* client_funcs.c: the client library's rules, for the Python package: the
 * runtime directory, the live discovery records and TARGET resolution are
 * written once in C (src/net, src/client) and python/limpet/_discovery.py
 * calls them here, so the two sides never disagree. Blocking file I/O runs
 * without the GIL. */
#include "py/state.h"

#include <errno.h>
#include <stdlib.h>

#include "client/target.h"
#include "net/discovery.h"
#include "net/net.h"

/* The path in a str/bytes/PathLike/None argument, as new bytes or NULL for
 * None; 0, or -1 with an exception set. */
static int path_arg(PyObject *arg, PyObject **bytes)
{
    *bytes = NULL;
    if (arg == Py_None)
        return 0;
    return PyUnicode_FSConverter(arg, bytes) ? 0 : -1;
}

/* Raises OSError for -errno r; NULL. */
static PyObject *raise_errno(int r)
{
    errno = -r;
    return PyErr_SetFromErrno(PyExc_OSError);
}

PyDoc_STRVAR(runtime_dir_doc,
"runtime_dir()\n--\n\n"
"The per-user directory of servers' sockets and records: $XDG_RUNTIME_DIR/limpet\n"
"when XDG_RUNTIME_DIR is an absolute directory of ours, else /tmp/limpet-$UID;\n"
"made mode 0700 if missing. OSError when it is not safe to use.");

static PyObject *runtime_dir(PyObject *mod, PyObject *unused)
{
    char dir[4096];
    int r;

    Py_BEGIN_ALLOW_THREADS
    r = lp_net_runtime_dir(dir, sizeof(dir));
    Py_END_ALLOW_THREADS
    if (r != 0)
        return raise_errno(r);
    return PyUnicode_DecodeFSDefault(dir);
}

PyDoc_STRVAR(servers_json_doc,
"servers_json(directory=None)\n--\n\n"
"The live discovery records in directory (None: runtime_dir()), oldest first,\n"
"as JSON text of an array; stale records are removed with their files.");

static PyObject *servers_json(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"directory", NULL};
    PyObject *arg = Py_None, *path = NULL, *result = NULL;
    char dir[4096], *text = NULL;
    json_t *recs = NULL;
    int r = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:servers_json", (char **)kwlist, &arg) ||
        path_arg(arg, &path) != 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (path == NULL)
        r = lp_net_runtime_dir(dir, sizeof(dir));
    if (r == 0 && (recs = lp_discovery_list(path != NULL ? PyBytes_AS_STRING(path) : dir)) != NULL)
        text = json_dumps(recs, JSON_COMPACT);
    Py_END_ALLOW_THREADS
    if (r != 0)
        raise_errno(r);
    else if (text == NULL)
        PyErr_NoMemory();
    else
        result = PyUnicode_FromString(text);
    free(text);
    json_decref(recs);
    Py_XDECREF(path);
    return result;
}

PyDoc_STRVAR(resolve_doc,
"resolve(target=None, directory=None)\n--\n\n"
"Resolve TARGET as `limpet connect TARGET` does: a server name or pid from the\n"
"records in directory (None: runtime_dir()), a socket path, HOST:PORT, [V6]:PORT\n"
"or ssh://...; None: the only server running. Returns (address, token), token\n"
"'' when none. LookupError when no server, or several, match; ValueError for\n"
"an address too long.");

static PyObject *resolve(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"target", "directory", NULL};
    const char *target = NULL;
    PyObject *arg = Py_None, *path = NULL, *result = NULL;
    lp_target_t *t = calloc(1, sizeof(*t)); /* ~9 KiB: off the thread's stack */
    int r;

    if (t == NULL)
        return PyErr_NoMemory();
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|zO:resolve", (char **)kwlist, &target, &arg) ||
        path_arg(arg, &path) != 0)
        goto out;
    Py_BEGIN_ALLOW_THREADS
    r = lp_target_resolve(t, target, path != NULL ? PyBytes_AS_STRING(path) : NULL);
    Py_END_ALLOW_THREADS
    if (r == 0)
        result = Py_BuildValue("(ss)", t->address, t->token);
    else if (r == -ENOENT || r == -ENOTUNIQ)
        PyErr_SetString(PyExc_LookupError, t->message);
    else
        PyErr_SetString(PyExc_ValueError, t->message);
out:
    lp_target_clear(t);
    free(t);
    Py_XDECREF(path);
    return result;
}

PyMethodDef lp_py_client_methods[] = {
    {"runtime_dir", runtime_dir, METH_NOARGS, runtime_dir_doc},
    {"servers_json", (PyCFunction)(void (*)(void))servers_json, METH_VARARGS | METH_KEYWORDS,
     servers_json_doc},
    {"resolve", (PyCFunction)(void (*)(void))resolve, METH_VARARGS | METH_KEYWORDS, resolve_doc},
    {NULL, NULL, 0, NULL},
};
