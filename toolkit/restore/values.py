"""Compare the values a restored server holds with the backup's, key by key.

Counts and key names say the right keys are there; this says they hold the right content. A
sample of about :data:`SAMPLE` keys by default (picked by a hash of the name, spread over the
file), every key with ``--verify-values``. Both sides are compared by logical content (the
digest ``rbkit diff --values`` uses), so a server that re-encodes a value on load (a ziplist
read as a listpack) still matches. The reference is an RDB: the backup itself, or for an AOF
backup the RDB its staging server saved. Module values (only the module reads them) and keys
whose TTL runs out within a minute are left out and counted.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from parsers.errors import FormatError
from parsers.rdb.constants import ValueType
from parsers.rdb.decode import read_value
from parsers.rdb.dump import decode_dump
from parsers.rdb.strings import read_string
from parsers.rdb.walker import RdbWalker
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


def compare_values(
    reference: Path,
    connect: Callable[[int], redis.Redis],
    total_keys: int,
    everything: bool = False,
    now_ms: int | None = None,
) -> ValueCheck:
    """Compare the keys of the RDB ``reference`` (a sample, or ``everything``) with what the
    servers ``connect(db)`` reaches hold."""
    out = ValueCheck(everything=everything)
    every = 1 if everything else max(1, total_keys // SAMPLE)
    horizon = (now_ms or int(time.time() * 1000)) + EXPIRY_MARGIN_MS
    wanted: dict[int, list[tuple[bytes, bytes]]] = {}  # db -> [(key, digest)]
    with mapped(reference) as mm:
        if mm is None:
            return out
        walker = RdbWalker(mm)
        magic, mv = walker.magic, walker.mv
        for db, t, key_offset, value_offset, _end, _n, expire in walker.walk():
            key = read_string(mm, key_offset)[0]
            if every > 1 and zlib.crc32(key) % every:
                continue
            if t in _MODULE_TYPES or (expire is not None and expire <= horizon):
                out.skipped += 1
                continue
            value = read_value(mm, t, value_offset, magic=magic, mv=mv)[0]
            wanted.setdefault(db, []).append((bytes(key), digest(value)))
    for db, keys in wanted.items():
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
