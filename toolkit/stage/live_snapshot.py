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

DELAY = "repl-diskless-sync-delay"


class NoSnapshot(Exception):
    """The server could not be read as a snapshot; the message says why."""


def read_snapshot(
    server: Server,
    *,
    watch: Mapping[int, Set[int]] | None = None,
    workdir: Path | None = None,
    no_delay: bool = False,
) -> LiveKeyspace:
    """Read ``server`` as its replication snapshot, written into a scratch directory under
    ``workdir`` (the system's temp dir by default) and removed after.

    ``no_delay`` sets the server's ``repl-diskless-sync-delay`` to 0 while it forks (a
    server rbkit has just started: nothing else syncs from it) and back after.
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
        with _sync_delay_zero(client) if no_delay else contextlib.nullcontext():
            snap = take_snapshot(server, directory / "snapshot.rdb")
        alive_at = snap.time_ms if snap.time_ms is not None else _now_ms(client)
        summary = summarize([snap.path], alive_at=alive_at, watch=dict(watch or {}))
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
def _sync_delay_zero(client: redis.Redis) -> Iterator[None]:
    old = str(client.config_get(DELAY).get(DELAY, "0"))
    if old == "0":
        yield
        return
    client.config_set(DELAY, "0")
    try:
        yield
    finally:
        client.config_set(DELAY, old)


def _now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
