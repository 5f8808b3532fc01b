"""``rbkit export --format resp``: the keys as RESTORE commands for ``redis-cli --pipe``.

Its own module: it needs the restore's rules on hash field TTLs (and through them the redis
client), which the other formats should not pay to import.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Iterable
from typing import BinaryIO

import pyarrow as pa

from parsers.rdb.decode import read_value
from parsers.rdb.dump import dump_payload
from toolkit.export.source import Walked
from toolkit.restore.network.plan import all_fields_expired, field_ttl_types


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
