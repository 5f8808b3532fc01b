/*
 * Optional accelerator of the SCAN reader (toolkit/server/hashset.py): a set of 64-bit hashes
 * of key names, 8 bytes a slot (open addressing, linear probing, at most 3/4 full), so that a
 * server of 100 M keys read by SCAN is remembered in about 1 GB instead of a Python set's 6+.
 *
 *     HashSet()             an empty set
 *     s.add(buffer)         the uint64 hashes of a bytes-like buffer (native order) put in;
 *                           returns one byte per hash: 1 where it was new, else 0
 *     s.contains(buffer)    one byte per hash of the buffer: 1 where it is held
 *     h in s, len(s)
 *
 * The hashes are XXH64 values (well mixed), so a slot is found by the hash's low bits. 0 marks
 * an empty slot; the hash 0 is kept apart.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MIN_CAP 1024

typedef struct {
    PyObject_HEAD
    uint64_t *slots;
    uint64_t cap; /* a power of two */
    uint64_t used; /* nonzero hashes held */
    int has_zero;
} HashSet;

static int grow(HashSet *s)
{
    uint64_t cap = s->cap ? s->cap * 2 : MIN_CAP;
    uint64_t *slots = PyMem_Calloc(cap, sizeof(uint64_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (uint64_t i = 0; i < s->cap; i++) {
        uint64_t h = s->slots[i];
        if (h) {
            uint64_t j = h & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = h;
        }
    }
    PyMem_Free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

/* 1 if h was new (now held), 0 if held already, -1 on no memory. */
static int insert(HashSet *s, uint64_t h)
{
    if (h == 0) {
        if (s->has_zero)
            return 0;
        s->has_zero = 1;
        return 1;
    }
    if ((s->used + 1) * 4 > s->cap * 3 && grow(s) < 0)
        return -1;
    uint64_t mask = s->cap - 1, i = h & mask;
    while (s->slots[i]) {
        if (s->slots[i] == h)
            return 0;
        i = (i + 1) & mask;
    }
    s->slots[i] = h;
    s->used++;
    return 1;
}

static int holds(const HashSet *s, uint64_t h)
{
    if (h == 0)
        return s->has_zero;
    if (s->cap == 0)
        return 0;
    uint64_t mask = s->cap - 1, i = h & mask;
    while (s->slots[i]) {
        if (s->slots[i] == h)
            return 1;
        i = (i + 1) & mask;
    }
    return 0;
}

/* For each uint64 hash of the buffer arg, one byte of the returned bytes: what insert()
 * (add) or holds() (contains) said of it. */
static PyObject *each_hash(HashSet *self, PyObject *arg, int adding)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len % 8) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "takes whole uint64 hashes (8 bytes each)");
        return NULL;
    }
    Py_ssize_t n = view.len / 8;
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out != NULL) {
        char *mask = PyBytes_AS_STRING(out);
        const char *p = view.buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t h;
            memcpy(&h, p + 8 * i, 8);
            int r = adding ? insert(self, h) : holds(self, h);
            if (r < 0) {
                Py_CLEAR(out);
                break;
            }
            mask[i] = (char)r;
        }
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *HashSet_add(HashSet *self, PyObject *arg) { return each_hash(self, arg, 1); }

static PyObject *HashSet_contains_many(HashSet *self, PyObject *arg)
{
    return each_hash(self, arg, 0);
}

static int HashSet_contains(HashSet *self, PyObject *key)
{
    if (!PyLong_Check(key))
        return 0;
    uint64_t h = PyLong_AsUnsignedLongLong(key);
    if (h == (uint64_t)-1 && PyErr_Occurred()) {
        PyErr_Clear(); /* negative or too big: not a hash this set can hold */
        return 0;
    }
    return holds(self, h);
}

static Py_ssize_t HashSet_len(HashSet *self)
{
    return (Py_ssize_t)(self->used + (uint64_t)self->has_zero);
}

static void HashSet_dealloc(HashSet *self)
{
    PyMem_Free(self->slots);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *HashSet_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "HashSet() takes no arguments");
        return NULL;
    }
    HashSet *self = (HashSet *)type->tp_alloc(type, 0);
    return (PyObject *)self; /* slots NULL, cap 0: the first insert grows it */
}

static PyMethodDef HashSet_methods[] = {
    {"add", (PyCFunction)HashSet_add, METH_O,
     "add(buffer) -> bytes: put the buffer's uint64 hashes in; 1 byte each, 1 where new."},
    {"contains", (PyCFunction)HashSet_contains_many, METH_O,
     "contains(buffer) -> bytes: 1 byte for each of the buffer's uint64 hashes, 1 where held."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods HashSet_as_sequence = {
    .sq_length = (lenfunc)HashSet_len,
    .sq_contains = (objobjproc)HashSet_contains,
};

static PyTypeObject HashSetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "toolkit.server._hashset.HashSet",
    .tp_doc = "A set of 64-bit hashes, 8 bytes a slot.",
    .tp_basicsize = sizeof(HashSet),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = HashSet_new,
    .tp_dealloc = (destructor)HashSet_dealloc,
    .tp_methods = HashSet_methods,
    .tp_as_sequence = &HashSet_as_sequence,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hashset", "A set of 64-bit hashes in C.", -1, NULL,
};

PyMODINIT_FUNC PyInit__hashset(void)
{
    if (PyType_Ready(&HashSetType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&HashSetType);
    if (PyModule_AddObject(m, "HashSet", (PyObject *)&HashSetType) < 0) {
        Py_DECREF(&HashSetType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
