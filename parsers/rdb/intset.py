"""Intset: the sorted array of integers a small set of integers is saved as (RDB type 11).

Layout (redis ``src/intset.c``): ``<encoding u32 LE> <length u32 LE> <value>*``, where encoding
is the byte width of every value (2, 4 or 8), values are signed LE and strictly increasing, and
the blob is exactly ``8 + length * encoding`` bytes. Redis rejects an empty intset.
Offsets in errors are within the blob.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from parsers.errors import CorruptError

HEADER_SIZE = 8

_HEADER = struct.Struct("<II")
_VALUE = {2: struct.Struct("<h"), 4: struct.Struct("<i"), 8: struct.Struct("<q")}

Blob = bytes | memoryview


def _header(blob: Blob) -> tuple[int, int]:
    """Check the encoding, the exact size and non-emptiness; return (width, length)."""
    size = len(blob)
    if size < HEADER_SIZE:
        raise CorruptError(f"intset needs at least 8 bytes, blob has {size}", 0)
    width, length = _HEADER.unpack_from(blob, 0)
    if width not in _VALUE:
        raise CorruptError(f"intset encoding is {width}, expected 2, 4 or 8", 0)
    if HEADER_SIZE + length * width != size:
        raise CorruptError(
            f"intset header says {length} entries of {width} bytes "
            f"({HEADER_SIZE + length * width} bytes), blob has {size}",
            4,
        )
    if length == 0:
        raise CorruptError("intset is empty (length 0)", 4)
    return width, length


def count(blob: Blob) -> int:
    """Cheap check of encoding and exact size; the number of entries."""
    return _header(blob)[1]


def validate(blob: Blob) -> int:
    """Deep check: the header as ``count`` does, and values strictly increasing; the count."""
    n = 0
    for _ in entries(blob):
        n += 1
    return n


def entries(blob: Blob) -> Iterator[int]:
    """Every value in order, checked to be strictly increasing."""
    width, _ = _header(blob)
    prev = None
    offset = HEADER_SIZE
    for (value,) in _VALUE[width].iter_unpack(memoryview(blob)[HEADER_SIZE:]):
        if prev is not None and value <= prev:
            raise CorruptError(
                f"intset value {value} is not greater than the one before it ({prev})", offset
            )
        yield value
        prev = value
        offset += width
