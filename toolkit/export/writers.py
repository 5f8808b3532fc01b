"""The export formats: Parquet, CSV and JSON Lines (one row per key), and RESP (the keys as
RESTORE commands for ``redis-cli --pipe``). Each writer takes the kept batches and a binary
stream. Column meanings: docs/export.md."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from toolkit.columns import SCHEMA
from toolkit.export.keytext import escape_key

COLUMNS = SCHEMA.names
# Key names escaped (keytext.py) and hashes as 16 hex digits: text in CSV and JSON Lines.
TEXT_SCHEMA = pa.schema(
    [pa.field(f.name, pa.string()) if f.name in ("key", "value_hash") else f for f in SCHEMA]
)


def write_parquet(batches: Iterable[pa.RecordBatch], out: BinaryIO) -> None:
    """One Parquet file of SCHEMA (written row group by row group)."""
    # Dictionaries only where values repeat: for names and hashes they cost time for nothing.
    with pq.ParquetWriter(out, SCHEMA, use_dictionary=["type", "encoding"]) as writer:
        for batch in batches:
            writer.write_batch(batch.select(COLUMNS))


def text_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with key names escaped (keytext.py) and hashes as 16 hex digits."""
    keys = pa.array([escape_key(k) for k in batch["key"].to_pylist()], pa.string())
    hashes = pa.array([f"{h:016x}" for h in batch["value_hash"].to_pylist()], pa.string())
    arrays = [keys if n == "key" else hashes if n == "value_hash" else batch[n] for n in COLUMNS]
    return pa.RecordBatch.from_arrays(arrays, schema=TEXT_SCHEMA)


def write_csv(batches: Iterable[pa.RecordBatch], out: BinaryIO) -> None:
    """CSV with a header line; no expiry is an empty field."""
    with pacsv.CSVWriter(out, TEXT_SCHEMA) as writer:
        for batch in batches:
            writer.write_batch(text_batch(batch))


def write_jsonl(batches: Iterable[pa.RecordBatch], out: BinaryIO) -> None:
    """One JSON object per line; no expiry is null."""
    dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode
    for batch in batches:
        cols = text_batch(batch).to_pydict()
        lines = [
            dumps(dict(zip(COLUMNS, row, strict=True))) for row in zip(*cols.values(), strict=True)
        ]
        if lines:
            out.write(("\n".join(lines) + "\n").encode("ascii"))
