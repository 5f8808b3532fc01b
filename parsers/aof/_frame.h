/*
 * RESP framing shared by the C readers of AOF commands (parsers/aof/_speedups.c and the
 * AOF check's compact store, toolkit/check/keyspace/_compact.c): resp.py's grammar.
 */
#ifndef RBKIT_AOF_FRAME_H
#define RBKIT_AOF_FRAME_H

#include <Python.h>
#include <stdint.h>

#define MAX_DIGITS 19          /* resp.MAX_DIGITS: 10**19 - 1 < 2**64, so no overflow */
#define MAX_ARGC 2147483647ULL /* resp.MAX_ARGC */

/*
 * The prefix `c`, 1..MAX_DIGITS ASCII digits and CRLF at b[p], all before `end`.
 * 0, *out the value and *p moved past the CRLF; or -1.
 */
static inline int read_num(const uint8_t *b, Py_ssize_t end, Py_ssize_t *p, uint8_t c,
                           uint64_t *out)
{
    Py_ssize_t q = *p;
    if (q >= end || b[q] != c)
        return -1;
    q++;
    Py_ssize_t d = q;
    uint64_t v = 0;
    while (q < end && q - d < MAX_DIGITS && b[q] >= '0' && b[q] <= '9') {
        v = v * 10 + (uint64_t)(b[q] - '0');
        q++;
    }
    if (q == d || end - q < 2 || b[q] != '\r' || b[q + 1] != '\n')
        return -1;
    *out = v;
    *p = q + 2;
    return 0;
}

#endif
