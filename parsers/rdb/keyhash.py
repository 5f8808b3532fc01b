"""Key hash entries: what the walker notes of each key so that keys stored twice can be found.

Redis refuses an RDB file that holds a key twice in one db ("RDB has duplicated key"). To find
such keys without holding every name, the walker (``RdbWalker.tally(keys=...)``, in C or in
Python) notes one 16-byte entry per key record Redis does not skip as an empty collection:

- the key hash: Python's ``hash()`` of the key's bytes as Redis loads them (integers spelled
  out, LZF inflated), with the db mixed in (:func:`key_hash`), ANDed with the sink's ``mask``
  (all ones, save in tests that force collisions);
- the tag: the offset of the record's type byte, shifted left once, with bit 0 set when the
  key's expiry is before the check's time (a master skips such a key when it loads the file).

Both are native-endian unsigned 64-bit numbers. An entry goes into the bucket of its hash's top
``BUCKET_BITS`` bits. Equal hashes are only candidates: whoever judges them compares the keys
themselves (:func:`candidates` finds them in a run of entries).
"""

from __future__ import annotations

import struct
from typing import Protocol

try:  # the C helpers (setup.py builds them where a compiler is at hand)
    from parsers.rdb import _speedups
except ImportError:  # pragma: no cover - depends on the build
    _speedups = None

BUCKET_BITS = 10  # _speedups.c KEY_BUCKET_BITS
BUCKETS = 1 << BUCKET_BITS
SHIFT = 64 - BUCKET_BITS
DB_MIX = 0x9E3779B97F4A7C15  # _speedups.c DB_MIX
MASK64 = (1 << 64) - 1
ENTRY = struct.Struct("=QQ")  # hash, tag
ENTRY_SIZE = ENTRY.size


def key_hash(key: bytes, db: int) -> int:
    """The hash of ``key`` (bytes as Redis loads them) in ``db``, as the C scan computes it."""
    return (hash(key) & MASK64) ^ ((db * DB_MIX) & MASK64)


def tag(record_offset: int, expired: bool) -> int:
    """An entry's second half: where the record starts, and whether its key has expired."""
    return (record_offset << 1) | int(expired)


class KeySink(Protocol):
    """Where the walker puts key hash entries.

    ``buckets``: ``BUCKETS`` bytearrays the C scan appends to (the same list and bytearrays
    for the whole walk: a spill empties them in place); ``room``: how many entries the scan may
    append before it must hand back (the sink may spill them); ``mask``: ANDed with every hash.
    """

    buckets: list[bytearray]
    room: int
    mask: int

    def added(self, count: int) -> None:
        """The C scan appended ``count`` entries."""

    def add(self, db: int, key: bytes, record_offset: int, expired: bool) -> None:
        """Note one key (the Python walk)."""


def candidates(entries: bytes | bytearray | memoryview) -> list[int]:
    """The indices, in order, of the entries in ``entries`` whose hash occurs more than once."""
    if _speedups is not None:
        return _speedups.candidates(entries)
    return py_candidates(entries)


def py_candidates(entries: bytes | bytearray | memoryview) -> list[int]:
    """:func:`candidates` in pure Python."""
    if len(entries) % ENTRY_SIZE:
        raise ValueError("entries: a whole number of 16-byte entries")
    first: dict[int, int] = {}
    marked: set[int] = set()
    for i, h in enumerate(memoryview(entries).cast("Q")[::2].tolist()):
        j = first.setdefault(h, i)
        if j != i:
            marked.add(i)
            marked.add(j)
    return sorted(marked)
