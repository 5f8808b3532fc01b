"""Compare the values a restored server holds with the backup's, key by key.

Counts and key names say the right keys are there; this says they hold the right content. A
sample of :data:`SAMPLE` to twice as many keys by default (those whose name's XXH64 has its
low bits 0: spread over the file), every key with ``--verify-values``. Both sides are
compared by logical content (the digest ``rbkit diff --values`` uses), so a server that
re-encodes a value on load (a ziplist read as a listpack) still matches. The reference is an
RDB: the backup itself, or for an AOF backup the RDB its staging server saved. Module values
(only the module reads them) and keys whose TTL runs out within a minute are left out and
counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import redis

from parsers.errors import FormatError
from parsers.rdb.columns import NO_EXPIRY, KeyColumns, key_columns
from parsers.rdb.constants import ValueType
from parsers.rdb.decode import read_value
from parsers.rdb.dump import decode_dump
from parsers.rdb.walker import RdbWalker
from toolkit.ahead import Ahead
from toolkit.diff.values import digest
from toolkit.mapped import mapped

SAMPLE = 1000
BATCH = 500
EXPIRY_MARGIN_MS = 60_000
_MODULE_TYPES = (int(ValueType.MODULE_2), int(ValueType.MODULE_PRE_GA))


@dataclass
class ValueCheck:
    compared: int = 0
    skipped: int = 0  # module values, and keys about to expire
    differing: list[tuple[int, bytes]] = field(default_factory=list)  # (db, key)
    missing: list[tuple[int, bytes]] = field(default_factory=list)
    everything: bool = False  # every key, not a sample

    @property
    def ok(self) -> bool:
        return not self.differing and not self.missing

    def sentence(self) -> str:
        what = "every key's value" if self.everything else f"values of {self.compared} keys"
        if self.ok:
            return f"{what} match the backup ({self.skipped} left out)"
        parts = []
        if self.differing:
            parts.append(f"{len(self.differing)} differ (first: {_name(self.differing[0])})")
        if self.missing:
            parts.append(f"{len(self.missing)} missing (first: {_name(self.missing[0])})")
        return f"{what} compared: " + ", ".join(parts)


def _name(item: tuple[int, bytes]) -> str:
    db, key = item
    text = key.decode("utf-8", "backslashreplace")
    safe = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return f"{safe!r} in db {db}"


def _sampled(batch: KeyColumns, mask: int) -> Iterable[int]:
    """The rows of the batch whose key hash ANDed with ``mask`` is 0 (all when 0)."""
    if not mask:
        return range(batch.rows)
    hashes = pa.Array.from_buffers(
        pa.uint64(), batch.rows, [None, pa.py_buffer(batch.column("key_hash"))]
    )
    return pc.indices_nonzero(
        pc.equal(pc.bit_wise_and(hashes, pa.scalar(mask, pa.uint64())), 0)
    ).to_pylist()


@dataclass
class Sample:
    """The keys a value check compares and their expected content, read from the reference
    RDB (ahead of time: while the target starts)."""

    everything: bool = False
    skipped: int = 0  # module values, and keys about to expire when the sample was taken
    # db -> [(key, digest of its value, expire_ms or NO_EXPIRY)]
    keys: dict[int, list[tuple[bytes, bytes, int]]] = field(default_factory=dict)


def take_sample(
    reference: Path, total_keys: int, everything: bool = False, now_ms: int | None = None
) -> Sample:
    """The keys of the RDB ``reference`` to compare (a sample, or ``everything``), with the
    digest of each value."""
    out = Sample(everything=everything)
    # A sample of SAMPLE to 2 * SAMPLE keys: those whose name hash has its low bits all 0.
    mask = (1 << max(0, (total_keys // SAMPLE).bit_length() - 1)) - 1 if not everything else 0
    horizon = (now_ms or int(time.time() * 1000)) + EXPIRY_MARGIN_MS
    with mapped(reference) as mm:
        if mm is None:
            return out
        walker = RdbWalker(mm)
        magic, mv = walker.magic, walker.mv
        for batch in key_columns(walker):
            dbs, types = batch.column("db"), batch.column("type_id")
            offsets, expires = batch.column("value_offset"), batch.column("expire_ms")
            for r in _sampled(batch, mask):
                t, expire = types[r], expires[r]
                if t in _MODULE_TYPES or (expire != NO_EXPIRY and expire <= horizon):
                    out.skipped += 1
                    continue
                value = read_value(mm, t, offsets[r], magic=magic, mv=mv)[0]
                out.keys.setdefault(dbs[r], []).append((batch.key(r), digest(value), expire))
    return out


def sample_ahead(reference: Path, total_keys: int, everything: bool = False) -> Ahead[Sample]:
    """:func:`take_sample` started in a background thread, so that it is ready when the
    restored target is."""
    return Ahead(lambda: take_sample(reference, total_keys, everything))


def compare_sample(
    sample: Sample, connect: Callable[[int], redis.Redis], now_ms: int | None = None
) -> ValueCheck:
    """Compare ``sample`` with what the servers ``connect(db)`` reaches hold; a key whose TTL
    runs out within EXPIRY_MARGIN_MS of ``now_ms`` is left out (counted as skipped)."""
    out = ValueCheck(everything=sample.everything, skipped=sample.skipped)
    horizon = (now_ms or int(time.time() * 1000)) + EXPIRY_MARGIN_MS
    for db, entries in sample.keys.items():
        keys = [(k, d) for k, d, e in entries if e == NO_EXPIRY or e > horizon]
        out.skipped += len(entries) - len(keys)
        client = connect(db)
        try:
            for i in range(0, len(keys), BATCH):
                batch = keys[i : i + BATCH]
                pipe = client.pipeline(transaction=False)
                for key, _ in batch:
                    pipe.dump(key)
                for (key, expected), payload in zip(batch, pipe.execute(), strict=True):
                    out.compared += 1
                    if payload is None:
                        out.missing.append((db, key))
                        continue
                    try:
                        found = digest(decode_dump(payload).value)
                    except FormatError:
                        found = b""
                    if found != expected:
                        out.differing.append((db, key))
        finally:
            client.close()
    return out


def compare_values(
    reference: Path,
    connect: Callable[[int], redis.Redis],
    total_keys: int,
    everything: bool = False,
    now_ms: int | None = None,
) -> ValueCheck:
    """Compare the keys of the RDB ``reference`` (a sample, or ``everything``) with what the
    servers ``connect(db)`` reaches hold."""
    return compare_sample(take_sample(reference, total_keys, everything, now_ms), connect, now_ms)
