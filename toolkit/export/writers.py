"""The export formats: Parquet, CSV and JSON Lines (one row per key), and RESP (the keys as
RESTORE commands for ``redis-cli --pipe``). Each writer takes the kept batches and a binary
stream. Column meanings: docs/export.md."""

from __future__ import annotations

import json
import mmap
import time
from collections.abc import Iterable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from parsers.rdb.decode import read_value
from parsers.rdb.dump import dump_payload
from toolkit.columns import SCHEMA
from toolkit.export.keytext import escape_key
from toolkit.export.source import Walked
from toolkit.restore.network.plan import all_fields_expired, field_ttl_types

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


def _command(*args: bytes) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n" % len(a))
        parts.append(a)
        parts.append(b"\r\n")
    return b"".join(parts)


def _all_fields_gone(mm: mmap.mmap, type_id: int, offset: int, walked: Walked) -> bool:
    """A hash whose every field has a TTL that has run out (counted on ``walked``)."""
    value = read_value(mm, type_id, offset, magic=walked.magic)[0]
    if not all_fields_expired(value, time.time() * 1000):
        return False
    walked.all_fields_expired += 1
    return True


def write_resp(
    batches: Iterable[pa.RecordBatch],
    out: BinaryIO,
    mm: mmap.mmap,
    walked: Walked,
    *,
    replace: bool = False,
) -> None:
    """``SELECT db`` where the db changes, then per key ``RESTORE key ttl payload [ABSTTL]
    [REPLACE]``, the payload built from the value's bytes in the file as DUMP makes it
    (:func:`parsers.rdb.dump.dump_payload`, marked with the file's RDB version); after the
    keys, ``FUNCTION LOAD [REPLACE] code`` per function library of the file. A hash whose
    every field's TTL has run out is left out, as a server that loads the file drops it
    (``walked.all_fields_expired`` counts them)."""
    rep = (b"REPLACE",) if replace else ()
    current_db: int | None = None
    ttl_types = field_ttl_types(walked.magic)
    for batch in batches:
        cols = batch.select(["db", "key", "rdb_type", "value_offset", "value_bytes", "expire_ms"])
        chunk: list[bytes] = []
        for db, key, type_id, offset, size, expire in zip(
            *(c.to_pylist() for c in cols.columns), strict=True
        ):
            if type_id in ttl_types and _all_fields_gone(mm, type_id, offset, walked):
                continue
            if db != current_db:
                chunk.append(_command(b"SELECT", b"%d" % db))
                current_db = db
            payload = dump_payload(type_id, mm[offset : offset + size], walked.rdb_version)
            if expire is None:
                chunk.append(_command(b"RESTORE", key, b"0", payload, *rep))
            else:
                chunk.append(_command(b"RESTORE", key, b"%d" % expire, payload, b"ABSTTL", *rep))
        out.write(b"".join(chunk))
    for code in walked.functions:
        out.write(_command(b"FUNCTION", b"LOAD", *rep, code))
