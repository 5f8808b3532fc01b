"""The differing keys a diff lists, kept in compact columns instead of Python objects.

A diff of two 22 M-key files can list hundreds of thousands of keys; as ``KeyDiff`` objects
(two ``KeyState`` each) they took about 1 KB a key. :class:`KeyList` keeps each key in
typed arrays (its name in one byte buffer, db, kinds, and both sides' type, expiry and
size as numbers: about 50 bytes a key plus its name) and makes a ``KeyDiff`` only when one
is asked for. It reads as a sequence of ``KeyDiff`` ordered by (db, key): ``len``,
indexing, slicing (a list), iteration, ``==`` with a list, ``sort`` (tests pin an order).

compute.py adds keys in the join's order and calls :meth:`KeyList.finish` once; with a
``limit`` only the first ``limit`` keys in (db, key) order are kept as keys come, so a
table or Markdown report never holds more than about ``2 * limit`` of them.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, overload

import pyarrow as pa
import pyarrow.compute as pc

from toolkit.columns import fixed_bytes
from toolkit.diff.model import KeyDiff, KeyState

_NO_EXPIRY = -(1 << 63)  # expire_ms None (no TTL)
_NO_SIZE = -1  # size None (unknown)
_ABSENT = 0  # type code of a side that does not have the key

# One side of a listed key: (type, expire_ms or None, size or None), or None (not there).
SideState = tuple[str, int | None, int | None] | None


@dataclass
class KeyColumns:
    """Listed keys as Arrow columns (:meth:`KeyList.chunks`)."""

    db: pa.Array  # int64
    key: pa.Array  # large_binary
    kinds: pa.Array  # uint16: the kinds are kind_sets[code]
    kind_sets: list[tuple[str, ...]]
    type_names: list[str]  # type code -> name; code 0 (""): the side does not have the key
    # per side (A, B): type code (uint16), expiry (int64 ms, -2**63: none), size (int64, -1:
    # unknown)
    sides: list[tuple[pa.Array, pa.Array, pa.Array]]


class KeyList:
    """Listed keys in columns; a read-only sequence of ``KeyDiff`` in (db, key) order once
    :meth:`finish` ran (before that, in the order they were added)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._db = array("q")
        self._ends = array("q", [0])  # key i is _names[_ends[i]:_ends[i + 1]]
        self._names = bytearray()
        self._kinds = array("H")  # index into _kind_sets
        self._kind_sets: list[tuple[str, ...]] = []
        self._kind_codes: dict[tuple[str, ...], int] = {}
        self._types = [""]  # type code -> name; 0: the side does not have the key
        self._type_codes: dict[str, int] = {}
        self._type = (array("H"), array("H"))  # per side (A, B)
        self._exp = (array("q"), array("q"))
        self._size = (array("q"), array("q"))
        self._order: array[int] | None = None  # row of the i-th key in (db, key) order

    # -- filling ----------------------------------------------------------------------

    def add(self, db: int, key: bytes, kinds: tuple[str, ...], a: SideState, b: SideState) -> None:
        """One more listed key (``a``/``b``: its state on each side, None if not there)."""
        if self.limit is not None and self.limit <= 0:
            return
        self._order = None
        self._db.append(db)
        self._names += key
        self._ends.append(len(self._names))
        code = self._kind_codes.get(kinds)
        if code is None:
            code = self._kind_codes[kinds] = len(self._kind_sets)
            self._kind_sets.append(kinds)
        self._kinds.append(code)
        for side, state in enumerate((a, b)):
            if state is None:
                self._type[side].append(_ABSENT)
                self._exp[side].append(_NO_EXPIRY)
                self._size[side].append(_NO_SIZE)
                continue
            type_name, exp, size = state
            t = self._type_codes.get(type_name)
            if t is None:
                t = self._type_codes[type_name] = len(self._types)
                self._types.append(type_name)
            self._type[side].append(t)
            self._exp[side].append(_NO_EXPIRY if exp is None else exp)
            self._size[side].append(_NO_SIZE if size is None else size)
        if self.limit is not None and len(self._db) >= max(2 * self.limit, 4096):
            self._keep(self._sorted_rows()[: self.limit])

    def extend(
        self,
        dbs: pa.Array,
        names: pa.Array,
        kinds: pa.Array,
        kind_table: list[tuple[str, ...]],
        type_names: list[str],
        sides: list[tuple[pa.Array, pa.Array, pa.Array]],
    ) -> None:
        """Many listed keys at once, as Arrow arrays of one length: ``dbs`` (int64),
        ``names`` (large_binary), ``kinds`` (int64: the kinds are ``kind_table[code]``), and
        for each side (A, B) its type (int64: a code into ``type_names``, -1 where the side
        does not have the key), expiry (int64 ms, or -2**63 for none) and size (int64, -1
        for unknown)."""
        if self.limit is not None and self.limit <= 0:
            return
        self._order = None
        n = len(dbs)
        kind_lut = [0] * len(kind_table)
        for k in pc.unique(kinds).to_pylist():
            code = self._kind_codes.get(kind_table[k])
            if code is None:
                code = self._kind_codes[kind_table[k]] = len(self._kind_sets)
                self._kind_sets.append(kind_table[k])
            kind_lut[k] = code
        self._kinds.frombytes(fixed_bytes(pa.array(kind_lut, pa.uint16()).take(kinds), 2))
        type_lut = [_ABSENT]
        for name in type_names:
            t = self._type_codes.get(name)
            if t is None:
                t = self._type_codes[name] = len(self._types)
                self._types.append(name)
            type_lut.append(t)
        types = pa.array(type_lut, pa.uint16())
        for side, (type_code, exp, size) in enumerate(sides):
            self._type[side].frombytes(fixed_bytes(types.take(pc.add(type_code, 1)), 2))
            self._exp[side].frombytes(fixed_bytes(pc.cast(exp, pa.int64()), 8))
            self._size[side].frombytes(fixed_bytes(pc.cast(size, pa.int64()), 8))
        self._db.frombytes(fixed_bytes(pc.cast(dbs, pa.int64()), 8))
        names = names.cast(pa.large_binary())
        offsets = pa.Array.from_buffers(
            pa.int64(), n + 1, [None, names.buffers()[1]], offset=names.offset
        )
        first, last = offsets[0].as_py(), offsets[n].as_py()
        base = len(self._names)
        if names.buffers()[2] is not None:
            self._names += memoryview(names.buffers()[2])[first:last]
        self._ends.frombytes(fixed_bytes(pc.add(offsets[1:], base - first), 8))
        if self.limit is not None and len(self._db) >= max(2 * self.limit, 4096):
            self._keep(self._sorted_rows()[: self.limit])

    def finish(self) -> KeyList:
        """Order the keys by (db, key), keep the first ``limit``; returns self."""
        rows = self._sorted_rows()
        if self.limit is not None:
            self._keep(rows[: self.limit])
            rows = array("q", range(len(self._db)))
        self._order = rows
        return self

    def _sorted_rows(self) -> array[int]:
        """The rows in (db, key) order (a stable sort: equal keys keep their order)."""
        n = len(self._db)
        if n == 0:
            return array("q")
        names = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), n, [None, pa.py_buffer(self._ends), pa.py_buffer(self._names)]
        )
        dbs = pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(self._db)])
        table = pa.table({"db": dbs, "key": names})
        idx = pc.sort_indices(table, sort_keys=[("db", "ascending"), ("key", "ascending")])
        rows = array("q")
        rows.frombytes(memoryview(idx.cast(pa.int64()).buffers()[1])[: 8 * n])
        del table, names, dbs, idx  # the buffers let go of the bytearray (it may grow)
        return rows

    def _keep(self, rows: array[int]) -> None:
        """Keep only these rows, in this order."""
        old = (self._db, self._ends, self._names, self._kinds, self._type, self._exp, self._size)
        db, ends, names, kinds, types, exps, sizes = old
        self._db = array("q", (db[r] for r in rows))
        self._names = bytearray()
        self._ends = array("q", [0])
        for r in rows:
            self._names += names[ends[r] : ends[r + 1]]
            self._ends.append(len(self._names))
        self._kinds = array("H", (kinds[r] for r in rows))
        self._type = tuple(array("H", (t[r] for r in rows)) for t in types)  # type: ignore[assignment]
        self._exp = tuple(array("q", (e[r] for r in rows)) for e in exps)  # type: ignore[assignment]
        self._size = tuple(array("q", (s[r] for r in rows)) for s in sizes)  # type: ignore[assignment]
        self._order = None

    # -- reading ----------------------------------------------------------------------

    def _row(self, r: int) -> KeyDiff:
        ends = self._ends
        return KeyDiff(
            self._db[r],
            bytes(self._names[ends[r] : ends[r + 1]]),
            self._kind_sets[self._kinds[r]],
            self._state(0, r),
            self._state(1, r),
        )

    def _state(self, side: int, r: int) -> KeyState | None:
        t = self._type[side][r]
        if t == _ABSENT:
            return None
        exp, size = self._exp[side][r], self._size[side][r]
        return KeyState(
            self._types[t], None if exp == _NO_EXPIRY else exp, None if size == _NO_SIZE else size
        )

    def _rows(self) -> array[int] | range:
        return self._order if self._order is not None else range(len(self._db))

    def __len__(self) -> int:
        return len(self._db)

    def __iter__(self) -> Iterator[KeyDiff]:
        # _row's work with the columns bound once: this runs for every key --json writes.
        names = bytes(self._names)  # slices of bytes are bytes (one copy, not two a key)
        ends, dbs, kinds, kind_sets, types = (
            self._ends,
            self._db,
            self._kinds,
            self._kind_sets,
            self._types,
        )
        (ta, tb), (ea, eb), (sa, sb) = self._type, self._exp, self._size
        for r in self._rows():
            t, u = ta[r], tb[r]
            if t:
                e, z = ea[r], sa[r]
                a = KeyState(types[t], None if e == _NO_EXPIRY else e, None if z < 0 else z)
            else:
                a = None
            if u:
                e, z = eb[r], sb[r]
                b = KeyState(types[u], None if e == _NO_EXPIRY else e, None if z < 0 else z)
            else:
                b = None
            yield KeyDiff(dbs[r], names[ends[r] : ends[r + 1]], kind_sets[kinds[r]], a, b)

    def chunks(self, rows: int) -> Iterator[tuple[int, KeyColumns]]:
        """The keys in order, ``rows`` at a time, as Arrow columns: (index of the chunk's
        first key, its columns)."""
        n = len(self._db)
        order = pa.array(self._rows(), pa.int64())
        base = KeyColumns(
            db=pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(self._db)]),
            key=pa.LargeBinaryArray.from_buffers(
                pa.large_binary(),
                n,
                [None, pa.py_buffer(self._ends), pa.py_buffer(bytes(self._names))],
            ),
            kinds=pa.Array.from_buffers(pa.uint16(), n, [None, pa.py_buffer(self._kinds)]),
            kind_sets=self._kind_sets,
            type_names=self._types,
            sides=[
                tuple(  # type: ignore[misc]
                    pa.Array.from_buffers(kind, n, [None, pa.py_buffer(column[side])])
                    for kind, column in (
                        (pa.uint16(), self._type),
                        (pa.int64(), self._exp),
                        (pa.int64(), self._size),
                    )
                )
                for side in (0, 1)
            ],
        )
        for start in range(0, n, rows):
            take = order[start : start + rows]
            yield (
                start,
                KeyColumns(
                    db=base.db.take(take),
                    key=base.key.take(take),
                    kinds=base.kinds.take(take),
                    kind_sets=base.kind_sets,
                    type_names=base.type_names,
                    sides=[tuple(c.take(take) for c in side) for side in base.sides],  # type: ignore[misc]
                ),
            )

    @overload
    def __getitem__(self, i: int) -> KeyDiff: ...
    @overload
    def __getitem__(self, i: slice) -> list[KeyDiff]: ...
    def __getitem__(self, i: int | slice) -> KeyDiff | list[KeyDiff]:
        rows = self._rows()
        if isinstance(i, slice):
            return [self._row(r) for r in rows[i]]
        return self._row(rows[i])

    def __bool__(self) -> bool:
        return len(self._db) > 0

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (KeyList, list, tuple)):
            return len(self) == len(other) and all(x == y for x, y in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KeyList({list(self)!r})"

    def sort(self, *, key: Callable[[KeyDiff], Any] | None = None, reverse: bool = False) -> None:
        """Reorder the keys as ``list.sort`` would (for small lists: each key is made)."""
        rows = list(self._rows())
        if key is None:
            raise TypeError("KeyList.sort needs a key: KeyDiff objects do not order")
        rows.sort(key=lambda r: key(self._row(r)), reverse=reverse)
        self._order = array("q", rows)
