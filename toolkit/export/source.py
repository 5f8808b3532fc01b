"""The keys of an RDB for an export: Arrow record batches, filtered, as the walk reads them.

The file is mapped and walked once with each value checked as Redis loads it (the C fast
path of ``rbkit check``, :mod:`parsers.rdb.columns`); the CRC-64 is verified at the end.
Damage raises :class:`ExportError` naming the file, offset and what was expected. Empty
collections are left out (Redis drops them when it loads the file) and counted.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from parsers.errors import FormatError
from parsers.rdb.constants import COLLECTION_TYPES
from parsers.rdb.walker import RdbWalker
from toolkit.check.locate import RDB, locate
from toolkit.columns import record_batches
from toolkit.errors import BackupIOError, ExportError
from toolkit.mapped import releasing_hook
from toolkit.server.glob import glob_matcher
from toolkit.steps import Progress

_COLLECTIONS = pa.array(sorted(COLLECTION_TYPES), pa.uint8())


@dataclass(frozen=True)
class Filters:
    """Which keys to export (None: no filter). ``types``: TYPE names (string, hash, ... or a
    module's type name); ``min_bytes``: the value's serialized size at least this."""

    dbs: Sequence[int] | None = None
    match: str | None = None
    types: Sequence[str] | None = None
    min_bytes: int | None = None


@dataclass
class Walked:
    """What the walk of one file found besides the rows."""

    path: Path
    magic: str = "REDIS"
    rdb_version: int = 0
    keys_read: int = 0
    empty_skipped: int = 0
    exported: int = 0
    all_fields_expired: int = 0  # resp: hashes left out, every field's TTL run out
    functions: list[bytes] = field(default_factory=list)


def rdb_path(backup: Path) -> Path:
    """The RDB file ``backup`` names (a file, or a data dir holding dump.rdb)."""
    try:
        found = locate(backup)
    except BackupIOError as e:
        raise ExportError(str(e)) from None
    if found.kind != RDB:
        raise ExportError(
            f"{found.path}: an AOF; rbkit export reads RDB files (load the AOF into a server "
            "and export its dump.rdb)"
        )
    return found.path


def selected(batch: pa.RecordBatch, filters: Filters) -> tuple[pa.RecordBatch, int]:
    """The rows of ``batch`` that ``filters`` keep, without the empty collections; and how
    many empty collections it held. A batch nothing is taken from is returned as it is."""
    masks = []
    n_empty = 0
    if pc.min(batch["elements"]).as_py() == 0:
        empty = pc.and_(
            pc.equal(batch["elements"], 0), pc.is_in(batch["rdb_type"], value_set=_COLLECTIONS)
        )
        n_empty = int(pc.sum(empty).as_py() or 0)
        if n_empty:
            masks.append(pc.invert(empty))
    if filters.dbs is not None:
        wanted = pa.array(list(filters.dbs), pa.int32())
        masks.append(pc.is_in(batch["db"], value_set=wanted))
    if filters.types is not None:
        wanted_types = pa.array(list(filters.types), pa.string())
        masks.append(pc.is_in(batch["type"], value_set=wanted_types))
    if filters.min_bytes is not None:
        masks.append(pc.greater_equal(batch["value_bytes"], filters.min_bytes))
    if filters.match is not None and filters.match != "*":
        match = glob_matcher(filters.match)
        names = batch["key"].to_pylist()
        masks.append(pa.array([match(k) for k in names], pa.bool_()))
    if not masks:
        return batch, 0
    keep = masks[0]
    for mask in masks[1:]:
        keep = pc.and_(keep, mask)
    return batch.filter(keep), n_empty


def read_batches(
    mm: mmap.mmap,
    walked: Walked,
    filters: Filters,
    progress: Progress | None = None,
) -> Iterator[pa.RecordBatch]:
    """The kept rows of the mapped RDB ``mm`` (with the ``value_offset``
    columns), batch by batch; ``walked`` is filled as the walk goes."""
    path = walked.path
    hook = releasing_hook(mm, progress)
    try:
        walker = RdbWalker(mm, deep=True, on_progress=hook)
        walked.magic, walked.rdb_version = walker.magic, walker.version
        for batch in record_batches(walker, with_internal=True):
            walked.keys_read += batch.num_rows
            kept, empty = selected(batch, filters)
            walked.empty_skipped += empty
            walked.exported += kept.num_rows
            if kept.num_rows:
                yield kept
    except FormatError as e:
        raise ExportError(f"{path}: not a valid RDB: {e}") from None
    checksum = walker.checksum
    if checksum is not None and checksum.status == "mismatch":
        raise ExportError(
            f"{path}: not a valid RDB: checksum mismatch (stored {checksum.stored:016x}, "
            f"computed {checksum.computed:016x}) at offset {checksum.offset}"
        )
    if walker.trailing_bytes:
        raise ExportError(
            f"{path}: not a valid RDB: {walker.trailing_bytes} byte(s) after the checksum"
        )
    walked.functions = [f.code for f in walker.functions]
