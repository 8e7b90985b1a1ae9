/* wire_funcs.c: the C wire codec, exposed to Python so that the pure-Python
 * reference peer (limpet.wire) and the C codec can be checked against each
 * other on the same bytes (tests/e2e/test_vectors.py, test_differential.py). */
#include "py/state.h"

#include "wire/frame.h"
#include "wire/handshake.h"

/* Raises ValueError("<code>: <text>") for wire return code r; NULL. */
static PyObject *raise_wire(int r)
{
    if (r == LP_WIRE_ENOMEM)
        return PyErr_NoMemory();
    PyErr_Format(PyExc_ValueError, "%s: %s",
                 lp_wire_err_code(r) != NULL ? lp_wire_err_code(r) : "error",
                 lp_wire_strerror(r));
    return NULL;
}

/* The verdict string for a decoder's last return code. */
static const char *end_name(int r, size_t left)
{
    if (r == LP_WIRE_EAGAIN)
        return left > 0 ? "need-more" : "clean";
    return lp_wire_err_code(r) != NULL ? lp_wire_err_code(r) : lp_wire_strerror(r);
}

/* A (header_json_text, payload_bytes) tuple for f; new reference. */
static PyObject *frame_tuple(const lp_frame_t *f)
{
    char *text = json_dumps(f->header, JSON_COMPACT);
    PyObject *t;

    if (text == NULL)
        return PyErr_NoMemory();
    t = Py_BuildValue("(sy#)", text, f->payload != NULL ? (const char *)f->payload : "",
                      (Py_ssize_t)f->payload_len);
    free(text);
    return t;
}

PyDoc_STRVAR(decode_frames_doc,
"decode_frames(data, /, before_handshake=False)\n--\n\n"
"Decode the frames in data (bytes after the preamble) with the C codec.\n"
"Returns (frames, end): frames is a list of (header_json_text, payload);\n"
"end is 'clean', 'need-more' or the protocol error code that stopped it.");

static PyObject *decode_frames(PyObject *mod, PyObject *args, PyObject *kw)
{
    static const char *const kwlist[] = {"", "before_handshake", NULL};
    const lp_limits_t lim_hello = LP_LIMITS_HELLO, lim_default = LP_LIMITS_DEFAULT;
    Py_buffer data;
    int hello = 0, r;
    lp_buf_t *in = NULL;
    PyObject *frames = NULL, *result = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*|p", (char **)kwlist, &data, &hello))
        return NULL;
    if ((in = lp_buf_new((size_t)data.len)) == NULL ||
        lp_buf_put(in, data.buf, (size_t)data.len) != 0) {
        PyErr_NoMemory();
        goto error;
    }
    if ((frames = PyList_New(0)) == NULL)
        goto error;
    for (;;) {
        lp_frame_t f = {0};
        PyObject *t;

        if ((r = lp_frame_decode(in, hello ? &lim_hello : &lim_default, &f)) != 0)
            break;
        t = frame_tuple(&f);
        lp_frame_clear(&f);
        if (t == NULL || PyList_Append(frames, t) != 0) {
            Py_XDECREF(t);
            goto error;
        }
        Py_DECREF(t);
    }
    result = Py_BuildValue("(Os)", frames, end_name(r, lp_buf_len(in)));
error:
    Py_XDECREF(frames);
    lp_buf_free(in);
    PyBuffer_Release(&data);
    return result;
}

/* Parses text as a header with the same rules as a decoder; NULL and a
 * ValueError when it breaks them. */
static json_t *parse_header(const char *text, Py_ssize_t len)
{
    json_error_t jerr;
    json_t *h = json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES, &jerr);

    if (h == NULL || lp_header_check(h) != 0) {
        json_decref(h);
        raise_wire(LP_WIRE_EHEADER);
        return NULL;
    }
    return h;
}

PyDoc_STRVAR(encode_frame_doc,
"encode_frame(header_json, payload=b'', /)\n--\n\n"
"Encode one frame with the C codec; header_json is the header as JSON text.");

static PyObject *encode_frame(PyObject *mod, PyObject *args)
{
    const lp_limits_t lim = LP_LIMITS_DEFAULT;
    const char *text;
    Py_ssize_t tlen;
    Py_buffer payload = {0};
    lp_buf_t *out = NULL;
    json_t *h = NULL;
    PyObject *result = NULL;
    int r;

    if (!PyArg_ParseTuple(args, "s#|y*", &text, &tlen, &payload))
        return NULL;
    if ((h = parse_header(text, tlen)) == NULL)
        goto error;
    if ((out = lp_buf_new(SIZE_MAX)) == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    if ((r = lp_frame_encode(out, h, payload.buf, (size_t)payload.len, &lim)) != 0) {
        raise_wire(r);
        goto error;
    }
    result = PyBytes_FromStringAndSize((const char *)lp_buf_data(out),
                                       (Py_ssize_t)lp_buf_len(out));
error:
    json_decref(h);
    lp_buf_free(out);
    if (payload.obj != NULL)
        PyBuffer_Release(&payload);
    return result;
}

/* Runs the server side of the handshake on in, appending the reply to out.
 * Returns the verdict string ("ok", "need-more" or an error code). */
static const char *serve(lp_buf_t *in, lp_buf_t *out, json_t *server, const char *const *caps)
{
    lp_hs_t hs = {0};
    lp_hello_t hello;
    const char *field;
    int r = lp_hs_server_read(&hs, in, &hello, &field);

    if (r == LP_WIRE_EAGAIN)
        return "need-more";
    if (r == 0)
        r = lp_hs_server_accept(out, &hello, server, caps, LP_WIRE_PAYLOAD_DEFAULT,
                                hello.want_session ? "1" : NULL);
    else if (r != LP_WIRE_ENOMEM)
        r = lp_hs_server_refuse(out, r, &hello, NULL, field) == 0 ? r : LP_WIRE_ENOMEM;
    return r == 0 ? "ok" : end_name(r, 0);
}

PyDoc_STRVAR(server_handshake_doc,
"server_handshake(data, server_json, /)\n--\n\n"
"Run the C server side of the handshake on the bytes a client sent.\n"
"Returns (reply, verdict): the bytes the server answers and 'ok',\n"
"'need-more' or the error code it refused with.");

static PyObject *server_handshake(PyObject *mod, PyObject *args)
{
    Py_buffer data;
    const char *stext;
    Py_ssize_t slen;
    lp_buf_t *in = NULL, *out = NULL;
    json_t *server = NULL;
    PyObject *result = NULL;
    const char *verdict;

    if (!PyArg_ParseTuple(args, "y*s#", &data, &stext, &slen))
        return NULL;
    if ((server = parse_header(stext, slen)) == NULL)
        goto error;
    if ((in = lp_buf_new((size_t)data.len)) == NULL || (out = lp_buf_new(SIZE_MAX)) == NULL ||
        lp_buf_put(in, data.buf, (size_t)data.len) != 0) {
        PyErr_NoMemory();
        goto error;
    }
    verdict = serve(in, out, server, lp_server_caps);
    result = Py_BuildValue("(y#s)", (const char *)lp_buf_data(out), (Py_ssize_t)lp_buf_len(out),
                           verdict);
error:
    json_decref(server);
    lp_buf_free(in);
    lp_buf_free(out);
    PyBuffer_Release(&data);
    return result;
}

PyMethodDef lp_py_wire_methods[] = {
    {"decode_frames", (PyCFunction)(void (*)(void))decode_frames, METH_VARARGS | METH_KEYWORDS,
     decode_frames_doc},
    {"encode_frame", encode_frame, METH_VARARGS, encode_frame_doc},
    {"server_handshake", server_handshake, METH_VARARGS, server_handshake_doc},
    {NULL, NULL, 0, NULL},
};

