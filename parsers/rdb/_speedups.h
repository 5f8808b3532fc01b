/*
 * Shared by the RDB accelerator's two files: _speedups.c (the Python module and its scan
 * loops) and _sanitize.c (what Redis checks when it loads a value with
 * sanitize-dump-payload yes, as parsers/rdb/sanitize.py does in Python).
 */
#ifndef RBKIT_RDB_SPEEDUPS_H
#define RBKIT_RDB_SPEEDUPS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The input: bytes b[0 .. end). */
typedef struct {
    const uint8_t *b;
    Py_ssize_t end;
} Buf;

static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

/*
 * An RDB length at *p as Redis's rdbLoadLen reads it (6, 14, 32 or 64 bit; a byte with the
 * two top bits set counts as its low 6 bits). 0 and *p moved past it, or -1.
 */
static inline int read_len(const Buf *B, Py_ssize_t *p, uint64_t *out)
{
    Py_ssize_t q = *p;
    if (q >= B->end)
        return -1;
    uint8_t c = B->b[q];
    switch (c >> 6) {
    case 0:
    case 3:
        *out = c & 0x3F;
        *p = q + 1;
        return 0;
    case 1:
        if (B->end - q < 2)
            return -1;
        *out = ((uint64_t)(c & 0x3F) << 8) | B->b[q + 1];
        *p = q + 2;
        return 0;
    default:
        if (c == 0x80) {
            if (B->end - q < 5)
                return -1;
            *out = ((uint64_t)B->b[q + 1] << 24) | ((uint64_t)B->b[q + 2] << 16) |
                   ((uint64_t)B->b[q + 3] << 8) | B->b[q + 4];
            *p = q + 5;
            return 0;
        }
        if (c == 0x81) {
            if (B->end - q < 9)
                return -1;
            uint64_t v = 0;
            for (int i = 1; i <= 8; i++)
                v = (v << 8) | B->b[q + i];
            *out = v;
            *p = q + 9;
            return 0;
        }
        return -1;
    }
}

/* The checking context: the input and the scratch memory the checks reuse between values. */
typedef struct Sanitizer Sanitizer;

/* A context for the input B (reused: its scratch memory is kept between calls). */
Sanitizer *sanitizer_for(const Buf *B);

/*
 * Check the value of type t at *p as Redis loads it with sanitize-dump-payload yes; count its
 * elements in *n. 1 with *p moved past it, or 0: damaged, or a type or shape left to the
 * Python code (which then finds and words the problem). `valkey`: the file's magic is VALKEY.
 */
int sanitize_value(Sanitizer *S, int t, int valkey, Py_ssize_t *p, uint64_t *n);

/* Skip a string at *p, checking that an LZF one inflates to its declared length. 1 or 0. */
int sanitize_string(Sanitizer *S, Py_ssize_t *p);

/*
 * A key as Redis loads it (integers spelled out, LZF inflated), with the checks of
 * sanitize_string: its bytes in (*s, *n), good until the next sanitize_value. 1 or 0.
 */
int sanitize_key(Sanitizer *S, Py_ssize_t *p, const uint8_t **s, size_t *n);

/* Free the memory of names and values inflated since the last sanitize_value. */
void sanitize_release(Sanitizer *S);

#endif
