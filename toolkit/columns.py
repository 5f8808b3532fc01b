"""The per-key records of an RDB (:mod:`parsers.rdb.columns`) as Apache Arrow record batches.

The columns the C walk filled are handed to Arrow as they are (``Array.from_buffers`` over
the batch's bytearrays: no copy, no Python object per key); only the type and encoding names
are taken from small tables by type byte. The schema (docs/export.md)::

    db           int32
    key          large_binary   the key name, exactly as stored
    type         string         what TYPE says (string, list, ..., or the module's type name)
    encoding     string         the RDB encoding read (listpack, quicklist, intset, ...)
    rdb_type     uint8          the RDB value type byte it was read from
    elements     int64          1 for a string; items, members, fields or entries otherwise
    value_bytes  int64          the value's serialized size in the file
    expire_ms    int64          absolute expiry, Unix ms; null for none
    value_hash   uint64         XXH64 (seed 0) of the value's serialized bytes

``with_internal=True`` adds ``value_offset`` (int64, where the value starts in the file),
``key_hash`` and ``key_hash2`` (uint64, XXH64 of the name with seeds 0 and 1) and
``key_offset`` (int64, where the name starts in the file), which the diff and the RESP export
use.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from parsers.rdb.columns import COLUMNS, NO_EXPIRY, KeyColumns, key_columns
from parsers.rdb.constants import ENCODING_NAMES, TYPE_NAMES
from parsers.rdb.walker import RdbWalker

_TYPES = pa.array([TYPE_NAMES.get(t, "?") for t in range(256)], pa.string())
_ENCODINGS = pa.array([ENCODING_NAMES.get(t, "?") for t in range(256)], pa.string())

SCHEMA = pa.schema(
    [
        ("db", pa.int32()),
        ("key", pa.large_binary()),
        ("type", pa.string()),
        ("encoding", pa.string()),
        ("rdb_type", pa.uint8()),
        ("elements", pa.int64()),
        ("value_bytes", pa.int64()),
        ("expire_ms", pa.int64()),
        ("value_hash", pa.uint64()),
    ]
)
INTERNAL = [
    ("value_offset", pa.int64()),
    ("key_hash", pa.uint64()),
    ("key_hash2", pa.uint64()),
    ("key_offset", pa.int64()),
]
FULL_SCHEMA = pa.schema([*SCHEMA, *INTERNAL])
# The Arrow type of each fixed-width column of parsers/rdb/columns.py.
_ARROW_TYPES = {"i": pa.int32(), "B": pa.uint8(), "q": pa.int64(), "Q": pa.uint64()}
_ARROW_TYPES = {name: _ARROW_TYPES[fmt] for name, fmt, _ in COLUMNS}
_NAME_OFFSETS = [name for name, _, _ in COLUMNS].index("name_offsets")


def column_arrays(batch: KeyColumns) -> dict[str, pa.Array]:
    """The batch's fixed-width columns as Arrow arrays over its own buffers (no copy), by
    their names in parsers/rdb/columns.py; ``expire_ms`` null where there is no expiry, and
    ``key`` the names."""
    n = batch.rows
    arrays = {
        name: pa.Array.from_buffers(_ARROW_TYPES[name], n, [None, pa.py_buffer(column)])
        for (name, _, _), column in zip(COLUMNS, batch.columns, strict=True)
        if name != "name_offsets"
    }
    expire = arrays["expire_ms"].buffers()[1]
    has_expiry = pc.not_equal(arrays["expire_ms"], NO_EXPIRY)
    arrays["expire_ms"] = pa.Array.from_buffers(
        pa.int64(), n, [has_expiry.buffers()[1], expire], null_count=n - count_true(has_expiry)
    )
    offsets = pa.py_buffer(batch.columns[_NAME_OFFSETS])
    arrays["key"] = pa.Array.from_buffers(
        pa.large_binary(), n, [None, offsets, pa.py_buffer(batch.names)]
    )
    return arrays


def fixed_bytes(arr: pa.Array, width: int) -> memoryview:
    """The bytes of a fixed-width Arrow array without nulls (``width`` bytes a value)."""
    return memoryview(arr.buffers()[1])[width * arr.offset : width * (arr.offset + len(arr))]


def to_arrow(batch: KeyColumns, *, with_internal: bool = False) -> pa.RecordBatch:
    """One batch of key records as an Arrow record batch (see the module docstring)."""
    c = column_arrays(batch)
    type_ids = c["type_id"]
    types = _TYPES.take(type_ids)
    if batch.modules:
        names = types.to_pylist()
        for row, module in batch.modules.items():
            names[row] = module
        types = pa.array(names, pa.string())
    arrays = [
        c["db"],
        c["key"],
        types,
        _ENCODINGS.take(type_ids),
        type_ids,
        c["elements"],
        c["value_bytes"],
        c["expire_ms"],
        c["value_hash"],
    ]
    if with_internal:
        arrays += [c["value_offset"], c["key_hash"], c["key_hash2"], c["key_offset"]]
    return pa.RecordBatch.from_arrays(arrays, schema=FULL_SCHEMA if with_internal else SCHEMA)


def count_true(mask: pa.BooleanArray) -> int:
    """How many rows of a boolean column are true."""
    return int(pc.sum(mask).as_py() or 0)


def record_batches(
    walker: RdbWalker, *, with_internal: bool = False, rows: int | None = None
) -> Iterator[pa.RecordBatch]:
    """Every key the walker reads, as Arrow record batches (FormatError at damage)."""
    batches = key_columns(walker) if rows is None else key_columns(walker, rows)
    for batch in batches:
        yield to_arrow(batch, with_internal=with_internal)
