"""The inventory of a backup: keys per db and type, expiries, sizes, biggest keys.

Built from the parser's tally of an RDB; the same shape will serve AOF backups, so that
restore and diff compare any backup with a live server alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parsers.cluster.slots import SlotCounts
from parsers.rdb.constants import TYPE_NAMES, ValueType
from parsers.rdb.keyhash import KeySink
from parsers.rdb.records import Tally
from parsers.rdb.walker import RdbWalker


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
    type_ids: set[int] = field(default_factory=set)  # RDB value types present
    module_values: int = 0  # keys whose values only their module can read
    bytes_known: bool = True  # False: sizes not computed (an AOF's model has no encodings)

    @property
    def keys(self) -> int:
        return sum(d.keys for d in self.databases.values())

    @property
    def expires(self) -> int:
        return sum(d.expires for d in self.databases.values())


def inventory_of_rdb(
    walker: RdbWalker,
    now_ms: int,
    top: int = 10,
    keys: KeySink | None = None,
    slots: SlotCounts | None = None,
) -> Inventory:
    """Walk every key of ``walker`` and count (noting each key in ``keys`` and counting it in
    ``slots``, if given). Raises the walker's FormatError on damage (``walker.partial`` then
    holds the counts of what was read before it)."""
    return inventory_of_tally(walker, walker.tally(now_ms, top, keys, slots))


def inventory_of_tally(walker: RdbWalker, tally: Tally) -> Inventory:
    """The inventory of what ``walker`` counted in ``tally`` (all of it, or up to damage)."""
    inv = Inventory()
    for db in sorted(tally.dbs):
        t = tally.dbs[db]
        stats = DbStats(expires=t.expires, expired_at_check=t.expired, empty=t.empty, bytes=t.bytes)
        by_type: dict[str, int] = dict(t.modules)
        for type_id, count in enumerate(t.counts):
            if not count:
                continue
            stats.keys += count
            inv.type_ids.add(type_id)
            if type_id != ValueType.MODULE_2:
                name = TYPE_NAMES[type_id]
                by_type[name] = by_type.get(name, 0) + count
        stats.by_type = dict(sorted(by_type.items()))
        if stats.keys or db in walker.dbs:
            inv.databases[db] = stats
    inv.biggest_by_bytes = [
        _big_key(walker, db, t, key_off, voff, elements=n, size=size)
        for size, db, t, key_off, voff, _end, n in sorted(tally.by_bytes, reverse=True)
    ]
    inv.biggest_by_elements = [
        _big_key(walker, db, t, key_off, voff, elements=n, size=size)
        for n, db, t, key_off, voff, _end, size in sorted(tally.by_elements, reverse=True)
    ]
    inv.functions = [f.library for f in walker.functions]
    modules = {m.module for m in walker.module_aux}
    for t in tally.dbs.values():
        modules.update(t.modules)
        inv.module_values += sum(t.modules.values())
    inv.modules = sorted(modules)
    return inv


def _big_key(
    walker: RdbWalker, db: int, t: int, key_off: int, voff: int, *, elements: int, size: int
) -> BigKey:
    name = walker.module_name_at(voff) if t == ValueType.MODULE_2 else TYPE_NAMES[t]
    return BigKey(db, walker.key_at(key_off), name, elements, size)


def merged(inventories: list[Inventory], top: int = 10) -> Inventory:
    """One inventory of several backups' (a cluster's shards): counts added, the ``top``
    biggest keys of them all."""
    out = Inventory()
    for inv in inventories:
        for db, stats in inv.databases.items():
            into = out.databases.setdefault(db, DbStats())
            into.keys += stats.keys
            into.expires += stats.expires
            into.expired_at_check += stats.expired_at_check
            into.empty += stats.empty
            into.bytes += stats.bytes
            for name, count in stats.by_type.items():
                into.by_type[name] = into.by_type.get(name, 0) + count
        out.type_ids |= inv.type_ids
        out.module_values += inv.module_values
        out.bytes_known = out.bytes_known and inv.bytes_known
    for stats in out.databases.values():
        stats.by_type = dict(sorted(stats.by_type.items()))
    out.databases = dict(sorted(out.databases.items()))
    every = [k for inv in inventories for k in inv.biggest_by_bytes]
    out.biggest_by_bytes = sorted(every, key=lambda k: k.bytes, reverse=True)[:top]
    every = [k for inv in inventories for k in inv.biggest_by_elements]
    out.biggest_by_elements = sorted(every, key=lambda k: k.elements, reverse=True)[:top]
    out.functions = sorted({f for inv in inventories for f in inv.functions})
    out.modules = sorted({m for inv in inventories for m in inv.modules})
    return out
