"""The diff of two RDB files out of core: both sides' keys from the C walk, spilled to disk
partitioned by key, then joined by DuckDB (embedded) a group of partitions at a time.

Each side's keys become narrow rows (:mod:`toolkit.diff.partitions`: db, two 64-bit hashes of
the name, a fingerprint, where the name starts in the file, the expiry); B's are written by a
forked process while this one writes A's (two cores). Each group of partitions goes through
one FULL OUTER JOIN on (db, name hashes) -- two names are the same key when both their XXH64
hashes (seeds 0 and 1) agree, as the in-memory join's two hashes decide it; no name goes
through the join. Keys with the same fingerprint on both sides (``_speedups.fingerprints``:
the same RDB type, value bytes and expiry -- the same value, not decoded -- or without
``values`` the same type, elements and expiry for a collection) never leave DuckDB: they are
counted (per db, type code, with or without expiry) as the keys A read less the others. The
others -- in one side only, or different in some way -- are handed back, and what the judges
need of them is read again from the files at their names' offsets (:func:`widen`): type,
elements, a string's length from its header, their names, and with ``values`` the logical
digest (:mod:`toolkit.diff.values`, half of them in a forked worker: :class:`Digests`), so the
same content written by two Redis versions still diffs as equal. They are then judged by the
same rules as the in-memory join (tally.py's ``Tally``).

Memory: a walk batch and the partitions' held rows per side while spilling; then one group of
partitions of each side in DuckDB (``MEMORY_LIMIT``: past it, it spills too) and one fetch
(``FETCH_ROWS``) of its output.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from parsers.errors import FormatError
from parsers.rdb.columns import KeyColumns, fingerprints, key_columns, values_at
from parsers.rdb.constants import COLLECTION_TYPES, TYPE_NAMES, ValueType
from parsers.rdb.decode import read_value, sorted_set_members
from parsers.rdb.strings import read_string, string_length
from parsers.rdb.walker import RdbWalker
from toolkit import lifeline
from toolkit.columns import FULL_SCHEMA, column_arrays, fixed_bytes
from toolkit.diff import partitions
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
_MODULE_2 = int(ValueType.MODULE_2)
_MODULES = (int(ValueType.MODULE_PRE_GA), _MODULE_2)
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
    "fp",
]
_TYPE_CODE = pa.field("type_code", pa.uint8())  # the type name's code (TypeCodes)
SCHEMA = pa.schema(
    [
        _TYPE_CODE if c == "type_code" else partitions.FP if c == "fp" else FULL_SCHEMA.field(c)
        for c in COLUMNS
    ]
)


class SideRows:
    """What the columnar path read of one RDB side."""

    def __init__(
        self, fd: int, magic: str, name_at: Callable[[int], bytes], mm: mmap.mmap | None = None
    ) -> None:
        self.fd = fd  # the file, for reading a value again
        self.mm = mm  # the file mapped (None: empty), for a value the C reader declines
        self.label = ""  # the side's name in errors
        self._walker: RdbWalker | None = None
        self.magic = magic
        self.name_at = name_at  # the key name whose string starts at an offset
        self.keys_read = 0
        self.empty = 0
        self.modules = 0
        self.expired = 0  # keys past their TTL by the side's expired_by: left out
        self.seconds = 0.0
        # (db, type code, has an expiry) -> keys read: the keys the join only counts are
        # these less the ones it hands back (see file_join.py's diff_files).
        self.counts: dict[tuple[int, int, bool], int] = {}
        self.counting = True

    def walker(self) -> RdbWalker:
        """A walker over the side's map, to read records at offsets."""
        if self._walker is None:
            assert self.mm is not None
            self._walker = RdbWalker(self.mm)
        return self._walker

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
    values: bool = False,
) -> Iterator[pa.RecordBatch]:
    """The side's keys (those of ``dbs`` matching ``match``, no empty collections, none
    expiring at or before ``expired_by`` ms), batch by batch, each type name as its code in
    ``types``, each key's fingerprint for ``values`` or not; ``rows`` counted as they go.
    The file was checked before: the walk is the quick one."""
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
            batch = join_batch(kc, codes, types, values)
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


def join_batch(
    batch: KeyColumns, codes: pa.Array, types: TypeCodes, values: bool = False
) -> pa.RecordBatch:
    """A batch of the C walk's columns as the join reads them (:data:`SCHEMA`): its buffers
    as they are, but for the type codes (``codes`` of :func:`type_codes`, the module values'
    from ``types``), the expiry's validity and each key's fingerprint (for ``values``)."""
    c = column_arrays(batch)
    fp = fingerprints(batch, codes.buffers()[1].to_pybytes()[:256], values)
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
        pa.Array.from_buffers(pa.uint64(), batch.rows, [None, pa.py_buffer(fp)]),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


# The keys the join hands back: in one side only, or in both with other fingerprints.
JOIN_QUERY = (
    "SELECT coalesce(a.db, b.db) AS db, "
    "a.key_hash IS NOT NULL AS in_a, b.key_hash IS NOT NULL AS in_b, "
    "a.key_offset AS a_key_offset, a.expire_ms AS a_expire_ms, "
    "b.key_offset AS b_key_offset, b.expire_ms AS b_expire_ms "
    "FROM a FULL OUTER JOIN b "
    "ON a.db = b.db AND a.key_hash = b.key_hash AND a.key_hash2 = b.key_hash2 "
    "WHERE a.key_hash IS NULL OR b.key_hash IS NULL OR a.fp <> b.fp"
)


class Joined:
    """DuckDB over two spilled sides (:mod:`toolkit.diff.partitions`), joined a group of
    partitions at a time; its scratch directory is ``directory``. :meth:`close` ends it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.con = duckdb.connect()
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute(f"SET temp_directory = '{directory / 'duckdb'}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.groups = 0

    def join(
        self,
        a: partitions.Spilled,
        b: partitions.Spilled,
        then: Callable[[pa.RecordBatch], pa.RecordBatch] = lambda batch: batch,
    ) -> Iterator[pa.RecordBatch]:
        """The keys of :data:`JOIN_QUERY` (db, in_a, in_b, each side's name offset and
        expiry), FETCH_ROWS at most at a time, in no set order, each batch passed through
        ``then``. The joins and ``then`` run in a thread of their own (DuckDB and the C
        readers let go of the GIL): the caller judges one batch while the next is made."""
        made: queue.Queue[Any] = queue.Queue(maxsize=2)
        stop = threading.Event()

        def make() -> None:
            try:
                for batch in self._join(a, b):
                    if stop.is_set():
                        return
                    made.put(then(batch))
                made.put(None)
            except BaseException as e:  # handed to the caller, raised there
                made.put(e)

        thread = threading.Thread(target=make, name="rbkit-diff-join", daemon=True)
        thread.start()
        try:
            while (got := made.get()) is not None:
                if isinstance(got, BaseException):
                    raise got
                yield got
        finally:
            stop.set()
            self.con.interrupt()
            while thread.is_alive():  # let it see the stop: take what it still puts
                with contextlib.suppress(queue.Empty):
                    made.get(timeout=0.05)
            thread.join()

    def _join(self, a: partitions.Spilled, b: partitions.Spilled) -> Iterator[pa.RecordBatch]:
        readers = [partitions.Reader(a), partitions.Reader(b)]
        try:
            for parts in partitions.groups(a, b):
                self.groups += 1
                self.con.register("a", readers[0].table(parts))
                self.con.register("b", readers[1].table(parts))
                relation = self.con.sql(JOIN_QUERY)
                # DuckDB 1.x names it record_batch, 2.x to_arrow_reader.
                fetch = getattr(relation, "to_arrow_reader", None) or relation.record_batch
                yield from fetch(FETCH_ROWS)
        except duckdb.Error as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DiffError(f"joining the two sides failed (DuckDB): {first}") from None
        finally:
            for reader in readers:
                reader.close()

    def close(self) -> None:
        self.con.close()


def widen(
    batch: pa.RecordBatch, sides: list[SideRows], codes: pa.Array, types: TypeCodes
) -> pa.RecordBatch:
    """A batch of the join's keys with what the judges read of each side (``{a,b}_`` +
    key_offset, type_code, rdb_type, elements, value_bytes, expire_ms, value_offset; null for
    a side the key is not in), read again from the files at the names' offsets."""
    n = len(batch)
    names = ["db", "in_a", "in_b"]
    arrays = [batch["db"], batch["in_a"], batch["in_b"]]
    for s, rows in zip("ab", sides, strict=True):
        offsets = batch[f"{s}_key_offset"]
        columns: dict[str, pa.Array] = {"key_offset": offsets}
        if offsets.null_count == n:  # no key of this batch is on this side
            nulls = pa.nulls(n, pa.int64())
            columns |= {
                "type_code": pa.nulls(n, pa.uint8()),
                "rdb_type": pa.nulls(n, pa.uint8()),
                "elements": nulls,
                "value_bytes": nulls,
                "expire_ms": batch[f"{s}_expire_ms"],
                "value_offset": nulls,
            }
        else:
            columns |= _side_values(batch, s, rows, codes, types)
        for name, array in columns.items():
            names.append(f"{s}_{name}")
            arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _side_values(
    batch: pa.RecordBatch, s: str, rows: SideRows, codes: pa.Array, types: TypeCodes
) -> dict[str, pa.Array]:
    """:func:`widen`'s columns of side ``s`` but its name offsets, read from its file."""
    n = len(batch)
    offsets = batch[f"{s}_key_offset"]
    present = offsets.is_valid()
    walker = rows.walker()
    try:
        got, *numbers = values_at(
            walker,
            rows.fd,
            fixed_bytes(pc.fill_null(offsets, -1), 8),
            lambda i: batch["db"][i].as_py(),
        )
    except FormatError as e:
        raise DiffError(f"{rows.label}: {e}") from None
    value_offset, value_bytes, elements = (
        pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(b)]) for b in numbers
    )
    rdb_type = pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(got)])
    type_code = codes.take(rdb_type)
    i = got.find(_MODULE_2)
    if i >= 0:  # a module value's type is its module's name: row by row
        row_codes = type_code.to_pylist()
        starts = memoryview(numbers[0]).cast("q")
        while i >= 0:
            row_codes[i] = types.code(walker.module_name_at(starts[i]))
            i = got.find(_MODULE_2, i + 1)
        type_code = pa.array(row_codes, pa.uint8())
    absent = pa.scalar(None, pa.int64())
    return {
        "type_code": pc.if_else(present, type_code, pa.scalar(None, pa.uint8())),
        "rdb_type": pc.if_else(present, rdb_type, pa.scalar(None, pa.uint8())),
        "elements": pc.if_else(present, elements, absent),
        "value_bytes": pc.if_else(present, value_bytes, absent),
        "expire_ms": batch[f"{s}_expire_ms"],
        "value_offset": pc.if_else(present, value_offset, absent),
    }


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
            self.pool = ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=lifeline.detach_child
            )
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
