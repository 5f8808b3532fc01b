"""The inventory of a backup: keys per db and type, expiries, sizes, biggest keys.

Built from the parser's key tuples in one lean loop; the same shape serves RDB and AOF
backups, so restore and diff compare any backup with a live server alike.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from parsers.rdb.constants import TYPE_NAMES, ValueType
from parsers.rdb.walker import RdbWalker

# Value types whose element count of zero makes Redis skip the key when loading.
_COLLECTIONS = frozenset(
    t for t, name in TYPE_NAMES.items() if name in ("list", "set", "zset", "hash")
)
# (metric, -order, db, key offset, value offset, type id, bytes, elements)
_Candidate = tuple[int, int, int, int, int, int, int, int]
_LIBRARY_NAME = re.compile(rb"^#!\s*\S+\s+.*?\bname=(\S+)")


@dataclass
class DbStats:
    keys: int = 0
    expires: int = 0
    expired_at_check: int = 0
    empty: int = 0
    bytes: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BigKey:
    db: int
    key: bytes
    type: str
    elements: int
    bytes: int


@dataclass
class Inventory:
    databases: dict[int, DbStats] = field(default_factory=dict)
    biggest_by_bytes: list[BigKey] = field(default_factory=list)
    biggest_by_elements: list[BigKey] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)

    @property
    def keys(self) -> int:
        return sum(d.keys for d in self.databases.values())

    @property
    def expires(self) -> int:
        return sum(d.expires for d in self.databases.values())


def library_name(code: bytes) -> str:
    """The library name from a function library's shebang line (``#!lua name=mylib``)."""
    match = _LIBRARY_NAME.match(code)
    return match.group(1).decode("utf-8", "replace") if match else "?"


def inventory_of_rdb(walker: RdbWalker, now_ms: int, top: int = 10) -> Inventory:
    """Walk every key of ``walker`` and count. Raises the walker's FormatError on damage.

    The loop keeps per-db counters in flat lists indexed by type id, and materialises a key
    name only when the key enters a top-N list.
    """
    inv = Inventory()
    type_counts: dict[int, list[int]] = {}
    type_bytes: dict[int, list[int]] = {}
    module_names: dict[int, dict[str, int]] = {}
    by_bytes: list[_Candidate] = []
    by_elems: list[_Candidate] = []
    min_bytes = min_elems = -1
    order = 0
    cur_db = -1
    counts = sizes = [0]
    stats = DbStats()
    module_type = ValueType.MODULE_2
    collections = _COLLECTIONS
    push, pushpop = heapq.heappush, heapq.heappushpop

    for db, t, key_off, voff, end, n, exp in walker.walk():
        if db != cur_db:
            cur_db = db
            stats = inv.databases.setdefault(db, DbStats())
            counts = type_counts.setdefault(db, [0] * 256)
            sizes = type_bytes.setdefault(db, [0] * 256)
        size = end - key_off + 1
        counts[t] += 1
        sizes[t] += size
        if exp is not None:
            stats.expires += 1
            if exp <= now_ms:
                stats.expired_at_check += 1
        if n == 0 and t in collections:
            stats.empty += 1
        if t == module_type:
            name = walker.module_name_at(voff)
            per_db = module_names.setdefault(db, {})
            per_db[name] = per_db.get(name, 0) + 1
        if size > min_bytes:
            order += 1
            item = (size, -order, db, key_off, voff, t, size, n)
            if len(by_bytes) < top:
                push(by_bytes, item)
                if len(by_bytes) == top:
                    min_bytes = by_bytes[0][0]
            else:
                pushpop(by_bytes, item)
                min_bytes = by_bytes[0][0]
        if n > min_elems:
            order += 1
            item = (n, -order, db, key_off, voff, t, size, n)
            if len(by_elems) < top:
                push(by_elems, item)
                if len(by_elems) == top:
                    min_elems = by_elems[0][0]
            else:
                pushpop(by_elems, item)
                min_elems = by_elems[0][0]

    for db, stats in inv.databases.items():
        counts, sizes = type_counts[db], type_bytes[db]
        for t, c in enumerate(counts):
            if not c:
                continue
            stats.keys += c
            stats.bytes += sizes[t]
            if t == module_type:
                for name, k in module_names[db].items():
                    stats.by_type[name] = stats.by_type.get(name, 0) + k
            else:
                name = TYPE_NAMES[t]
                stats.by_type[name] = stats.by_type.get(name, 0) + c
        stats.by_type = dict(sorted(stats.by_type.items()))
    inv.databases = dict(sorted(inv.databases.items()))
    inv.biggest_by_bytes = _big_keys(walker, by_bytes, top)
    inv.biggest_by_elements = _big_keys(walker, by_elems, top)
    inv.functions = [
        f.name.decode("utf-8", "replace") if f.name else library_name(f.code)
        for f in walker.functions
    ]
    modules = {m.module for m in walker.module_aux}
    for names in module_names.values():
        modules.update(names)
    inv.modules = sorted(modules)
    return inv


def _big_keys(walker: RdbWalker, heap: Iterable[_Candidate], top: int) -> list[BigKey]:
    out = []
    for _metric, _order, db, key_off, voff, t, size, n in sorted(heap, reverse=True)[:top]:
        name = walker.module_name_at(voff) if t == ValueType.MODULE_2 else TYPE_NAMES[t]
        out.append(BigKey(db, walker.key_at(key_off), name, n, size))
    return out
