"""The keys of RDB files summed up per db, from the C walk's per-key records: what the drill
and the restore's verification compare a backup with a server's snapshot by.

Per db: how many keys, of which types, how many with a TTL, and the key-name digest (the XOR
of the names' XXH64, :func:`toolkit.server.read.key_hash`); the empty collections apart
(Redis skips them when it loads a file); on request, the TTL of every key that has one
(:class:`~toolkit.stage.ttls.Ttls`, 20 bytes a key). No Python object is made per key, TTL
or not: the C walk fills columns, and the sums are taken batch by batch (only empty
collections, module values and watched keys are looked at one by one) and the file's pages
are released behind the walk, so memory stays flat whatever the number of keys, but for the
TTLs asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from parsers.cluster.slots import key_slot, name_slots
from parsers.rdb.columns import NO_EXPIRY, KeyColumns, key_columns, xor64
from parsers.rdb.constants import COLLECTION_TYPES, TYPE_NAMES
from parsers.rdb.walker import RdbWalker
from toolkit.columns import count_true, fixed_bytes
from toolkit.mapped import mapped, releasing_hook
from toolkit.stage.ttls import Ttls

_COLLECTIONS = pa.array(sorted(COLLECTION_TYPES), pa.uint8())
_TYPE_NAMES = [TYPE_NAMES.get(t, "?") for t in range(256)]


@dataclass
class DbSummary:
    """One db of the files: its keys, empty collections apart."""

    keys: int = 0
    digest: int = 0  # XOR of the key hashes
    expires: int = 0  # keys with a TTL
    by_type: Counter[str] = field(default_factory=Counter)
    empty_by_type: Counter[str] = field(default_factory=Counter)  # skipped on load
    empty_expires: int = 0  # of those, how many had a TTL
    expired: int = 0  # past their TTL at ``alive_at``: left out of everything above
    watched: dict[int, str] = field(default_factory=dict)  # watched key hash -> type
    ttls: Ttls | None = None  # the kept keys' TTLs, where asked for


@dataclass
class Summary:
    databases: dict[int, DbSummary] = field(default_factory=dict)
    functions: list[str] = field(default_factory=list)  # library names
    with_ttls: bool = False  # each db keeps its keys' TTLs

    def db(self, n: int) -> DbSummary:
        d = self.databases.get(n)
        if d is None:
            d = self.databases[n] = DbSummary(ttls=Ttls() if self.with_ttls else None)
        return d


def summarize(
    paths: Sequence[Path],
    *,
    alive_at: int | None = None,
    watch: dict[int, Set[int]] | None = None,
    ttls: bool = False,
) -> Summary:
    """Sum up the keys of ``paths`` (RDB files read together, e.g. a cluster's shards).

    ``alive_at`` (ms) leaves out the keys whose TTL has run out by then (as a server reading
    its own snapshot would); ``watch`` (db -> key hashes) asks which of those keys are there;
    ``ttls`` keeps the TTL of every non-empty key that has one and is kept.
    Raises FormatError where a file is damaged, OSError where one cannot be read.
    """
    out = Summary(with_ttls=ttls)
    for path in paths:
        with mapped(path) as mm:
            if mm is None:
                continue
            walker = RdbWalker(mm, on_progress=releasing_hook(mm, None))
            watched = pa.array([h for hs in (watch or {}).values() for h in hs], pa.uint64())
            for batch in key_columns(walker):
                _add_batch(out, batch, alive_at, watch or {}, watched)
            out.functions.extend(f.library for f in walker.functions)
            for db in walker.dbs:
                out.db(db)
    return out


def _add_batch(
    out: Summary,
    batch: KeyColumns,
    alive_at: int | None,
    watch: dict[int, Set[int]],
    watched: pa.Array,
) -> None:
    """Add a batch: its keys in bulk, per db, but for the empty collections, module values
    and watched keys, which are added row by row."""
    n = batch.rows

    def column(kind: pa.DataType, name: str) -> pa.Array:
        return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(batch.column(name))])

    dbs = column(pa.int32(), "db")
    type_ids = column(pa.uint8(), "type_id")
    hashes = column(pa.uint64(), "key_hash")
    expire = column(pa.int64(), "expire_ms")
    special = pc.and_(pc.equal(column(pa.int64(), "elements"), 0), pc.is_in(type_ids, _COLLECTIONS))
    if len(watched):
        special = pc.or_(special, pc.is_in(hashes, watched))
    if batch.modules:
        rows = pa.array(sorted(batch.modules), pa.int64())
        special = pc.or_(special, pc.is_in(pa.array(range(n), pa.int64()), rows))
    has_ttl = pc.not_equal(expire, NO_EXPIRY)
    plain = pc.invert(special)
    kept = plain
    expired = None
    if alive_at is not None:  # a TTL that ran out by then: left out, and counted
        expired = pc.and_(plain, pc.and_(has_ttl, pc.less_equal(expire, alive_at)))
        kept = pc.and_(plain, pc.invert(expired))
    slots: pa.Array | None = None
    lo, hi = (v.as_py() for v in pc.min_max(dbs).values())
    for db in [lo] if lo == hi else pc.unique(dbs).to_pylist():
        here = None if lo == hi else pc.equal(dbs, db)
        keep = kept if here is None else pc.and_(kept, here)
        d = out.db(db)
        picked = pc.filter(hashes, keep)
        d.keys += len(picked)
        d.digest ^= xor64(fixed_bytes(picked, 8))
        counts = pc.value_counts(pc.filter(type_ids, keep))
        for type_id, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        ):
            d.by_type[_TYPE_NAMES[type_id]] += count
        with_ttl = pc.and_(keep, has_ttl)
        expiring = count_true(with_ttl)
        d.expires += expiring
        if expired is not None:
            d.expired += count_true(expired if here is None else pc.and_(expired, here))
        if d.ttls is not None and expiring:
            if slots is None:  # the batch's names' slots, once
                buf = name_slots(batch.names, batch.column("name_offsets"), n)
                slots = pa.Array.from_buffers(pa.uint16(), n, [None, pa.py_buffer(buf)])
            d.ttls.extend(
                pc.filter(type_ids, with_ttl),
                pc.filter(expire, with_ttl),
                pc.filter(hashes, with_ttl),
                pc.filter(slots, with_ttl),
            )
    views = _Views(batch)
    for r in pc.indices_nonzero(special).to_pylist():
        _add_row(out, views, r, alive_at, watch)


class _Views:
    """A batch's columns as typed memoryviews, taken once."""

    def __init__(self, batch: KeyColumns) -> None:
        self.key = batch.key
        self.modules = batch.modules
        self.db = batch.column("db")
        self.type_id = batch.column("type_id")
        self.elements = batch.column("elements")
        self.expire_ms = batch.column("expire_ms")
        self.key_hash = batch.column("key_hash")


def _add_row(
    out: Summary,
    batch: _Views,
    r: int,
    alive_at: int | None,
    watch: dict[int, Set[int]],
) -> None:
    db = batch.db[r]
    d = out.db(db)
    t = batch.type_id[r]
    name = batch.modules.get(r) or _TYPE_NAMES[t]
    expire = batch.expire_ms[r]
    has_ttl = expire != NO_EXPIRY
    if batch.elements[r] == 0 and t in COLLECTION_TYPES:
        d.empty_by_type[name] += 1
        d.empty_expires += has_ttl
        return
    if has_ttl and alive_at is not None and expire <= alive_at:
        d.expired += 1
        return
    h = batch.key_hash[r]
    d.keys += 1
    d.digest ^= h
    d.by_type[name] += 1
    if h in watch.get(db, ()):
        d.watched[h] = name
    if has_ttl:
        d.expires += 1
        if d.ttls is not None:
            d.ttls.add(h, name, expire, key_slot(batch.key(r)))
