/* context_funcs.c: the context broker (src/context/broker.h) and the
 * bootstrap's two stages, for python/limpet/_context.py and _bootstrap.py.
 * Every call that may block releases the GIL.
 *
 * The broker is one per process, in a C static, against the rule of module
 * state, for a reason: its I/O thread and its links (fds, far processes)
 * belong to the process, must outlive any one module object (a
 * sub-interpreter's, or this one during finalization), and link ids must
 * be unique process-wide. It is made on first use and never freed; its I/O
 * thread never touches Python.
 *
 * Fork: the child of a fork (os.fork, multiprocessing's fork start method)
 * drops the parent's broker: every link made before the fork is closed in
 * the child (its fds are the child's copies; the parent's links carry on),
 * calls on those links raise ConnectionError("the link was closed here"),
 * and the child's first new link starts a new broker and I/O thread. The
 * atfork handlers take the broker's lock around fork(), so that the child
 * never finds it held by a thread that does not exist there. */
#include "py/state.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <pthread.h>

#include "context/bootstrap.h"
#include "context/broker.h"
#include "context/launch.h"
#include "io/io.h"

#define WAIT_SLICE_MS 200 /* how often a waiting thread looks at signals (Ctrl+C) */

static lp_broker_t *broker;       /* the process's broker; see above */
static uint32_t broker_first_id;  /* after a fork: the first id of the child's new broker */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void at_prepare(void)
{
    if (broker != NULL)
        lp_broker_fork_prepare(broker);
}

static void at_parent(void)
{
    if (broker != NULL)
        lp_broker_fork_parent(broker);
}

static void at_child(void)
{
    if (broker != NULL) {
        broker_first_id = lp_broker_next_id(broker);
        lp_broker_fork_child(broker);
        broker = NULL; /* left allocated: see lp_broker_fork_child */
    }
}

static void register_atfork(void)
{
    pthread_atfork(at_prepare, at_parent, at_child);
}

/* The broker, made on first use (the GIL serializes this); NULL with an
 * exception set. */
static lp_broker_t *get_broker(void)
{
    lp_broker_t *b;
    int r;

    if (broker != NULL)
        return broker;
    pthread_once(&atfork_once, register_atfork);
    if ((r = lp_broker_new(NULL, &b)) != 0) {
        errno = r == LP_WIRE_ENOMEM ? ENOMEM : -r;
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    if (broker_first_id != 0)
        lp_broker_first_id(b, broker_first_id);
    broker = b;
    return b;
}

/* Raises what r says about link: TimeoutError, KeyError (not expected),
 * ConnectionError(reason) for a link that ended, ValueError, MemoryError,
 * OSError. NULL. */
static PyObject *raise_broker(int r, uint32_t link, const char *reason)
{
    char why[LP_BROKER_REASON_MAX];

    if (r == -ETIMEDOUT)
        return PyErr_Format(PyExc_TimeoutError, "limpet: no reply in time");
    if (r == -ENOENT && (broker == NULL || lp_broker_state(broker, link, why) == 0))
        return PyErr_Format(PyExc_KeyError, "limpet: that key is not expected on link %u",
                            (unsigned)link);
    if (r == -ENOENT)
        reason = why; /* a link of the parent, after a fork: it has ended here */
    if (r == -EEXIST)
        return PyErr_Format(PyExc_ValueError, "limpet: that key is expected already");
    if (r == LP_WIRE_ENOMEM)
        return PyErr_NoMemory();
    if (reason == NULL && broker != NULL && lp_broker_state(broker, link, why) != 0)
        reason = why; /* the link ended: say why, whatever the call's own code */
    if (reason == NULL || reason[0] == '\0') {
        if (r == LP_WIRE_EINVAL || r == LP_WIRE_ETOOLARGE)
            return PyErr_Format(PyExc_ValueError, "limpet: %s", lp_wire_strerror(r));
        reason = lp_wire_strerror(r);
    }
    PyErr_SetString(PyExc_ConnectionError, reason);
    return NULL;
}

/* A JSON value of a header as a Python object; new reference. Depth is
 * bounded by the header rules (32 levels). */
static PyObject *py_of_json(const json_t *v)
{
    PyObject *o, *item;
    const char *key;
    json_t *val;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if ((o = PyDict_New()) == NULL)
            return NULL;
        json_object_foreach((json_t *)v, key, val) {
            if ((item = py_of_json(val)) == NULL || PyDict_SetItemString(o, key, item) != 0) {
                Py_XDECREF(item);
                Py_DECREF(o);
                return NULL;
            }
            Py_DECREF(item);
        }
        return o;
    case JSON_ARRAY:
        if ((o = PyList_New((Py_ssize_t)json_array_size(v))) == NULL)
            return NULL;
        json_array_foreach(v, i, val) {
            if ((item = py_of_json(val)) == NULL) {
                Py_DECREF(o);
                return NULL;
            }
            PyList_SET_ITEM(o, (Py_ssize_t)i, item);
        }
        return o;
    case JSON_STRING:
        return PyUnicode_FromStringAndSize(json_string_value(v), (Py_ssize_t)json_string_length(v));
    case JSON_INTEGER:
        return PyLong_FromLongLong((long long)json_integer_value(v));
    case JSON_REAL:
        return PyFloat_FromDouble(json_real_value(v));
    case JSON_TRUE:
        Py_RETURN_TRUE;
    case JSON_FALSE:
        Py_RETURN_FALSE;
    default:
        Py_RETURN_NONE;
    }
}

/* (header dict, payload bytes) of a frame; new reference. */
static PyObject *frame_pair(const lp_frame_t *f)
{
    PyObject *h = py_of_json(f->header), *t;

    if (h == NULL)
        return NULL;
    t = Py_BuildValue("(Ny#)", h, f->payload != NULL ? (const char *)f->payload : "",
                      (Py_ssize_t)f->payload_len);
    return t;
}

/* A timeout argument (None or seconds) in ms (-1: none); -2 with an
 * exception set. */
static int timeout_ms_of(PyObject *t)
{
    double s;

    if (t == Py_None)
        return -1;
    s = PyFloat_AsDouble(t);
    if (s == -1.0 && PyErr_Occurred())
        return -2;
    if (isnan(s) || s < 0) {
        PyErr_SetString(PyExc_ValueError, "limpet: timeout must be None or >= 0");
        return -2;
    }
    return s * 1000.0 >= (double)INT32_MAX ? -1 : (int)ceil(s * 1000.0);
}

/* The slice of a wait of timeout_ms still left at deadline; 0 once over. */
static int slice_ms(uint64_t deadline)
{
    int left = lp_clock_left_ms(deadline);

    return left < 0 || left > WAIT_SLICE_MS ? WAIT_SLICE_MS : left;
}

/* Calls step(arg, ms) with the GIL released, in slices of WAIT_SLICE_MS until
 * deadline, so that Ctrl+C is heard between them: step's result, or
 * LP_EINTERRUPTED with the Python exception set when a signal handler raised. */
static int wait_sliced(uint64_t deadline, int (*step)(void *arg, int ms), void *arg)
{
    int r;

    do {
        int slice = slice_ms(deadline);

        Py_BEGIN_ALLOW_THREADS
        r = step(arg, slice);
        Py_END_ALLOW_THREADS
        if (r == -ETIMEDOUT && PyErr_CheckSignals() != 0)
            return LP_EINTERRUPTED;
    } while (r == -ETIMEDOUT && lp_clock_left_ms(deadline) != 0);
    return r;
}

struct wait_args {
    lp_broker_t *b;
    uint32_t link;
    int64_t key;
    lp_broker_msg_t **got;
    char *reason;
};

static int wait_step(void *arg, int ms)
{
    struct wait_args *a = arg;

    return lp_broker_wait(a->b, a->link, a->key, ms, a->got, a->reason);
}

struct event_args {
    lp_broker_t *b;
    lp_broker_msg_t **ev;
};

static int event_step(void *arg, int ms)
{
    struct event_args *a = arg;

    return lp_broker_next_event(a->b, ms, a->ev);
}

PyDoc_STRVAR(ctx_link_doc,
"ctx_link(rfd, wfd, initial=b'')\n--\n\n"
"Hand a context's link to the broker after the handshake: rfd is read, wfd\n"
"written (the same fd for a socket); initial holds bytes already read past\n"
"the hello. The broker owns both fds from now on (pass os.dup() of a file\n"
"object's fd). Returns the link id, an int never reused in this process.");

static PyObject *ctx_link(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"rfd", "wfd", "initial", NULL};
    Py_buffer initial = {0};
    lp_broker_t *b;
    uint32_t link = 0;
    int rfd, wfd, r = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "ii|y*", (char **)kwlist, &rfd, &wfd, &initial))
        return NULL;
    if ((b = get_broker()) != NULL)
        r = lp_broker_add(b, rfd, wfd, initial.buf, (size_t)initial.len, &link);
    if (initial.obj != NULL)
        PyBuffer_Release(&initial);
    if (b == NULL)
        return NULL;
    if (r != 0) {
        if (r > -4096 && r < 0) {
            errno = -r;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        return raise_broker(r, 0, "");
    }
    return PyLong_FromUnsignedLong(link);
}

PyDoc_STRVAR(ctx_send_doc,
"ctx_send(link, data)\n--\n\n"
"Queue whole encoded frames on the link, in order, without waiting for the\n"
"pipe; waits (GIL released) only while 16 MiB are already queued on it.\n"
"ConnectionError(reason) when the link has ended.");

static PyObject *ctx_send(PyObject *mod, PyObject *args)
{
    unsigned int link;
    Py_buffer data;
    lp_broker_t *b;
    int r;

    if (!PyArg_ParseTuple(args, "Iy*", &link, &data))
        return NULL;
    if ((b = get_broker()) == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    r = lp_broker_send(b, link, data.buf, (size_t)data.len);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    if (r != 0)
        return raise_broker(r, link, NULL);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ctx_expect_doc,
"ctx_expect(link, key)\n--\n\n"
"Register a waiter for frames whose re (else channel) is key, before sending\n"
"the request. ValueError when key is expected already.");

static PyObject *ctx_expect(PyObject *mod, PyObject *args)
{
    unsigned int link;
    long long key;
    lp_broker_t *b;
    int r;

    if (!PyArg_ParseTuple(args, "IL", &link, &key) || (b = get_broker()) == NULL)
        return NULL;
    if ((r = lp_broker_expect(b, link, key)) != 0)
        return raise_broker(r, link, "");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ctx_wait_doc,
"ctx_wait(link, key, timeout=None)\n--\n\n"
"Wait (GIL released) for frames routed to key, then return all of them as a\n"
"list of (header dict, payload bytes). TimeoutError after timeout seconds;\n"
"ConnectionError(reason) once the link ended and nothing is left; KeyError\n"
"when key is not expected. with_seq: (that list, how many events had been\n"
"posted before its last frame came).");

static PyObject *ctx_wait(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"link", "key", "timeout", "with_seq", NULL};
    char reason[LP_BROKER_REASON_MAX];
    unsigned int link;
    long long key;
    PyObject *timeout = Py_None, *list = NULL;
    lp_broker_msg_t *got = NULL;
    lp_broker_t *b;
    uint64_t deadline, seq = 0;
    int ms, r, with_seq = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "IL|Op", (char **)kwlist, &link, &key, &timeout,
                                     &with_seq) ||
        (ms = timeout_ms_of(timeout)) == -2 || (b = get_broker()) == NULL)
        return NULL;
    deadline = lp_clock_deadline(ms);
    r = wait_sliced(deadline, wait_step,
                    &(struct wait_args){b, link, key, &got, reason});
    if (r == LP_EINTERRUPTED)
        return NULL;
    if (r != 0)
        return raise_broker(r, link, reason);
    if ((list = PyList_New(0)) == NULL)
        goto out;
    for (lp_broker_msg_t *m = got; m != NULL; m = m->next) {
        PyObject *t = frame_pair(&m->frame);

        if (t == NULL || PyList_Append(list, t) != 0) {
            Py_XDECREF(t);
            Py_CLEAR(list);
            goto out;
        }
        Py_DECREF(t);
        seq = m->seq;
    }
    if (with_seq && list != NULL) /* N: the tuple takes the list's reference */
        list = Py_BuildValue("(NK)", list, (unsigned long long)seq);
out:
    lp_broker_msg_free(got);
    return list;
}

PyDoc_STRVAR(ctx_forget_doc,
"ctx_forget(link, key)\n--\n\n"
"Drop the waiter for key and what is queued for it; later frames for key\n"
"are events.");

static PyObject *ctx_forget(PyObject *mod, PyObject *args)
{
    unsigned int link;
    long long key;
    lp_broker_t *b;

    if (!PyArg_ParseTuple(args, "IL", &link, &key) || (b = get_broker()) == NULL)
        return NULL;
    lp_broker_forget(b, link, key);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ctx_next_event_doc,
"ctx_next_event(timeout=None, with_seq=False)\n--\n\n"
"The next frame no waiter expected, as (link, header dict, payload bytes), or\n"
"a link's end as (link, None, reason str); None after timeout seconds.\n"
"For one service thread; links are not read while 64 MiB of events wait.\n"
"with_seq: (that tuple, its number), events being numbered from 1.");

static PyObject *ctx_next_event(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"timeout", "with_seq", NULL};
    PyObject *timeout = Py_None, *t;
    lp_broker_msg_t *ev = NULL;
    lp_broker_t *b;
    uint64_t deadline;
    int ms, r, with_seq = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "|Op", (char **)kwlist, &timeout, &with_seq) ||
        (ms = timeout_ms_of(timeout)) == -2 || (b = get_broker()) == NULL)
        return NULL;
    deadline = lp_clock_deadline(ms);
    r = wait_sliced(deadline, event_step, &(struct event_args){b, &ev});
    if (r == LP_EINTERRUPTED)
        return NULL;
    if (r != 0)
        Py_RETURN_NONE;
    if (ev->frame.header == NULL) {
        t = Py_BuildValue("(kOs)", (unsigned long)ev->link, Py_None, ev->reason);
    } else {
        PyObject *pair = frame_pair(&ev->frame);

        t = pair == NULL ? NULL
                         : Py_BuildValue("(kOO)", (unsigned long)ev->link,
                                         PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
        Py_XDECREF(pair);
    }
    if (with_seq && t != NULL) /* N: the tuple takes t's reference */
        t = Py_BuildValue("(NK)", t, (unsigned long long)ev->seq);
    lp_broker_msg_free(ev);
    return t;
}

PyDoc_STRVAR(ctx_close_doc,
"ctx_close(link)\n--\n\n"
"End the link (its waiters get ConnectionError, one end event is posted) and\n"
"close its fds. Idempotent.");

static PyObject *ctx_close(PyObject *mod, PyObject *args)
{
    unsigned int link;
    lp_broker_t *b;

    if (!PyArg_ParseTuple(args, "I", &link) || (b = get_broker()) == NULL)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    lp_broker_close(b, link);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(ctx_launch_doc,
"ctx_launch(argv, password=None, compiled=True, timeout=30.0, log_level=30,\n"
"           session=False)\n--\n\n"
"Start argv (a command that ends with stage 1), answer its one password\n"
"prompt with password (bytes; a bytearray is wiped here), write stage 2\n"
"(compiled if allowed and its bytecode is ours), do the handshake and hand\n"
"the link to the broker (src/context/launch.h); the GIL is released while\n"
"it waits. Returns (pid, link id, stderr fd or -1, the hello's agent dict).\n"
"Fails with OSError(errno, text): EACCES for a password problem, EPROTO\n"
"when it is not a limpet agent, ECONNABORTED when it did not start or\n"
"ended (text: 'did not start: ...', 'ended before its agent started: ...').\n"
"session: stage 2 is an environment's agent (REPL sessions, limpet serve).");

/* Lets Ctrl+C end a launch: takes the GIL back to look at signals. */
static int launch_interrupted(void *arg)
{
    PyThreadState **ts = arg;
    int r;

    PyEval_RestoreThread(*ts);
    r = PyErr_CheckSignals();
    *ts = PyEval_SaveThread();
    return r != 0;
}

static PyObject *ctx_launch(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"argv", "password", "compiled", "timeout",
                                         "log_level", "session", NULL};
    PyObject *seq, *password = Py_None, *timeout = NULL, *items = NULL, *agent, *ret = NULL;
    lp_launch_t opt = {.compiled = true, .log_level = 30, .interrupted = launch_interrupted};
    lp_launched_t out;
    Py_buffer pw = {0};
    char **argv = NULL, *secret = NULL;
    PyThreadState *ts;
    lp_broker_t *b;
    uint32_t link = 0;
    Py_ssize_t n;
    int compiled = 1, session = 0, ms = 30000, r, code;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OpOip", (char **)kwlist, &seq, &password,
                                     &compiled, &timeout, &opt.log_level, &session) ||
        (timeout != NULL && (ms = timeout_ms_of(timeout)) == -2) || (b = get_broker()) == NULL)
        return NULL;
    if ((seq = PySequence_Fast(seq, "limpet: argv must be a sequence")) == NULL)
        return NULL;
    n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, "limpet: argv is empty");
        goto out;
    }
    if ((items = PyList_New(n)) == NULL || (argv = calloc(n + 1, sizeof(*argv))) == NULL) {
        if (items != NULL)
            PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) { /* str or bytes, as the filesystem takes them */
        PyObject *item = NULL;

        if (!PyUnicode_FSConverter(PySequence_Fast_GET_ITEM(seq, i), &item))
            goto out;
        PyList_SET_ITEM(items, i, item);
        argv[i] = PyBytes_AS_STRING(item);
    }
    if (password != Py_None) {
        if (PyObject_GetBuffer(password, &pw, PyBUF_SIMPLE) != 0 ||
            (secret = malloc(pw.len + 1)) == NULL)
            goto out;
        memcpy(secret, pw.buf, pw.len);
        if (PyByteArray_Check(password))
            explicit_bzero(pw.buf, pw.len);
        opt.password = secret;
        opt.password_len = pw.len;
    }
    opt.argv = (const char *const *)argv;
    opt.compiled = compiled;
    opt.session = session;
    opt.timeout_ms = ms;
    opt.arg = &ts;
    ts = PyEval_SaveThread();
    r = lp_context_launch(&opt, &out);
    if (r == 0 && (r = lp_broker_add(b, out.rfd, out.wfd, out.initial, out.initial_len,
                                     &link)) != 0) {
        snprintf(out.error, sizeof(out.error), "did not start: %s", lp_wire_strerror(r));
        lp_context_reap(out.pid, 0);
        lp_launched_clear(&out);
    }
    PyEval_RestoreThread(ts);
    if (r == LP_EINTERRUPTED || r == LP_WIRE_ENOMEM) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto out;
    }
    if (r != 0) {
        code = r == -EACCES ? EACCES : lp_wire_err_code(r) != NULL ? EPROTO : ECONNABORTED;
        PyErr_SetObject(PyExc_OSError, Py_BuildValue("(is)", code, out.error));
        goto out;
    }
    out.rfd = out.wfd = -1; /* the broker's now */
    if ((agent = py_of_json(out.agent)) != NULL)
        ret = Py_BuildValue("(iIiN)", (int)out.pid, (unsigned)link, out.errfd, agent);
    if (ret != NULL)
        out.errfd = -1; /* the caller's now */
    else {
        lp_broker_close(b, link);
        lp_context_reap(out.pid, 0);
    }
    lp_launched_clear(&out);
out:
    if (secret != NULL) {
        explicit_bzero(secret, pw.len);
        free(secret);
    }
    if (pw.obj != NULL)
        PyBuffer_Release(&pw);
    free(argv);
    Py_XDECREF(items);
    Py_DECREF(seq);
    return ret;
}

PyDoc_STRVAR(ctx_reap_doc,
"ctx_reap(pid, timeout=None)\n--\n\n"
"Wait (GIL released) up to timeout seconds for a process ctx_launch started\n"
"to exit, then kill it (SIGKILL) and reap it: its wait status. Once per pid.");

static PyObject *ctx_reap(PyObject *mod, PyObject *args)
{
    PyObject *timeout = Py_None;
    int pid, ms, r;

    if (!PyArg_ParseTuple(args, "i|O", &pid, &timeout) || (ms = timeout_ms_of(timeout)) == -2)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    r = lp_context_reap(pid, ms);
    Py_END_ALLOW_THREADS
    if (r < 0) {
        errno = -r;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyLong_FromLong(r);
}

PyDoc_STRVAR(agent_payload_doc,
"agent_payload()\n--\n\n"
"The agent (python/limpet/_agent.py) compressed at zlib level 9 when the\n"
"extension was built: the bootstrap's stage 2.");

static PyObject *agent_payload(PyObject *mod, PyObject *unused)
{
    return PyBytes_FromStringAndSize((const char *)lp_agent_blob, (Py_ssize_t)lp_agent_blob_len);
}

PyDoc_STRVAR(agent_code_doc,
"agent_code()\n--\n\n"
"(tag, bytes): the agent compiled at build time by this Python, marshalled\n"
"and zlib-compressed, and the tag ('CACHE_TAG MAGIC_HEX') a far stage 1 must\n"
"say for it to run there.");

static PyObject *agent_code(PyObject *mod, PyObject *unused)
{
    return Py_BuildValue("(sy#)", lp_agent_code_tag, (const char *)lp_agent_code_blob,
                         (Py_ssize_t)lp_agent_code_blob_len);
}

PyDoc_STRVAR(stage1_argv_doc,
"stage1_argv(name, python='python3')\n--\n\n"
"The command that starts a far Python and makes it run the stage 2 written\n"
"to its stdin; name ('USER@HOST') is how it shows in ps (the agent adds its\n"
"PID).");

static PyObject *stage1_argv(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"name", "python", NULL};
    PyObject *name, *python = NULL, *tag, *argv;
    const char *text;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "U|U", (char **)kwlist, &name, &python))
        return NULL;
    text = PyUnicode_AsUTF8(name);
    if (text == NULL || (tag = PyUnicode_FromFormat(LP_CONTEXT_TAG_FMT, text)) == NULL)
        return NULL;
    argv = python != NULL ? Py_BuildValue("[OssO]", python, "-c", lp_context_stage1(), tag)
                          : Py_BuildValue("[sssO]", "python3", "-c", lp_context_stage1(), tag);
    Py_DECREF(tag);
    return argv;
}

PyMethodDef lp_py_context_methods[] = {
    {"ctx_link", (PyCFunction)(void (*)(void))ctx_link, METH_VARARGS | METH_KEYWORDS,
     ctx_link_doc},
    {"ctx_send", ctx_send, METH_VARARGS, ctx_send_doc},
    {"ctx_expect", ctx_expect, METH_VARARGS, ctx_expect_doc},
    {"ctx_wait", (PyCFunction)(void (*)(void))ctx_wait, METH_VARARGS | METH_KEYWORDS,
     ctx_wait_doc},
    {"ctx_forget", ctx_forget, METH_VARARGS, ctx_forget_doc},
    {"ctx_next_event", (PyCFunction)(void (*)(void))ctx_next_event,
     METH_VARARGS | METH_KEYWORDS, ctx_next_event_doc},
    {"ctx_close", ctx_close, METH_VARARGS, ctx_close_doc},
    {"ctx_launch", (PyCFunction)(void (*)(void))ctx_launch, METH_VARARGS | METH_KEYWORDS,
     ctx_launch_doc},
    {"ctx_reap", ctx_reap, METH_VARARGS, ctx_reap_doc},
    {"agent_payload", agent_payload, METH_NOARGS, agent_payload_doc},
    {"agent_code", agent_code, METH_NOARGS, agent_code_doc},
    {"stage1_argv", (PyCFunction)(void (*)(void))stage1_argv, METH_VARARGS | METH_KEYWORDS,
     stage1_argv_doc},
    {NULL, NULL, 0, NULL},
};
