"""A cluster backup set as a side (the union of its shards' keys), checked as ``check
--cluster`` checks it; a live cluster's primaries' snapshots are read as one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from toolkit.check.cluster.verdict import ClusterCheck, check_cluster
from toolkit.check.problems import ERROR
from toolkit.diff.cluster_snapshot import ShardSnapshot
from toolkit.diff.model import Source
from toolkit.diff.rdb_side import RdbSide
from toolkit.diff.side import (
    SNAPSHOT,
    DbCounts,
    InScratchDir,
    Matcher,
    Progress,
    Side,
    added_counts,
)
from toolkit.diff.table import KeyTable
from toolkit.errors import BackupIOError, DiffError

SHARD_SHIFT = 48  # a set side's name refs: shard number << 48 | offset in its RDB file


def checked_set(path: Path) -> ClusterCheck:
    """``check --cluster`` of a set; refused (DiffError) when it finds an error."""
    try:
        check = check_cluster(path)
    except BackupIOError as e:
        raise DiffError(str(e)) from None
    errors = [p for p in check.problems if p.severity == ERROR]
    if errors:
        more = f" and {len(errors) - 1} more error(s)" if len(errors) > 1 else ""
        raise DiffError(
            f"{path}: not a valid cluster backup set: {errors[0].message}{more}; a diff of it "
            "would be meaningless (see rbkit check --cluster)"
        )
    aof = [s.name for s in check.shards if s.result is not None and s.result.format != "rdb"]
    if aof:
        raise DiffError(f"{path}: shard(s) {', '.join(aof)} hold an AOF: a set diff reads RDBs")
    return check


class SetSide(Side):
    """A cluster backup set: the union of its shards' keys (each shard an RDB side, the name
    refs tagged with the shard's number)."""

    kind = "cluster-set"

    def __init__(self, check: ClusterCheck) -> None:
        self.shards = [RdbSide(s.result) for s in check.shards if s.result is not None]
        for i, shard in enumerate(self.shards):
            shard.ref_base = i << SHARD_SHIFT
        times = [s.source.time_ms for s in self.shards if s.source.time_ms is not None]
        versions = {s.source.version for s in self.shards} - {None}
        version = ", ".join(sorted(versions)) if versions else None  # one, unless shards differ
        source = Source("cluster-set", check.path, version=version)
        # The oldest shard's time: keys expired by then are judged as the oldest file saw them.
        source.time_ms = min(times) if times else None
        source.time_source = (
            f"oldest of {len(self.shards)} shards' {self.shards[0].source.time_source}"
            if self.shards
            else None
        )
        source.notes.append(
            f"a cluster backup set of {len(self.shards)} shards: the union of their keys"
        )
        super().__init__(source)

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        out = added_counts(self.shards, dbs)
        self.source.keys_read = sum(c.keys for c in out.values())
        return out

    def collect(
        self,
        table: KeyTable,
        *,
        dbs: set[int] | None,
        match: Matcher,
        pattern: bytes | None,
        values: bool,
        progress: Progress,
    ) -> None:
        for shard in self.shards:
            shard.collect(
                table, dbs=dbs, match=match, pattern=pattern, values=values, progress=progress
            )
        self.source.keys_read = sum(s.source.keys_read for s in self.shards)
        self.source.seconds = sum(s.source.seconds for s in self.shards)
        self.empty_skipped = sum(s.empty_skipped for s in self.shards)
        self.module_values = sum(s.module_values for s in self.shards)

    def name_reader(self) -> Callable[[int], bytes]:
        readers = [s.name_reader() for s in self.shards]
        low = (1 << SHARD_SHIFT) - 1

        def read(ref: int) -> bytes:
            return readers[ref >> SHARD_SHIFT](ref & low)

        return read

    def close(self) -> None:
        for shard in self.shards:
            shard.close()


class ClusterSnapshotSide(InScratchDir, SetSide):
    """A live Redis Cluster read as its primaries' replication snapshots: a backup set in a
    scratch folder (toolkit/diff/cluster_snapshot.py); the source says it is live."""

    def __init__(
        self, check: ClusterCheck, name: str, shots: list[ShardSnapshot], directory: Path
    ) -> None:
        super().__init__(check)
        source = self.source
        source.kind, source.name, source.via = "live", name, SNAPSHOT
        taken = {s.folder.name: s.snapshot for s in shots}
        times = []
        results = [s.result for s in check.shards if s.result is not None]
        for result, side in zip(results, self.shards, strict=True):
            snap = taken.get(Path(result.path).parent.name)
            if snap is not None and snap.time_ms is not None:
                side.expired_by = snap.time_ms  # keys past their TTL then: gone for a reader
                times.append(snap.time_ms)
        if times:
            source.time_ms = min(times)
            source.time_source = f"oldest of {len(shots)} primaries' server TIME after its snapshot"
        source.notes[:] = [
            f"a Redis Cluster node: its {len(shots)} primaries read as their replication "
            "snapshots (SYNC), one after another, each consistent at its own fork: "
            + ", ".join(f"{s.address} {s.snapshot.bytes:,} bytes" for s in shots)
        ]
        waits = {note for s in shots for note in s.snapshot.delay_notes()}
        source.notes.extend(f"a primary's snapshot: {note}" for note in sorted(waits))
        self._directory = directory
