"""The diff of two RDB files out of core: both sides as Arrow record batches from the C walk,
joined by DuckDB (embedded, under a memory limit, spilling to a temporary directory).

Each side's keys (:mod:`toolkit.columns`: db, two 64-bit hashes of the name, type, RDB type,
elements, expiry, value size and XXH64 of the value's bytes) stream into one FULL OUTER JOIN on
(db, name hashes) -- two names are the same key when both their XXH64 hashes (seeds 0 and 1)
agree, as the in-memory join's two hashes decide it; no name goes through the join -- which
sorts each key into a class: the same value bytes (the same RDB type, size and hash: the same
value, not decoded) and expiry; without ``values``, the same type, elements and expiry for a
collection; or anything else -- in one side only, a string, different in some way. The first
two never leave DuckDB: they are counted (per db, type code, with or without expiry) as the
keys A read less the others, which it hands back and which are read again from the files
(their names too): a string's length from its header, and with ``values`` the logical digest
(:mod:`toolkit.diff.values`, half of them in a forked worker: :class:`Digests`), so the same
content written by two Redis versions still diffs as equal. They are then judged by the same
rules as the in-memory join (compute.py's ``_Tally``).

Memory: DuckDB's own (``MEMORY_LIMIT``: its hash table of one side spills past it), one Arrow
batch per side at a time as the join reads them, and one fetch (``FETCH_ROWS``) of its output.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from parsers.errors import FormatError
from parsers.rdb.columns import KeyColumns, key_columns
from parsers.rdb.constants import COLLECTION_TYPES, TYPE_NAMES, ValueType
from parsers.rdb.decode import read_value, sorted_set_members
from parsers.rdb.strings import read_string, string_length
from parsers.rdb.walker import RdbWalker
from toolkit import lifeline
from toolkit.columns import FULL_SCHEMA, column_arrays
from toolkit.diff.table import TypeCodes
from toolkit.diff.values import digest, set_digest, string_digest
from toolkit.errors import DiffError
from toolkit.mapped import releasing_hook
from toolkit.server.glob import glob_matcher
from toolkit.steps import ProgressFactory, no_progress

# DuckDB's memory limit: past it its joins and sorts spill to the scratch directory.
MEMORY_LIMIT = "256MB"  # 128MB failed to pin a block joining two files of 22 M keys
# The most bytes a string's header takes (type bits, then an LZF string's two lengths).
STRING_HEADER = 32
# Differing keys fetched from DuckDB at a time.
FETCH_ROWS = 65536
_STRING = int(ValueType.STRING)
_PLAIN_SET = int(ValueType.SET)
_MODULES = (int(ValueType.MODULE_PRE_GA), int(ValueType.MODULE_2))
_TYPE_NAMES = [TYPE_NAMES.get(t, "?") for t in range(256)]  # as toolkit/columns.py names them
_COLLECTIONS = pa.array(sorted(COLLECTION_TYPES), pa.uint8())
COLUMNS = [
    "db",
    "key_hash",
    "key_hash2",
    "key_offset",
    "type_code",
    "rdb_type",
    "elements",
    "value_bytes",
    "expire_ms",
    "value_hash",
    "value_offset",
]
_TYPE_CODE = pa.field("type_code", pa.uint8())  # the type name's code (TypeCodes)
SCHEMA = pa.schema([_TYPE_CODE if c == "type_code" else FULL_SCHEMA.field(c) for c in COLUMNS])


class SideRows:
    """What the columnar path read of one RDB side."""

    def __init__(self, fd: int, magic: str, name_at: Callable[[int], bytes]) -> None:
        self.fd = fd  # the file, for reading a value again
        self.magic = magic
        self.name_at = name_at  # the key name whose string starts at an offset
        self.keys_read = 0
        self.empty = 0
        self.modules = 0
        self.expired = 0  # keys past their TTL by the side's expired_by: left out
        self.seconds = 0.0
        # (db, type code, has an expiry) -> keys read: the keys the join only counts are
        # these less the ones it hands back (see compute.py's _diff_files).
        self.counts: dict[tuple[int, int, bool], int] = {}
        self.counting = True

    def count(self, batch: pa.RecordBatch) -> None:
        """Add a batch's keys to :attr:`counts` (unless ``counting`` is off)."""
        n = batch.num_rows
        if not n or not self.counting:
            return
        code, expire = batch["type_code"], batch["expire_ms"]
        low, high = (v.as_py() for v in pc.min_max(batch["db"]).values())
        if low == high and expire.null_count in (0, n):  # one db, all or none expiring
            cells = pc.value_counts(code)
            found = ((low, c, expire.null_count == 0) for c in cells.field("values").to_pylist())
        else:
            i64 = pa.int64()
            expiring = pc.cast(expire.is_valid(), i64)
            db = pc.cast(batch["db"], i64)
            cells = pc.value_counts(
                pc.add(pc.multiply(db, 512), pc.add(pc.multiply(pc.cast(code, i64), 2), expiring))
            )
            found = (
                (c >> 9, (c & 511) >> 1, bool(c & 1)) for c in cells.field("values").to_pylist()
            )
        for key, k in zip(found, cells.field("counts").to_pylist(), strict=True):
            self.counts[key] = self.counts.get(key, 0) + k


def side_batches(
    mm: mmap.mmap,
    label: str,
    rows: SideRows,
    dbs: set[int] | None,
    match: str | None,
    progress: ProgressFactory | None,
    types: TypeCodes,
    expired_by: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The side's keys (those of ``dbs`` matching ``match``, no empty collections, none
    expiring at or before ``expired_by`` ms), batch by batch, each type name as its code in
    ``types``; ``rows`` counted as they go. The file was checked before: the walk is the
    quick one."""
    started = time.monotonic()
    bar = (progress or no_progress)(f"reading {label}")
    hook = releasing_hook(mm, bar)
    matcher = glob_matcher(match) if match is not None and match != "*" else None
    wanted = pa.array(sorted(dbs), pa.int32()) if dbs is not None else None
    try:
        walker = RdbWalker(mm, on_progress=hook)
        rows.magic = walker.magic
        codes = type_codes(types)
        for kc in key_columns(walker):
            batch = join_batch(kc, codes, types)
            masks = []
            if wanted is not None:
                masks.append(pc.is_in(batch["db"], value_set=wanted))
            if matcher is not None:
                names = pa.Array.from_buffers(
                    pa.large_binary(),
                    kc.rows,
                    [None, pa.py_buffer(kc.columns[7]), pa.py_buffer(kc.names)],
                )
                masks.append(pa.array([matcher(k) for k in names.to_pylist()]))
            if masks:
                keep = masks[0]
                for m in masks[1:]:
                    keep = pc.and_(keep, m)
                batch = batch.filter(keep)
            if batch.num_rows and pc.min(batch["elements"]).as_py() == 0:
                empty = pc.and_(
                    pc.equal(batch["elements"], 0),
                    pc.is_in(batch["rdb_type"], value_set=_COLLECTIONS),
                )
                n_empty = int(pc.sum(empty).as_py() or 0)
                if n_empty:
                    batch = batch.filter(pc.invert(empty))
                rows.empty += n_empty
            if expired_by is not None:
                gone = pc.fill_null(pc.less_equal(batch["expire_ms"], expired_by), False)
                n_gone = int(pc.sum(gone).as_py() or 0)
                if n_gone:
                    batch = batch.filter(pc.invert(gone))
                    rows.expired += n_gone
            if kc.modules:
                rows.modules += int(
                    pc.sum(
                        pc.is_in(batch["rdb_type"], value_set=pa.array(_MODULES, pa.uint8()))
                    ).as_py()
                    or 0
                )
            rows.keys_read += batch.num_rows
            rows.count(batch)
            yield batch
    except FormatError as e:
        raise DiffError(f"{label}: {e}") from None
    finally:
        if bar is not None:
            bar.close()
        rows.seconds = time.monotonic() - started


def type_codes(types: TypeCodes) -> pa.Array:
    """RDB type byte -> the code in ``types`` of its type name (uint8; a module value's
    name is its module's, set row by row in :func:`join_batch`)."""
    return pa.array(
        [0 if t in _MODULES else types.code(_TYPE_NAMES[t]) for t in range(256)], pa.uint8()
    )


def join_batch(batch: KeyColumns, codes: pa.Array, types: TypeCodes) -> pa.RecordBatch:
    """A batch of the C walk's columns as the join reads them (:data:`SCHEMA`): its buffers
    as they are, but for the type codes (``codes`` of :func:`type_codes`, the module values'
    from ``types``) and the expiry's validity."""
    c = column_arrays(batch)
    type_code = codes.take(c["type_id"])
    if batch.modules:  # a module value's type is its module's name: row by row
        row_codes = type_code.to_pylist()
        for row, module in batch.modules.items():
            row_codes[row] = types.code(module)
        type_code = pa.array(row_codes, pa.uint8())
    arrays = [
        c["db"],
        c["key_hash"],
        c["key_hash2"],
        c["key_offset"],
        type_code,
        c["type_id"],
        c["elements"],
        c["value_bytes"],
        c["expire_ms"],
        c["value_hash"],
        c["value_offset"],
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def join_query(values: bool) -> str:
    """The one pass over both sides: the keys of class OTHER, with each side's columns (null
    for a side the key is not in). The others are only counted, by what each side read less
    these (compute.py's ``_diff_files``): they never leave DuckDB."""
    same_bytes = (
        "a.rdb_type = b.rdb_type AND a.type_code = b.type_code "
        "AND a.value_bytes = b.value_bytes AND a.value_hash = b.value_hash "
        "AND a.expire_ms IS NOT DISTINCT FROM b.expire_ms"
    )
    same_meta = (
        "a.type_code = b.type_code AND a.rdb_type <> 0 AND b.rdb_type <> 0 "
        "AND a.elements = b.elements AND a.expire_ms IS NOT DISTINCT FROM b.expire_ms"
    )
    counted = f"({same_bytes})" if values else f"({same_bytes}) OR ({same_meta})"
    fields = [c for c in COLUMNS if c not in ("db", "key_hash", "key_hash2")]
    sides = ", ".join(f"{s}.{c} AS {s}_{c}" for s in "ab" for c in fields)
    return (
        "SELECT coalesce(a.db, b.db) AS db, "
        f"a.key_hash IS NOT NULL AS in_a, b.key_hash IS NOT NULL AS in_b, {sides} "
        "FROM a FULL OUTER JOIN b "
        "ON a.db = b.db AND a.key_hash = b.key_hash AND a.key_hash2 = b.key_hash2 "
        f"WHERE a.key_hash IS NULL OR b.key_hash IS NULL OR NOT ({counted})"
    )


class Joined:
    """DuckDB over the two sides' batches (registered as tables a and b, read once), in a
    scratch directory it spills to; closed with :meth:`close`."""

    def __init__(self) -> None:
        self.directory = lifeline.scratch_dir("rbkit-diff-join-")
        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute(f"SET temp_directory = '{self.directory}'")
        self.con.execute("SET preserve_insertion_order = false")

    def register(self, table: str, batches: Iterator[pa.RecordBatch]) -> None:
        """Table ``table`` (a or b): the batches of :func:`side_batches`, read by the join."""
        self.con.register(table, pa.RecordBatchReader.from_batches(SCHEMA, batches))

    def join(self, values: bool) -> Iterator[pa.RecordBatch]:
        """The joined keys (:func:`join_query`), FETCH_ROWS at a time, in no set order."""
        try:
            relation = self.con.sql(join_query(values))
            # DuckDB 1.x names it record_batch, 2.x to_arrow_reader.
            fetch = getattr(relation, "to_arrow_reader", None) or relation.record_batch
            yield from fetch(FETCH_ROWS)
        except duckdb.Error as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DiffError(f"joining the two sides failed (DuckDB): {first}") from None

    def close(self) -> None:
        self.con.close()
        lifeline.remove_dir(self.directory)


def row_values(
    rows: SideRows, rdb_type: int, offset: int, value_bytes: int, elements: int, values: bool
) -> tuple[int | None, bytes | None]:
    """(size, digest) of one value read again from its side's file: STRLEN for a string, the
    elements of a collection, None for a module value; the logical digest with ``values``.

    Read with pread, not through the map: these values are scattered over the file, and mapped
    pages touched at random would stay in RSS."""
    module = rdb_type in _MODULES
    if rdb_type != _STRING and not values:
        return (None if module else elements), None
    if not values:  # STRLEN is in the string's header: its first bytes are enough
        return string_length(os.pread(rows.fd, min(value_bytes, STRING_HEADER), offset), 0), None
    raw = os.pread(rows.fd, value_bytes, offset)
    if rdb_type == _STRING:
        size = string_length(raw, 0)
        return size, string_digest(read_string(raw, 0)[0]) if values else None
    if rdb_type == _PLAIN_SET:
        members = sorted_set_members(raw)
        if members is not None:
            return elements, set_digest(*members)
    value = read_value(raw, rdb_type, 0, magic=rows.magic)[0]
    return (None if module else elements), digest(value, raw if module else None)


# The sides a forked digest worker reads (set before it is forked: it inherits them, files open).
_SIDES: list[SideRows] = []
# Fewer values than this in a batch are digested here, not shared with the worker.
SHARE_FROM = 256


def _digest_rows(rows: list[tuple[int, int, int, int, int]]) -> list[tuple[Any, Any] | str]:
    """(size, digest) of each (side, rdb_type, offset, value_bytes, elements), or the text of
    the FormatError reading it raised."""
    out: list[tuple[Any, Any] | str] = []
    for s, rdb_type, offset, nbytes, elements in rows:
        try:
            out.append(row_values(_SIDES[s], rdb_type, offset, nbytes, elements, True))
        except FormatError as e:
            out.append(str(e))
    return out


class Digests:
    """The logical digests of ``--values``, shared with one forked worker process (two
    cores): decoding the values that differ by their bytes is most of such a diff. Made
    before DuckDB starts (the worker is forked at once); :meth:`close` ends it."""

    def __init__(self, sides: list[SideRows]) -> None:
        global _SIDES
        _SIDES = sides
        self.pool: ProcessPoolExecutor | None = None
        forks = "fork" in multiprocessing.get_all_start_methods()
        if forks and (os.cpu_count() or 1) > 1:
            context = multiprocessing.get_context("fork")
            self.pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
            try:
                self.pool.submit(int).result()  # forked now, while this process has one thread
            except (OSError, BrokenProcessPool):  # no process to be had: all done here
                self.close()

    def run(self, rows: list[tuple[int, int, int, int, int]]) -> list[tuple[Any, Any] | str]:
        """:func:`_digest_rows` of ``rows``, half of them in the worker."""
        if self.pool is None or len(rows) < SHARE_FROM:
            return _digest_rows(rows)
        half = len(rows) // 2
        theirs = self.pool.submit(_digest_rows, rows[half:])
        try:
            mine = _digest_rows(rows[:half])
        except BaseException:
            theirs.cancel()
            raise
        return mine + theirs.result()

    def close(self) -> None:
        if self.pool is not None:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
