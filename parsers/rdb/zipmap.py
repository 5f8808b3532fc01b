"""Zipmap: the packed field/value map small hashes were saved as before Redis 2.6 (RDB type 9).

Layout (redis ``src/zipmap.c``): ``<zmlen u8> (<len> field <len> <free u8> value <free bytes>)*
0xFF``. A len is one byte below 254, or 0xFE and a u32 LE. ``zmlen`` counts pairs; 254
means "unknown". Redis rejects an empty zipmap. ``count`` and ``validate``
return pairs, as zmlen does; ``entries`` yields field and value in turn. Offsets in errors are
within the blob.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from parsers.errors import CorruptError

END = 0xFF
BIG_LEN = 0xFE
UNKNOWN_COUNT = 254  # zmlen 254 means "walk to count"

_U32 = struct.Struct("<I")

Blob = bytes | memoryview


def _header(blob: Blob) -> int:
    """Check the size and end marker; return zmlen (pairs, or 254 for unknown)."""
    size = len(blob)
    if size < 2:
        raise CorruptError(f"zipmap needs at least 2 bytes, blob has {size}", 0)
    if blob[size - 1] != END:
        raise CorruptError(
            f"zipmap last byte is 0x{blob[size - 1]:02x}, expected end marker 0xff", size - 1
        )
    return blob[0]


def count(blob: Blob) -> int:
    """The number of pairs, always by a full walk: Redis checks every zipmap it loads this way,
    and zipmaps (small hashes of Redis < 2.6) are never many or large."""
    return validate(blob)


def validate(blob: Blob) -> int:
    """Deep check: every length stays inside, the end, a non-empty map, zmlen; the pairs."""
    n = 0
    for _ in _walk(blob, decode=False):
        n += 1
    return n // 2


def entries(blob: Blob) -> Iterator[bytes | int]:
    """Field, value, field, value, ... as bytes (a value's free bytes left out)."""
    return _walk(blob, decode=True)


def _length(blob: Blob, p: int, end: int, what: str) -> tuple[int, int]:
    """Read the length at p (checked to end before the end marker); return (length, after).

    As zipmap.c reads it: a first byte of 254 or more (0xff too) means a u32 LE follows.
    """
    b = blob[p]
    if b < BIG_LEN:
        if p + 1 > end:
            raise CorruptError(f"zipmap {what} length is the end marker", p)
        return b, p + 1
    if p + 5 > end:
        raise CorruptError(
            f"zipmap 5-byte {what} length needs 5 bytes, {end - p} remain before the end marker", p
        )
    return _U32.unpack_from(blob, p + 1)[0], p + 5


def _walk(blob: Blob, *, decode: bool) -> Iterator[bytes | int]:
    """Check each pair as zipmapValidateIntegrity does, then yield field and value (decode) or
    their offsets; then the count."""
    zmlen = _header(blob)
    end = len(blob) - 1
    p = 1
    pairs = 0
    while blob[p] != END:
        klen, k = _length(blob, p, end, "field")
        v_at = k + klen
        if v_at > end:
            raise CorruptError(f"zipmap field of {klen} bytes runs past the end marker at {end}", p)
        vlen, free_at = _length(blob, v_at, end, "value")
        free = blob[free_at]  # free_at <= end: _length kept the length before the marker
        v = free_at + 1
        nxt = v + ((vlen + free) & 0xFFFFFFFF)  # a 32-bit sum in zipmap.c
        if nxt > end:
            raise CorruptError(
                f"zipmap value of {vlen} bytes plus {free} free runs past the end marker at {end}",
                v_at,
            )
        if decode:
            yield bytes(blob[k:v_at])
            yield bytes(blob[v : v + vlen])
        else:
            yield p
            yield v_at
        pairs += 1
        p = nxt
    if pairs == 0:
        raise CorruptError("zipmap is empty", 0)
    if zmlen != UNKNOWN_COUNT and zmlen != pairs:
        raise CorruptError(f"zipmap header says {zmlen} pairs, found {pairs}", 0)
