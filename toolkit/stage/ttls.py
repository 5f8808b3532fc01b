"""The keys of one db of a backup that have a TTL, as four compact columns: the expiry (ms),
the name's hash (:func:`toolkit.server.read.key_hash`), the type and the cluster hash slot
(which primary of a cluster holds the key). A batch of the C walk's rows is appended at once,
and the columns are judged against a time window in bulk (Apache Arrow compute): no Python
object per key, 20 bytes a key. This is what the drill and the restore's verification use to
tell which keys a server should have dropped as expired."""

from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from parsers.rdb.columns import xor64
from parsers.rdb.constants import TYPE_NAMES
from toolkit.columns import fixed_bytes

_LATEST = (1 << 63) - 1


@dataclass
class Gone:
    """Keys of a :class:`Ttls` picked by a test: how many, of which types, their names'
    XOR (:func:`toolkit.server.read.key_hash`)."""

    keys: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    digest: int = 0


class Ttls:
    """The expiry, name hash, type and slot of every key of a db that has a TTL."""

    def __init__(self) -> None:
        self.types: list[str] = []  # type names, indexed by the type column
        self._ms = array("q")
        self._hash = array("Q")
        self._type = array("H")
        self._slot = array("H")

    def __len__(self) -> int:
        return len(self._ms)

    def add(self, h: int, type_name: str, expire_ms: int, slot: int) -> None:
        """One key: its name's hash ``h``, its type's name, its expiry and its slot."""
        self._ms.append(min(expire_ms, _LATEST))
        self._hash.append(h)
        self._type.append(self._index(type_name))
        self._slot.append(slot)

    def extend(
        self, type_ids: pa.Array, expire_ms: pa.Array, hashes: pa.Array, slots: pa.Array
    ) -> None:
        """Keys given as Arrow columns without nulls: RDB type bytes (uint8), expiries
        (int64), name hashes (uint64) and slots (uint16)."""
        if not len(type_ids):
            return
        lookup = array("H", bytes(512))
        for t in pc.unique(type_ids).to_pylist():
            lookup[t] = self._index(TYPE_NAMES.get(t, "?"))
        types = pc.take(pa.array(lookup, pa.uint16()), type_ids)
        self._type.frombytes(fixed_bytes(types, 2))
        self._ms.frombytes(fixed_bytes(expire_ms, 8))
        self._hash.frombytes(fixed_bytes(hashes, 8))
        self._slot.frombytes(fixed_bytes(slots, 2))

    def columns(self) -> tuple[pa.Array, pa.Array, pa.Array]:
        """The expiry (int64, ms), name hash (uint64) and slot (uint16) columns, one row a
        key: views of the arrays here, so no key may be added while they are held."""
        ms, hashes, _types, slots = self._arrays()
        return ms, hashes, slots

    def pick(self, test: pa.Array) -> Gone:
        """The keys where the boolean column ``test`` (one row a key, in the order of
        :meth:`columns`) is true."""
        _ms, hashes, types, _slots = self._arrays()
        out = Gone()
        picked = pc.filter(hashes, test)
        out.keys = len(picked)
        if out.keys:
            out.digest = xor64(fixed_bytes(picked, 8))
            counts = pc.value_counts(pc.filter(types, test))
            for t, n in zip(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
            ):
                out.by_type[self.types[t]] += n
        return out

    def _arrays(self) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        n = len(self)

        def view(kind: pa.DataType, values: array) -> pa.Array:
            return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(values)])

        return (
            view(pa.int64(), self._ms),
            view(pa.uint64(), self._hash),
            view(pa.uint16(), self._type),
            view(pa.uint16(), self._slot),
        )

    def _index(self, type_name: str) -> int:
        if type_name not in self.types:
            self.types.append(type_name)
        return self.types.index(type_name)
