"""One side of the out-of-core diff spilled to disk, partitioned by key: the join's input.

Each key becomes a narrow row (:data:`NARROW`: db, the name's two hashes, the fingerprint of
``_speedups.fingerprints``, where its name starts in the file and its expiry) written to a
scratch Arrow IPC file, radix-partitioned by the top :data:`PARTITION_BITS` bits of the name's
first hash. A key is in the same partition on both sides, so the sides are joined a group of
consecutive partitions at a time (:func:`groups`), each group small enough to join in memory:
no hash table of a whole side, and no DuckDB spill of its own.

Memory: a walk batch, and up to :data:`FLUSH_ROWS` rows held per partition until written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from toolkit.columns import FULL_SCHEMA
from toolkit.errors import DiffError

PARTITION_BITS = 8
PARTITIONS = 1 << PARTITION_BITS
# A partition's held rows are written out as one IPC batch once they are this many.
FLUSH_ROWS = 4096
# The most rows of one side joined at once (consecutive partitions up to it make a group).
GROUP_ROWS = 1_000_000
# fingerprints(): the keys the join only counts have the same one on both sides.
FP = pa.field("fp", pa.uint64())
# The join's columns, typed as the C walk's (toolkit/columns.py).
NARROW = pa.schema(
    [
        FP if name == "fp" else FULL_SCHEMA.field(name)
        for name in ("db", "key_hash", "key_hash2", "fp", "key_offset", "expire_ms")
    ]
)
_SHIFT = pa.scalar(64 - PARTITION_BITS, pa.uint64())


@dataclass
class Spilled:
    """Where a side's rows went: the IPC file, and for each partition the numbers of its
    batches in that file and its row count."""

    path: Path
    batches: list[list[int]] = field(default_factory=lambda: [[] for _ in range(PARTITIONS)])
    rows: list[int] = field(default_factory=lambda: [0] * PARTITIONS)


def spill(batches: Iterator[pa.RecordBatch], path: Path) -> Spilled:
    """Write the narrow columns of ``batches`` to ``path``, partitioned (see the module); a
    DiffError if it cannot be written (a full disk: about 44 bytes a key)."""
    try:
        return _spill(batches, path)
    except OSError as e:
        code = e.errno or next(map(int, re.findall(r"\[errno (\d+)\]", str(e))), 0)
        reason = os.strerror(code) if code else str(e).splitlines()[0]
        raise DiffError(
            f"cannot write the diff's scratch file {path}: {reason} (about 44 bytes a key; "
            "TMPDIR picks another directory)"
        ) from None


def _spill(batches: Iterator[pa.RecordBatch], path: Path) -> Spilled:
    out = Spilled(path)
    held: list[list[pa.RecordBatch]] = [[] for _ in range(PARTITIONS)]
    held_rows = [0] * PARTITIONS
    written = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, NARROW) as writer:

        def flush(p: int) -> None:
            nonlocal written
            table = pa.Table.from_batches(held[p], NARROW).combine_chunks()
            for batch in table.to_batches():
                writer.write_batch(batch)
                out.batches[p].append(written)
                written += 1
            held[p] = []
            held_rows[p] = 0

        for batch in batches:
            if not batch.num_rows:
                continue
            narrow = pa.RecordBatch.from_arrays([batch[f.name] for f in NARROW], schema=NARROW)
            part = pc.cast(pc.shift_right(narrow["key_hash"], _SHIFT), pa.int64())
            order = pc.sort_indices(part)
            narrow = narrow.take(order)
            counts = pc.value_counts(pc.take(part, order))
            start = 0
            for p, n in zip(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
            ):
                held[p].append(narrow.slice(start, n))
                start += n
                out.rows[p] += n
                held_rows[p] += n
                if held_rows[p] >= FLUSH_ROWS:
                    flush(p)
        for p in range(PARTITIONS):
            if held[p]:
                flush(p)
    return out


def groups(a: Spilled, b: Spilled, rows: int | None = None) -> list[range]:
    """Consecutive partitions joined together: as many as keep both sides within ``rows``
    (:data:`GROUP_ROWS`; a partition bigger than that alone)."""
    rows = GROUP_ROWS if rows is None else rows
    out: list[range] = []
    start = 0
    n_a = n_b = 0
    for p in range(PARTITIONS):
        if p > start and (n_a + a.rows[p] > rows or n_b + b.rows[p] > rows):
            out.append(range(start, p))
            start, n_a, n_b = p, 0, 0
        n_a += a.rows[p]
        n_b += b.rows[p]
    out.append(range(start, PARTITIONS))
    return out


class Reader:
    """A spilled side, read back a group of partitions at a time (:meth:`table`)."""

    def __init__(self, spilled: Spilled) -> None:
        self.spilled = spilled
        self._file = pa.OSFile(str(spilled.path), "rb")  # read, not mapped: no pages kept
        self._reader = pa.ipc.open_file(self._file)

    def table(self, parts: range) -> pa.Table:
        numbers = [i for p in parts for i in self.spilled.batches[p]]
        return pa.Table.from_batches([self._reader.get_batch(i) for i in numbers], NARROW)

    def close(self) -> None:
        self._file.close()
