/* module.c: the limpet._limpet extension module: the embedded server's
 * CPython side, and the C wire codec for cross-checks. Multi-phase init,
 * state in the module, heap types. */
#include "py/state.h"

#include <assert.h>

#include "limpet.h"
#include "wire/wire.h"

lp_modstate_t *lp_py_state(PyObject *module)
{
    return PyModule_GetState(module);
}

static struct PyModuleDef limpet_module;

extern PyMethodDef lp_py_client_methods[]; /* client_funcs.c */

lp_modstate_t *lp_py_state_of_type(PyTypeObject *t)
{
    /* t is one of this module's heap types, which cannot be subclassed:
     * the lookup finds the module */
    PyObject *mod = PyType_GetModuleByDef(t, &limpet_module); /* borrowed */

    assert(mod != NULL);
    return PyModule_GetState(mod);
}

static int limpet_exec(PyObject *mod)
{
    lp_modstate_t *st = lp_py_state(mod);

    if (PyThread_tss_create(&st->current) != 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (lp_py_router_types(mod, st) != 0 || lp_py_server_type(mod, st) != 0 ||
        PyModule_AddIntConstant(mod, "PROTOCOL_VERSION", LP_WIRE_VERSION) != 0 ||
        PyModule_AddStringConstant(mod, "VERSION", LIMPET_VERSION) != 0 ||
        PyModule_AddFunctions(mod, lp_py_wire_methods) != 0 ||
        PyModule_AddFunctions(mod, lp_py_session_methods) != 0 ||
        PyModule_AddFunctions(mod, lp_py_client_methods) != 0 ||
        PyModule_AddFunctions(mod, lp_py_context_methods) != 0)
        return -1;
    return 0;
}

static int limpet_traverse(PyObject *mod, visitproc visit, void *arg)
{
    lp_modstate_t *st = lp_py_state(mod);

    Py_VISIT(st->router_type);
    Py_VISIT(st->server_type);
    Py_VISIT(st->call_type);
    Py_VISIT(st->saved);
    return 0;
}

static int limpet_clear(PyObject *mod)
{
    lp_modstate_t *st = lp_py_state(mod);

    Py_CLEAR(st->router_type);
    Py_CLEAR(st->server_type);
    Py_CLEAR(st->call_type);
    Py_CLEAR(st->saved);
    return 0;
}

static void limpet_free(void *mod)
{
    lp_modstate_t *st = lp_py_state(mod);

    limpet_clear(mod);
    /* Threads of a server that outlived its stop may still read the key:
     * deleting it then would be worse than keeping it. */
    if (st->installed == 0)
        PyThread_tss_delete(&st->current);
}

static PyModuleDef_Slot limpet_slots[] = {
    {Py_mod_exec, limpet_exec},
    {0, NULL},
};

static struct PyModuleDef limpet_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "limpet._limpet",
    .m_doc = "The C core of limpet.",
    .m_size = sizeof(lp_modstate_t),
    .m_slots = limpet_slots,
    .m_traverse = limpet_traverse,
    .m_clear = limpet_clear,
    .m_free = limpet_free,
};

PyMODINIT_FUNC PyInit__limpet(void);

PyMODINIT_FUNC PyInit__limpet(void)
{
    return PyModuleDef_Init(&limpet_module);
}
