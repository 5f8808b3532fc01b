"""A server that loaded a backup, read as its replication snapshot instead of by SCAN: what the
drill reads its scratch server by, and the restore its target.

The server streams its keyspace as an RDB (``SYNC``, :mod:`toolkit.server.snapshot`: only
with ``repl-diskless-sync yes``, Redis 7.0+), consistent at the moment of its fork; the C walk
sums it up (:mod:`toolkit.stage.keysummary`) into the same :class:`LiveKeyspace` a SCAN read
gives. A key whose TTL had run out by the server's TIME after the transfer is left out, as
SCAN would have deleted it. Any reason not to (an ACL without SYNC, an old server, a failed
fork, no room for the file) raises :class:`NoSnapshot` with it, and the caller reads by SCAN.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

import redis

from parsers.errors import FormatError
from toolkit import lifeline
from toolkit.errors import ServerError
from toolkit.server.connect import Server
from toolkit.server.read import LiveDb, LiveKeyspace, describe, finish, parse_version
from toolkit.server.snapshot import take_snapshot
from toolkit.stage.keysummary import summarize

# Set for the one fork of a server rbkit has just started (``quick_fork``), and put back: no
# wait for other replicas, and no LZF (the server compresses its strings about a fifth of its
# serialization time; the stream only crosses the loopback).
QUICK_FORK = {"repl-diskless-sync-delay": "0", "rdbcompression": "no"}


class NoSnapshot(Exception):
    """The server could not be read as a snapshot; the message says why."""


def read_snapshot(
    server: Server,
    *,
    watch: Mapping[int, Set[int]] | None = None,
    workdir: Path | None = None,
    quick_fork: bool = False,
) -> LiveKeyspace:
    """Read ``server`` as its replication snapshot, written into a scratch directory under
    ``workdir`` (the system's temp dir by default) and removed after.

    ``quick_fork`` sets the server's :data:`QUICK_FORK` settings while it forks (a server
    rbkit has just started and holds writes off: nothing else syncs from it) and puts them
    back after.
    Raises :class:`NoSnapshot` with the reason it could not.
    """
    started = time.monotonic()
    client = server.client(timeout=60)
    directory: Path | None = None
    try:
        live = describe(client)
        if parse_version(live.version) < (7, 0):
            raise NoSnapshot(
                f"{live.server_name} {live.version} has no REPLCONF rdb-only (Redis 7.0+)"
            )
        directory = lifeline.scratch_dir("rbkit-verify-", workdir)
        with _settings(client, QUICK_FORK) if quick_fork else contextlib.nullcontext():
            snap = take_snapshot(server, directory / "snapshot.rdb")
        alive_at = snap.time_ms if snap.time_ms is not None else _now_ms(client)
        summary = summarize([snap.path], alive_at=alive_at, watch=dict(watch or {}))
        snap.settled()
        for db, s in summary.databases.items():
            if not (s.keys or s.watched):
                continue
            live.databases[db] = LiveDb(
                keys=s.keys,
                expires=s.expires,
                scanned=s.keys,
                by_type=dict(sorted(s.by_type.items())),
                digest=s.digest,
                watched=s.watched,
            )
        live.time_ms = alive_at
        live.via = "snapshot"
        finish(client, live, started)
        return live
    except (ServerError, FormatError, OSError, redis.RedisError) as e:
        raise NoSnapshot(_first_line(e)) from None
    finally:
        client.close()
        if directory is not None:
            lifeline.remove_dir(directory)


@contextlib.contextmanager
def _settings(client: redis.Redis, wanted: Mapping[str, str]) -> Iterator[None]:
    """``wanted`` set on the server for the block, the old values put back after."""
    old = {name: str(client.config_get(name).get(name, value)) for name, value in wanted.items()}
    changed = {name: value for name, value in wanted.items() if old[name] != value}
    if changed:
        _config_set(client, changed)
    try:
        yield
    finally:
        if changed:
            _config_set(client, {name: old[name] for name in changed})


def _config_set(client: redis.Redis, values: Mapping[str, str]) -> None:
    """One CONFIG SET of several settings (Redis 7.0+): all of them or none."""
    client.execute_command("CONFIG", "SET", *(x for pair in values.items() for x in pair))


def _now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
