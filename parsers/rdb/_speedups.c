/*
 * Optional accelerator for RdbWalker.tally(): counts (and, for a deep walk, checks) runs of key
 * records in C.
 *
 * Both scans walk records from `pos` for as long as each one is of a shape they fully
 * understand and accept exactly as the Python walker does. At the first record that is anything
 * else -- another opcode, a type left to Python, anything that does not add up, the end of the
 * input -- they stop *before* that record and return. The Python walker then reads that record
 * itself, so every error is found and worded by the Python code, and this file never decides
 * that input is bad: it only declines to go on.
 *
 * scan(buf, pos, limit, now_ms, min_bytes, min_elements, ntypes)
 *   -> (pos, counts[27], key_bytes, expires, expired, last_key)
 * The quick walk (values.py's skippers): a record is counted from its headers. It also stops
 * before an empty collection and a key big enough for the top lists. `ntypes`: count only
 * value types below it (the caller's version rules).
 *
 * scan_full(buf, pos, limit, now_ms, min_bytes, min_elements, valkey, keys, room, mask, db
 *           [, slots])
 *   -> (pos, counts[27], key_bytes, expires, expired, opcodes, last_key, extra, added)
 * The deep walk: each record is checked as Redis loads it with sanitize-dump-payload yes
 * (_sanitize.c, the rules of sanitize.py). An empty collection or a key big enough for the
 * top lists is checked, then handed back uncounted as `extra` = (type, key offset, value
 * offset, end, elements, expire or None), `pos` after it. `opcodes`: bit 1 EXPIRETIME_MS,
 * 2 IDLE, 4 FREQ read before the keys. `valkey`: the file's magic is VALKEY (type 22 is
 * another type there).
 * `keys`: None, or the buckets of parsers/rdb/keyhash.py (a list of KEY_BUCKETS bytearrays):
 * for each record it accepts (extra included) that Redis does not skip as an empty
 * collection, the scan appends the entry (key hash & mask, type byte offset << 1 | expired
 * before now_ms) to the bucket of the hash's top bits; `db`: the db the keys are in; it
 * stops before the record after the `room`-th entry. `added`: how many it appended.
 * `slots`: None, or a writable buffer of 2 * 16384 native uint64 (parsers/cluster/slots.py
 * SlotCounts): for each record it accepts (extra included) that Redis does not skip as an
 * empty collection, it adds one to the key's cluster hash slot (keyHashSlot) in the first
 * half, and one in the second half if the key has an expiry.
 *
 * key_slot(key) -> slot
 * The cluster hash slot of a key (bytes-like), as Redis's keyHashSlot computes it.
 *
 * name_slots(names, offsets, rows, out) -> None
 * The slot of each of `rows` names stored back to back (a KeyColumns batch's names and
 * name_offsets), written to `out` as native uint16.
 *
 * candidates(entries) -> [index, ...]
 * The indices, in order, of the 16-byte entries whose key hash occurs more than once.
 *
 * records(buf, pos, limit, db, valkey, deep, columns, row, names, used) -> (pos, row, used)
 * Per key, one row into the columnar buffers of parsers/rdb/columns.py: `columns` is the
 * tuple (db int32, type uint8, value offset int64, value bytes int64, elements int64, expiry
 * ms int64 (INT64_MIN: none), XXH64 of the value's bytes uint64, name offsets int64 (one
 * more than rows), XXH64 of the name with seed 0 and with seed 1 uint64, the name's offset in
 * the file int64) of bytearrays sized for their capacity (the type column's length); `names` (a bytearray, grown
 * here) holds the key names back to back, `used` of its bytes taken. It stops at `limit`, at
 * a full batch, or before a record it does not read as the Python walker does (an opcode, a
 * type left to Python, a name that does not inflate). `deep`: each value checked as scan_full does.
 * It runs without the GIL, but to grow `names`.
 *
 * strings_at(fd, offsets, lengths_only) -> (data, ends) | lengths | None
 * The strings whose encodings start at the file offsets (a buffer of native int64), read
 * with pread (scattered reads of a big file, not through a map whose pages would stay in
 * RSS). Without `lengths_only`: each string as Redis loads it (integers spelled out, LZF
 * inflated) back to back in the bytearray `data`, string i at data[ends[i] : ends[i + 1]]
 * (`ends`: a bytearray of len + 1 native int64). With it: a bytearray of each one's STRLEN
 * (native int64), from its header alone. A negative offset gives an empty string (length
 * -1). None when a string does not read (the caller reads that batch in Python, which
 * words the error).
 *
 * fingerprints(columns, rows, codes, values) -> bytearray
 * For each of the first `rows` rows of records' `columns`, a 64-bit fingerprint (native
 * uint64): XXH64 of (0, RDB type, value bytes, expiry, value hash) -- the same value, not
 * decoded -- or, for a collection that is not a module value when `values` is false, of
 * (1, its type name's code in `codes` (256 bytes, by RDB type), elements, expiry). Two keys
 * the diff may count as the same without reading them again have the same fingerprint.
 *
 * values_at(fd, offsets) -> (types, value_offsets, value_bytes, elements)
 * For each key whose name's string starts at a file offset (a buffer of native int64): the
 * RDB type byte before it (`types`, a bytearray; 255: not read here, 254: an offset below 1,
 * no key) and the value's offset,
 * serialized bytes and elements (bytearrays of native int64; -1 where not read), read with
 * pread as `records` reads them, without the GIL. A key whose type `records` leaves to
 * Python, or whose record does not read, or one over VALUE_MAX bytes, is declined (255): the
 * caller reads it through the walker, which words any error.
 *
 * sorted_members(value) -> (lengths, data) | None
 * The members of a set value in its plain encoding (RDB type 2: a count, then that many
 * strings), as Redis loads them (integers spelled out, LZF inflated), sorted bytewise as
 * Python sorts bytes: `lengths` their lengths (little-endian uint64), `data` their bytes back to
 * back, in that order. None when the value does not read as exactly that (bytes left over,
 * a duplicate member, damage): the Python decoder words the problem.
 *
 * xxh64(buffer, seed=0) -> int
 * The XXH64 hash of the bytes, as the records hold it.
 *
 * For scans: `limit`: stop at the first record that starts at or after it. `counts[t]`: keys of
 * type t. `last_key`: the type byte offset of the last key counted, or -1.
 */
#include "_speedups.h"

#include <stdlib.h>
#include <unistd.h>

#define NTYPES 27
#define KEY_BUCKET_BITS 10 /* parsers/rdb/keyhash.py BUCKET_BITS */
#define KEY_BUCKETS (1 << KEY_BUCKET_BITS)
#define DB_MIX 0x9E3779B97F4A7C15ULL /* parsers/rdb/keyhash.py DB_MIX */

/* Skip a string in any encoding (raw, integer, LZF). 0 and *p moved past it, or -1. */
static int skip_str(const Buf *B, Py_ssize_t *p)
{
    Py_ssize_t q = *p;
    uint64_t n;
    if (q >= B->end)
        return -1;
    uint8_t c = B->b[q];
    if ((c >> 6) == 3) {
        switch (c & 0x3F) {
        case 0: n = 2; break;
        case 1: n = 3; break;
        case 2: n = 5; break;
        case 3: {
            Py_ssize_t r = q + 1;
            uint64_t clen, ulen;
            if (read_len(B, &r, &clen) || read_len(B, &r, &ulen))
                return -1;
            if (clen > (uint64_t)(B->end - r))
                return -1;
            *p = r + (Py_ssize_t)clen;
            return 0;
        }
        default:
            return -1;
        }
        if (n > (uint64_t)(B->end - q))
            return -1;
        *p = q + (Py_ssize_t)n;
        return 0;
    }
    Py_ssize_t r = q;
    if (read_len(B, &r, &n) || n > (uint64_t)(B->end - r))
        return -1;
    *p = r + (Py_ssize_t)n;
    return 0;
}

/* Skip `count` strings. */
static int skip_strs(const Buf *B, Py_ssize_t *p, uint64_t count)
{
    if (count > (uint64_t)(B->end - *p))
        return -1;
    for (uint64_t i = 0; i < count; i++)
        if (skip_str(B, p))
            return -1;
    return 0;
}

/* A listpack or ziplist blob counted from its header: the same conditions as values.py
 * `_packed`'s fast path, and nothing more. 1 with *p past it and *n set, or 0. */
static int packed(const Buf *B, Py_ssize_t *p, int is_listpack, int per, uint64_t *n_out)
{
    const uint8_t *b = B->b;
    Py_ssize_t end = B->end, pos = *p, s, e;
    uint64_t size, total, n;
    uint64_t min_size = is_listpack ? 7 : 11;
    if (pos >= end)
        return 0;
    uint8_t c0 = b[pos];
    if (c0 < 0x40) {
        s = pos + 1;
        size = c0;
        if (size > (uint64_t)(end - s))
            return 0;
        e = s + (Py_ssize_t)size;
    } else if (c0 < 0x80) {
        if (end - pos < 2)
            return 0;
        s = pos + 2;
        size = ((uint64_t)(c0 & 0x3F) << 8) | b[pos + 1];
        if (size > (uint64_t)(end - s))
            return 0;
        e = s + (Py_ssize_t)size;
    } else if (c0 == 0xC3) { /* LZF: the header must sit in the first literal run */
        Py_ssize_t q = pos + 1;
        uint64_t clen;
        if (read_len(B, &q, &clen) || read_len(B, &q, &size))
            return 0;
        if (clen > (uint64_t)(end - q) || q >= end)
            return 0;
        e = q + (Py_ssize_t)clen;
        uint8_t c = b[q];
        if (!(c >= 9 && c < 32 && q + 2 + (Py_ssize_t)c <= e))
            return 0;
        s = q + 1;
    } else {
        return 0;
    }
    if (size < min_size || b[e - 1] != 0xFF)
        return 0;
    total = le32(b + s);
    if (is_listpack) {
        n = le16(b + s + 4);
        if (total != size || n == 0xFFFF)
            return 0;
    } else {
        uint64_t tail = le32(b + s + 4);
        n = le16(b + s + 8);
        if (total != size || tail >= size || n == 0xFFFF)
            return 0;
    }
    if (2 * n > total - min_size || (per > 1 && n % per))
        return 0;
    *p = e;
    *n_out = n / per;
    return 1;
}

/* A raw intset blob: the checks of intset.py `count`. */
static int intset(const Buf *B, Py_ssize_t *p, uint64_t *n_out)
{
    Py_ssize_t q = *p;
    uint64_t size;
    if (q >= B->end || (B->b[q] >> 6) == 3)
        return 0;
    if (read_len(B, &q, &size) || size > (uint64_t)(B->end - q) || size < 8)
        return 0;
    uint64_t width = le32(B->b + q), length = le32(B->b + q + 4);
    if ((width != 2 && width != 4 && width != 8) || 8 + length * width != size || length == 0)
        return 0;
    *p = q + (Py_ssize_t)size;
    *n_out = length;
    return 1;
}

/* Skip the value of type t at *p and count its elements. 1 on success, 0 to decline. */
static int value(const Buf *B, int t, Py_ssize_t *p, uint64_t *n)
{
    uint64_t count, nodes;
    switch (t) {
    case 0: /* string */
        *n = 1;
        return skip_str(B, p) == 0;
    case 1: /* list */
    case 2: /* set */
        if (read_len(B, p, &count) || skip_strs(B, p, count))
            return 0;
        *n = count;
        return 1;
    case 4: /* hash */
        if (read_len(B, p, &count) || count > (uint64_t)(B->end - *p) ||
            skip_strs(B, p, 2 * count))
            return 0;
        *n = count;
        return 1;
    case 3: /* zset: member, then a score as a length-prefixed decimal */
        if (read_len(B, p, &count) || count > (uint64_t)(B->end - *p))
            return 0;
        for (uint64_t i = 0; i < count; i++) {
            if (skip_str(B, p) || *p >= B->end)
                return 0;
            uint8_t c = B->b[*p];
            Py_ssize_t step = c >= 253 ? 1 : 1 + (Py_ssize_t)c;
            if (step > B->end - *p)
                return 0;
            *p += step;
        }
        *n = count;
        return 1;
    case 5: /* zset2: member, then an 8-byte double */
        if (read_len(B, p, &count) || count > (uint64_t)(B->end - *p))
            return 0;
        for (uint64_t i = 0; i < count; i++) {
            if (skip_str(B, p) || B->end - *p < 8)
                return 0;
            *p += 8;
        }
        *n = count;
        return 1;
    case 10: return packed(B, p, 0, 1, n);
    case 11: return intset(B, p, n);
    case 12: return packed(B, p, 0, 2, n);
    case 13: return packed(B, p, 0, 2, n);
    case 16: return packed(B, p, 1, 2, n);
    case 17: return packed(B, p, 1, 2, n);
    case 20: return packed(B, p, 1, 1, n);
    case 14: /* quicklist of ziplists */
        if (read_len(B, p, &nodes) || nodes > (uint64_t)(B->end - *p))
            return 0;
        *n = 0;
        for (uint64_t i = 0; i < nodes; i++) {
            uint64_t k;
            if (!packed(B, p, 0, 1, &k))
                return 0;
            *n += k;
        }
        return 1;
    case 18: /* quicklist 2: PLAIN (1) or PACKED (2) nodes */
        if (read_len(B, p, &nodes) || nodes > (uint64_t)(B->end - *p))
            return 0;
        *n = 0;
        for (uint64_t i = 0; i < nodes; i++) {
            uint64_t k;
            if (*p >= B->end)
                return 0;
            uint8_t container = B->b[*p];
            *p += 1;
            if (container == 2) {
                if (!packed(B, p, 1, 1, &k))
                    return 0;
                *n += k;
            } else if (container == 1) {
                if (skip_str(B, p))
                    return 0;
                *n += 1;
            } else {
                return 0;
            }
        }
        return 1;
    default:
        return 0;
    }
}

/* Types whose empty values Redis skips on load (the Python walker counts those). */
static int is_collection(int t)
{
    switch (t) {
    case 1: case 2: case 3: case 4: case 5: case 9: case 10: case 11: case 12: case 13: case 14:
    case 16: case 17: case 18: case 20: case 22: case 23: case 24: case 25:
        return 1;
    default:
        return 0;
    }
}

/* What both scans add up. */
typedef struct {
    uint64_t counts[NTYPES];
    long long key_bytes, expires, expired;
} Counts;

/* The opcodes that may come before a key (EXPIRETIME_MS, IDLE, FREQ), read from *q: 1 with *q
 * at the type byte, 0 to stop. `seen` collects 1, 2, 4 for each. */
static int key_prefix(const Buf *B, Py_ssize_t *q, int *has_expire, long long *expire, int *seen)
{
    uint8_t op = B->b[*q];
    while (op == 252 || op == 248 || op == 249) {
        if (op == 252) {
            if (B->end - *q < 9)
                return 0;
            *expire = (long long)le64(B->b + *q + 1);
            *has_expire = 1;
            *q += 9;
            *seen |= 1;
        } else if (op == 248) {
            uint64_t idle;
            *q += 1;
            if (read_len(B, q, &idle))
                return 0;
            *seen |= 2;
        } else {
            if (B->end - *q < 2)
                return 0;
            *q += 2;
            *seen |= 4;
        }
        if (*q >= B->end)
            return 0;
        op = B->b[*q];
    }
    return 1;
}

static void count_key(Counts *C, int op, long long size, int has_expire, long long expire,
                      long long now_ms)
{
    C->counts[op]++;
    C->key_bytes += size;
    if (has_expire) {
        C->expires++;
        if (expire <= now_ms)
            C->expired++;
    }
}

static PyObject *counts_tuple(const Counts *C)
{
    PyObject *tuple = PyTuple_New(NTYPES);
    if (!tuple)
        return NULL;
    for (int i = 0; i < NTYPES; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(C->counts[i]);
        if (!v) {
            Py_DECREF(tuple);
            return NULL;
        }
        PyTuple_SET_ITEM(tuple, i, v);
    }
    return tuple;
}


/* ---- key hashes (parsers/rdb/keyhash.py) ---------------------------------------------- */

/* The hash Python gives the key's bytes (hash(bytes)), with the db mixed in. */
static uint64_t key_hash(const uint8_t *s, size_t n, uint64_t db)
{
#if PY_VERSION_HEX >= 0x030E0000
    uint64_t h = (uint64_t)Py_HashBuffer(s, (Py_ssize_t)n);
#else
    uint64_t h = (uint64_t)_Py_HashBytes(s, (Py_ssize_t)n);
#endif
    return h ^ (db * DB_MIX);
}

/* Entries wait here and go to their buckets together: spread one by one among the scan's
 * reads of the file, the appends cost several times more (the buckets' ends leave the cache). */
#define STAGE 32768
typedef struct {
    uint64_t h, tag;
} KeyEntry;
static KeyEntry stage[STAGE];
static size_t staged;

/* Move the staged entries to their buckets. 0, or -1 with an exception set. */
static int flush_keys(PyObject *keys)
{
    static Py_ssize_t counts[KEY_BUCKETS];
    static uint8_t *tails[KEY_BUCKETS];
    memset(counts, 0, sizeof counts);
    for (size_t i = 0; i < staged; i++)
        counts[stage[i].h >> (64 - KEY_BUCKET_BITS)]++;
    for (int b = 0; b < KEY_BUCKETS; b++) {
        if (!counts[b])
            continue;
        PyObject *bucket = PyList_GET_ITEM(keys, b);
        Py_ssize_t len = PyByteArray_GET_SIZE(bucket), want = len + 16 * counts[b];
        /* Grown by half (bytearray's own step, an eighth, would copy it over and over), then
         * cut back to the entries: a cut to no less than half keeps the memory. */
        if ((want >= ((PyByteArrayObject *)bucket)->ob_alloc &&
             PyByteArray_Resize(bucket, want + want / 2) < 0) ||
            PyByteArray_Resize(bucket, want) < 0) {
            staged = 0;
            return -1;
        }
        tails[b] = (uint8_t *)PyByteArray_AS_STRING(bucket) + len;
    }
    for (size_t i = 0; i < staged; i++) {
        size_t b = stage[i].h >> (64 - KEY_BUCKET_BITS);
        memcpy(tails[b], &stage[i], 16);
        tails[b] += 16;
    }
    staged = 0;
    return 0;
}

/* Note the entry (h, tag). 0, or -1 with an exception set. */
static int add_key(PyObject *keys, uint64_t h, uint64_t tag)
{
    stage[staged].h = h;
    stage[staged].tag = tag;
    return ++staged == STAGE ? flush_keys(keys) : 0;
}

/* `keys` is None or a list of KEY_BUCKETS bytearrays. 1, or 0 with TypeError set. */
static int keys_ok(PyObject *keys)
{
    if (keys == Py_None)
        return 1;
    if (!PyList_CheckExact(keys) || PyList_GET_SIZE(keys) != KEY_BUCKETS)
        goto bad;
    for (Py_ssize_t i = 0; i < KEY_BUCKETS; i++)
        if (!PyByteArray_CheckExact(PyList_GET_ITEM(keys, i)))
            goto bad;
    return 1;
bad:
    PyErr_SetString(PyExc_TypeError, "keys: a list of KEY_BUCKETS bytearrays, or None");
    return 0;
}

static PyObject *candidates(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = NULL;
    uint32_t *slots = NULL;
    uint8_t *marked = NULL;
    size_t n = (size_t)view.len / 16;
    if ((size_t)view.len % 16 || n >= UINT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "entries: a whole number of 16-byte entries");
        goto done;
    }
    size_t nslots = 16;
    while (nslots < 2 * n)
        nslots *= 2;
    slots = calloc(nslots, sizeof(uint32_t));
    marked = calloc(n ? n : 1, 1);
    if (slots == NULL || marked == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const uint8_t *e = view.buf;
    for (size_t i = 0; i < n; i++) {
        uint64_t h;
        memcpy(&h, e + 16 * i, 8);
        uint64_t mixed = (h ^ (h >> 31)) * DB_MIX; /* a masked (small) hash spreads too */
        size_t j = (size_t)(mixed >> 32) & (nslots - 1);
        while (slots[j]) {
            uint32_t k = slots[j] - 1;
            uint64_t other;
            memcpy(&other, e + 16 * (size_t)k, 8);
            if (other == h) {
                marked[k] = marked[i] = 1;
                break;
            }
            j = (j + 1) & (nslots - 1);
        }
        if (!slots[j])
            slots[j] = (uint32_t)(i + 1);
    }
    out = PyList_New(0);
    for (size_t i = 0; out != NULL && i < n; i++) {
        if (!marked[i])
            continue;
        PyObject *v = PyLong_FromSize_t(i);
        if (v == NULL || PyList_Append(out, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(v);
    }
done:
    free(slots);
    free(marked);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *scan(PyObject *self, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t pos, limit, last_key = -1;
    long long now_ms, min_bytes, min_elems;
    int ntypes; /* count only types below this; 0 declines everything */
    if (!PyArg_ParseTuple(args, "OnnLLLi", &obj, &pos, &limit, &now_ms, &min_bytes, &min_elems,
                          &ntypes))
        return NULL;
    if (ntypes > NTYPES)
        ntypes = NTYPES;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Buf B = {(const uint8_t *)view.buf, view.len};
    Counts C = {{0}, 0, 0, 0};
    int seen = 0;
    if (pos < 0)
        pos = B.end;

    while (pos < limit && pos < B.end) {
        Py_ssize_t rec = pos, q = pos;
        int has_expire = 0;
        long long expire = 0;
        if (!key_prefix(&B, &q, &has_expire, &expire, &seen))
            goto stop;
        uint8_t op = B.b[q];
        if (op >= ntypes)
            goto stop;
        Py_ssize_t type_at = q;
        q += 1;
        uint64_t n;
        if (skip_str(&B, &q) || !value(&B, op, &q, &n))
            goto stop;
        long long size = (long long)(q - type_at);
        if (n == 0 && is_collection(op))
            goto stop;
        if (size > min_bytes || (long long)n > min_elems)
            goto stop;
        count_key(&C, op, size, has_expire, expire, now_ms);
        last_key = type_at;
        pos = q;
        continue;
    stop:
        pos = rec;
        break;
    }
    PyBuffer_Release(&view);
    PyObject *tuple = counts_tuple(&C);
    if (!tuple)
        return NULL;
    return Py_BuildValue("(nNLLLn)", pos, tuple, C.key_bytes, C.expires, C.expired, last_key);
}


/* ---- cluster hash slots (Redis's crc16.c and keyHashSlot) -------------------------------- */

#define CLUSTER_SLOTS 16384

/* CRC-16/XMODEM (polynomial 0x1021, initial 0), the table Redis's crc16.c holds. */
static uint16_t crc16_table[256];

static void crc16_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int j = 0; j < 8; j++)
            c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
        crc16_table[i] = c;
    }
}

static uint16_t crc16(const uint8_t *s, size_t n)
{
    uint16_t c = 0;
    for (size_t i = 0; i < n; i++)
        c = (uint16_t)((c << 8) ^ crc16_table[((c >> 8) ^ s[i]) & 0xff]);
    return c;
}

/* The key's slot: the CRC of the part between the first '{' and the first '}' after it, when
 * that part is not empty, else of the whole key. */
static unsigned key_hash_slot(const uint8_t *key, size_t n)
{
    size_t s, e;
    for (s = 0; s < n; s++)
        if (key[s] == '{')
            break;
    if (s == n)
        return crc16(key, n) & 0x3FFF;
    for (e = s + 1; e < n; e++)
        if (key[e] == '}')
            break;
    if (e == n || e == s + 1)
        return crc16(key, n) & 0x3FFF;
    return crc16(key + s + 1, e - s - 1) & 0x3FFF;
}

static PyObject *key_slot(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    unsigned slot = key_hash_slot((const uint8_t *)view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(slot);
}

/* name_slots(names, offsets, rows, out): the slot of each of `rows` key names stored back to
 * back in `names` (row i from offsets[i] to offsets[i + 1], native int64), written to `out` as
 * native uint16. Offsets out of order or past `names` raise ValueError. */
static PyObject *name_slots(PyObject *self, PyObject *args)
{
    PyObject *names_obj, *offsets_obj, *out_obj;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "OOnO", &names_obj, &offsets_obj, &rows, &out_obj))
        return NULL;
    Py_buffer names = {0}, offsets = {0}, out = {0};
    PyObject *result = NULL;
    if (PyObject_GetBuffer(names_obj, &names, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(offsets_obj, &offsets, PyBUF_SIMPLE) < 0)
        goto done;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE) < 0)
        goto done;
    if (rows < 0 || offsets.len / 8 < rows + 1 || out.len / 2 < rows) {
        PyErr_SetString(PyExc_ValueError, "name_slots: the buffers are too short for the rows");
        goto done;
    }
    const uint8_t *b = (const uint8_t *)names.buf;
    const uint8_t *o = (const uint8_t *)offsets.buf;
    uint16_t *slots = (uint16_t *)out.buf;
    int64_t start;
    memcpy(&start, o, 8);
    for (Py_ssize_t i = 0; i < rows; i++) {
        int64_t end;
        memcpy(&end, o + 8 * (i + 1), 8);
        if (start < 0 || end < start || end > names.len) {
            PyErr_Format(PyExc_ValueError, "name_slots: row %zd's name is out of bounds", i);
            goto done;
        }
        slots[i] = (uint16_t)key_hash_slot(b + start, (size_t)(end - start));
        start = end;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (out.obj)
        PyBuffer_Release(&out);
    if (offsets.obj)
        PyBuffer_Release(&offsets);
    PyBuffer_Release(&names);
    return result;
}

static PyObject *scan_full(PyObject *self, PyObject *args)
{
    PyObject *obj, *keys, *slots_obj = Py_None;
    Py_ssize_t pos, limit, room, last_key = -1, added = 0;
    long long now_ms, min_bytes, min_elems;
    unsigned long long mask, db;
    int valkey;
    if (!PyArg_ParseTuple(args, "OnnLLLpOnKK|O", &obj, &pos, &limit, &now_ms, &min_bytes,
                          &min_elems, &valkey, &keys, &room, &mask, &db, &slots_obj))
        return NULL;
    if (!keys_ok(keys))
        return NULL;
    if (keys == Py_None)
        keys = NULL;
    Py_buffer sview = {0};
    uint64_t *slots = NULL;
    if (slots_obj != Py_None) {
        if (PyObject_GetBuffer(slots_obj, &sview, PyBUF_WRITABLE) < 0)
            return NULL;
        if (sview.len != (Py_ssize_t)(2 * CLUSTER_SLOTS * sizeof(uint64_t))) {
            PyBuffer_Release(&sview);
            PyErr_SetString(PyExc_ValueError, "slots: a buffer of 2 * 16384 uint64");
            return NULL;
        }
        slots = (uint64_t *)sview.buf;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0) {
        if (slots != NULL)
            PyBuffer_Release(&sview);
        return NULL;
    }
    Buf B = {(const uint8_t *)view.buf, view.len};
    Sanitizer *S = sanitizer_for(&B);
    Counts C = {{0}, 0, 0, 0};
    int seen = 0, has_extra = 0;
    long long x_expire = 0;
    int x_op = 0, x_has_expire = 0;
    Py_ssize_t x_key = 0, x_value = 0, x_end = 0;
    uint64_t x_n = 0;
    if (pos < 0)
        pos = B.end;

    while (pos < limit && pos < B.end && (keys == NULL || added < room)) {
        Py_ssize_t rec = pos, q = pos;
        int has_expire = 0;
        long long expire = 0;
        if (!key_prefix(&B, &q, &has_expire, &expire, &seen))
            goto stop;
        uint8_t op = B.b[q];
        if (op >= NTYPES || (valkey && op >= 22))
            goto stop;
        Py_ssize_t type_at = q;
        q += 1;
        uint64_t h = 0;
        unsigned slot = 0;
        if (keys != NULL || slots != NULL) {
            const uint8_t *key;
            size_t key_len;
            if (!sanitize_key(S, &q, &key, &key_len))
                goto stop;
            if (keys != NULL)
                h = key_hash(key, key_len, db) & mask;
            if (slots != NULL)
                slot = key_hash_slot(key, key_len);
        } else if (!sanitize_string(S, &q)) {
            goto stop;
        }
        Py_ssize_t value_at = q;
        uint64_t n;
        if (!sanitize_value(S, op, valkey, &q, &n))
            goto stop;
        long long size = (long long)(q - type_at);
        int empty = n == 0 && is_collection(op);
        if (keys != NULL && !empty) { /* Redis skips empty collections: they cannot clash */
            uint64_t tag = ((uint64_t)type_at << 1) | (uint64_t)(has_expire && expire < now_ms);
            if (add_key(keys, h, tag) < 0) {
                PyBuffer_Release(&view);
                if (slots != NULL)
                    PyBuffer_Release(&sview);
                return NULL;
            }
            added++;
        }
        if (slots != NULL && !empty) {
            slots[slot]++;
            if (has_expire)
                slots[CLUSTER_SLOTS + slot]++;
        }
        if (empty || size > min_bytes || (long long)n > min_elems) {
            has_extra = 1;
            x_op = op;
            x_key = type_at + 1;
            x_value = value_at;
            x_end = q;
            x_n = n;
            x_has_expire = has_expire;
            x_expire = expire;
            pos = q;
            break;
        }
        count_key(&C, op, size, has_expire, expire, now_ms);
        last_key = type_at;
        pos = q;
        continue;
    stop:
        pos = rec;
        break;
    }
    PyBuffer_Release(&view);
    if (slots != NULL)
        PyBuffer_Release(&sview);
    if (keys != NULL && flush_keys(keys) < 0)
        return NULL;
    PyObject *tuple = counts_tuple(&C);
    if (!tuple)
        return NULL;
    PyObject *extra;
    if (!has_extra) {
        extra = Py_None;
        Py_INCREF(extra);
    } else if (x_has_expire) {
        extra = Py_BuildValue("(innnKL)", x_op, x_key, x_value, x_end, (unsigned long long)x_n,
                              x_expire);
    } else {
        extra = Py_BuildValue("(innnKO)", x_op, x_key, x_value, x_end, (unsigned long long)x_n,
                              Py_None);
    }
    if (!extra) {
        Py_DECREF(tuple);
        return NULL;
    }
    return Py_BuildValue("(nNLLLinNn)", pos, tuple, C.key_bytes, C.expires, C.expired, seen,
                         last_key, extra, added);
}


/* ---- per-key records (parsers/rdb/columns.py) ---------------------------------------- */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t xxh_round(uint64_t acc, uint64_t input)
{
    acc += input * P2;
    return rotl64(acc, 31) * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t val)
{
    acc ^= xxh_round(0, val);
    return acc * P1 + P4;
}

/* XXH64 (the reference algorithm, xxhash.h XXH64), over the bytes in place. */
static uint64_t xxh64(const uint8_t *p, size_t len, uint64_t seed)
{
    const uint8_t *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = xxh_round(v1, le64(p));
            v2 = xxh_round(v2, le64(p + 8));
            v3 = xxh_round(v3, le64(p + 16));
            v4 = xxh_round(v4, le64(p + 24));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh_merge(h, v1);
        h = xxh_merge(h, v2);
        h = xxh_merge(h, v3);
        h = xxh_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    while (end - p >= 8) {
        h ^= xxh_round(0, le64(p));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (end - p >= 4) {
        h ^= (uint64_t)le32(p) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (uint64_t)(*p) * P5;
        h = rotl64(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

static PyObject *xxh64_py(PyObject *self, PyObject *args)
{
    Py_buffer view;
    unsigned long long seed = 0;
    if (!PyArg_ParseTuple(args, "y*|K", &view, &seed))
        return NULL;
    uint64_t h = xxh64((const uint8_t *)view.buf, (size_t)view.len, seed);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(h);
}

/* xor64(buffer) -> int: the XOR of the buffer's little-endian uint64 values (its length a
 * multiple of 8): the order-independent digest of a column of key-name hashes. */
static PyObject *xor64_py(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    if (view.len % 8) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "xor64: the buffer is not a whole number of uint64");
        return NULL;
    }
    const uint8_t *b = (const uint8_t *)view.buf;
    uint64_t x = 0;
    for (Py_ssize_t i = 0; i < view.len; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        x ^= v;
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(x);
}

#define NCOLUMNS 11

static PyObject *records(PyObject *self, PyObject *args)
{
    PyObject *obj, *columns, *names;
    Py_ssize_t pos, limit, row, used;
    long long db;
    int valkey, deep;
    if (!PyArg_ParseTuple(args, "OnnLppO!nO!n", &obj, &pos, &limit, &db, &valkey, &deep,
                          &PyTuple_Type, &columns, &row, &PyByteArray_Type, &names, &used))
        return NULL;
    if (PyTuple_GET_SIZE(columns) != NCOLUMNS)
        goto bad_columns;
    uint8_t *col[NCOLUMNS];
    for (int i = 0; i < NCOLUMNS; i++) {
        PyObject *c = PyTuple_GET_ITEM(columns, i);
        if (!PyByteArray_CheckExact(c))
            goto bad_columns;
        col[i] = (uint8_t *)PyByteArray_AS_STRING(c);
    }
    Py_ssize_t cap = PyByteArray_GET_SIZE(PyTuple_GET_ITEM(columns, 1));
    static const int width[NCOLUMNS] = {4, 1, 8, 8, 8, 8, 8, 8, 8, 8, 8};
    for (int i = 0; i < NCOLUMNS; i++)
        if (PyByteArray_GET_SIZE(PyTuple_GET_ITEM(columns, i)) < width[i] * (cap + (i == 7)))
            goto bad_columns;
    if (row < 0 || row > cap || used < 0 || used > PyByteArray_GET_SIZE(names)) {
        PyErr_SetString(PyExc_ValueError, "row or used out of range");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Buf B = {(const uint8_t *)view.buf, view.len};
    Sanitizer *S = sanitizer_for(&B);
    int seen = 0;
    int32_t db32 = (int32_t)db;
    if (pos < 0)
        pos = B.end;

    /* The walk runs without the GIL (another thread may encode the last batch meanwhile),
     * taking it back only to grow `names`; the sanitizer's context is this thread's own. */
    PyThreadState *unlocked = PyEval_SaveThread();
    while (pos < limit && pos < B.end && row < cap) {
        Py_ssize_t q = pos;
        int has_expire = 0;
        long long expire = 0;
        if (!key_prefix(&B, &q, &has_expire, &expire, &seen))
            break;
        uint8_t op = B.b[q];
        if (op >= NTYPES || (valkey && op >= 22))
            break;
        q += 1;
        Py_ssize_t key_at = q;
        const uint8_t *key;
        size_t key_len;
        if (!deep)
            sanitize_release(S); /* the memory of the last inflated name */
        if (!sanitize_key(S, &q, &key, &key_len))
            break;
        /* The name is copied before the value is read: a checked value reuses the memory an
         * inflated name is in. */
        Py_ssize_t size = PyByteArray_GET_SIZE(names);
        if ((size_t)(size - used) < key_len) {
            Py_ssize_t want = used + (Py_ssize_t)key_len;
            PyEval_RestoreThread(unlocked);
            if (PyByteArray_Resize(names, want > 2 * size ? want : 2 * size) < 0) {
                PyBuffer_Release(&view);
                return NULL;
            }
            unlocked = PyEval_SaveThread();
        }
        memcpy(PyByteArray_AS_STRING(names) + used, key, key_len);
        Py_ssize_t value_at = q;
        uint64_t n;
        if (deep ? !sanitize_value(S, op, valkey, &q, &n) : !value(&B, op, &q, &n))
            break; /* `used` not moved: the name copied is dropped */
        /* The name as copied (a checked value reuses the memory an inflated one was in). */
        const uint8_t *name = (const uint8_t *)PyByteArray_AS_STRING(names) + used;
        used += (Py_ssize_t)key_len;
        int64_t values[9] = {value_at,
                             q - value_at,
                             (int64_t)n,
                             has_expire ? expire : INT64_MIN,
                             (int64_t)xxh64(B.b + value_at, (size_t)(q - value_at), 0),
                             used,
                             (int64_t)xxh64(name, key_len, 0),
                             (int64_t)xxh64(name, key_len, 1),
                             key_at};
        memcpy(col[0] + 4 * row, &db32, 4);
        col[1][row] = op;
        for (int i = 0; i < 5; i++)
            memcpy(col[2 + i] + 8 * row, &values[i], 8);
        memcpy(col[7] + 8 * (row + 1), &values[5], 8);
        for (int i = 6; i < 9; i++)
            memcpy(col[2 + i] + 8 * row, &values[i], 8);
        row++;
        pos = q;
    }
    PyEval_RestoreThread(unlocked);
    PyBuffer_Release(&view);
    return Py_BuildValue("(nnn)", pos, row, used);
bad_columns:
    PyErr_SetString(PyExc_TypeError, "columns: a tuple of 8 bytearrays sized for the batch");
    return NULL;
}

/* STRLEN of the string whose encoding is in B at 0, from its header: 0 and *n, or -1. */
static int header_strlen(const Buf *B, int64_t *n)
{
    Py_ssize_t q = 0;
    uint64_t len;
    if (B->end < 1)
        return -1;
    uint8_t c = B->b[0];
    if ((c >> 6) != 3) {
        if (read_len(B, &q, &len) || len > INT64_MAX)
            return -1;
        *n = (int64_t)len;
        return 0;
    }
    long long v;
    switch (c & 0x3F) {
    case 0:
        if (B->end < 2)
            return -1;
        v = (int8_t)B->b[1];
        break;
    case 1:
        if (B->end < 3)
            return -1;
        v = (int16_t)le16(B->b + 1);
        break;
    case 2:
        if (B->end < 5)
            return -1;
        v = (int32_t)le32(B->b + 1);
        break;
    case 3: /* LZF: the compressed length, then the uncompressed one */
        q = 1;
        if (read_len(B, &q, &len) || read_len(B, &q, &len) || len > INT64_MAX)
            return -1;
        *n = (int64_t)len;
        return 0;
    default:
        return -1;
    }
    char digits[24];
    *n = snprintf(digits, sizeof digits, "%lld", v);
    return 0;
}

/* How many bytes the string whose encoding is in B at 0 takes, from its header: 0, or -1. */
static int encoded_size(const Buf *B, uint64_t *size)
{
    Py_ssize_t q = 0;
    uint64_t len, ulen;
    if (B->end < 1)
        return -1;
    uint8_t c = B->b[0];
    if ((c >> 6) != 3) {
        if (read_len(B, &q, &len) || len > (uint64_t)INT64_MAX - (uint64_t)q)
            return -1;
        *size = (uint64_t)q + len;
        return 0;
    }
    switch (c & 0x3F) {
    case 0: *size = 2; return 0;
    case 1: *size = 3; return 0;
    case 2: *size = 5; return 0;
    case 3:
        q = 1;
        if (read_len(B, &q, &len) || read_len(B, &q, &ulen) ||
            len > (uint64_t)INT64_MAX - (uint64_t)q)
            return -1;
        *size = (uint64_t)q + len;
        return 0;
    default:
        return -1;
    }
}

#define STRING_CHUNK 256
/* The most bytes one string may take to be read here (a longer one: the Python path). */
#define STRING_MAX ((uint64_t)1 << 30)

static PyObject *strings_at(PyObject *self, PyObject *args)
{
    int fd, lengths_only;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "iy*p", &fd, &view, &lengths_only))
        return NULL;
    Py_ssize_t rows = view.len / 8;
    const uint8_t *offsets = view.buf;
    PyObject *data = PyByteArray_FromStringAndSize(NULL, 0);
    PyObject *ends = PyByteArray_FromStringAndSize(NULL, 8 * (rows + !lengths_only));
    uint8_t *chunk = malloc(STRING_CHUNK);
    size_t cap = STRING_CHUNK;
    int ok = data != NULL && ends != NULL && chunk != NULL;
    int64_t used = 0;
    int64_t *out = ok ? (int64_t *)PyByteArray_AS_STRING(ends) : NULL;
    if (ok && !lengths_only)
        *out++ = 0;
    Sanitizer *S = NULL;
    for (Py_ssize_t i = 0; ok && i < rows; i++) {
        int64_t at;
        memcpy(&at, offsets + 8 * i, 8);
        if (at < 0) {
            out[i] = lengths_only ? -1 : used;
            continue;
        }
        ssize_t got = pread(fd, chunk, lengths_only ? 32 : STRING_CHUNK, (off_t)at);
        Buf B = {chunk, got > 0 ? got : 0};
        if (lengths_only) {
            ok = header_strlen(&B, &out[i]) == 0;
            continue;
        }
        uint64_t size;
        if (encoded_size(&B, &size) || size > STRING_MAX) {
            ok = 0;
            break;
        }
        if (size > (uint64_t)B.end) { /* longer than the first read: read all of it */
            if (size > cap) {
                uint8_t *grown = realloc(chunk, (size_t)size);
                if (grown == NULL) {
                    ok = 0;
                    break;
                }
                chunk = grown;
                cap = (size_t)size;
            }
            got = pread(fd, chunk, (size_t)size, (off_t)at);
            B.b = chunk;
            B.end = got > 0 ? got : 0;
        }
        S = sanitizer_for(&B); /* the one context, over this string */
        Py_ssize_t p = 0;
        const uint8_t *s;
        size_t n;
        if (!sanitize_key(S, &p, &s, &n)) {
            ok = 0;
            break;
        }
        Py_ssize_t have = PyByteArray_GET_SIZE(data);
        if ((size_t)(have - used) < n) {
            Py_ssize_t want = (Py_ssize_t)(used + (int64_t)n);
            if (PyByteArray_Resize(data, want > 2 * have ? want : 2 * have) < 0) {
                sanitize_release(S);
                free(chunk);
                Py_DECREF(data);
                Py_DECREF(ends);
                PyBuffer_Release(&view);
                return NULL;
            }
        }
        memcpy(PyByteArray_AS_STRING(data) + used, s, n);
        used += (int64_t)n;
        out[i] = used;
        sanitize_release(S);
    }
    if (S != NULL)
        sanitize_release(S);
    free(chunk);
    PyBuffer_Release(&view);
    if (!ok) {
        Py_XDECREF(data);
        Py_XDECREF(ends);
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    if (lengths_only) {
        Py_DECREF(data);
        return ends;
    }
    if (PyByteArray_Resize(data, (Py_ssize_t)used) < 0) {
        Py_DECREF(data);
        Py_DECREF(ends);
        return NULL;
    }
    return Py_BuildValue("(NN)", data, ends);
}

/* fingerprints(columns, rows, codes, values) -> bytearray: see the file header. */
static PyObject *fingerprints(PyObject *self, PyObject *args)
{
    PyObject *columns;
    Py_ssize_t rows;
    Py_buffer codes;
    int values;
    if (!PyArg_ParseTuple(args, "O!ny*p", &PyTuple_Type, &columns, &rows, &codes, &values))
        return NULL;
    const uint8_t *col[NCOLUMNS];
    int ok = PyTuple_GET_SIZE(columns) == NCOLUMNS && codes.len == 256 && rows >= 0;
    static const int width[NCOLUMNS] = {4, 1, 8, 8, 8, 8, 8, 8, 8, 8, 8};
    for (int i = 0; ok && i < NCOLUMNS; i++) {
        PyObject *c = PyTuple_GET_ITEM(columns, i);
        ok = PyByteArray_CheckExact(c) && PyByteArray_GET_SIZE(c) >= width[i] * rows;
        col[i] = ok ? (const uint8_t *)PyByteArray_AS_STRING(c) : NULL;
    }
    if (!ok) {
        PyBuffer_Release(&codes);
        PyErr_SetString(PyExc_TypeError, "columns: the 11 bytearrays of a batch of `rows`; "
                                         "codes: 256 bytes");
        return NULL;
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, 8 * rows);
    if (out == NULL) {
        PyBuffer_Release(&codes);
        return NULL;
    }
    uint8_t *o = (uint8_t *)PyByteArray_AS_STRING(out);
    const uint8_t *code = codes.buf;
    for (Py_ssize_t i = 0; i < rows; i++) {
        uint8_t t = col[1][i];
        uint8_t packed[32] = {0};
        /* (1, type code, elements, expiry) for a collection without `values`; else
         * (0, RDB type, value bytes, value hash, expiry). */
        int by_meta = !values && t != 0 && t != 6 && t != 7;
        packed[0] = by_meta ? 1 : 0;
        packed[1] = by_meta ? code[t] : t;
        memcpy(packed + 8, col[by_meta ? 4 : 3] + 8 * i, 8);
        memcpy(packed + 16, col[5] + 8 * i, 8);
        if (!by_meta)
            memcpy(packed + 24, col[6] + 8 * i, 8);
        uint64_t h = xxh64(packed, sizeof packed, 0);
        memcpy(o + 8 * i, &h, 8);
    }
    PyBuffer_Release(&codes);
    return out;
}

/* The value types `value` reads (a record of another type is declined at once). */
static int value_readable(int t)
{
    return t <= 5 || (t >= 10 && t <= 14) || t == 16 || t == 17 || t == 18 || t == 20;
}

#define VALUE_FIRST_READ 4096
/* The most bytes read for one record here (a bigger one: declined, read through the map). */
#define VALUE_MAX ((Py_ssize_t)1 << 26)

static PyObject *values_at(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer view;
    if (!PyArg_ParseTuple(args, "iy*", &fd, &view))
        return NULL;
    Py_ssize_t rows = view.len / 8;
    const uint8_t *offsets = view.buf;
    PyObject *types = PyByteArray_FromStringAndSize(NULL, rows);
    PyObject *nums[3];
    for (int k = 0; k < 3; k++)
        nums[k] = PyByteArray_FromStringAndSize(NULL, 8 * rows);
    Py_ssize_t cap = VALUE_FIRST_READ;
    uint8_t *chunk = malloc((size_t)cap);
    if (types == NULL || nums[0] == NULL || nums[1] == NULL || nums[2] == NULL ||
        chunk == NULL) {
        Py_XDECREF(types);
        for (int k = 0; k < 3; k++)
            Py_XDECREF(nums[k]);
        free(chunk);
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    uint8_t *type_out = (uint8_t *)PyByteArray_AS_STRING(types);
    int64_t *value_offset = (int64_t *)PyByteArray_AS_STRING(nums[0]);
    int64_t *value_bytes = (int64_t *)PyByteArray_AS_STRING(nums[1]);
    int64_t *elements = (int64_t *)PyByteArray_AS_STRING(nums[2]);
    Py_BEGIN_ALLOW_THREADS /* only this function's own memory is touched below */
    for (Py_ssize_t i = 0; i < rows; i++) {
        int64_t at;
        memcpy(&at, offsets + 8 * i, 8);
        type_out[i] = at < 1 ? 254 : 255; /* no key; declined until read */
        value_offset[i] = value_bytes[i] = elements[i] = -1;
        if (at < 1)
            continue;
        for (Py_ssize_t want = VALUE_FIRST_READ; want <= VALUE_MAX; want *= 4) {
            if (want > cap) {
                uint8_t *grown = realloc(chunk, (size_t)want);
                if (grown == NULL)
                    break;
                chunk = grown;
                cap = want;
            }
            ssize_t got = pread(fd, chunk, (size_t)want, (off_t)(at - 1));
            Buf B = {chunk, got > 0 ? got : 0};
            if (B.end < 2 || !value_readable(chunk[0]))
                break;
            Py_ssize_t q = 1;
            uint64_t n;
            if (skip_str(&B, &q) == 0) {
                Py_ssize_t value_at = q;
                if (value(&B, chunk[0], &q, &n)) {
                    type_out[i] = chunk[0];
                    value_offset[i] = at - 1 + value_at;
                    value_bytes[i] = q - value_at;
                    elements[i] = (int64_t)n;
                    break;
                }
            }
            if (got < want) /* the whole rest of the file did not read: declined */
                break;
        }
    }
    Py_END_ALLOW_THREADS
    free(chunk);
    PyBuffer_Release(&view);
    return Py_BuildValue("(NNNN)", types, nums[0], nums[1], nums[2]);
}

typedef struct {
    const uint8_t *s;
    size_t n;
} Member;

static int member_order(const void *x, const void *y)
{
    const Member *a = x, *b = y;
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    if (c)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

static PyObject *sorted_members(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Buf B = {(const uint8_t *)view.buf, view.len};
    Sanitizer *S = sanitizer_for(&B);
    Py_ssize_t p = 0;
    uint64_t count;
    Member *members = NULL;
    PyObject *lengths = NULL, *data = NULL, *out = NULL;
    /* Each member takes at least one byte: a count past the input cannot be right. */
    if (read_len(&B, &p, &count) || count > (uint64_t)(B.end - p))
        goto done;
    members = malloc(sizeof(Member) * (count ? count : 1));
    if (members == NULL)
        goto done;
    size_t total = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (!sanitize_key(S, &p, &members[i].s, &members[i].n))
            goto done;
        total += members[i].n;
    }
    if (p != B.end)
        goto done;
    qsort(members, (size_t)count, sizeof(Member), member_order);
    for (uint64_t i = 1; i < count; i++)
        if (member_order(&members[i - 1], &members[i]) == 0)
            goto done;
    lengths = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * count));
    data = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (lengths == NULL || data == NULL)
        goto done;
    uint8_t *len_out = (uint8_t *)PyBytes_AS_STRING(lengths);
    uint8_t *data_out = (uint8_t *)PyBytes_AS_STRING(data);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t n = members[i].n;
        for (int b = 0; b < 8; b++)
            len_out[8 * i + b] = (uint8_t)(n >> (8 * b));
        memcpy(data_out, members[i].s, members[i].n);
        data_out += members[i].n;
    }
    out = PyTuple_Pack(2, lengths, data);
done:
    sanitize_release(S);
    free(members);
    Py_XDECREF(lengths);
    Py_XDECREF(data);
    PyBuffer_Release(&view);
    if (out == NULL && !PyErr_Occurred())
        Py_RETURN_NONE;
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Count a run of common key records; see the file header."},
    {"scan_full", scan_full, METH_VARARGS,
     "Check and count a run of key records; see the file header."},
    {"key_slot", key_slot, METH_O, "The cluster hash slot of a key; see the file header."},
    {"name_slots", name_slots, METH_VARARGS,
     "The cluster hash slots of names stored back to back; see the file header."},
    {"candidates", candidates, METH_O,
     "Indices of the key hash entries whose hash occurs more than once; see the file header."},
    {"records", records, METH_VARARGS, "Per-key rows into columnar buffers; see the file header."},
    {"strings_at", strings_at, METH_VARARGS,
     "Strings, or their lengths, read at file offsets; see the file header."},
    {"fingerprints", fingerprints, METH_VARARGS,
     "Each row's 64-bit fingerprint for the diff's join; see the file header."},
    {"values_at", values_at, METH_VARARGS,
     "The values of the keys whose names start at file offsets; see the file header."},
    {"sorted_members", sorted_members, METH_O,
     "A plain-encoded set's members, sorted; see the file header."},
    {"xxh64", xxh64_py, METH_VARARGS, "XXH64 of a buffer, with a seed (default 0)."},
    {"xor64", xor64_py, METH_O, "The XOR of a buffer's uint64 values; see the comment above it."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_speedups", "Optional C accelerator for RdbWalker.tally.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__speedups(void)
{
    crc16_init();
    return PyModule_Create(&module);
}
