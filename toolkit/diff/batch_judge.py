"""The keys the columnar join hands back, judged a fetched batch at a time with Arrow compute
(no Python object per key): the same verdicts as file_join.py's per-key ``_judge_batch``,
which stays the path for a batch this one declines.

For each batch: the key names (from B's file for a key B has, else A's) and each string's
STRLEN are read at their offsets by the C accelerator (:func:`parsers.rdb.columns.strings_at`,
pread: scattered reads that leave no mapped pages in RSS); every key is sorted into a class
by masks (only in A: expired by B's time or removed; only in B: added; in both: the kinds of
difference, as ``Tally.compare`` lists them, or unchanged); the classes are counted per
(db, type) with ``value_counts``; the differing keys go into the report's KeyList as
columns. Only ``--values`` digests (decoding values) and ``--prefix-sep`` families are
still done per key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from parsers.rdb.columns import string_lengths_at, strings_at
from parsers.rdb.constants import ValueType
from toolkit.columns import fixed_bytes
from toolkit.diff.model import (
    ADDED,
    EXPIRED,
    REMOVED,
    SIZE,
    TTL_CHANGED,
    TTL_GAINED,
    TTL_LOST,
    TYPE,
    VALUE,
    Counts,
    DbDiff,
)
from toolkit.diff.table import NO_TTL, UNKNOWN_TTL
from toolkit.errors import DiffError

if TYPE_CHECKING:
    from toolkit.diff.columnar import Digests, SideRows

# A key's class: a bit per kind of difference of a key in both sides (as Tally.compare
# orders them), or one of the three classes of a key in one side only.
_BITS = ((1, TYPE), (2, SIZE), (4, TTL_GAINED), (8, TTL_LOST), (16, TTL_CHANGED), (32, VALUE))
_REMOVED, _ADDED, _EXPIRED = 64, 128, 256
# The Counts field each class adds to (changed: any of the bits).
_ONE_SIDE = {_REMOVED: (REMOVED, "removed"), _ADDED: (ADDED, "added"), _EXPIRED: (EXPIRED, "")}
_STRING = int(ValueType.STRING)
_MODULES = pa.array([int(ValueType.MODULE_PRE_GA), int(ValueType.MODULE_2)], pa.uint8())
_I64 = pa.int64()


def kinds_of(code: int) -> tuple[str, ...]:
    """The kinds of difference a class code stands for."""
    if code in _ONE_SIDE:
        return (_ONE_SIDE[code][0],)
    return tuple(kind for bit, kind in _BITS if code & bit)


def _int64s(data: bytearray) -> pa.Array:
    return pa.Array.from_buffers(_I64, len(data) // 8, [None, pa.py_buffer(data)])


def _names(rows: SideRows, offsets: pa.Array) -> pa.Array | None:
    """The names at these offsets of a side's file (null: none), or None: not read here."""
    got = strings_at(rows.fd, fixed_bytes(pc.fill_null(offsets, -1), 8))
    if got is None:
        return None
    data, ends = got
    n = len(offsets)
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(ends), pa.py_buffer(data)]
    )


def _sizes(rows: SideRows, rdb_type: pa.Array, offset: pa.Array, elements: pa.Array) -> Any:
    """Each key's size on a side: STRLEN of a string (read from its header), null for a
    module value (or no key), the elements of a collection; None: not read here."""
    strings = pc.fill_null(pc.equal(rdb_type, _STRING), False)
    lengths = string_lengths_at(
        rows.fd, fixed_bytes(pc.if_else(strings, offset, -1).fill_null(-1), 8)
    )
    if lengths is None:
        return None
    modules = pc.fill_null(pc.is_in(rdb_type, value_set=_MODULES), False)
    size = pc.if_else(strings, _int64s(lengths), elements)
    return pc.if_else(modules, pa.nulls(len(size), _I64), size)


def judge_batch(
    tally: Any,
    sides: list[SideRows],
    batch: pa.RecordBatch,
    digests: Digests | None,
    type_names: list[str],
    handed: dict[tuple[int, int, bool], int],
) -> bool:
    """Judge a batch of the join's output into ``tally`` (tally.py's ``Tally``), the keys
    of A among them counted in ``handed``; False when it must be judged key by key instead
    (a name or string header the C reader did not read, or no C accelerator), with nothing
    changed yet."""
    col = batch.column
    in_a, in_b = col("in_a"), col("in_b")
    names = _names(sides[1], col("b_key_offset"))
    names_a = _names(sides[0], pc.if_else(in_b, pa.scalar(None, _I64), col("a_key_offset")))
    size_a = _sizes(sides[0], col("a_rdb_type"), col("a_value_offset"), col("a_elements"))
    size_b = _sizes(sides[1], col("b_rdb_type"), col("b_value_offset"), col("b_elements"))
    if names is None or names_a is None or size_a is None or size_b is None:
        return False
    names = pc.if_else(in_b, names, names_a)
    db = pc.cast(col("db"), _I64)
    code_a, code_b = pc.cast(col("a_type_code"), _I64), pc.cast(col("b_type_code"), _I64)
    exp_a = pc.fill_null(col("a_expire_ms"), NO_TTL)
    exp_b = pc.fill_null(col("b_expire_ms"), NO_TTL)
    both = pc.and_(in_a, in_b)

    # --values: the logical digests of the keys in both sides (decoded, two processes).
    value_bits = None
    compared = 0
    if digests is not None:
        value_bits, compared = _value_differences(batch, digests, both, names)

    # Each key's class.
    no_ttl_a, no_ttl_b = pc.equal(exp_a, NO_TTL), pc.equal(exp_b, NO_TTL)
    type_diff = pc.not_equal(code_a, code_b)
    size_diff = pc.and_(pc.invert(type_diff), pc.fill_null(pc.not_equal(size_a, size_b), False))
    ttl_differs = pc.not_equal(exp_a, exp_b)
    gained = pc.and_(ttl_differs, no_ttl_a)
    lost = pc.and_(ttl_differs, pc.and_(pc.invert(no_ttl_a), no_ttl_b))
    known = pc.and_(pc.not_equal(exp_a, UNKNOWN_TTL), pc.not_equal(exp_b, UNKNOWN_TTL))
    apart = pc.greater(pc.abs(pc.subtract(exp_a, exp_b)), tally.tolerance)
    ttl_changed = pc.and_(
        pc.and_(ttl_differs, pc.invert(pc.or_(no_ttl_a, no_ttl_b))), pc.and_(known, apart)
    )
    bits = [type_diff, size_diff, gained, lost, ttl_changed]
    code = pa.scalar(0, _I64)
    for (bit, _), mask in zip(_BITS, bits, strict=False):
        code = pc.add(code, pc.if_else(pc.fill_null(mask, False), bit, 0))
    if value_bits is not None:
        code = pc.add(code, value_bits)
    expired = pc.and_(pc.invert(no_ttl_a), pc.not_equal(exp_a, UNKNOWN_TTL))
    if tally.b_time is None:
        expired = pa.repeat(False, len(batch))  # type: ignore[attr-defined]
    else:
        expired = pc.and_(expired, pc.less_equal(exp_a, tally.b_time))
    only_a = pc.and_(in_a, pc.invert(in_b))
    code = pc.case_when(
        pc.make_struct(pc.and_(only_a, expired), only_a, pc.invert(in_a)),
        pa.scalar(_EXPIRED, _I64),
        pa.scalar(_REMOVED, _I64),
        pa.scalar(_ADDED, _I64),
        code,
    )

    # Counts: each side's keys under its type, each key's class under its type (A's for a
    # key B lacks, else B's).
    report = tally.report
    expiring_a = pc.cast(pc.invert(no_ttl_a), _I64)
    expiring_b = pc.cast(pc.invert(no_ttl_b), _I64)
    for (d, c), n in _cells(db, pc.add(pc.multiply(code_a, 2), expiring_a), in_a):
        cell = (d, c >> 1, bool(c & 1))
        handed[cell] = handed.get(cell, 0) + n
        dd = _db(report, d)
        dd.keys.a += n
        _type_counts(dd, type_names[c >> 1]).a += n
        dd.expires_a += n if c & 1 else 0
    for (d, c), n in _cells(db, pc.add(pc.multiply(code_b, 2), expiring_b), in_b):
        dd = _db(report, d)
        dd.keys.b += n
        _type_counts(dd, type_names[c >> 1]).b += n
        dd.expires_b += n if c & 1 else 0
    owner = pc.if_else(in_b, code_b, code_a)
    for (d, packed), n in _cells(db, pc.add(pc.multiply(code, 256), owner)):
        klass, type_code = packed >> 8, packed & 255
        dd = _db(report, d)
        counts = _type_counts(dd, type_names[type_code])
        if klass == 0:
            dd.keys.unchanged += n
            counts.unchanged += n
            continue
        if klass == _EXPIRED:
            dd.keys.expired += n
            counts.expired += n
            report.keys_expired += n
        else:
            field = _ONE_SIDE[klass][1] if klass in _ONE_SIDE else "changed"
            setattr(dd.keys, field, getattr(dd.keys, field) + n)
            setattr(counts, field, getattr(counts, field) + n)
            report.keys_differing += n
        for kind in kinds_of(klass):
            tally.by_kind[kind] = tally.by_kind.get(kind, 0) + n
    report.values_compared += compared

    # The differing (and expired) keys: into the listed keys as columns; their families.
    listed = pc.not_equal(code, 0)
    if pc.any(listed).as_py():
        rows = pc.indices_nonzero(listed)
        kept_codes = pc.take(code, rows)
        kept_names = pc.take(names, rows)
        tally.listed.extend(
            pc.take(db, rows),
            kept_names,
            kept_codes,
            [kinds_of(k) for k in range(_EXPIRED + 1)],
            type_names,
            [
                (
                    pc.take(pc.if_else(present, side_code, -1), rows),
                    pc.take(side_exp, rows),
                    pc.take(pc.fill_null(side_size, -1), rows),
                )
                for present, side_code, side_exp, side_size in (
                    (in_a, code_a, exp_a, size_a),
                    (in_b, code_b, exp_b, size_b),
                )
            ],
        )
        if tally.sep is not None:
            _families(tally, kept_names, kept_codes)
    return True


def _value_differences(
    batch: pa.RecordBatch,
    digests: Digests,
    both: pa.Array,
    names: pa.Array,
) -> tuple[pa.Array, int]:
    """With --values: the VALUE bit of each key (in both sides, the same type, both digests
    known and different), and how many keys in both sides had their values compared."""
    rows = pc.indices_nonzero(both).to_pylist()
    fields = ("rdb_type", "value_offset", "value_bytes", "elements")
    cols = [[batch.column(f"{s}_{f}").to_pylist() for f in fields] for s in "ab"]
    wanted = [(s, *(c[i] for c in cols[s])) for i in rows for s in (0, 1)]
    found = digests.run(wanted)
    same_type = pc.equal(batch.column("a_type_code"), batch.column("b_type_code")).to_pylist()
    bits = [0] * len(batch)
    compared = 0
    for n, i in enumerate(rows):
        got_a, got_b = found[2 * n], found[2 * n + 1]
        for got in (got_a, got_b):
            if isinstance(got, str):
                raise DiffError(f"{names[i].as_py()!r}: {got}")
        digest_a, digest_b = got_a[1], got_b[1]  # type: ignore[index]
        if not same_type[i] or digest_a is None or digest_b is None:
            continue
        compared += 1  # as Tally.unchanged and .changed count them
        if digest_a != digest_b:
            bits[i] = 32
    return pa.array(bits, _I64), compared


def _cells(db: pa.Array, value: pa.Array, where: pa.Array | None = None) -> list[Any]:
    """((db, value), rows) for each distinct pair among the rows ``where`` holds (all rows
    without it); ``value`` below 2**24."""
    keys = pc.add(pc.multiply(db, 1 << 24), value)
    if where is not None:
        keys = pc.filter(keys, where)
    found = pc.value_counts(keys)
    return [
        ((k >> 24, k & 0xFFFFFF), n)
        for k, n in zip(
            found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True
        )
    ]


def _db(report: Any, db: int) -> DbDiff:
    dd: DbDiff = report.databases.setdefault(db, DbDiff())
    return dd


def _type_counts(dd: DbDiff, type_name: str) -> Counts:
    c = dd.by_type.get(type_name)
    if c is None:
        c = dd.by_type[type_name] = Counts()
    return c


# The slot of a class in a key family's [removed, added, changed]; an expired key is in none.
_SLOTS = {_REMOVED: 0, _ADDED: 1, _EXPIRED: -1}


def _families(tally: Any, names: pa.Array, codes: pa.Array) -> None:
    """Count the listed keys in their families (name up to --prefix-sep), key by key."""
    sep = tally.sep
    prefixes = tally.prefixes
    for key, klass in zip(names.to_pylist(), codes.to_pylist(), strict=True):
        slot = _SLOTS.get(klass, 2)
        if slot < 0:
            continue
        prefix = key.split(sep, 1)[0] if sep in key else b""
        p = prefixes.get(prefix)
        if p is None:
            p = prefixes[prefix] = [0, 0, 0]
        p[slot] += 1
