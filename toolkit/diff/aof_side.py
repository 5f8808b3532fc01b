"""An AOF as a side: its keys from the check's keyspace model; with ``--values``, the values
from a scratch server that loaded it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import redis

from parsers.errors import FormatError
from parsers.printable import printable
from parsers.rdb.constants import REDIS_TYPES
from parsers.rdb.dump import decode_dump
from toolkit import lifeline
from toolkit.check.keyspace import UNKNOWN_TIME
from toolkit.check.result import CheckResult
from toolkit.diff.model import Source
from toolkit.diff.side import DbCounts, Matcher, Progress, Side, mtime_ms
from toolkit.diff.table import KeyTable
from toolkit.diff.values import digest, size_of
from toolkit.errors import DiffError, ServerError
from toolkit.server.process import RedisServer, free_port
from toolkit.steps import KEYS, no_progress, progress_of

# Keys per pipeline when reading a scratch server's values.
DUMP_BATCH = 1000


class AofSide(Side):
    """An AOF: keys, types, TTLs and sizes from the check's keyspace model; with --values the
    values from a scratch redis-server that loaded the AOF (the model keeps no values)."""

    kind = "aof"

    def __init__(self, result: CheckResult) -> None:
        path = Path(result.path)
        source = Source("aof", result.name, version=result.aux.get("redis-ver"))
        aof = result.aof
        if aof is not None and aof.last_ts is not None:
            source.time_ms, source.time_source = aof.last_ts * 1000, "last #TS annotation"
        else:
            source.time_ms, source.time_source = _newest_mtime_ms(result), "file mtime"
        super().__init__(source)
        source.notes.extend(result.notes)
        self.result = result
        self.path = path
        self._server: RedisServer | None = None
        self._directory: Path | None = None
        if aof is not None and aof.approximate:
            names = sorted(aof.unknown_commands)
            unknown = ", ".join(printable(n.encode("latin-1")) for n in names) or "see rbkit check"
            source.notes.append(
                f"{path.name}: the AOF's keyspace model is approximate (commands it does not "
                f"apply: {unknown}); keys those touched may differ from what Redis loads"
            )

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        inv = self.result.inventory
        out: dict[int, DbCounts] = {}
        for db, s in (inv.databases if inv else {}).items():
            if dbs is None or db in dbs:
                out[db] = DbCounts(s.keys, s.expires, dict(s.by_type))
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
        started = time.monotonic()
        replay = self.result.replay
        if replay is None:
            raise DiffError(f"{self.path}: the AOF check kept no keyspace model")
        ks = replay.keyspace
        server = self._start_server(progress) if values else None
        batch: list[tuple[int, bytes, str, int | None, int | None]] = []
        n_read = 0
        total = self.result.inventory.keys if self.result.inventory else 0
        bar = (progress or no_progress)(f"reading {self.path.name}", KEYS)
        for db, key, type_name, expire, elements in ks.entries():
            if dbs is not None and db not in dbs:
                continue
            if match is not None and not match(key):
                continue
            size: int | None = elements
            if type_name == "string":
                length = ks.value(db, key)
                size = length if isinstance(length, int) and length >= 0 else None
            elif type_name not in REDIS_TYPES:
                size = None
            if expire is not None and expire >= UNKNOWN_TIME:
                expire = UNKNOWN_TIME
            n_read += 1
            if bar is not None and n_read % DUMP_BATCH == 0:
                bar(n_read, total)
            if server is None:
                table.add(db, key, type_name, expire, size)
                continue
            batch.append((db, key, type_name, expire, size))
            if len(batch) >= DUMP_BATCH:
                self._add_with_values(server, table, batch)
                batch = []
        if batch and server is not None:
            self._add_with_values(server, table, batch)
        if bar is not None:
            bar.close()
        self.source.keys_read = n_read
        self.source.seconds = time.monotonic() - started

    def _add_with_values(
        self,
        server: RedisServer,
        table: KeyTable,
        batch: list[tuple[int, bytes, str, int | None, int | None]],
    ) -> None:
        by_db: dict[int, list[int]] = {}
        for i, row in enumerate(batch):
            by_db.setdefault(row[0], []).append(i)
        digests: list[bytes | None] = [None] * len(batch)
        for db, rows in by_db.items():
            client = server.client(db)
            try:
                pipe = client.pipeline(transaction=False)
                for i in rows:
                    pipe.dump(batch[i][1])
                payloads = pipe.execute(False)
            except redis.RedisError as e:
                raise DiffError(f"{self.path}: reading the scratch server failed: {e}") from None
            finally:
                client.close()
            for i, payload in zip(rows, payloads, strict=True):
                if isinstance(payload, bytes):
                    try:
                        dumped = decode_dump(payload)
                    except FormatError:
                        continue
                    digests[i] = digest(dumped.value, dumped.raw)
                    self.module_values += batch[i][2] not in REDIS_TYPES
                    if batch[i][4] is None:  # the model did not know a string's length
                        size = size_of(dumped.value)
                        batch[i] = (*batch[i][:4], size)
        for (db, key, type_name, expire, size), dig in zip(batch, digests, strict=True):
            table.add(db, key, type_name, expire, size, dig)

    def _start_server(self, progress: Progress) -> RedisServer:
        """A scratch redis-server that loaded the AOF (as the restore drill stages it)."""
        # The restore drill's own staging rules.
        from toolkit.stage.compat import choose_binary, refusals
        from toolkit.stage.scratch import install_backup, scratch_settings

        result = self.result
        try:
            binary = choose_binary(result)
        except ServerError as e:
            raise DiffError(f"{self.path}: --values needs a redis-server to load it: {e}") from None
        reasons = refusals(result, binary)
        if reasons:
            raise DiffError(
                f"{self.path}: --values cannot load it into a scratch server: {reasons[0]}"
            )
        notes: list[str] = []
        settings = scratch_settings(result, binary, notes)
        self._directory = lifeline.scratch_dir("rbkit-diff-")
        server = RedisServer(binary, self._directory, free_port(), settings)
        try:
            install_backup(result, self._directory, settings)
            size = sum(f.size for f in result.aof.files) if result.aof else 0
            label = f"loading {self.path.name} into a scratch redis-server {binary.version_text}"
            with progress_of(progress or no_progress, label) as bar:
                server.start(max(120.0, size / (2 << 20)), bar)
        except (OSError, ServerError) as e:
            self.close()
            raise DiffError(f"{self.path}: loading it into a scratch server failed: {e}") from None
        self._server = server
        self.source.notes.append(
            f"{self.path.name}: values read with DUMP from a scratch redis-server "
            f"{binary.version_text} that loaded the AOF; keys, types and TTLs from the AOF itself"
        )
        return server

    def close(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
            self._server = None
        if self._directory is not None:
            lifeline.remove_dir(self._directory)
            self._directory = None


def _newest_mtime_ms(result: CheckResult) -> int | None:
    path = Path(result.path)
    times = [mtime_ms(path)]
    if result.aof is not None and result.aof.layout == "multi-part":
        times += [mtime_ms(path.parent / f.name) for f in result.aof.files]
    known = [t for t in times if t is not None]
    return max(known) if known else None
