/*
 * What Redis checks when it loads a value with sanitize-dump-payload yes, in C: the same
 * rules as parsers/rdb/sanitize.py (see its docstring for the list and the Redis functions
 * each follows), which tests hold this file to. Every function here answers "valid" or
 * "not for me": the Python code re-reads anything declined and words the problem itself.
 *
 * Declined without a look (left to Python, which is fast enough for them): zipmaps (Redis
 * < 2.6), module values, stream type 26, Valkey's type 22.
 */
#include "_speedups.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LZF_MAX_EXPANSION 88                  /* one LZF byte inflates to at most 88 */
#define LZF_MAX_LEN ((uint64_t)1 << 31)       /* parsers/rdb/strings.py MAX_LZF_LEN */
#define EXPIRE_TIME_MAX (((uint64_t)1 << 48) - 1) /* redis ebuckets.h EB_EXPIRE_TIME_MAX */
#define LP_EOF_AS_INTEGER (12345678900000000LL + 0xFF) /* lpGet reading an end marker */
#define SMALL_SET 16                          /* duplicates: compared pairwise up to this */

/* ---- scratch memory ------------------------------------------------------------------- */

/* Blocks that never move, for strings spelled out (integers) or inflated (LZF) while one
 * value is checked: pointers into them stay good until arena_reset. */
typedef struct Block {
    struct Block *next;
    size_t used, cap;
    uint8_t data[];
} Block;

typedef struct {
    Block *head; /* the block being filled; older ones follow */
} Arena;

static uint8_t *arena_alloc(Arena *A, size_t n)
{
    Block *h = A->head;
    if (h == NULL || h->cap - h->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        Block *b = malloc(sizeof(Block) + cap);
        if (b == NULL)
            return NULL;
        b->next = h;
        b->used = 0;
        b->cap = cap;
        A->head = h = b;
    }
    uint8_t *out = h->data + h->used;
    h->used += n;
    return out;
}

/* Free all but the newest block, and empty it. */
static void arena_reset(Arena *A)
{
    Block *h = A->head;
    if (h == NULL)
        return;
    Block *b = h->next;
    while (b != NULL) {
        Block *next = b->next;
        free(b);
        b = next;
    }
    h->next = NULL;
    h->used = 0;
}

/* ---- duplicate detection ---------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n;
    uint64_t h;
} Item;

/* A set of byte strings: compared pairwise while small, hashed (with a per-process seed, so
 * that a crafted file cannot make every name collide) once it grows. */
typedef struct {
    Item *items;
    size_t count, cap;
    uint32_t *slots; /* item index + 1, 0 for empty; NULL while small */
    size_t nslots;
    int hashed;
} Dups;

/* Per thread, as the context below: records() walks without the GIL. */
static _Thread_local uint64_t hash_seed;

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = hash_seed ^ (n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n);
    h = (h ^ v) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    return h;
}

static void dups_reset(Dups *D)
{
    D->count = 0;
    D->hashed = 0;
}

static int dups_rehash(Dups *D, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(uint32_t));
    if (slots == NULL)
        return -1;
    free(D->slots);
    D->slots = slots;
    D->nslots = nslots;
    for (size_t i = 0; i < D->count; i++) {
        size_t j = D->items[i].h & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)(i + 1);
    }
    D->hashed = 1;
    return 0;
}

/* Where the string is in the set (its index), or -1. */
static Py_ssize_t dups_find_hashed(const Dups *D, const uint8_t *p, size_t n, uint64_t h)
{
    size_t j = h & (D->nslots - 1);
    while (D->slots[j]) {
        const Item *it = &D->items[D->slots[j] - 1];
        if (it->h == h && it->n == n && memcmp(it->p, p, n) == 0)
            return (Py_ssize_t)(D->slots[j] - 1);
        j = (j + 1) & (D->nslots - 1);
    }
    return -1;
}

static Py_ssize_t dups_find(const Dups *D, const uint8_t *p, size_t n)
{
    if (D->hashed)
        return dups_find_hashed(D, p, n, hash_bytes(p, n));
    for (size_t i = 0; i < D->count; i++)
        if (D->items[i].n == n && memcmp(D->items[i].p, p, n) == 0)
            return (Py_ssize_t)i;
    return -1;
}

/* Add the string (which must stay where it is until the next reset): 1, 0 when it is in the
 * set already, -1 out of memory. */
static int dups_add(Dups *D, const uint8_t *p, size_t n)
{
    uint64_t h = 0;
    if (D->hashed) {
        h = hash_bytes(p, n);
        if (dups_find_hashed(D, p, n, h) >= 0)
            return 0;
    } else {
        if (dups_find(D, p, n) >= 0)
            return 0;
    }
    if (D->count == D->cap) {
        size_t cap = D->cap ? 2 * D->cap : 64;
        Item *items = realloc(D->items, cap * sizeof(Item));
        if (items == NULL)
            return -1;
        D->items = items;
        D->cap = cap;
    }
    if (!D->hashed && D->count + 1 > SMALL_SET) {
        for (size_t i = 0; i < D->count; i++)
            D->items[i].h = hash_bytes(D->items[i].p, D->items[i].n);
        h = hash_bytes(p, n);
        if (dups_rehash(D, 256) < 0)
            return -1;
    }
    D->items[D->count++] = (Item){p, n, h};
    if (D->hashed) {
        if (2 * D->count > D->nslots) {
            if (dups_rehash(D, 2 * D->nslots) < 0)
                return -1;
        } else {
            size_t j = h & (D->nslots - 1);
            while (D->slots[j])
                j = (j + 1) & (D->nslots - 1);
            D->slots[j] = (uint32_t)D->count;
        }
    }
    return 1;
}

/* ---- the context -------------------------------------------------------------------------- */

/* One decoded listpack or ziplist entry: a string (s, n) or an integer (v). */
typedef struct {
    const uint8_t *s;
    size_t n;
    int64_t v;
    int is_int;
} Entry;

struct Sanitizer {
    Buf B;
    Arena arena;
    uint8_t *blob; /* an inflated blob (one at a time) */
    size_t blob_cap;
    Dups d[4];
    Entry *ents; /* a stream listpack's entries */
    size_t ents_cap;
    uint8_t *owned; /* which pending entries of a group have a consumer */
    size_t owned_cap;
};

/* One context per thread (records() walks without the GIL, beside other readers). */
static _Thread_local Sanitizer the_sanitizer;

Sanitizer *sanitizer_for(const Buf *B)
{
    if (hash_seed == 0)
        hash_seed = ((uint64_t)time(NULL) << 32) ^ (uint64_t)getpid() ^
                    (uint64_t)(uintptr_t)&the_sanitizer ^ 0x2545F4914F6CDD1DULL;
    the_sanitizer.B = *B;
    return &the_sanitizer;
}

/* ---- strings ------------------------------------------------------------------------------ */

/* Would lzf_decompress give exactly ulen bytes? Positions only: no byte is written. */
static int lzf_fits(const uint8_t *ip, size_t clen, size_t ulen)
{
    const uint8_t *in_end = ip + clen;
    size_t op = 0;
    while (ip < in_end) {
        size_t ctrl = *ip++;
        if (ctrl < 32) { /* a literal run of ctrl + 1 bytes */
            ctrl++;
            if (ulen - op < ctrl || (size_t)(in_end - ip) < ctrl)
                return 0;
            ip += ctrl;
            op += ctrl;
        } else { /* a back reference */
            size_t len = ctrl >> 5, back = ((ctrl & 0x1F) << 8) + 1;
            if (ip >= in_end)
                return 0;
            if (len == 7) {
                len += *ip++;
                if (ip >= in_end)
                    return 0;
            }
            back += *ip++;
            if (ulen - op < len + 2 || back > op)
                return 0;
            op += len + 2;
        }
    }
    return op == ulen;
}

/* Inflate (the input was checked with lzf_fits) into out. */
static void lzf_inflate(const uint8_t *ip, size_t clen, uint8_t *out)
{
    const uint8_t *in_end = ip + clen;
    uint8_t *op = out;
    while (ip < in_end) {
        size_t ctrl = *ip++;
        if (ctrl < 32) {
            memcpy(op, ip, ctrl + 1);
            ip += ctrl + 1;
            op += ctrl + 1;
        } else {
            size_t len = ctrl >> 5, back = ((ctrl & 0x1F) << 8) + 1;
            if (len == 7)
                len += *ip++;
            back += *ip++;
            const uint8_t *ref = op - back;
            for (size_t i = 0; i < len + 2; i++) /* may overlap: byte by byte */
                *op++ = *ref++;
        }
    }
}

/* The parts of an LZF string whose encoding byte is at q: the compressed bytes and lengths.
 * 1 when they lie inside the input and the lengths can hold (as strings.py checks), else 0. */
static int lzf_parts(const Buf *B, Py_ssize_t q, const uint8_t **data, uint64_t *clen,
                     uint64_t *ulen, Py_ssize_t *next)
{
    Py_ssize_t r = q + 1;
    if (read_len(B, &r, clen) || read_len(B, &r, ulen))
        return 0;
    if (*clen > (uint64_t)(B->end - r))
        return 0;
    if (*ulen != 0 && (*ulen > LZF_MAX_LEN || *ulen > *clen * LZF_MAX_EXPANSION))
        return 0;
    *data = B->b + r;
    *next = r + (Py_ssize_t)*clen;
    return 1;
}

/* A string as Redis loads it, its bytes in (*s, *n): raw ones point into the input,
 * integers are spelled out and LZF ones inflated into `into` (the arena, or the blob buffer
 * when `blob` is set). 1 with *p past it, or 0. */
static int load_string(Sanitizer *S, Py_ssize_t *p, const uint8_t **s, size_t *n, int blob)
{
    const Buf *B = &S->B;
    Py_ssize_t q = *p;
    if (q >= B->end)
        return 0;
    uint8_t c = B->b[q];
    if ((c >> 6) != 3) {
        uint64_t len;
        Py_ssize_t r = q;
        if (read_len(B, &r, &len) || len > (uint64_t)(B->end - r))
            return 0;
        *s = B->b + r;
        *n = (size_t)len;
        *p = r + (Py_ssize_t)len;
        return 1;
    }
    long long v;
    switch (c & 0x3F) {
    case 0:
        if (B->end - q < 2)
            return 0;
        v = (int8_t)B->b[q + 1];
        *p = q + 2;
        break;
    case 1:
        if (B->end - q < 3)
            return 0;
        v = (int16_t)le16(B->b + q + 1);
        *p = q + 3;
        break;
    case 2:
        if (B->end - q < 5)
            return 0;
        v = (int32_t)le32(B->b + q + 1);
        *p = q + 5;
        break;
    case 3: {
        const uint8_t *data;
        uint64_t clen, ulen;
        Py_ssize_t next;
        if (!lzf_parts(B, q, &data, &clen, &ulen, &next))
            return 0;
        if (ulen != 0 && !lzf_fits(data, (size_t)clen, (size_t)ulen))
            return 0;
        uint8_t *out;
        if (blob) {
            if (S->blob_cap < ulen + 1) {
                uint8_t *grown = realloc(S->blob, (size_t)ulen + 1);
                if (grown == NULL)
                    return 0;
                S->blob = grown;
                S->blob_cap = (size_t)ulen + 1;
            }
            out = S->blob;
        } else {
            out = arena_alloc(&S->arena, (size_t)ulen + 1);
            if (out == NULL)
                return 0;
        }
        if (ulen != 0)
            lzf_inflate(data, (size_t)clen, out);
        *s = out;
        *n = (size_t)ulen;
        *p = next;
        return 1;
    }
    default:
        return 0;
    }
    uint8_t *out = arena_alloc(&S->arena, 24);
    if (out == NULL)
        return 0;
    *n = (size_t)snprintf((char *)out, 24, "%lld", v);
    *s = out;
    return 1;
}

int sanitize_string(Sanitizer *S, Py_ssize_t *p)
{
    const Buf *B = &S->B;
    Py_ssize_t q = *p;
    if (q >= B->end)
        return 0;
    uint8_t c = B->b[q];
    if (c < 0x40) { /* the commonest: a short raw string */
        if ((Py_ssize_t)c >= B->end - q)
            return 0;
        *p = q + 1 + c;
        return 1;
    }
    if (c == 0xC3) {
        const uint8_t *data;
        uint64_t clen, ulen;
        Py_ssize_t next;
        if (!lzf_parts(B, q, &data, &clen, &ulen, &next))
            return 0;
        if (ulen != 0 && !lzf_fits(data, (size_t)clen, (size_t)ulen))
            return 0;
        *p = next;
        return 1;
    }
    if (c > 0xC3)
        return 0;
    if (c >= 0xC0) {
        Py_ssize_t size = c == 0xC0 ? 2 : c == 0xC1 ? 3 : 5;
        if (B->end - q < size)
            return 0;
        *p = q + size;
        return 1;
    }
    uint64_t len;
    Py_ssize_t r = q;
    if (read_len(B, &r, &len) || len > (uint64_t)(B->end - r))
        return 0;
    *p = r + (Py_ssize_t)len;
    return 1;
}

void sanitize_release(Sanitizer *S) { arena_reset(&S->arena); }

int sanitize_key(Sanitizer *S, Py_ssize_t *p, const uint8_t **s, size_t *n)
{
    return load_string(S, p, s, n, 0);
}

/* Spell an integer entry as Redis compares it (decimal digits), into the arena. */
static int spell(Sanitizer *S, Entry *e)
{
    if (!e->is_int)
        return 1;
    uint8_t *out = arena_alloc(&S->arena, 24);
    if (out == NULL)
        return 0;
    e->n = (size_t)snprintf((char *)out, 24, "%lld", (long long)e->v);
    e->s = out;
    return 1;
}

/* ---- listpacks (listpack.c lpValidateNext, lpValidateIntegrity) --------------------------- */

/* lpValidateIntegrity without walking: size, total bytes, end marker. */
static int lp_header_ok(const uint8_t *lp, size_t size)
{
    return size >= 7 && le32(lp) == size && lp[size - 1] == 0xFF;
}

/* The entry at lp[*p] (before the end marker at size - 1): 1 with *p moved past it and *e
 * set, 0 at an end marker, -1 when damaged. */
static int lp_next(const uint8_t *lp, size_t size, size_t *p, Entry *e)
{
    size_t q = *p, last = size - 1, head, sz;
    uint8_t b = lp[q];
    if (b == 0xFF)
        return 0;
    e->is_int = 1;
    if (b < 0x80) {
        head = 1;
        sz = 1;
        e->v = b;
    } else if (b < 0xC0) {
        head = 1;
        sz = 1 + (b & 0x3F);
        e->is_int = 0;
    } else if (b < 0xE0) {
        head = 2;
        sz = 2;
    } else if (b < 0xF0) {
        head = 2;
        if (q + 2 > last)
            return -1;
        sz = 2 + (((size_t)(b & 0x0F) << 8) | lp[q + 1]);
        e->is_int = 0;
    } else if (b == 0xF0) {
        head = 5;
        if (q + 5 > last)
            return -1;
        sz = (uint32_t)(5 + le32(lp + q + 1)); /* a 32-bit sum in listpack.c: it wraps */
        e->is_int = 0;
    } else if (b <= 0xF4) {
        head = 1;
        sz = b == 0xF1 ? 3 : b == 0xF2 ? 4 : b == 0xF3 ? 5 : 9;
    } else {
        return -1;
    }
    size_t bl = sz <= 127 ? 1 : sz < 16383 ? 2 : sz < 2097151 ? 3 : sz < 268435455 ? 4 : 5;
    if (sz + bl > last - q)
        return -1;
    size_t next = q + sz + bl;
    /* the backlen, read backwards 7 bits a byte, must say sz */
    uint64_t val = 0;
    unsigned shift = 0;
    size_t r = next - 1;
    for (;;) {
        val |= (uint64_t)(lp[r] & 127) << shift;
        if (!(lp[r] & 128))
            break;
        shift += 7;
        r--;
        if (shift > 28)
            return -1;
    }
    if (val != sz)
        return -1;
    if (e->is_int) {
        if (b >= 0xC0) {
            uint64_t u;
            int bits;
            if (b < 0xE0) {
                u = ((uint64_t)(b & 0x1F) << 8) | lp[q + 1];
                bits = 13;
            } else if (b == 0xF1) {
                u = le16(lp + q + 1);
                bits = 16;
            } else if (b == 0xF2) {
                u = (uint64_t)lp[q + 1] | ((uint64_t)lp[q + 2] << 8) | ((uint64_t)lp[q + 3] << 16);
                bits = 24;
            } else if (b == 0xF3) {
                u = le32(lp + q + 1);
                bits = 32;
            } else {
                u = le64(lp + q + 1);
                bits = 64;
            }
            if (bits < 64 && (u >> (bits - 1)))
                e->v = (int64_t)u - ((int64_t)1 << bits);
            else
                e->v = (int64_t)u;
        }
    } else {
        e->s = lp + q + head;
        e->n = sz >= head ? sz - head : 0;
    }
    *p = next;
    return 1;
}

/* ---- ziplists (ziplist.c zipEntrySafe, ziplistValidateIntegrity) --------------------------- */

static int zl_header_ok(const uint8_t *zl, size_t size)
{
    return size >= 11 && le32(zl) == size && zl[size - 1] == 0xFF && le32(zl + 4) <= size - 1;
}

/* The entry at zl[*p], whose previous entry took prev bytes: as lp_next. */
static int zl_next(const uint8_t *zl, size_t size, size_t *p, size_t prev, Entry *e)
{
    size_t q = *p, last = size - 1, prevlen, data, len;
    if (zl[q] == 0xFF)
        return 0;
    if (zl[q] < 0xFE) {
        prevlen = zl[q];
        q += 1;
    } else {
        if (q + 5 > last)
            return -1;
        prevlen = le32(zl + q + 1);
        q += 5;
    }
    if (prevlen != prev)
        return -1;
    uint8_t enc = zl[q];
    e->is_int = 1;
    if (enc < 0x40) {
        data = q + 1;
        len = enc & 0x3F;
        e->is_int = 0;
    } else if (enc < 0x80) {
        if (q + 2 > last)
            return -1;
        data = q + 2;
        len = ((size_t)(enc & 0x3F) << 8) | zl[q + 1];
        e->is_int = 0;
    } else if (enc < 0xC0) {
        if (q + 5 > last)
            return -1;
        data = q + 5;
        len = ((size_t)zl[q + 1] << 24) | ((size_t)zl[q + 2] << 16) | ((size_t)zl[q + 3] << 8) |
              zl[q + 4];
        e->is_int = 0;
    } else if (enc >= 0xF1 && enc <= 0xFD) {
        data = q + 1;
        len = 0;
        e->v = (enc & 0x0F) - 1;
    } else if (enc == 0xFE || enc == 0xC0 || enc == 0xF0 || enc == 0xD0 || enc == 0xE0) {
        data = q + 1;
        len = enc == 0xFE ? 1 : enc == 0xC0 ? 2 : enc == 0xF0 ? 3 : enc == 0xD0 ? 4 : 8;
    } else {
        return -1;
    }
    if (len > last - data)
        return -1;
    if (e->is_int) {
        const uint8_t *d = zl + data;
        switch (enc) {
        case 0xFE: e->v = (int8_t)d[0]; break;
        case 0xC0: e->v = (int16_t)le16(d); break;
        case 0xF0: {
            int32_t v = (int32_t)((uint32_t)d[0] << 8 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 24);
            e->v = v >> 8;
            break;
        }
        case 0xD0: e->v = (int32_t)le32(d); break;
        case 0xE0: e->v = (int64_t)le64(d); break;
        default: break;
        }
    } else {
        e->s = zl + data;
        e->n = len;
    }
    *p = data + len;
    return 1;
}

/* ---- walking packed blobs with Redis's entry callbacks ------------------------------------ */

/* Per-entry rules of rdb.c's callbacks (_lpEntryValidation, _ziplistPairsEntryConvertAnd-
 * Validate): with per > 0, the first entry of each group of `per` is unique; with per 3 the
 * third is a field expiry: an integer entry, 0 or at most 2^48-1, set ones first and
 * increasing. per 0: no callback. */
typedef struct {
    int per;
    size_t index;
    long long last_expiry;
} Tuples;

static int tuple_entry(Sanitizer *S, Tuples *T, Entry *e)
{
    if (T->per == 0)
        return 1;
    size_t r = T->index++ % (size_t)T->per;
    if (r == 0) {
        if (!spell(S, e) || dups_add(&S->d[0], e->s, e->n) != 1)
            return 0;
    } else if (r == 2) {
        if (!e->is_int || e->v < 0 || (uint64_t)e->v > EXPIRE_TIME_MAX)
            return 0;
        if (e->v != 0 && (T->last_expiry == 0 || e->v < T->last_expiry))
            return 0;
        T->last_expiry = e->v;
    }
    return 1;
}

/* The end of a packed walk: n entries against the header's count (0xFFFF: not kept), and
 * whole groups of `per`. */
static int counted(uint16_t header, uint64_t n, int per, uint64_t *count)
{
    if ((header != 0xFFFF && header != n) || (per > 1 && n % (uint64_t)per))
        return 0;
    *count = n;
    return 1;
}

/* A whole listpack, as lpValidateIntegrity deep with the callback; its entries in *count. */
static int lp_walk(Sanitizer *S, const uint8_t *lp, size_t size, int per, uint64_t *count)
{
    if (!lp_header_ok(lp, size))
        return 0;
    Tuples T = {per, 0, -1};
    dups_reset(&S->d[0]);
    size_t p = 6;
    uint64_t n = 0;
    Entry e;
    int r;
    while ((r = lp_next(lp, size, &p, &e)) == 1) {
        if (!tuple_entry(S, &T, &e))
            return 0;
        n++;
    }
    if (r < 0 || p != size - 1)
        return 0;
    return counted(le16(lp + 4), n, per, count);
}

/* A whole ziplist, as ziplistValidateIntegrity deep with the callback. */
static int zl_walk(Sanitizer *S, const uint8_t *zl, size_t size, int per, uint64_t *count)
{
    if (!zl_header_ok(zl, size))
        return 0;
    Tuples T = {per, 0, -1};
    dups_reset(&S->d[0]);
    size_t p = 10, prev = 0, last = 0;
    uint64_t n = 0;
    Entry e;
    int r;
    for (;;) {
        size_t at = p;
        r = zl_next(zl, size, &p, prev, &e);
        if (r != 1)
            break;
        if (!tuple_entry(S, &T, &e))
            return 0;
        prev = p - at;
        last = at;
        n++;
    }
    if (r < 0 || p != size - 1)
        return 0;
    if (n && le32(zl + 4) != last)
        return 0;
    return counted(le16(zl + 8), n, per, count);
}

static int intset_ok(const uint8_t *is, size_t size, uint64_t *count)
{
    if (size < 8)
        return 0;
    uint32_t width = le32(is), length = le32(is + 4);
    if ((width != 2 && width != 4 && width != 8) || 8 + (uint64_t)length * width != size ||
        length == 0)
        return 0;
    int64_t prev = 0;
    for (uint32_t i = 0; i < length; i++) {
        const uint8_t *v = is + 8 + (size_t)i * width;
        int64_t cur = width == 2 ? (int16_t)le16(v) : width == 4 ? (int32_t)le32(v) : (int64_t)le64(v);
        if (i && cur <= prev)
            return 0;
        prev = cur;
    }
    *count = length;
    return 1;
}

/* ---- values --------------------------------------------------------------------------------- */

/* count items of at least `min` bytes each must fit in what is left. */
static int fits(const Buf *B, Py_ssize_t p, uint64_t count, uint64_t min)
{
    uint64_t left = (uint64_t)(B->end - p);
    return count <= left / min;
}

/* n strings; with `unique`, none twice (Duplicate ... detected). */
static int strings(Sanitizer *S, Py_ssize_t *p, uint64_t n, int unique)
{
    if (!fits(&S->B, *p, n, 1))
        return 0;
    if (!unique) {
        for (uint64_t i = 0; i < n; i++)
            if (!sanitize_string(S, p))
                return 0;
        return 1;
    }
    dups_reset(&S->d[0]);
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *s;
        size_t len;
        if (!load_string(S, p, &s, &len, 0) || dups_add(&S->d[0], s, len) != 1)
            return 0;
    }
    return 1;
}

/* A sorted set (3: text scores read with sscanf as rdbLoadDoubleValue does; 5: binary). */
static int zset(Sanitizer *S, Py_ssize_t *p, int binary, uint64_t *n)
{
    const Buf *B = &S->B;
    uint64_t count;
    if (read_len(B, p, &count) || !fits(B, *p, count, binary ? 9 : 2))
        return 0;
    dups_reset(&S->d[0]);
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *s;
        size_t len;
        double score;
        if (!load_string(S, p, &s, &len, 0) || *p >= B->end)
            return 0;
        if (binary) {
            if (B->end - *p < 8)
                return 0;
            memcpy(&score, B->b + *p, 8);
            *p += 8;
        } else {
            uint8_t c = B->b[*p];
            if (c >= 253) {
                score = c == 253 ? NAN : c == 254 ? INFINITY : -INFINITY;
                *p += 1;
            } else {
                char text[256];
                if (B->end - *p - 1 < c)
                    return 0;
                memcpy(text, B->b + *p + 1, c);
                text[c] = '\0';
                if (sscanf(text, "%lg", &score) != 1)
                    return 0;
                *p += 1 + c;
            }
        }
        if (isnan(score) || dups_add(&S->d[0], s, len) != 1)
            return 0;
    }
    *n = count;
    return 1;
}

/* A blob (listpack, ziplist, intset) as rdbGenericLoadStringObject(RDB_LOAD_PLAIN) loads it. */
static int blob(Sanitizer *S, Py_ssize_t *p, const uint8_t **s, size_t *n)
{
    return load_string(S, p, s, n, 1);
}

static int quicklist(Sanitizer *S, Py_ssize_t *p, int version, uint64_t *n)
{
    const Buf *B = &S->B;
    uint64_t nodes, total = 0;
    if (read_len(B, p, &nodes) || !fits(B, *p, nodes, 1))
        return 0;
    for (uint64_t i = 0; i < nodes; i++) {
        uint64_t container = 2, k;
        const uint8_t *s;
        size_t len;
        if (version == 2 && (read_len(B, p, &container) || (container != 1 && container != 2)))
            return 0;
        if (!blob(S, p, &s, &len) || len == 0)
            return 0;
        if (container == 1)
            k = 1;
        else if (!(version == 2 ? lp_walk(S, s, len, 0, &k) : zl_walk(S, s, len, 0, &k)))
            return 0;
        total += k;
    }
    *n = total;
    return 1;
}

/* HASH_METADATA (24) and its pre-GA form (22): [min expiry], then ttl, field, value. */
static int hash_metadata(Sanitizer *S, Py_ssize_t *p, int with_min_expire, uint64_t *n)
{
    const Buf *B = &S->B;
    uint64_t min_expire = 0, count;
    if (with_min_expire) {
        if (B->end - *p < 8)
            return 0;
        min_expire = le64(B->b + *p);
        if (min_expire > EXPIRE_TIME_MAX + 1)
            return 0;
        *p += 8;
    }
    if (read_len(B, p, &count) || !fits(B, *p, count, 3))
        return 0;
    dups_reset(&S->d[0]);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t ttl, expire_at;
        const uint8_t *s;
        size_t len;
        if (read_len(B, p, &ttl))
            return 0;
        expire_at = with_min_expire ? (ttl ? ttl + min_expire - 1 : 0) : ttl;
        if (expire_at > EXPIRE_TIME_MAX)
            return 0;
        if (!load_string(S, p, &s, &len, 0) || !sanitize_string(S, p) ||
            dups_add(&S->d[0], s, len) != 1)
            return 0;
    }
    *n = count;
    return 1;
}

/* ---- streams (rdb.c rdbLoadObject, t_stream.c streamValidateListpackIntegrity) ------------ */

/* The entries of a stream listpack up to its first end marker, into S->ents. */
static int stream_entries(Sanitizer *S, const uint8_t *lp, size_t size, size_t *count)
{
    if (!lp_header_ok(lp, size))
        return 0;
    size_t p = 6, n = 0;
    Entry e;
    int r;
    while ((r = lp_next(lp, size, &p, &e)) == 1) {
        if (n == S->ents_cap) {
            size_t cap = S->ents_cap ? 2 * S->ents_cap : 256;
            Entry *grown = realloc(S->ents, cap * sizeof(Entry));
            if (grown == NULL)
                return 0;
            S->ents = grown;
            S->ents_cap = cap;
        }
        S->ents[n++] = e;
    }
    if (r < 0)
        return 0;
    *count = n;
    return 1;
}

/* lpGetIntegerIfValid: an integer entry, a string spelling one (string2ll), or the end
 * marker, which lpGet reads as a large number. */
static int stream_int(const Entry *ents, size_t n, size_t p, int64_t *v)
{
    if (p == n) {
        *v = LP_EOF_AS_INTEGER;
        return 1;
    }
    const Entry *e = &ents[p];
    if (e->is_int) {
        *v = e->v;
        return 1;
    }
    const uint8_t *s = e->s;
    size_t len = e->n, i = 0;
    if (len == 0 || len >= 21)
        return 0;
    if (len == 1 && s[0] == '0') {
        *v = 0;
        return 1;
    }
    int negative = s[0] == '-';
    i = negative;
    if (i == len || s[i] < '1' || s[i] > '9')
        return 0;
    uint64_t u = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        if (u > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return 0;
        u = u * 10 + (uint64_t)(s[i] - '0');
    }
    if (negative) {
        if (u > (uint64_t)INT64_MAX + 1)
            return 0;
        *v = (int64_t)(0 - u);
    } else {
        if (u > (uint64_t)INT64_MAX)
            return 0;
        *v = (int64_t)u;
    }
    return 1;
}

/* The walk of streamValidateListpackIntegrity over the entries: see sanitize.py
 * stream_listpack_ok, which this follows step by step. */
typedef struct {
    const Entry *ents;
    size_t n, p, next;
    int next_valid;
} StreamWalk;

static int sw_advance(StreamWalk *W)
{
    if (!W->next_valid)
        return 0;
    W->p = W->next;
    if (W->next == W->n)
        W->next_valid = 0;
    else
        W->next++;
    return 1;
}

static int sw_int(StreamWalk *W, int64_t *v) { return stream_int(W->ents, W->n, W->p, v); }

static int sw_skip(StreamWalk *W, int64_t count)
{
    for (int64_t i = 0; i < count; i++)
        if (!sw_advance(W))
            return 0;
    return 1;
}

static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

static int stream_listpack_ok(const Entry *ents, size_t n)
{
    if (n == 0)
        return 0;
    StreamWalk W = {ents, n, 0, 1, 1};
    int64_t entry_count, deleted, master_fields, zero, remaining;
    if (!sw_int(&W, &entry_count) || !sw_advance(&W))
        return 0;
    if (!sw_int(&W, &deleted) || !sw_advance(&W))
        return 0;
    if (!sw_int(&W, &master_fields) || !sw_advance(&W) || !sw_skip(&W, master_fields))
        return 0;
    if (!sw_int(&W, &zero) || zero != 0 || !sw_advance(&W))
        return 0;
    remaining = wrap_add(entry_count, deleted);
    while (remaining != 0) {
        remaining = wrap_add(remaining, -1);
        int64_t fields = master_fields, extra = 3, flags, id, lp_count;
        if (!sw_int(&W, &flags) || !sw_advance(&W))
            return 0;
        for (int i = 0; i < 2; i++)
            if (!sw_int(&W, &id) || !sw_advance(&W))
                return 0;
        if (!(flags & 2)) {
            if (!sw_int(&W, &fields) || !sw_advance(&W) || !sw_skip(&W, fields))
                return 0;
            extra = wrap_add(extra, wrap_add(fields, 1));
        }
        if (!sw_skip(&W, fields))
            return 0;
        if (!sw_int(&W, &lp_count) || lp_count != wrap_add(fields, extra) || !sw_advance(&W))
            return 0;
    }
    return !W.next_valid;
}

static int stream(Sanitizer *S, Py_ssize_t *p, int type, uint64_t *n)
{
    const Buf *B = &S->B;
    uint64_t n_lp, length, v, n_groups;
    if (read_len(B, p, &n_lp) || !fits(B, *p, n_lp, 2))
        return 0;
    Dups *masters = &S->d[1];
    dups_reset(masters);
    for (uint64_t i = 0; i < n_lp; i++) {
        const uint8_t *id, *lp;
        size_t id_len, lp_len, count;
        if (!load_string(S, p, &id, &id_len, 0) || id_len != 16)
            return 0;
        if (!blob(S, p, &lp, &lp_len) || !stream_entries(S, lp, lp_len, &count) ||
            !stream_listpack_ok(S->ents, count) || dups_add(masters, id, 16) != 1)
            return 0;
    }
    if (read_len(B, p, &length))
        return 0;
    for (int i = 0; i < (type == 15 ? 2 : 7); i++)
        if (read_len(B, p, &v))
            return 0;
    if (length && !n_lp)
        return 0;
    if (read_len(B, p, &n_groups) || !fits(B, *p, n_groups, 4))
        return 0;
    Dups *groups = &S->d[1], *pel = &S->d[2], *names = &S->d[3];
    dups_reset(groups);
    for (uint64_t g = 0; g < n_groups; g++) {
        const uint8_t *s;
        size_t len;
        uint64_t n_pel, n_consumers;
        if (!load_string(S, p, &s, &len, 0) || dups_add(groups, s, len) != 1)
            return 0;
        for (int i = 0; i < (type == 15 ? 2 : 3); i++)
            if (read_len(B, p, &v))
                return 0;
        if (read_len(B, p, &n_pel) || !fits(B, *p, n_pel, 25))
            return 0;
        dups_reset(pel);
        for (uint64_t i = 0; i < n_pel; i++) {
            const uint8_t *raw = B->b + *p;
            if (B->end - *p < 24)
                return 0;
            *p += 24; /* the id, then the delivery time */
            if (read_len(B, p, &v) || dups_add(pel, raw, 16) != 1)
                return 0;
        }
        if (n_pel > S->owned_cap) {
            uint8_t *grown = realloc(S->owned, (size_t)n_pel);
            if (grown == NULL)
                return 0;
            S->owned = grown;
            S->owned_cap = (size_t)n_pel;
        }
        if (n_pel)
            memset(S->owned, 0, (size_t)n_pel);
        if (read_len(B, p, &n_consumers) || !fits(B, *p, n_consumers, 10))
            return 0;
        dups_reset(names);
        for (uint64_t c = 0; c < n_consumers; c++) {
            uint64_t n_cpel;
            if (!load_string(S, p, &s, &len, 0) || dups_add(names, s, len) != 1)
                return 0;
            Py_ssize_t times = type >= 21 ? 16 : 8;
            if (B->end - *p < times)
                return 0;
            *p += times;
            if (read_len(B, p, &n_cpel) || !fits(B, *p, n_cpel, 16))
                return 0;
            for (uint64_t i = 0; i < n_cpel; i++) { /* each in the group's, one consumer's */
                Py_ssize_t at = dups_find(pel, B->b + *p, 16);
                if (at < 0 || S->owned[at])
                    return 0;
                S->owned[at] = 1;
                *p += 16;
            }
        }
        for (uint64_t i = 0; i < n_pel; i++)
            if (!S->owned[i])
                return 0;
    }
    *n = length;
    return 1;
}

/* ---- the dispatch ----------------------------------------------------------------------- */

int sanitize_value(Sanitizer *S, int t, int valkey, Py_ssize_t *p, uint64_t *n)
{
    const Buf *B = &S->B;
    const uint8_t *s;
    size_t len;
    uint64_t count;
    arena_reset(&S->arena);
    switch (t) {
    case 0:
        *n = 1;
        return sanitize_string(S, p);
    case 1:
    case 2:
        if (read_len(B, p, &count) || !strings(S, p, count, t == 2))
            return 0;
        *n = count;
        return 1;
    case 3:
    case 5:
        return zset(S, p, t == 5, n);
    case 4:
        if (read_len(B, p, &count) || !fits(B, *p, count, 2))
            return 0;
        dups_reset(&S->d[0]);
        for (uint64_t i = 0; i < count; i++) {
            if (!load_string(S, p, &s, &len, 0) || !sanitize_string(S, p) ||
                dups_add(&S->d[0], s, len) != 1)
                return 0;
        }
        *n = count;
        return 1;
    case 10: /* list ziplist */
    case 12: /* sorted set ziplist */
    case 13: /* hash ziplist */
        if (!blob(S, p, &s, &len) || !zl_walk(S, s, len, t == 10 ? 0 : 2, &count))
            return 0;
        *n = t == 10 ? count : count / 2;
        return 1;
    case 11:
        return blob(S, p, &s, &len) && intset_ok(s, len, n);
    case 14:
    case 18:
        return quicklist(S, p, t == 14 ? 1 : 2, n);
    case 15:
    case 19:
    case 21:
        return stream(S, p, t, n);
    case 16: /* hash listpack */
    case 17: /* sorted set listpack */
    case 20: /* set listpack */
        if (!blob(S, p, &s, &len) || !lp_walk(S, s, len, t == 20 ? 1 : 2, &count))
            return 0;
        *n = t == 20 ? count : count / 2;
        return 1;
    case 22:
    case 24:
        return !valkey && hash_metadata(S, p, t == 24, n);
    case 23:
    case 25:
        if (valkey)
            return 0;
        if (t == 25) {
            if (B->end - *p < 8)
                return 0;
            *p += 8; /* the minimum expiry: read and ignored by Redis */
        }
        if (!blob(S, p, &s, &len) || !lp_walk(S, s, len, 3, &count))
            return 0;
        *n = count / 3;
        return 1;
    default:
        return 0;
    }
}
