"""A live server, or a live cluster's primaries, read as a side by SCAN and per-key
commands.
"""

from __future__ import annotations

import time

import redis

from parsers.rdb.constants import REDIS_TYPES
from toolkit.diff.cluster_live import ClusterLive
from toolkit.diff.live import LiveServer
from toolkit.diff.model import Source
from toolkit.diff.side import DbCounts, Matcher, Progress, Side, added_counts
from toolkit.diff.table import KeyTable
from toolkit.errors import DiffError
from toolkit.server.read import parse_version, scan_db
from toolkit.steps import KEYS, no_progress, progress_of
from toolkit.steps import Progress as ProgressBar


class LiveSide(Side):
    kind = "live"

    def __init__(self, server: LiveServer) -> None:
        super().__init__(Source("live", server.name, version=server.version))
        self.server = server
        if server.url_db:
            self.source.notes.append(
                f"the db in the URL (/{server.url_db}) is not used: every db is read "
                "(use --db to choose)"
            )

    @property
    def live(self) -> LiveServer:
        return self.server

    def close(self) -> None:
        self.server.close()

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        """Per type, the keys SCAN ... TYPE finds (the restore drill's way,
        toolkit.server.read.scan_db: no command per key on Redis 6.0+); then INFO keyspace's
        keys and expires (read after the scan, which drops the expired keys it meets)."""
        started = time.monotonic()
        types = REDIS_TYPES if parse_version(self.server.version) >= (6, 0) else ()
        by_type: dict[int, dict[str, int]] = {}
        for db in self.server.keyspace():
            if dbs is not None and db not in dbs:
                continue
            try:
                scanned = scan_db(self.server.client(db), types=types)
            except redis.RedisError as e:
                raise DiffError(f"{self.server.name}: SCAN of db {db} failed: {e}") from None
            by_type[db] = dict(scanned.by_type)
        out: dict[int, DbCounts] = {}
        for db, (keys, expires) in self.server.keyspace().items():
            if db in by_type or (dbs is None or db in dbs):
                out[db] = DbCounts(keys, expires, by_type.get(db, {}))
        self._finish(started, sum(c.keys for c in out.values()))
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
        started = time.monotonic()
        before = self.server.keyspace()
        with progress_of(progress or no_progress, f"reading {self.server.name}", KEYS) as bar:
            self._read(table, before, dbs, pattern, values, bar)
        n_read = self._n_read
        after = self.server.keyspace()
        self._finish(started, n_read)
        changed = [
            f"db {db}: {before.get(db, (0, 0))[0]:,} -> {after.get(db, (0, 0))[0]:,} keys"
            for db in sorted(set(before) | set(after))
            if (dbs is None or db in dbs) and before.get(db, (0, 0))[0] != after.get(db, (0, 0))[0]
        ]
        if changed:
            self.source.notes.append(
                "the server's key counts changed while it was read (" + "; ".join(changed) + ")"
            )
        if self.server.undecodable:
            self.source.notes.append(
                f"{self.server.undecodable:,} DUMP payload(s) could not be decoded, their values "
                f"not compared (first: {self.server.first_undecodable})"
            )

    def _read(
        self,
        table: KeyTable,
        keyspace: dict[int, tuple[int, int]],
        dbs: set[int] | None,
        pattern: bytes | None,
        values: bool,
        bar: ProgressBar,
    ) -> None:
        """SCAN each db of ``keyspace`` (those of ``dbs``) and add its keys to ``table``."""
        total = sum(k for db, (k, _e) in keyspace.items() if dbs is None or db in dbs)
        self._n_read = 0
        for db in keyspace:
            if dbs is not None and db not in dbs:
                continue
            for batch in self.server.scan(db, match=pattern):
                for lk in self.server.read_keys(db, batch, values=values):
                    if lk is None:
                        continue
                    table.add(db, lk.key, lk.type, lk.expire_ms, lk.size, lk.digest)
                    self._n_read += 1
                    self.module_values += values and lk.type not in REDIS_TYPES
                bar(min(self._n_read, total), total)

    def _finish(self, started: float, keys: int) -> None:
        self.source.seconds = time.monotonic() - started
        self.source.keys_read = keys
        self.source.time_ms = self.server.time_ms()
        self.source.time_source = "server TIME"


class ClusterLiveSide(Side):
    """A live Redis Cluster (the URL of any node): every primary read, into one table."""

    kind = "live"

    def __init__(self, cluster: ClusterLive) -> None:
        self.cluster = cluster
        self.nodes = [LiveSide(node) for node in cluster.nodes.values()]
        super().__init__(Source("live", cluster.name, version=cluster.version))
        self.source.notes.append(
            f"a Redis Cluster node: its {len(self.nodes)} primaries are read, as one keyspace"
        )

    @property
    def live(self) -> ClusterLive:  # type: ignore[override]
        return self.cluster

    def close(self) -> None:
        self.cluster.close()

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        out = added_counts(self.nodes, dbs)
        self._finish()
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
        for node in self.nodes:
            node.collect(
                table, dbs=dbs, match=match, pattern=pattern, values=values, progress=progress
            )
            self.source.notes.extend(n for n in node.source.notes if n not in self.source.notes)
        self.module_values = sum(n.module_values for n in self.nodes)
        self._finish()

    def _finish(self) -> None:
        self.source.keys_read = sum(n.source.keys_read for n in self.nodes)
        self.source.seconds = sum(n.source.seconds for n in self.nodes)
        times = [n.source.time_ms for n in self.nodes if n.source.time_ms is not None]
        self.source.time_ms = min(times) if times else None
        self.source.time_source = "server TIME"
