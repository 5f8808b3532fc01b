/*
 * Optional accelerator of the AOF check: a compact keyspace that applies the common canonical
 * commands in C (see compact.py for how the check shares the keyspace with the Python model).
 *
 * Per (db, key) it keeps the type, the element count (a string: its length), the expiry, the
 * key bytes and, for sets, hashes and sorted sets, an open-addressing array of 64-bit hashes
 * of the members (so SADD/HSET/ZADD count new members exactly up to a 64-bit collision).
 *
 * The commands it applies (the "C commands"), chosen by name and arguments alone:
 *
 *     SET k v                 RPUSH/LPUSH k v...       SADD k m...
 *     HSET/HMSET k f v...     ZADD k score m...        PEXPIREAT k ms        DEL k
 *
 * (ZADD without flags, every score a plain decimal number; PEXPIREAT with an integer as Redis's
 * string2ll reads it.) Anything else is the Python model's. The keys of the Python model are
 * found first by mark(): every argument of a command that is not a C command, or is inside
 * MULTI...EXEC, goes into a set of 64-bit hashes ("python keys"), and run() leaves any command
 * naming such a key to Python. So a key is in one store only. Framing is resp.py's: a
 * non-canonical item (which resp.py reports as damage) ends a scan.
 *
 * The keys of an RDB part come in through load(): once collect_named() is set, mark() also
 * notes the key of every C command ("named keys"); a key of the RDB part neither a python key
 * nor named is stored with its type, count and expiry only (no member hashes: no command adds
 * to it), any other becomes a python key, decoded by the Python model.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../../../parsers/aof/_frame.h"   /* read_num, MAX_DIGITS, MAX_ARGC */
#include "../../../parsers/rdb/_speedups.h" /* Buf, read_len, le16, le32 */

#define MIN_ARG 6
#define ANNOTATION_MAX 1023
#define LOOKAHEAD_MAX 1024

enum { T_NONE = 0, T_STRING, T_LIST, T_SET, T_ZSET, T_HASH };
static const char *TYPE_NAMES[] = {"none", "string", "list", "set", "zset", "hash"};

enum { C_SET = 0, C_RPUSH, C_LPUSH, C_SADD, C_HSET, C_HMSET, C_ZADD, C_PEXPIREAT, C_DEL, N_CMDS };
static const char *CMD_NAMES[] = {"SET",  "RPUSH", "LPUSH",     "SADD", "HSET",
                                  "HMSET", "ZADD", "PEXPIREAT", "DEL"};
/* Not C commands, but the scans follow them. */
enum { X_NONE = -1, X_MULTI = -2, X_ENDMULTI = -3, X_SCRIPT = -4 };

/* -- hashing ------------------------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ mix64(w + 0x632be59bd9b4e019ULL)) * 0x9e3779b97f4a7c15ULL;
        h = (h << 27) | (h >> 37);
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    memcpy(&t, p, n);
    h = (h ^ mix64(t ^ ((uint64_t)n << 59) ^ 0x8cb92ba72f3d8dd7ULL)) * 0x9e3779b97f4a7c15ULL;
    h = mix64(h);
    return h ? h : 1; /* 0 marks an empty slot */
}

/* -- a set of 64-bit hashes (open addressing, linear probing) ------------------------------ */

/* Insert h into slots[cap] (cap a power of two, not full): 1 if new, 0 if present. */
static inline int hs_insert(uint64_t *slots, uint64_t cap, uint64_t h)
{
    uint64_t m = cap - 1, i = h & m;
    while (slots[i]) {
        if (slots[i] == h)
            return 0;
        i = (i + 1) & m;
    }
    slots[i] = h;
    return 1;
}

static inline int hs_has(const uint64_t *slots, uint64_t cap, uint64_t h)
{
    if (!cap)
        return 0;
    uint64_t m = cap - 1, i = h & m;
    while (slots[i]) {
        if (slots[i] == h)
            return 1;
        i = (i + 1) & m;
    }
    return 0;
}

/* Make room for `need` members at a load of at most 3/4: 0, or -1 (out of memory). */
static int hs_reserve(uint64_t **slots, uint64_t *cap, uint64_t n, uint64_t need)
{
    if (need * 4 <= *cap * 3)
        return 0;
    uint64_t c = *cap ? *cap : 4;
    while (need * 4 > c * 3)
        c <<= 1;
    uint64_t *s = calloc(c, sizeof(uint64_t));
    if (!s)
        return -1;
    for (uint64_t i = 0; i < *cap; i++)
        if ((*slots)[i])
            hs_insert(s, c, (*slots)[i]);
    free(*slots);
    *slots = s;
    *cap = c;
    (void)n;
    return 0;
}

/* -- the key tables ------------------------------------------------------------------------ */

typedef struct {
    uint64_t h;
    const uint8_t *key; /* in the arena */
    uint32_t klen;
    uint8_t type; /* T_NONE: deleted */
    uint8_t has_exp;
    int64_t exp;
    uint64_t count;  /* elements; a string's length */
    uint64_t *slots; /* member hashes (set, zset, hash) */
    uint64_t cap;
} Entry;

typedef struct {
    long long num;
    Entry *e;
    size_t n, cap; /* entries used (live or deleted), allocated */
    uint32_t *idx; /* 0 empty, TOMB deleted, else entry index + 1 */
    size_t icap, iused, live;
} Db;

#define TOMB 0xffffffffu

typedef struct Chunk {
    struct Chunk *next;
    size_t used, cap;
    uint8_t data[];
} Chunk;

typedef struct {
    PyObject_HEAD Db **dbs;
    size_t ndbs;
    uint64_t *py; /* python keys */
    uint64_t pycap, pyn;
    uint64_t *named; /* keys of C commands outside MULTI (when collect_named is set) */
    uint64_t namedcap, namedn;
    int collect_named;
    Chunk *arena;
    /* argument views of the command being read */
    const uint8_t **argp;
    uint64_t *argl;
    uint64_t argcap;
    int multi; /* mark(): inside MULTI in the file being marked */
    int scripts;
} Store;

static const uint8_t *arena_copy(Store *s, const uint8_t *p, size_t n)
{
    Chunk *c = s->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > (1u << 20) ? n : (1u << 20);
        Chunk *nc = malloc(sizeof(Chunk) + cap);
        if (!nc)
            return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        s->arena = c = nc;
    }
    uint8_t *out = c->data + c->used;
    memcpy(out, p, n);
    c->used += n;
    return out;
}

static void db_clear(Db *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->e[i].slots);
    free(d->e);
    free(d->idx);
    d->e = NULL;
    d->idx = NULL;
    d->n = d->cap = d->icap = d->iused = d->live = 0;
}

static Db *get_db(Store *s, long long num, int create)
{
    for (size_t i = 0; i < s->ndbs; i++)
        if (s->dbs[i]->num == num)
            return s->dbs[i];
    if (!create)
        return NULL;
    Db **a = realloc(s->dbs, (s->ndbs + 1) * sizeof(Db *));
    if (!a)
        return NULL;
    s->dbs = a;
    Db *d = calloc(1, sizeof(Db));
    if (!d)
        return NULL;
    d->num = num;
    s->dbs[s->ndbs++] = d;
    return d;
}

static Entry *db_find(Db *d, uint64_t h, const uint8_t *k, uint64_t kl)
{
    if (!d->icap)
        return NULL;
    size_t m = d->icap - 1, i = h & m;
    uint32_t v;
    while ((v = d->idx[i]) != 0) {
        if (v != TOMB) {
            Entry *e = &d->e[v - 1];
            if (e->h == h && e->klen == kl && memcmp(e->key, k, kl) == 0)
                return e;
        }
        i = (i + 1) & m;
    }
    return NULL;
}

static int db_rehash(Db *d, size_t icap)
{
    uint32_t *idx = calloc(icap, sizeof(uint32_t));
    if (!idx)
        return -1;
    size_t m = icap - 1;
    for (size_t j = 0; j < d->n; j++) {
        if (d->e[j].type == T_NONE)
            continue;
        size_t i = d->e[j].h & m;
        while (idx[i])
            i = (i + 1) & m;
        idx[i] = (uint32_t)(j + 1);
    }
    free(d->idx);
    d->idx = idx;
    d->icap = icap;
    d->iused = d->live;
    return 0;
}

/* A new entry for a key known to be absent; NULL when out of memory. */
static Entry *db_add(Store *s, Db *d, uint64_t h, const uint8_t *k, uint64_t kl, int type)
{
    if ((d->iused + 1) * 2 > d->icap) {
        size_t c = 16; /* at most 1/2 full with deleted slots; at most 1/3 live after this */
        while ((d->live + 1) * 3 > c)
            c <<= 1;
        if (db_rehash(d, c))
            return NULL;
    }
    if (d->n == d->cap) {
        size_t c = d->cap ? d->cap + d->cap / 2 : 16;
        if (c >= TOMB - 1)
            return NULL;
        Entry *e = realloc(d->e, c * sizeof(Entry));
        if (!e)
            return NULL;
        d->e = e;
        d->cap = c;
    }
    const uint8_t *key = arena_copy(s, k, kl);
    if (!key)
        return NULL;
    Entry *e = &d->e[d->n];
    memset(e, 0, sizeof(Entry));
    e->h = h;
    e->key = key;
    e->klen = (uint32_t)kl;
    e->type = (uint8_t)type;
    size_t m = d->icap - 1, i = h & m;
    while (d->idx[i] && d->idx[i] != TOMB)
        i = (i + 1) & m;
    if (!d->idx[i])
        d->iused++;
    d->idx[i] = (uint32_t)(++d->n);
    d->live++;
    return e;
}

static void db_delete(Db *d, Entry *e)
{
    size_t j = (size_t)(e - d->e);
    size_t m = d->icap - 1, i = e->h & m;
    while (d->idx[i] != j + 1)
        i = (i + 1) & m;
    d->idx[i] = TOMB;
    free(e->slots);
    e->slots = NULL;
    e->cap = 0;
    e->type = T_NONE;
    d->live--;
}

/* -- framing (resp.py's grammar) ----------------------------------------------------------- */

enum { I_BAD = 0, I_CMD, I_NOTE, I_MEM };

/* The item at b[pos]: I_CMD (arguments in s->argp/argl, *argc), I_NOTE (an annotation line),
   I_BAD (anything resp.py would not read as a whole item), I_MEM (out of memory). */
static int read_item(Store *s, const uint8_t *b, Py_ssize_t end, Py_ssize_t pos, uint64_t *argc,
                     Py_ssize_t *next)
{
    if (pos >= end)
        return I_BAD;
    if (b[pos] == '#') {
        Py_ssize_t lim = pos + ANNOTATION_MAX < end ? pos + ANNOTATION_MAX : end;
        const uint8_t *nl = pos + 1 < lim ? memchr(b + pos + 1, '\n', lim - pos - 1) : NULL;
        if (nl)
            *next = (nl - b) + 1;
        else if (end - pos >= ANNOTATION_MAX)
            *next = pos + ANNOTATION_MAX;
        else
            return I_BAD;
        return I_NOTE;
    }
    Py_ssize_t p = pos;
    uint64_t n;
    if (read_num(b, end, &p, '*', &n) || n < 1 || n > MAX_ARGC)
        return I_BAD;
    if (n > (uint64_t)((end - p) / MIN_ARG))
        return I_BAD;
    if (n > s->argcap) {
        uint64_t c = n < 64 ? 64 : n;
        const uint8_t **ap = realloc((void *)s->argp, c * sizeof(*ap));
        if (!ap)
            return I_MEM;
        s->argp = ap;
        uint64_t *al = realloc(s->argl, c * sizeof(*al));
        if (!al)
            return I_MEM;
        s->argl = al;
        s->argcap = c;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        if (read_num(b, end, &p, '$', &len))
            return I_BAD;
        if (end - p < 2 || len > (uint64_t)(end - p - 2))
            return I_BAD;
        Py_ssize_t r = p + (Py_ssize_t)len;
        if (b[r] != '\r' || b[r + 1] != '\n')
            return I_BAD;
        s->argp[i] = b + p;
        s->argl[i] = len;
        p = r + 2;
    }
    *argc = n;
    *next = p;
    return I_CMD;
}

/* -- which commands are C commands --------------------------------------------------------- */

static int name_is(const uint8_t *p, uint64_t n, const char *name)
{
    size_t l = strlen(name);
    if (n != l)
        return 0;
    for (size_t i = 0; i < l; i++) {
        uint8_t c = p[i];
        if (c >= 'a' && c <= 'z')
            c -= 32;
        if (c != (uint8_t)name[i])
            return 0;
    }
    return 1;
}

/* A plain decimal number: [+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?
   (strtod and Python's float() both read it, never as NaN). */
static int plain_number(const uint8_t *p, uint64_t n)
{
    uint64_t i = 0, d = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        i++;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        i++, d++;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++, d++;
    }
    if (!d)
        return 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        uint64_t e = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++, e++;
        if (!e)
            return 0;
    }
    return i == n;
}

/* A signed 64-bit integer as args.int_arg accepts it: -?(0|[1-9][0-9]*), in range. */
static int int64_arg(const uint8_t *p, uint64_t n, int64_t *out)
{
    uint64_t i = 0;
    int neg = 0;
    if (n && p[0] == '-')
        neg = 1, i = 1;
    if (i == n || n > 20)
        return 0;
    if (p[i] == '0' && n - i > 1)
        return 0;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        uint64_t dgt = (uint64_t)(p[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return 0;
        v = v * 10 + dgt;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return 0;
        *out = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX)
            return 0;
        *out = (int64_t)v;
    }
    return 1;
}

/* The C command id of the command in s->argp (argc arguments), or an X_* code. */
static int classify(Store *s, uint64_t argc)
{
    const uint8_t *p = s->argp[0];
    uint64_t n = s->argl[0];
    const uint8_t **a = s->argp;
    const uint64_t *l = s->argl;
    switch (n) {
    case 3:
        if (name_is(p, n, "SET"))
            return argc == 3 ? C_SET : X_NONE;
        if (name_is(p, n, "DEL"))
            return argc == 2 ? C_DEL : X_NONE;
        break;
    case 4:
        if (name_is(p, n, "SADD"))
            return argc >= 3 ? C_SADD : X_NONE;
        if (name_is(p, n, "HSET"))
            return argc >= 4 && argc % 2 == 0 ? C_HSET : X_NONE;
        if (name_is(p, n, "EXEC"))
            return X_ENDMULTI;
        if (name_is(p, n, "EVAL"))
            return X_SCRIPT;
        if (name_is(p, n, "ZADD")) {
            if (argc < 4 || argc % 2)
                return X_NONE;
            for (uint64_t i = 2; i < argc; i += 2)
                if (!plain_number(a[i], l[i]))
                    return X_NONE;
            return C_ZADD;
        }
        break;
    case 5:
        if (name_is(p, n, "RPUSH"))
            return argc >= 3 ? C_RPUSH : X_NONE;
        if (name_is(p, n, "LPUSH"))
            return argc >= 3 ? C_LPUSH : X_NONE;
        if (name_is(p, n, "HMSET"))
            return argc >= 4 && argc % 2 == 0 ? C_HMSET : X_NONE;
        if (name_is(p, n, "MULTI"))
            return X_MULTI;
        if (name_is(p, n, "FCALL"))
            return X_SCRIPT;
        break;
    case 7:
        if (name_is(p, n, "DISCARD"))
            return X_ENDMULTI;
        if (name_is(p, n, "EVALSHA") || name_is(p, n, "EVAL_RO"))
            return X_SCRIPT;
        break;
    case 8:
        if (name_is(p, n, "FCALL_RO"))
            return X_SCRIPT;
        break;
    case 9: {
        int64_t v;
        if (name_is(p, n, "PEXPIREAT"))
            return argc == 3 && int64_arg(a[2], l[2], &v) ? C_PEXPIREAT : X_NONE;
        break;
    }
    case 10:
        if (name_is(p, n, "EVALSHA_RO"))
            return X_SCRIPT;
        break;
    }
    return X_NONE;
}

/* -- applying a C command ------------------------------------------------------------------ */

/* Add members a[from], a[from+step], ... to e: -1 out of memory. */
static int add_members(Store *s, Entry *e, uint64_t argc, uint64_t from, uint64_t step)
{
    uint64_t k = (argc - from + step - 1) / step;
    if (hs_reserve(&e->slots, &e->cap, e->count, e->count + k))
        return -1;
    for (uint64_t i = from; i < argc; i += step)
        e->count += (uint64_t)hs_insert(e->slots, e->cap, hash_bytes(s->argp[i], s->argl[i]));
    return 0;
}

/* 0 applied, 1 WRONGTYPE (no effect), -1 out of memory. */
static int apply(Store *s, Db *d, int id, uint64_t argc, uint64_t kh)
{
    const uint8_t *k = s->argp[1];
    uint64_t kl = s->argl[1];
    Entry *e = db_find(d, kh, k, kl);
    int type;
    switch (id) {
    case C_SET:
        if (!e && !(e = db_add(s, d, kh, k, kl, T_STRING)))
            return -1;
        free(e->slots);
        e->slots = NULL;
        e->cap = 0;
        e->type = T_STRING;
        e->count = s->argl[2];
        e->has_exp = 0;
        return 0;
    case C_DEL:
        if (e)
            db_delete(d, e);
        return 0;
    case C_PEXPIREAT:
        if (e) {
            int64_t v = 0;
            int64_arg(s->argp[2], s->argl[2], &v);
            e->has_exp = 1;
            e->exp = v;
        }
        return 0;
    case C_RPUSH:
    case C_LPUSH:
        type = T_LIST;
        break;
    case C_SADD:
        type = T_SET;
        break;
    case C_ZADD:
        type = T_ZSET;
        break;
    default:
        type = T_HASH;
    }
    if (e && e->type != type)
        return 1;
    if (!e && !(e = db_add(s, d, kh, k, kl, type)))
        return -1;
    switch (id) {
    case C_RPUSH:
    case C_LPUSH:
        e->count += argc - 2;
        return 0;
    case C_SADD:
        return add_members(s, e, argc, 2, 1);
    case C_ZADD:
        return add_members(s, e, argc, 3, 2);
    default:
        return add_members(s, e, argc, 2, 2);
    }
}

/* -- Python API ---------------------------------------------------------------------------- */

static int py_add(Store *s, uint64_t h)
{
    if (hs_reserve(&s->py, &s->pycap, s->pyn, s->pyn + 1))
        return -1;
    s->pyn += (uint64_t)hs_insert(s->py, s->pycap, h);
    return 0;
}

static PyObject *Store_mark(Store *s, PyObject *a)
{
    PyObject *obj;
    Py_ssize_t pos, limit;
    if (!PyArg_ParseTuple(a, "Onn", &obj, &pos, &limit))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *b = view.buf;
    Py_ssize_t end = view.len;
    int done = 0;
    for (Py_ssize_t i = 0; i < limit; i++) {
        if (pos >= end) {
            done = 1;
            break;
        }
        uint64_t argc;
        Py_ssize_t next;
        int kind = read_item(s, b, end, pos, &argc, &next);
        if (kind == I_MEM)
            goto nomem;
        if (kind == I_BAD) {
            done = 1;
            break;
        }
        pos = next;
        if (kind == I_NOTE)
            continue;
        int id = classify(s, argc);
        if (id == X_SCRIPT)
            s->scripts = 1;
        if (id < 0 || s->multi) {
            for (uint64_t j = 0; j < argc; j++)
                if (py_add(s, hash_bytes(s->argp[j], s->argl[j])))
                    goto nomem;
        } else if (s->collect_named) {
            if (hs_reserve(&s->named, &s->namedcap, s->namedn, s->namedn + 1))
                goto nomem;
            s->namedn += (uint64_t)hs_insert(s->named, s->namedcap,
                                             hash_bytes(s->argp[1], s->argl[1]));
        }
        if (id == X_MULTI)
            s->multi = 1;
        else if (id == X_ENDMULTI)
            s->multi = 0;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(nO)", pos, done ? Py_True : Py_False);
nomem:
    PyBuffer_Release(&view);
    return PyErr_NoMemory();
}

typedef struct {
    int id;
    uint64_t argc, count;
    Py_ssize_t first;
} Shape;

static PyObject *Store_run(Store *s, PyObject *a)
{
    PyObject *obj;
    Py_ssize_t pos, limit;
    long long dbnum;
    int in_multi;
    if (!PyArg_ParseTuple(a, "OnnLp", &obj, &pos, &limit, &dbnum, &in_multi))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const uint8_t *b = view.buf;
    Py_ssize_t end = view.len;
    Shape *shapes = NULL;
    size_t nshapes = 0, capshapes = 0;
    int small[N_CMDS][16];
    memset(small, -1, sizeof(small));
    Py_ssize_t n = 0, lookahead = 0;
    int err = -1; /* the C command that failed with WRONGTYPE */
    Db *d = get_db(s, dbnum, 1);
    if (!d)
        goto nomem;
    while (!in_multi && n < limit && pos < end) {
        uint64_t argc;
        Py_ssize_t next;
        int kind = read_item(s, b, end, pos, &argc, &next);
        if (kind == I_MEM)
            goto nomem;
        if (kind != I_CMD)
            break;
        int id = classify(s, argc);
        if (id < 0)
            break;
        uint64_t kh = hash_bytes(s->argp[1], s->argl[1]);
        if (hs_has(s->py, s->pycap, kh))
            break;
        int got = apply(s, d, id, argc, kh);
        if (got < 0)
            goto nomem;
        int si = argc < 16 ? small[id][argc] : -1;
        if (si < 0)
            for (size_t j = 0; j < nshapes; j++)
                if (shapes[j].id == id && shapes[j].argc == argc) {
                    si = (int)j;
                    break;
                }
        if (si < 0) {
            if (nshapes == capshapes) {
                capshapes = capshapes ? 2 * capshapes : 16;
                Shape *ns = realloc(shapes, capshapes * sizeof(Shape));
                if (!ns)
                    goto nomem;
                shapes = ns;
            }
            shapes[nshapes] = (Shape){id, argc, 0, pos};
            si = (int)nshapes++;
            if (argc < 16)
                small[id][argc] = si;
        }
        shapes[si].count++;
        n++;
        pos = next;
        if (got == 1) {
            err = id;
            break;
        }
    }
    /* How many items from pos on are Python's (a hint: Python reads that many, then asks
       again). MULTI...EXEC is Python's throughout. */
    if (err < 0 && n < limit) {
        Py_ssize_t p = pos;
        int multi = in_multi;
        while (p < end && lookahead < LOOKAHEAD_MAX) {
            uint64_t argc;
            Py_ssize_t next;
            int kind = read_item(s, b, end, p, &argc, &next);
            if (kind == I_MEM)
                goto nomem;
            if (kind == I_BAD) {
                lookahead++; /* Python reads it, and reports the damage */
                break;
            }
            if (kind == I_CMD) {
                int id = classify(s, argc);
                if (!multi && id >= 0 &&
                    !hs_has(s->py, s->pycap, hash_bytes(s->argp[1], s->argl[1])))
                    break;
                if (id == X_MULTI)
                    multi = 1;
                else if (id == X_ENDMULTI)
                    multi = 0;
            }
            lookahead++;
            p = next;
        }
    }
    PyBuffer_Release(&view);
    PyObject *list = PyList_New((Py_ssize_t)nshapes);
    if (!list) {
        free(shapes);
        return NULL;
    }
    for (size_t j = 0; j < nshapes; j++) {
        PyObject *t = Py_BuildValue("(yKKn)", CMD_NAMES[shapes[j].id],
                                    (unsigned long long)shapes[j].argc,
                                    (unsigned long long)shapes[j].count, shapes[j].first);
        if (!t) {
            Py_DECREF(list);
            free(shapes);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)j, t);
    }
    free(shapes);
    PyObject *errname = err >= 0 ? PyBytes_FromString(CMD_NAMES[err]) : Py_NewRef(Py_None);
    if (!errname) {
        Py_DECREF(list);
        return NULL;
    }
    return Py_BuildValue("(nnNNn)", pos, n, list, errname, lookahead);
nomem:
    free(shapes);
    PyBuffer_Release(&view);
    return PyErr_NoMemory();
}

static PyObject *Store_add_python_key(Store *s, PyObject *a)
{
    const char *k;
    Py_ssize_t kl;
    if (!PyArg_ParseTuple(a, "y#", &k, &kl))
        return NULL;
    if (py_add(s, hash_bytes((const uint8_t *)k, (size_t)kl)))
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* Store a key no command names into db d, replacing e (its entry there, or NULL): 0 new, 1 it
   replaced a key (a duplicate), -1 out of memory. */
static int store_key(Store *s, Db *d, Entry *e, uint64_t h, const uint8_t *key, uint64_t kl,
                     int type, uint64_t count, int has_exp, int64_t when)
{
    int fresh = e == NULL;
    if (!e && !(e = db_add(s, d, h, key, kl, type)))
        return -1;
    free(e->slots);
    e->slots = NULL;
    e->cap = 0;
    e->type = (uint8_t)type;
    e->count = count;
    e->has_exp = has_exp;
    e->exp = when;
    return fresh ? 0 : 1;
}

/* A key of an RDB part: type 1-5 (string, list, set, zset, hash) with its element count (a
   string's length), or 0: a value the Python model takes whatever its key (not empty). A key
   mark() found in a command is the Python model's, whatever its type and db (so every record
   of one key goes to the same place). Returns 0 stored (new, or an empty collection: skipped,
   as Redis skips it), 1 stored and it replaced the db's key (a duplicate), 2 the Python
   model's (not stored), 3 the Python model's and it replaced a key stored here (now dropped:
   a duplicate), -1 out of memory. */
static int load_key(Store *s, long long num, uint64_t h, const uint8_t *key, uint64_t kl,
                    int type, uint64_t count, int has_exp, int64_t when)
{
    if (type > T_STRING && count == 0)
        return 0;
    if (hs_has(s->py, s->pycap, h))
        return 2;
    Db *d = get_db(s, num, 1);
    if (!d)
        return -1;
    Entry *e = db_find(d, h, key, kl);
    if (type == T_NONE || hs_has(s->named, s->namedcap, h)) {
        /* the db may hold it (type 0 only: a named key never enters the store) */
        if (py_add(s, h))
            return -1;
        if (e)
            db_delete(d, e);
        return e ? 3 : 2;
    }
    return store_key(s, d, e, h, key, kl, type, count, has_exp, when);
}

/* load(db, key, type, count, expire_ms or None) -> load_key()'s answer. */
static PyObject *Store_load(Store *s, PyObject *a)
{
    long long num;
    const char *k;
    Py_ssize_t kl;
    int type;
    unsigned long long count;
    PyObject *exp;
    if (!PyArg_ParseTuple(a, "Ly#iKO", &num, &k, &kl, &type, &count, &exp))
        return NULL;
    if (type < T_NONE || type > T_HASH) {
        PyErr_SetString(PyExc_ValueError, "not a type the store holds");
        return NULL;
    }
    int64_t when = 0;
    if (exp != Py_None) {
        when = PyLong_AsLongLong(exp);
        if (when == -1 && PyErr_Occurred())
            return NULL;
    }
    const uint8_t *key = (const uint8_t *)k;
    int got = load_key(s, num, hash_bytes(key, (size_t)kl), key, (uint64_t)kl, type, count,
                       exp != Py_None, when);
    if (got < 0)
        return PyErr_NoMemory();
    return PyLong_FromLong(got);
}

/* STRLEN of the string encoded at pos (as parsers/rdb/strings.string_length: an integer's
   decimal text, an LZF string's uncompressed length), from its header. 0, or -1 when the
   header does not read (the caller hands the row to the Python code, which words it). */
static int rdb_string_length(const Buf *B, Py_ssize_t pos, uint64_t *out)
{
    if (pos >= B->end)
        return -1;
    uint8_t c = B->b[pos];
    if (c >> 6 != 3)
        return read_len(B, &pos, out);
    long long v;
    int width = (c & 0x3F) == 0 ? 1 : (c & 0x3F) == 1 ? 2 : (c & 0x3F) == 2 ? 4 : 0;
    if (width == 0) { /* LZF: the compressed length, then the uncompressed one */
        uint64_t clen;
        pos++;
        return read_len(B, &pos, &clen) < 0 ? -1 : read_len(B, &pos, out);
    }
    if (B->end - pos <= width)
        return -1;
    const uint8_t *q = B->b + pos + 1;
    v = width == 1 ? (int8_t)q[0] : width == 2 ? (int16_t)le16(q) : (int32_t)le32(q);
    char text[24];
    *out = (uint64_t)snprintf(text, sizeof text, "%lld", v);
    return 0;
}

#define NO_EXPIRY INT64_MIN

/* load_rows(codes, buf, db, type_id, value_offset, elements, expire_ms, name_offsets, names,
   rows, start) -> (stop, repeats, first_repeat): load() for the rows start.. of a batch of
   parsers/rdb/columns.py (its column buffers), up to the first row the Python model must
   decode: one whose type `codes` (256 bytes: RDB type byte -> store type) maps to 0, or whose
   key is the Python model's or named by a command. `stop` is that row (`rows` when none);
   `repeats` how many loaded rows replaced a key (duplicates), `first_repeat` the first of them
   or -1. A string's count is its length, read from `buf` at its value offset. */
static PyObject *Store_load_rows(Store *s, PyObject *a)
{
    Py_buffer v[9];
    Py_ssize_t rows, start;
    int got_views = 0;
    if (!PyArg_ParseTuple(a, "y*y*y*y*y*y*y*y*y*nn", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                          &v[6], &v[7], &v[8], &rows, &start))
        return NULL;
    got_views = 9;
    PyObject *out = NULL;
    const uint8_t *codes = v[0].buf, *types = v[3].buf, *names = v[8].buf;
    const Buf file = {v[1].buf, v[1].len};
    const int32_t *dbs = v[2].buf;
    const int64_t *at = v[4].buf, *elements = v[5].buf, *expire = v[6].buf, *offsets = v[7].buf;
    if (v[0].len < 256 || v[2].len < rows * 4 || v[3].len < rows || v[4].len < rows * 8 ||
        v[5].len < rows * 8 || v[6].len < rows * 8 || v[7].len < (rows + 1) * 8 ||
        start < 0 || start > rows) {
        PyErr_SetString(PyExc_ValueError, "load_rows: columns shorter than the rows");
        goto done;
    }
    Py_ssize_t r = start, repeats = 0, first = -1;
    for (; r < rows; r++) {
        int type = codes[types[r]];
        const uint8_t *key = names + offsets[r];
        uint64_t kl = (uint64_t)(offsets[r + 1] - offsets[r]);
        if (type == T_NONE || offsets[r + 1] > v[8].len)
            break;
        uint64_t h = hash_bytes(key, (size_t)kl);
        if (hs_has(s->py, s->pycap, h) || hs_has(s->named, s->namedcap, h))
            break;
        uint64_t count = (uint64_t)elements[r];
        if (type == T_STRING && rdb_string_length(&file, at[r], &count) < 0)
            break;
        if (type > T_STRING && count == 0)
            continue; /* an empty collection: skipped, as Redis skips it */
        Db *d = get_db(s, dbs[r], 1);
        int got = d ? store_key(s, d, db_find(d, h, key, kl), h, key, kl, type, count,
                                expire[r] != NO_EXPIRY, expire[r] == NO_EXPIRY ? 0 : expire[r])
                    : -1;
        if (got < 0) {
            PyErr_NoMemory();
            goto done;
        }
        if (got == 1) {
            repeats++;
            if (first < 0)
                first = r;
        }
    }
    out = Py_BuildValue("nnn", r, repeats, first);
done:
    for (int i = 0; i < got_views; i++)
        PyBuffer_Release(&v[i]);
    return out;
}

static PyObject *Store_collect_named(Store *s, PyObject *unused)
{
    s->collect_named = 1;
    Py_RETURN_NONE;
}

static PyObject *Store_is_python_key(Store *s, PyObject *a)
{
    const char *k;
    Py_ssize_t kl;
    if (!PyArg_ParseTuple(a, "y#", &k, &kl))
        return NULL;
    return PyBool_FromLong(hs_has(s->py, s->pycap, hash_bytes((const uint8_t *)k, (size_t)kl)));
}

static PyObject *Store_start_file(Store *s, PyObject *unused)
{
    s->multi = 0;
    Py_RETURN_NONE;
}

static PyObject *Store_flushall(Store *s, PyObject *unused)
{
    for (size_t i = 0; i < s->ndbs; i++)
        db_clear(s->dbs[i]);
    Py_RETURN_NONE;
}

static PyObject *Store_flushdb(Store *s, PyObject *a)
{
    long long num;
    if (!PyArg_ParseTuple(a, "L", &num))
        return NULL;
    Db *d = get_db(s, num, 0);
    if (d)
        db_clear(d);
    Py_RETURN_NONE;
}

static PyObject *Store_swapdb(Store *s, PyObject *a)
{
    long long x, y;
    if (!PyArg_ParseTuple(a, "LL", &x, &y))
        return NULL;
    Db *dx = get_db(s, x, 1), *dy = get_db(s, y, 1);
    if (!dx || !dy)
        return PyErr_NoMemory();
    dx->num = y;
    dy->num = x;
    Py_RETURN_NONE;
}

static PyObject *entry_tuple(const Entry *e)
{
    PyObject *exp = e->has_exp ? PyLong_FromLongLong(e->exp) : Py_NewRef(Py_None);
    if (!exp)
        return NULL;
    return Py_BuildValue("(y#sNK)", (const char *)e->key, (Py_ssize_t)e->klen,
                         TYPE_NAMES[e->type], exp, (unsigned long long)e->count);
}

/* get(db, key) -> (key, type, expire_ms or None, count) or None (count: a string's length). */
static PyObject *Store_get(Store *s, PyObject *a)
{
    long long num;
    const char *k;
    Py_ssize_t kl;
    if (!PyArg_ParseTuple(a, "Ly#", &num, &k, &kl))
        return NULL;
    Db *d = get_db(s, num, 0);
    Entry *e = d ? db_find(d, hash_bytes((const uint8_t *)k, (size_t)kl), (const uint8_t *)k,
                           (uint64_t)kl)
                 : NULL;
    if (!e)
        Py_RETURN_NONE;
    return entry_tuple(e);
}

/* entries(db, start, limit) -> ([(key, type, expire, count), ...], next start or -1) */
static PyObject *Store_entries(Store *s, PyObject *a)
{
    long long num;
    Py_ssize_t start, limit;
    if (!PyArg_ParseTuple(a, "Lnn", &num, &start, &limit))
        return NULL;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    Db *d = get_db(s, num, 0);
    size_t i = (size_t)start;
    for (; d && i < d->n && PyList_GET_SIZE(list) < limit; i++) {
        if (d->e[i].type == T_NONE)
            continue;
        PyObject *t = entry_tuple(&d->e[i]);
        if (!t || PyList_Append(list, t)) {
            Py_XDECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    Py_ssize_t next = d && i < d->n ? (Py_ssize_t)i : -1;
    return Py_BuildValue("(Nn)", list, next);
}

/* The (elements, db, key) order of inventory()'s biggest keys: <0, 0, >0. */
static int big_cmp(const Entry *x, long long dx, const Entry *y, long long dy)
{
    uint64_t nx = x->type == T_STRING ? 1 : x->count, ny = y->type == T_STRING ? 1 : y->count;
    if (nx != ny)
        return nx < ny ? -1 : 1;
    if (dx != dy)
        return dx < dy ? -1 : 1;
    uint32_t m = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, m);
    if (c)
        return c;
    return x->klen == y->klen ? 0 : (x->klen < y->klen ? -1 : 1);
}

typedef struct {
    const Entry *e;
    long long db;
} Big;

static void sift_down(Big *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && big_cmp(h[l].e, h[l].db, h[m].e, h[m].db) < 0)
            m = l;
        if (r < n && big_cmp(h[r].e, h[r].db, h[m].e, h[m].db) < 0)
            m = r;
        if (m == i)
            return;
        Big t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* summary(now_ms, top) -> ({db: (keys, expires, expired, {type: n})}, [(n, db, key, type)])
   (the biggest `top` keys by elements, in no order). */
static PyObject *Store_summary(Store *s, PyObject *a)
{
    long long now;
    Py_ssize_t top;
    if (!PyArg_ParseTuple(a, "Ln", &now, &top))
        return NULL;
    if (top < 0)
        top = 0;
    Big *heap = top ? malloc((size_t)top * sizeof(Big)) : NULL;
    if (top && !heap)
        return PyErr_NoMemory();
    size_t hn = 0;
    PyObject *dbs = PyDict_New();
    if (!dbs)
        goto fail;
    for (size_t j = 0; j < s->ndbs; j++) {
        Db *d = s->dbs[j];
        if (!d->live)
            continue;
        unsigned long long by[6] = {0}, expires = 0, expired = 0;
        for (size_t i = 0; i < d->n; i++) {
            const Entry *e = &d->e[i];
            if (e->type == T_NONE)
                continue;
            by[e->type]++;
            if (e->has_exp) {
                expires++;
                expired += e->exp <= now;
            }
            if (!top)
                continue;
            if (hn < (size_t)top) {
                /* sift up */
                size_t c = hn++;
                heap[c] = (Big){e, d->num};
                while (c) {
                    size_t p = (c - 1) / 2;
                    if (big_cmp(heap[c].e, heap[c].db, heap[p].e, heap[p].db) >= 0)
                        break;
                    Big t = heap[c];
                    heap[c] = heap[p];
                    heap[p] = t;
                    c = p;
                }
            } else if (big_cmp(e, d->num, heap[0].e, heap[0].db) > 0) {
                heap[0] = (Big){e, d->num};
                sift_down(heap, hn, 0);
            }
        }
        PyObject *types = PyDict_New();
        if (!types)
            goto fail;
        for (int t = 1; t < 6; t++) {
            if (!by[t])
                continue;
            PyObject *v = PyLong_FromUnsignedLongLong(by[t]);
            if (!v || PyDict_SetItemString(types, TYPE_NAMES[t], v)) {
                Py_XDECREF(v);
                Py_DECREF(types);
                goto fail;
            }
            Py_DECREF(v);
        }
        PyObject *row = Py_BuildValue("(KKKN)", (unsigned long long)d->live, expires, expired,
                                      types);
        PyObject *key = row ? PyLong_FromLongLong(d->num) : NULL;
        if (!key || PyDict_SetItem(dbs, key, row)) {
            Py_XDECREF(row);
            Py_XDECREF(key);
            goto fail;
        }
        Py_DECREF(row);
        Py_DECREF(key);
    }
    PyObject *big = PyList_New((Py_ssize_t)hn);
    if (!big)
        goto fail;
    for (size_t i = 0; i < hn; i++) {
        const Entry *e = heap[i].e;
        PyObject *t = Py_BuildValue("(KLy#s)", (unsigned long long)(e->type == T_STRING ? 1 : e->count),
                                    heap[i].db, (const char *)e->key, (Py_ssize_t)e->klen,
                                    TYPE_NAMES[e->type]);
        if (!t) {
            Py_DECREF(big);
            goto fail;
        }
        PyList_SET_ITEM(big, (Py_ssize_t)i, t);
    }
    free(heap);
    return Py_BuildValue("(NN)", dbs, big);
fail:
    free(heap);
    Py_XDECREF(dbs);
    return NULL;
}

static PyObject *Store_dbs(Store *s, PyObject *unused)
{
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    for (size_t j = 0; j < s->ndbs; j++) {
        if (!s->dbs[j]->live)
            continue;
        PyObject *v = PyLong_FromLongLong(s->dbs[j]->num);
        if (!v || PyList_Append(out, v)) {
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(v);
    }
    return out;
}

static PyObject *Store_get_scripts(Store *s, void *unused) { return PyBool_FromLong(s->scripts); }

static void Store_dealloc(Store *s)
{
    for (size_t i = 0; i < s->ndbs; i++) {
        db_clear(s->dbs[i]);
        free(s->dbs[i]);
    }
    free(s->dbs);
    free(s->py);
    free(s->named);
    while (s->arena) {
        Chunk *n = s->arena->next;
        free(s->arena);
        s->arena = n;
    }
    free((void *)s->argp);
    free(s->argl);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef Store_methods[] = {
    {"mark", (PyCFunction)Store_mark, METH_VARARGS,
     "mark(buf, pos, limit) -> (pos, done): note the Python model's keys of up to `limit` "
     "items from pos; done at the end of the buffer or at an item resp.py would not read."},
    {"run", (PyCFunction)Store_run, METH_VARARGS,
     "run(buf, pos, limit, db, in_multi) -> (pos, n, shapes, error, python_items): apply up to "
     "`limit` C commands from pos in db; shapes [(name, argc, count, first offset)] in first-"
     "seen order; error the name of a command that met WRONGTYPE (the last applied); "
     "python_items how many items from pos on are the Python model's."},
    {"add_python_key", (PyCFunction)Store_add_python_key, METH_VARARGS,
     "Make a key the Python model's (an RDB preamble's keys)."},
    {"load", (PyCFunction)Store_load, METH_VARARGS,
     "load(db, key, type, count, expire_ms) -> 0 new, 1 replaced (duplicate), 2 Python's, "
     "3 Python's and dropped here (duplicate): a key of an RDB part (see the C source)."},
    {"load_rows", (PyCFunction)Store_load_rows, METH_VARARGS,
     "load_rows(codes, buf, db, type_id, value_offset, elements, expire_ms, name_offsets, "
     "names, rows, start) -> (stop, repeats, first_repeat): load() for a batch's rows up to "
     "the first one the Python model must decode (see the C source)."},
    {"collect_named", (PyCFunction)Store_collect_named, METH_NOARGS,
     "From now on mark() also notes the keys of C commands (for load())."},
    {"is_python_key", (PyCFunction)Store_is_python_key, METH_VARARGS,
     "Whether a key (its hash) is the Python model's."},
    {"start_file", (PyCFunction)Store_start_file, METH_NOARGS,
     "mark(): a new file starts (outside MULTI)."},
    {"flushall", (PyCFunction)Store_flushall, METH_NOARGS, "Empty every db."},
    {"flushdb", (PyCFunction)Store_flushdb, METH_VARARGS, "Empty one db."},
    {"swapdb", (PyCFunction)Store_swapdb, METH_VARARGS, "Swap two dbs."},
    {"get", (PyCFunction)Store_get, METH_VARARGS,
     "get(db, key) -> (key, type, expire_ms, count) or None."},
    {"entries", (PyCFunction)Store_entries, METH_VARARGS,
     "entries(db, start, limit) -> ([(key, type, expire_ms, count)], next or -1)."},
    {"summary", (PyCFunction)Store_summary, METH_VARARGS,
     "summary(now_ms, top) -> ({db: (keys, expires, expired, by_type)}, biggest)."},
    {"dbs", (PyCFunction)Store_dbs, METH_NOARGS, "The dbs holding keys, in creation order."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Store_getset[] = {
    {"scripts", (getter)Store_get_scripts, NULL, "mark() met a script (EVAL*, FCALL*).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "toolkit.check.keyspace._compact.Store",
    .tp_basicsize = sizeof(Store),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A compact keyspace for the common canonical AOF commands (see the module).",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)Store_dealloc,
    .tp_methods = Store_methods,
    .tp_getset = Store_getset,
};

static PyObject *py_hash(PyObject *self, PyObject *a)
{
    const char *k;
    Py_ssize_t kl;
    if (!PyArg_ParseTuple(a, "y#", &k, &kl))
        return NULL;
    return PyLong_FromUnsignedLongLong(hash_bytes((const uint8_t *)k, (size_t)kl));
}

static PyMethodDef module_methods[] = {
    {"hash_bytes", py_hash, METH_VARARGS, "The 64-bit hash the store uses (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_compact", "A compact keyspace for the AOF check (optional).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__compact(void)
{
    if (PyType_Ready(&StoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&StoreType);
    if (PyModule_AddObject(m, "Store", (PyObject *)&StoreType) < 0) {
        Py_DECREF(&StoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
