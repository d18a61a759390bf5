/* The arguments of the entry points, checked.
 *
 * Every entry point checks all its arguments before it computes anything, and raises
 * TypeError or ValueError naming the argument at fault: the core is internal, and glmm passes
 * valid arguments, but no argument, however wrong, may make it read or write outside its
 * arrays.  Arrays come through the buffer protocol: float64 or int64, C-contiguous, 1-D or
 * 2-D of the expected shape; an array the call writes must be writable and share no memory
 * with any other argument.  Sizes are integers in [0, MAX_ITEMS], and every size computed
 * from them is checked (muladd).  Index arrays (level codes, X's rows, cells, a pattern's
 * offsets and entries) are checked to lie within their bounds, in one branch-free pass; the
 * model constructors (scalar_model, crossed_model, block_model, lmm_model, lmm_classes) copy
 * their index arrays, so that a later change to the caller's arrays cannot take them out of
 * bounds.  A call runs without the GIL:
 * no other thread may write its arrays meanwhile (as for numpy's own functions). */

#include "core.h"

/* The call's arguments: exactly `argc` of them (NULL with TypeError if not). */
PyObject *const *unpack(PyObject *args, const char *fname, Py_ssize_t argc)
{
    if (PyTuple_GET_SIZE(args) != argc) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd arguments, got %zd", fname, argc,
                     PyTuple_GET_SIZE(args));
        return NULL;
    }
    return PySequence_Fast_ITEMS(args);
}

/* A size: an integer in [0, MAX_ITEMS]. */
int size_arg(PyObject *obj, const char *name, Py_ssize_t *v)
{
    PyObject *i = PyNumber_Index(obj);
    if (!i) {
        PyErr_Format(PyExc_TypeError, "%s: expected an integer, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    *v = PyLong_AsSsize_t(i);
    Py_DECREF(i);
    if (*v == -1 && PyErr_Occurred())
        PyErr_Clear();   /* beyond a Py_ssize_t: out of range, below */
    if (*v < 0 || *v > MAX_ITEMS) {
        PyErr_Format(PyExc_ValueError, "%s: expected a size in [0, %zd], got %S", name,
                     (Py_ssize_t)MAX_ITEMS, obj);
        return 0;
    }
    return 1;
}

/* A float; NaN refused if `number`. */
int float_arg(PyObject *obj, const char *name, int number, double *v)
{
    *v = PyFloat_AsDouble(obj);
    if (*v == -1.0 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError))
            PyErr_Format(PyExc_ValueError, "%s: %S is beyond the range of a float", name, obj);
        else
            PyErr_Format(PyExc_TypeError, "%s: expected a float, got %s", name,
                         Py_TYPE(obj)->tp_name);
        return 0;
    }
    if (number && isnan(*v)) {
        PyErr_Format(PyExc_ValueError, "%s: expected a number, got NaN", name);
        return 0;
    }
    return 1;
}

/* A flag: any object with a truth value. */
int flag_arg(PyObject *obj, const char *name, int *v)
{
    *v = PyObject_IsTrue(obj);
    if (*v < 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a bool, got %s", name,
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    return 1;
}

void release(Buffers *bs)
{
    for (int k = 0; k < bs->used; k++)
        PyBuffer_Release(&bs->b[k]);
    bs->used = 0;
}

/* Whether a buffer's items are one 8-byte number each in the machine's byte order: 'd'
 * (float64) or, if `integer`, 'q' or 'l' (int64). */
static int format_ok(const Py_buffer *v, int integer)
{
    const char *fmt = v->format ? v->format : "B";
    const uint16_t one = 1;
    const int little = *(const unsigned char *)&one == 1;
    if (*fmt == '@' || *fmt == '=' || *fmt == (little ? '<' : '>') || (!little && *fmt == '!'))
        fmt++;
    if (v->itemsize != 8 || fmt[0] == '\0' || fmt[1] != '\0')
        return 0;
    return integer ? fmt[0] == 'q' || (fmt[0] == 'l' && sizeof(long) == 8) : fmt[0] == 'd';
}

/* A buffer's shape, "(3, 4)", for messages. */
static void shape_text(const Py_buffer *v, char *s, size_t size)
{
    size_t k = (size_t)snprintf(s, size, "(");
    for (int d = 0; d < v->ndim && k < size; d++)
        k += (size_t)snprintf(s + k, size - k, d ? ", %zd" : "%zd", v->shape[d]);
    if (k < size)
        snprintf(s + k, size - k, v->ndim == 1 ? ",)" : ")");
}

/* obj as the call's next buffer, of 8-byte items (float64, or int64 if `integer`),
 * C-contiguous, writable if `written`, of shape (rows,) (cols == VECTOR), (rows, cols), or any
 * shape with rows items in all (cols == FLAT); rows == ANY: any number of rows.  Its data
 * (never NULL), or NULL with an exception naming the argument (TypeError "... is required" for
 * None). */
void *array(Buffers *bs, PyObject *obj, const char *name, Py_ssize_t rows,
            Py_ssize_t cols, int written, int integer)
{
    static double no_items[1];   /* the data of an empty array whose exporter gives none */
    const char *type = integer ? "int64" : "float64";
    if (obj == Py_None) {
        PyErr_Format(PyExc_TypeError, "%s is required", name);
        return NULL;
    }
    if (rows != ANY && muladd(rows, cols >= 0 ? cols : 1, 0) < 0) {
        PyErr_Format(PyExc_ValueError, "%s: its size, %zd x %zd, exceeds any array", name, rows,
                     cols >= 0 ? cols : 1);
        return NULL;
    }
    if (bs->used >= NBUF) {
        PyErr_SetString(PyExc_ValueError, "too many arrays in one call");
        return NULL;
    }
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a %s array, got %s", name, type,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    Py_buffer *v = &bs->b[bs->used];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT |
                                       (written ? PyBUF_WRITABLE : 0)) < 0) {
        /* not C-contiguous, or read-only: the exporter's own words, naming the argument */
        PyObject *etype, *value, *tb;
        PyErr_Fetch(&etype, &value, &tb);
        PyErr_NormalizeException(&etype, &value, &tb);
        PyErr_Format(PyExc_ValueError, "%s: expected a C-contiguous%s %s array (%S)", name,
                     written ? ", writable" : "", type, value ? value : Py_None);
        Py_XDECREF(etype);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    int ok = format_ok(v, integer) && (cols == FLAT || v->ndim == (cols == VECTOR ? 1 : 2));
    if (ok && cols == FLAT)
        ok = rows == ANY || v->len == rows * 8;
    else if (ok)
        ok = (rows == ANY || v->shape[0] == rows) && (cols == VECTOR || v->shape[1] == cols);
    if (!ok) {
        char want[96], got[96];
        if (rows == ANY && cols < 0)
            snprintf(want, sizeof want, "a%s %s array", cols == VECTOR ? " 1-D" : "", type);
        else if (rows == ANY)
            snprintf(want, sizeof want, "a 2-D %s array of %zd columns", type, cols);
        else if (cols < 0)
            snprintf(want, sizeof want, "%zd %s values%s", rows, type,
                     cols == VECTOR ? " (a 1-D array)" : "");
        else
            snprintf(want, sizeof want, "a %zd × %zd %s array", rows, cols, type);
        shape_text(v, got, sizeof got);
        PyErr_Format(PyExc_ValueError, "%s: expected %s, got shape %s of format '%s' (%zd-byte "
                     "items)", name, want, got, v->format ? v->format : "B", v->itemsize);
        PyBuffer_Release(v);
        return NULL;
    }
    bs->name[bs->used] = name;
    bs->written[bs->used] = (unsigned char)written;
    bs->used++;
    return v->buf ? v->buf : (void *)no_items;
}

/* array() for an argument that may be None (then *dst = NULL) unless `required`. */
int optional(Buffers *bs, PyObject *obj, const char *name, Py_ssize_t rows,
             Py_ssize_t cols, int written, int required, double **dst)
{
    if (obj == Py_None && !required) {
        *dst = NULL;
        return 1;
    }
    return (*dst = array(bs, obj, name, rows, cols, written, 0)) != NULL;
}

/* The rows of the buffer array() took last. */
Py_ssize_t last_rows(const Buffers *bs)
{
    return bs->b[bs->used - 1].shape[0];
}

/* Whether two buffers share memory (an empty one shares none). */
static int shares(const Py_buffer *a, const Py_buffer *b)
{
    const uintptr_t pa = (uintptr_t)a->buf, pb = (uintptr_t)b->buf;
    return a->len > 0 && b->len > 0 && pa < pb + (uintptr_t)b->len &&
           pb < pa + (uintptr_t)a->len;
}

/* That no array the call writes shares memory with another of its arrays, or with one that
 * `held` (a crossed_model's, or NULL) holds: else ValueError naming both. */
int disjoint(const Buffers *bs, const Buffers *held)
{
    for (int i = 0; i < bs->used; i++) {
        if (!bs->written[i])
            continue;
        for (int j = 0; j < bs->used; j++)
            if (j != i && shares(&bs->b[i], &bs->b[j])) {
                PyErr_Format(PyExc_ValueError, "%s and %s share memory, and the call writes %s",
                             bs->name[i], bs->name[j], bs->name[i]);
                return 0;
            }
        for (int j = 0; held && j < held->used; j++)
            if (shares(&bs->b[i], &held->b[j])) {
                PyErr_Format(PyExc_ValueError, "%s shares memory with the model's %s, and the "
                             "call writes %s", bs->name[i], held->name[j], bs->name[i]);
                return 0;
            }
    }
    return 1;
}

/* That all `len` values of v lie in [0, bound) (else ValueError naming them, term `term`'s if
 * term ≥ 0, and the first outside): one branch-free pass. */
int in_range(const int64_t *v, Py_ssize_t len, Py_ssize_t bound, const char *name,
             const char *what, int term)
{
    const uint64_t b = bound > 0 ? (uint64_t)bound : 0;
    uint64_t bad = 0;   /* branch-free (vectorised): a negative value is a huge unsigned one */
    for (Py_ssize_t i = 0; i < len; i++)
        bad |= (uint64_t)v[i] >= b;
    if (!bad)
        return 1;
    Py_ssize_t i = 0;
    while ((uint64_t)v[i] < b)
        i++;
    if (term >= 0)
        PyErr_Format(PyExc_ValueError, "%s: %s outside [0, %zd): term %d's [%zd] is %lld", name,
                     what, bound, term, i, (long long)v[i]);
    else
        PyErr_Format(PyExc_ValueError, "%s: %s outside [0, %zd): %s[%zd] is %lld", name, what,
                     bound, name, i, (long long)v[i]);
    return 0;
}

void held_free(PyObject *capsule)
{
    Held *h = PyCapsule_GetPointer(capsule, PyCapsule_GetName(capsule));
    if (h) {
        release(&h->bs);
        PyMem_Free(h->index);
        PyMem_Free(h);
    }
}

void *model_of(PyObject *capsule, const char *name, const char *maker)
{
    if (!PyCapsule_IsValid(capsule, name)) {
        PyErr_Format(PyExc_ValueError, "model: expected the PyCapsule \"%s\" of %s, got %s",
                     name, maker, Py_TYPE(capsule)->tp_name);
        return NULL;
    }
    return PyCapsule_GetPointer(capsule, name);
}

/* A bytes-like argument of `len` bytes (as the call's next buffer). */
const unsigned char *bytes_arg(Buffers *bs, PyObject *obj, const char *name,
                               Py_ssize_t len)
{
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd bytes, got %s", name, len,
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (bs->used >= NBUF) {
        PyErr_SetString(PyExc_ValueError, "too many arrays in one call");
        return NULL;
    }
    Py_buffer *v = &bs->b[bs->used];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd C-contiguous bytes", name, len);
        return NULL;
    }
    if (v->len != len) {
        PyErr_Format(PyExc_ValueError, "%s: expected one byte per coordinate (%zd), got %zd",
                     name, len, v->len);
        PyBuffer_Release(v);
        return NULL;
    }
    bs->name[bs->used] = name;
    bs->written[bs->used] = 0;
    bs->used++;
    return v->buf;
}
