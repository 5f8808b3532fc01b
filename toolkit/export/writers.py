"""The export formats: Parquet, CSV and JSON Lines (one row per key), and RESP (the keys as
RESTORE commands for ``redis-cli --pipe``). Each writer takes the kept batches and a binary
stream. Column meanings: docs/export.md."""

from __future__ import annotations

import json
import queue
import threading
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
    """One Parquet file of SCHEMA, written row group by row group in a thread of its own
    while ``batches`` are read here (the C walk and Arrow's encoder both let go of the GIL:
    two cores)."""
    # Dictionaries only where values repeat, and no min/max of the key names (in no order:
    # no use): for names and hashes they cost time for nothing.
    stats = [c for c in COLUMNS if c != "key"]
    queued: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def write() -> None:
        try:
            with pq.ParquetWriter(
                out, SCHEMA, use_dictionary=["type", "encoding"], write_statistics=stats
            ) as writer:
                while (batch := queued.get()) is not None:
                    writer.write_batch(batch)
        except BaseException as e:  # raised in the caller's thread
            failed.append(e)
            while queued.get() is not None:  # let the caller finish putting
                pass

    thread = threading.Thread(target=write, name="rbkit-parquet", daemon=True)
    thread.start()
    try:
        for batch in batches:
            if failed:
                break
            queued.put(batch.select(COLUMNS))
    finally:
        queued.put(None)
        thread.join()
    if failed:
        raise failed[0]


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
