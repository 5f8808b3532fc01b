"""Keys stored twice in one db, found in bounded memory.

Redis refuses an RDB file that holds a key twice in a db: "RDB has duplicated key 'k' in DB n",
then a panic (rdbLoadRioWithLoadingCtx). It skips, before that test, an empty collection, and,
as a master, a key whose expiry has passed; so does this check (with the expiry judged at the
check's time: a copy that had expired then is noted, and a replica, which keeps expired keys,
would refuse the file: the warning says so).

The walker notes a 16-byte entry per key (:mod:`parsers.rdb.keyhash`: the key's hash, its
record's offset) into 1,024 buckets by the hash's top bits. In memory the entries are at most
``SPILL_AT`` (4 M entries, 64 MB); when they reach it, each bucket's repeats are judged and
collapsed (a key keeps its first loaded and its first expired copy) and the buckets are
written, one after the other, to a temporary file (a "run", unlinked from the start, so that
nothing outlives the check, whatever ends it). At the end, bucket by bucket, the entries of
every run and of memory are read together, and equal hashes are candidates: their keys are
read back from the file and compared byte for byte, so two keys that only share a hash are no
duplicates. Memory for that last pass: one bucket of all the runs, 1/1024 of the entries.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from parsers.rdb.keyhash import BUCKETS, ENTRY, ENTRY_SIZE, MASK64, SHIFT, candidates, key_hash

SPILL_AT = 4 << 20  # entries held in memory before they are spilled to a run file

KeyOf = Callable[[int], tuple[int, bytes]]  # record offset -> (db, key)


class SpillError(Exception):
    """The temporary files could not be written or read (disk full, no such directory)."""


@dataclass(frozen=True, slots=True)
class Repeat:
    """A key record repeating an earlier record of the same key in the same db."""

    db: int
    key: bytes
    offset: int  # the type byte of the repeat
    first_offset: int  # the type byte of the earlier copy


@dataclass(frozen=True, slots=True)
class Duplicates:
    """What the index found: ``first`` is the repeat Redis stops at (the earliest record that
    repeats a key it has loaded), ``repeats`` how many such records there are; ``expired`` (only
    when there is no ``first``) a key stored twice whose other copies a master skips as
    expired."""

    first: Repeat | None = None
    repeats: int = 0
    expired: Repeat | None = None


class KeyIndex:
    """The key hash entries of one walk (a :class:`parsers.rdb.keyhash.KeySink`), spilled to
    temporary files in ``spill_dir`` (default: the system's) past ``spill_at`` entries
    (default: ``SPILL_AT`` as it is when the index is made).

    ``key_of`` reads back the db and key of a record (``RdbWalker.record_key``). Use it as a
    context manager, or call :meth:`close`: the run files are closed (and so gone) either way.
    """

    def __init__(
        self,
        key_of: KeyOf,
        *,
        spill_at: int | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        mask: int = MASK64,
    ) -> None:
        spill_at = SPILL_AT if spill_at is None else spill_at
        if spill_at < 1:
            raise ValueError("spill_at must be at least 1")
        self.key_of = key_of
        self.spill_at = spill_at
        self.spill_dir = spill_dir
        self.mask = mask
        self.buckets: list[bytearray] = [bytearray() for _ in range(BUCKETS)]
        self.room = spill_at
        self.runs: list[tuple[BinaryIO, list[tuple[int, int]]]] = []  # file, per bucket span
        self._first: Repeat | None = None
        self._repeats = 0
        self._expired: Repeat | None = None

    # -- the sink the walker fills -----------------------------------------------------------

    def added(self, count: int) -> None:
        self.room -= count
        if self.room <= 0:
            self._spill()

    def add(self, db: int, key: bytes, record_offset: int, expired: bool) -> None:
        h = key_hash(key, db) & self.mask
        self.buckets[h >> SHIFT] += ENTRY.pack(h, (record_offset << 1) | expired)
        self.added(1)

    # -- the end -------------------------------------------------------------------------------

    def finish(self) -> Duplicates:
        """Judge every candidate; the verdict on the whole walk."""
        for b, bucket in enumerate(self.buckets):
            entries: bytes | bytearray = bucket
            if self.runs:
                parts = [self._read(run, *spans[b]) for run, spans in self.runs if spans[b][1]]
                entries = b"".join([*parts, bucket])
            if entries:
                self._judge(entries)
            bucket.clear()
        self.close()
        if self._first is not None:
            return Duplicates(self._first, self._repeats)
        return Duplicates(expired=self._expired)

    def close(self) -> None:
        """Close (and so remove) the run files; forget the entries."""
        runs, self.runs = self.runs, []
        for run, _ in runs:
            run.close()
        for bucket in self.buckets:
            bucket.clear()

    def __enter__(self) -> KeyIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside --------------------------------------------------------------------------------

    def _spill(self) -> None:
        """Judge and collapse each bucket's repeats, then write the buckets to a new run."""
        try:
            run = tempfile.TemporaryFile(prefix="rbkit-keys-", dir=self.spill_dir)  # noqa: SIM115
        except OSError as e:
            raise SpillError(f"cannot create a temporary file in {self._where()}: {e}") from None
        self.runs.append((run, []))  # closed by close() from here on
        spans = self.runs[-1][1]
        at = 0
        try:
            for bucket in self.buckets:
                kept = self._judge(bucket, keep=True) if bucket else b""
                run.write(kept)
                spans.append((at, len(kept)))
                at += len(kept)
                bucket.clear()
            run.flush()
        except OSError as e:
            raise SpillError(f"cannot write key hashes to {self._where()}: {e}") from None
        self.room = self.spill_at

    def _read(self, run: BinaryIO, at: int, size: int) -> bytes:
        try:
            data = os.pread(run.fileno(), size, at)
        except OSError as e:
            raise SpillError(f"cannot read key hashes back from {self._where()}: {e}") from None
        if len(data) != size:
            raise SpillError(f"a key hash file in {self._where()} ended early")
        return data

    def _where(self) -> str:
        return str(self.spill_dir) if self.spill_dir is not None else tempfile.gettempdir()

    def _judge(self, entries: bytes | bytearray, keep: bool = False) -> bytes | bytearray:
        """Compare the keys of the entries whose hashes are equal; note the repeats.

        With ``keep``, return the entries less the repeats (a key keeps its first loaded and
        its first expired copy: what a later run's copies are compared with).
        """
        found = candidates(entries)
        if not found:
            return entries
        by_hash: dict[int, list[int]] = {}
        for i in found:
            h, t = ENTRY.unpack_from(entries, i * ENTRY_SIZE)
            by_hash.setdefault(h, []).append(t)
        dropped: set[int] = set()
        for tags in by_hash.values():
            dropped.update(self._judge_group(sorted(tags)))
        if not keep or not dropped:
            return entries
        out = bytearray()
        start = 0
        for i in found:
            if ENTRY.unpack_from(entries, i * ENTRY_SIZE)[1] in dropped:
                out += entries[start * ENTRY_SIZE : i * ENTRY_SIZE]
                start = i + 1
        out += entries[start * ENTRY_SIZE :]
        return bytes(out)

    def _judge_group(self, tags: list[int]) -> list[int]:
        """One hash's entries, in file order: note the repeats; return the tags to drop (all
        but each key's first loaded and first expired copy)."""
        seen: dict[tuple[int, bytes], list[int | None]] = {}  # key: [first loaded, expired]
        dropped = []
        for t in tags:
            offset, expired = t >> 1, t & 1
            name = self.key_of(offset)
            firsts = seen.setdefault(name, [None, None])
            loaded, stale = firsts
            if not expired and loaded is not None:
                self._repeats += 1
                if self._first is None or offset < self._first.offset:
                    self._first = Repeat(*name, offset, loaded)
            elif loaded is not None or stale is not None:
                earlier = loaded if loaded is not None else stale
                if self._expired is None or offset < self._expired.offset:
                    self._expired = Repeat(*name, offset, earlier)  # type: ignore[arg-type]
            if firsts[expired] is None:
                firsts[expired] = offset
            else:
                dropped.append(t)
        return dropped
