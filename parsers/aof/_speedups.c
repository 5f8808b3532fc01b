/*
 * Optional accelerator for read_commands() (resp.py): parses runs of AOF commands in C.
 *
 * scan_commands() reads commands from `pos` for as long as each one is complete and written
 * the canonical way, exactly as resp.py's fast path accepts it:
 *
 *     "*" 1..19 digits CRLF, then per argument "$" 1..19 digits CRLF data CRLF
 *
 * with an argument count of 1..MAX_ARGC, all within the buffer. At the first item that is
 * anything else -- a '#' annotation, a sign, a stray byte, a count of 0, a length running past
 * the end, a missing CRLF, the end of the input -- it stops *before* that item and returns.
 * The Python loop then reads that item itself, so every error is found and worded by the
 * Python code, and this file never decides that input is bad: it only declines to go on.
 *
 * scan_commands(buf, pos, limit) -> ([(args, offset, end), ...], new_pos)
 * `buf`: anything with the buffer protocol (bytes, mmap). `limit`: at most this many commands.
 * `args` is a tuple of bytes; `end` is where the next item starts; `new_pos` is the `end` of
 * the last command returned, or `pos` if none was.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "_frame.h" /* read_num, MAX_DIGITS, MAX_ARGC */

#define MIN_ARG 6 /* the smallest argument: "$0\r\n\r\n" */

/*
 * The command at b[pos]: 1 and a new reference in *out, *next its end; 0 if it is not one
 * this file accepts; -1 with a Python error set (out of memory).
 */
static int read_command(const uint8_t *b, Py_ssize_t end, Py_ssize_t pos, PyObject **out,
                        Py_ssize_t *next)
{
    Py_ssize_t p = pos;
    uint64_t argc;
    if (read_num(b, end, &p, '*', &argc) || argc < 1 || argc > MAX_ARGC)
        return 0;
    /* Each argument takes at least MIN_ARG bytes: a count that cannot fit is declined before
       any tuple of that size is made. */
    if (argc > (uint64_t)((end - p) / MIN_ARG))
        return 0;
    PyObject *args = PyTuple_New((Py_ssize_t)argc);
    if (!args)
        return -1;
    for (Py_ssize_t i = 0; i < (Py_ssize_t)argc; i++) {
        uint64_t len;
        if (read_num(b, end, &p, '$', &len))
            goto decline;
        /* The data and its CRLF must be in the buffer: checked before anything is made. */
        if (end - p < 2 || len > (uint64_t)(end - p - 2))
            goto decline;
        Py_ssize_t r = p + (Py_ssize_t)len;
        if (b[r] != '\r' || b[r + 1] != '\n')
            goto decline;
        PyObject *arg = PyBytes_FromStringAndSize((const char *)b + p, (Py_ssize_t)len);
        if (!arg) {
            Py_DECREF(args);
            return -1;
        }
        PyTuple_SET_ITEM(args, i, arg);
        p = r + 2;
    }
    *out = args;
    *next = p;
    return 1;
decline:
    Py_DECREF(args); /* also frees the arguments made so far; unset slots are NULL */
    return 0;
}

static PyObject *scan_commands(PyObject *self, PyObject *a)
{
    PyObject *obj;
    Py_ssize_t pos, limit;
    if (!PyArg_ParseTuple(a, "Onn", &obj, &pos, &limit))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *b = (const uint8_t *)view.buf;
    Py_ssize_t end = view.len;
    PyObject *items = PyList_New(0);
    if (!items)
        goto fail;
    while (pos >= 0 && pos < end && PyList_GET_SIZE(items) < limit) {
        PyObject *args;
        Py_ssize_t next;
        int got = read_command(b, end, pos, &args, &next);
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        PyObject *item = Py_BuildValue("(Nnn)", args, pos, next);
        if (!item)
            goto fail;
        int err = PyList_Append(items, item);
        Py_DECREF(item);
        if (err)
            goto fail;
        pos = next;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", items, pos);
fail:
    Py_XDECREF(items);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan_commands", scan_commands, METH_VARARGS,
     "Parse a run of well-formed AOF commands; see the file header."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "Optional C accelerator for read_commands.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
