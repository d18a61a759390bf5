/* The module glmm._core: each concept's entry points (scalar.c, search.c, block.c,
 * crossed.c, crossed_gradient.c, coupling.c, bfgs.c, lmm.c, fixed.c), and the constants and
 * status codes of core.h, exported so that the tests hold them equal to glmm's and
 * glmm.objectives.pirls.CORE_ERRORS maps the statuses. */

#include "core.h"

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_core",
    "The compiled core of glmm (glmm/compiled.py): PIRLS, the gradient, the warm start and\n"
    "BFGS for one scalar or vector-valued term, and for crossed scalar terms; the LMM's\n"
    "criterion and its search; lme4's checks of the fixed-effects matrix.  Internal: every\n"
    "entry point checks its arguments, raising TypeError or ValueError naming the one at\n"
    "fault.",
    -1,
    NULL,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyMethodDef *const tables[] = {SCALAR_METHODS, SEARCH_METHODS, CROSSED_METHODS,
                                   CROSSED_GRADIENT_METHODS, COUPLING_METHODS, BFGS_METHODS, LMM_METHODS,
                                   BLOCK_METHODS, FIXED_METHODS};
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    for (size_t k = 0; k < sizeof tables / sizeof tables[0]; k++)
        if (PyModule_AddFunctions(m, tables[k]) < 0)
            goto fail;
    if (PyModule_AddIntConstant(m, "MAX_ITER", MAX_ITER) < 0 ||
        PyModule_AddIntConstant(m, "MAX_HALVINGS", MAX_HALVINGS) < 0 ||
        PyModule_AddObject(m, "DECREMENT_TOL", PyFloat_FromDouble(DECREMENT_TOL)) < 0 ||
        PyModule_AddObject(m, "C1", PyFloat_FromDouble(C1)) < 0 ||
        PyModule_AddIntConstant(m, "MAX_BACKTRACKS", MAX_BACKTRACKS) < 0 ||
        PyModule_AddObject(m, "STALL_GMAX", PyFloat_FromDouble(STALL_GMAX)) < 0 ||
        PyModule_AddObject(m, "STALL_DECREMENT", PyFloat_FromDouble(STALL_DECREMENT)) < 0 ||
        PyModule_AddObject(m, "FLAT_F", PyFloat_FromDouble(FLAT_F)) < 0 ||
        PyModule_AddObject(m, "PREDICT_RANGE", PyFloat_FromDouble(PREDICT_RANGE)) < 0 ||
        PyModule_AddIntConstant(m, "MAX_TERMS", MAX_TERMS) < 0 ||
        PyModule_AddObject(m, "STATUS", Py_BuildValue(
            "{sisisisisisisisi}", "OK", OK, "START_NOT_FINITE", START_NOT_FINITE,
            "SYSTEM_NOT_FINITE", SYSTEM_NOT_FINITE, "HALVING_FAILED", HALVING_FAILED,
            "NOT_CONVERGED", NOT_CONVERGED, "RX_NOT_PD", RX_NOT_PD, "NO_MEMORY", NO_MEMORY,
            "SCHUR_NOT_PD", SCHUR_NOT_PD)) < 0 ||
        PyModule_AddObject(m, "BFGS_END", Py_BuildValue(
            "{sisisisisi}", "GRADIENT", BFGS_GRADIENT, "DECREMENT", BFGS_DECREMENT,
            "STALLED", BFGS_STALLED, "ITERATIONS", BFGS_MAX_ITER, "BAD_START",
            BFGS_BAD_START)) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
