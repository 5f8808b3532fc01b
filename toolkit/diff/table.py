"""The keys of one side of a diff, held compactly enough for 10 M keys per side.

No per-key Python objects: per db, the keys are spread over 256 buckets by the top byte of a
64-bit hash of their name, and each bucket is a handful of parallel ``array`` columns::

    h1     64-bit hash of the name (Python's SipHash), the join key
    h2     a second, independent 64-bit hash: two names are taken as the same key when both
           hashes agree (h1 alone may collide; the join then tells the keys apart by h2)
    ref    where the name is: its offset in the mapped RDB file, or in ``names`` (a bytearray
           of length-prefixed names, for live servers and AOF models)
    exp    absolute expiry in ms; NO_TTL, or UNKNOWN_TTL (an AOF's relative expiry)
    meta   (size + 1) << 8 | type code (size 0 there: unknown)
    d1/d2  with --values: the 16-byte value digest as two 64-bit halves (0, 0: not read)

About 40 bytes a key (56 with values). A bucket is joined with the other side's same bucket
at a time, so only one bucket's dicts exist at once.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Iterator

MASK64 = (1 << 64) - 1
BUCKET_SHIFT = 56
NBUCKETS = 1 << (64 - BUCKET_SHIFT)
NO_TTL = -(1 << 63)
UNKNOWN_TTL = (1 << 63) - 1
NO_DIGEST = bytes(16)
_NAME_LEN = struct.Struct("<I")


def key_hashes(key: bytes) -> tuple[int, int]:
    """(h1, h2): two independent 64-bit hashes of a key name (valid within this process)."""
    return hash(key) & MASK64, hash(key + b"\x00") & MASK64


class TypeCodes:
    """Type names <-> small codes, shared by both sides of one diff."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        c = self.codes.get(name)
        if c is None:
            if len(self.names) >= 255:
                raise ValueError("more than 255 value types")
            c = self.codes[name] = len(self.names)
            self.names.append(name)
        return c


def pack_meta(code: int, size: int | None) -> int:
    return code if size is None else (size + 1) << 8 | code


def unpack_meta(meta: int) -> tuple[int, int | None]:
    """(type code, size or None)."""
    s = meta >> 8
    return meta & 0xFF, (s - 1 if s else None)


class Bucket:
    """Parallel columns of the keys of one db whose h1 has one top byte."""

    __slots__ = ("d1", "d2", "exp", "h1", "h2", "meta", "ref")

    def __init__(self) -> None:
        self.h1 = array("Q")
        self.h2 = array("Q")
        self.ref = array("Q")
        self.exp = array("q")
        self.meta = array("Q")
        self.d1 = array("Q")
        self.d2 = array("Q")

    def __len__(self) -> int:
        return len(self.h1)

    def digest(self, i: int) -> bytes | None:
        """The value digest of row ``i`` (None: not read)."""
        d1, d2 = self.d1[i], self.d2[i]
        if not d1 and not d2:
            return None
        return d1.to_bytes(8, "little") + d2.to_bytes(8, "little")

    def add_digest(self, digest: bytes | None) -> None:
        """Append a row's value digest (None or NO_DIGEST: not read)."""
        if digest is None:
            self.d1.append(0)
            self.d2.append(0)
        else:
            self.d1.append(int.from_bytes(digest[:8], "little"))
            self.d2.append(int.from_bytes(digest[8:16], "little"))


class DbTable:
    __slots__ = ("buckets", "count")

    def __init__(self) -> None:
        self.buckets: list[Bucket | None] = [None] * NBUCKETS
        self.count = 0

    def bucket(self, b: int) -> Bucket:
        bk = self.buckets[b]
        if bk is None:
            bk = self.buckets[b] = Bucket()
        return bk


class KeyTable:
    """The keys of one side. ``name_reader`` reads a name back from its ref (an RDB side);
    without it names are kept in ``names``."""

    def __init__(
        self,
        types: TypeCodes,
        *,
        values: bool,
        name_reader: Callable[[int], bytes] | None = None,
    ) -> None:
        self.types = types
        self.values = values
        self.dbs: dict[int, DbTable] = {}
        self.names = bytearray()
        self._name_reader = name_reader

    def db(self, n: int) -> DbTable:
        t = self.dbs.get(n)
        if t is None:
            t = self.dbs[n] = DbTable()
        return t

    def add(
        self,
        db: int,
        key: bytes,
        type_name: str,
        expire_ms: int | None,
        size: int | None,
        digest: bytes | None = None,
        ref: int | None = None,
        hashes: tuple[int, int] | None = None,
    ) -> None:
        """Add one key (the general path; the RDB reader inlines this for speed).
        ``hashes``: (h1, h2) to use instead of the name's (tests force collisions so)."""
        h1, h2 = key_hashes(key) if hashes is None else hashes
        d = self.db(db)
        bk = d.bucket(h1 >> BUCKET_SHIFT)
        if ref is None:
            ref = len(self.names)
            self.names += _NAME_LEN.pack(len(key))
            self.names += key
        bk.h1.append(h1)
        bk.h2.append(h2)
        bk.ref.append(ref)
        bk.exp.append(NO_TTL if expire_ms is None else clamp_expiry(expire_ms))
        bk.meta.append(pack_meta(self.types.code(type_name), size))
        if self.values:
            bk.add_digest(digest)
        d.count += 1

    def name(self, ref: int) -> bytes:
        """The key name stored at ``ref``."""
        if self._name_reader is not None:
            return self._name_reader(ref)
        (n,) = _NAME_LEN.unpack_from(self.names, ref)
        return bytes(self.names[ref + 4 : ref + 4 + n])

    def rows(self) -> Iterator[tuple[int, Bucket, int]]:
        """Every row as (db, bucket, index)."""
        for db, d in self.dbs.items():
            for bk in d.buckets:
                if bk is not None:
                    for i in range(len(bk)):
                        yield db, bk, i


def clamp_expiry(expire_ms: int) -> int:
    """An expiry as the ``exp`` column holds it (an AOF's unknown time: UNKNOWN_TTL)."""
    if expire_ms >= UNKNOWN_TTL:
        return UNKNOWN_TTL
    return max(expire_ms, NO_TTL + 1)
