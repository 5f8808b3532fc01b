"""A set of 64-bit key-name hashes, added to a batch at a time: what the SCAN reader keeps of
the keys it has met (SCAN may return a key twice), asked later whether it met a key.

The C one (``_hashset.c``, built where a compiler is at hand) holds 8 bytes a slot, 11 to 21
bytes a hash; a Python set of ints holds about 70. :func:`hash_set` gives the C one, or the
Python one where it is not built (or ``RBKIT_HASHSET=0`` switches it off).
"""

from __future__ import annotations

import os
from array import array
from typing import Protocol

try:  # the optional C extension (setup.py builds it where a compiler is at hand)
    from toolkit.server import _hashset
except ImportError:  # pragma: no cover - depends on the build
    _hashset = None

ENV = "RBKIT_HASHSET"


class HashSet(Protocol):
    def add(self, hashes: bytes | bytearray | memoryview | array) -> bytes:
        """Put in the uint64 hashes of a buffer (native byte order); one byte each, 1 where
        the hash was new."""
        ...

    def contains(self, hashes: bytes | bytearray | memoryview | array) -> bytes:
        """One byte for each uint64 hash of a buffer: 1 where it is held."""
        ...

    def __contains__(self, h: object) -> bool: ...

    def __len__(self) -> int: ...


class PyHashSet:
    """The same in Python: a set of ints."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def add(self, hashes: bytes | bytearray | memoryview | array) -> bytes:
        held = self._held
        words = _words(hashes)
        out = bytearray(len(words))
        for i, h in enumerate(words):
            if h not in held:
                held.add(h)
                out[i] = 1
        return bytes(out)

    def contains(self, hashes: bytes | bytearray | memoryview | array) -> bytes:
        held = self._held
        return bytes(h in held for h in _words(hashes))

    def __contains__(self, h: object) -> bool:
        return h in self._held

    def __len__(self) -> int:
        return len(self._held)


def _words(hashes: bytes | bytearray | memoryview | array) -> memoryview:
    data = memoryview(hashes).cast("B")
    if len(data) % 8:
        raise ValueError("takes whole uint64 hashes (8 bytes each)")
    return data.cast("Q")


def hash_set() -> HashSet:
    """An empty set: the C one where it is built and not switched off."""
    if _hashset is not None and os.environ.get(ENV, "1") != "0":
        return _hashset.HashSet()
    return PyHashSet()
