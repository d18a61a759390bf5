/* The response's arguments, as the model constructors (scalar_model, block_model,
 * crossed_model) take them: the kind, and y, w and ylogy (its kernel: response.h). */
#include "core.h"

/* The response kind: BINOMIAL_LOGIT or POISSON_LOG. */
int kind_arg(PyObject *obj, int *kind)
{
    PyObject *i = PyNumber_Index(obj);
    if (!i) {
        PyErr_Format(PyExc_TypeError, "kind: expected an integer (0: binomial-logit, "
                     "1: Poisson-log), got %s", Py_TYPE(obj)->tp_name);
        return 0;
    }
    const long k = PyLong_AsLong(i);
    Py_DECREF(i);
    if (k == -1 && PyErr_Occurred())
        PyErr_Clear();   /* beyond a long: unknown, below */
    if (k != BINOMIAL_LOGIT && k != POISSON_LOG) {
        PyErr_Format(PyExc_ValueError, "kind: unknown response kind %S (0: binomial-logit, "
                     "1: Poisson-log)", obj);
        return 0;
    }
    *kind = (int)k;
    return 1;
}

/* y and w (required) and ylogy (None: the clamped form) of n observations as the call's next
 * buffers, into r with the kind and the binary flag. */
int response_arg(Buffers *bs, int kind, int binary, PyObject *y, PyObject *w, PyObject *ylogy,
                 Py_ssize_t n, Resp *r)
{
    double *yv, *wv, *lv;
    if (!optional(bs, y, "y", n, VECTOR, 0, 1, &yv) ||
        !optional(bs, w, "w", n, VECTOR, 0, 1, &wv) ||
        !optional(bs, ylogy, "ylogy", n, VECTOR, 0, 0, &lv))
        return 0;
    *r = (Resp){.kind = kind, .binary = binary, .y = yv, .w = wv, .ylogy = lv, .n = n};
    return 1;
}
