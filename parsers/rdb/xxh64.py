"""XXH64, the 64-bit hash the per-key records give each value's serialized bytes (seed 0) and
each key name (seeds 0 and 1: two independent hashes, the diff's join key).

The C accelerator computes it in place (``_speedups.xxh64``); this pure-Python version of the
reference algorithm is the fallback where it is not built (slow: it is meant for the few
records the Python walker reads itself).
"""

from __future__ import annotations

import struct

P1 = 0x9E3779B185EBCA87
P2 = 0xC2B2AE3D27D4EB4F
P3 = 0x165667B19E3779F9
P4 = 0x85EBCA77C2B2AE63
P5 = 0x27D4EB2F165667C5
M = (1 << 64) - 1
_Q = struct.Struct("<Q").unpack_from
_I = struct.Struct("<I").unpack_from


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & M


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * P2) & M, 31) * P1) & M


def _merge(acc: int, val: int) -> int:
    return ((acc ^ _round(0, val)) * P1 + P4) & M


def py_xxh64(data: bytes | memoryview, seed: int = 0) -> int:
    """XXH64 of ``data`` with ``seed``."""
    n = len(data)
    p = 0
    if n >= 32:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]
        while p <= n - 32:
            for i in range(4):
                v[i] = _round(v[i], _Q(data, p + 8 * i)[0])
            p += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M
        for lane in v:
            h = _merge(h, lane)
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while n - p >= 8:
        h ^= _round(0, _Q(data, p)[0])
        h = (_rotl(h, 27) * P1 + P4) & M
        p += 8
    if n - p >= 4:
        h ^= (_I(data, p)[0] * P1) & M
        h = (_rotl(h, 23) * P2 + P3) & M
        p += 4
    while p < n:
        h ^= (data[p] * P5) & M
        h = (_rotl(h, 11) * P1) & M
        p += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    h ^= h >> 32
    return h


try:  # the C version where the accelerator is built
    from parsers.rdb._speedups import xxh64
except ImportError:  # pragma: no cover - depends on the build
    xxh64 = py_xxh64
