"""A live Redis Cluster taken as a backup set: every primary's replication snapshot saved in a
scratch folder with the primary's own ``CLUSTER NODES`` (the layout ``rbkit check --cluster``
reads: one folder per shard holding ``dump.rdb`` and ``nodes.conf``), so that the diff reads
the cluster as it reads a saved set, through the C walk instead of SCAN.

Up to eight primaries are read at once: each snapshot is consistent at its own fork, the set
is not one moment of the whole cluster (nor is a SCAN of it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import redis

from toolkit.diff.cluster_live import ClusterLive
from toolkit.errors import ServerError
from toolkit.server.connect import Server
from toolkit.server.snapshot import (
    NoRoom,
    Snapshot,
    SnapshotRefused,
    snapshot_refusal,
    take_snapshot,
)
from toolkit.steps import Progress, ProgressFactory, no_progress, progress_of

# Primaries read at once: each waits out its own repl-diskless-sync-delay and forks once.
WORKERS = 8


@dataclass
class ShardSnapshot:
    folder: Path  # shard-N/ with dump.rdb and nodes.conf
    address: str
    snapshot: Snapshot


def snapshot_set(
    cluster: ClusterLive,
    directory: Path,
    progress: ProgressFactory | None = None,
    workers: int = WORKERS,
) -> list[ShardSnapshot]:
    """Save every primary of ``cluster`` into ``directory`` as a backup set, up to ``workers``
    primaries at once. First asks every primary whether it may be read by SYNC, so that a
    refusal comes before any server forks. Raises what
    :func:`~toolkit.server.snapshot.take_snapshot` raises for a primary that gives none
    (SnapshotRefused, SnapshotFailed, ConnectError), ServerError when a primary does not
    answer CLUSTER NODES, NoRoom (a SnapshotFailed) when ``directory`` fills up."""
    servers = [live.server for live in cluster.nodes.values()]
    for server in servers:
        if (refusal := snapshot_refusal(server)) is not None:
            raise SnapshotRefused(f"{server.display}: not read by SYNC: {refusal}")
    folders = []
    for i, server in enumerate(servers):
        folder = directory / f"shard-{i}"
        folder.mkdir()
        _save_nodes(server, folder / "nodes.conf")
        folders.append(folder)
    label = f"snapshots of {len(servers)} primaries"
    with progress_of(progress or no_progress, label) as bar:
        total = _Total(bar, len(servers))
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(servers)))) as pool:
            jobs = [
                pool.submit(take_snapshot, server, folder / "dump.rdb", total.part(i))
                for i, (server, folder) in enumerate(zip(servers, folders, strict=True))
            ]
            try:
                wait(jobs, return_when=FIRST_EXCEPTION)
                for job in jobs:  # a failure ends the set at once, not when the others end
                    if job.done() and (error := job.exception()) is not None:
                        raise error
                shots = [job.result() for job in jobs]
            except BaseException:
                # The others stop at their next chunk, or keepalive (a second) while their
                # server waits to fork: it then never forks (nor does Ctrl-C wait for it).
                total.cancel()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return [
        ShardSnapshot(folder, server.display, shot)
        for server, folder, shot in zip(servers, folders, shots, strict=True)
    ]


def _save_nodes(server: Server, path: Path) -> None:
    """The primary's own ``CLUSTER NODES``, as the set's ``nodes.conf``."""
    client = server.client(timeout=server.connect_timeout)
    try:
        nodes = client.execute_command("CLUSTER", "NODES")
    except (redis.RedisError, OSError) as e:
        raise ServerError(f"{server.display}: CLUSTER NODES failed: {e}") from None
    finally:
        client.close()
    text = nodes.decode() if isinstance(nodes, bytes) else str(nodes)
    try:
        path.write_text(text if text.endswith("\n") else text + "\n")
    except OSError as e:
        raise NoRoom(
            f"{path.parent.parent}: no room for {server.display}'s CLUSTER NODES ({e.strerror})"
        ) from None


class _Cancelled(Exception):
    """Another primary's snapshot failed: this one stops too."""


class _Total:
    """One display for snapshots taken at once: the bytes of all of them, summed. Once
    cancelled, a snapshot's next update ends it."""

    def __init__(self, bar: Progress, parts: int) -> None:
        self._bar = bar
        self._done = [0] * parts
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def part(self, i: int) -> Callable[[int, int | None], None]:
        def update(done: int, _total: int | None = None) -> None:
            if self._cancelled.is_set():
                raise _Cancelled
            with self._lock:
                self._done[i] = done
                self._bar(sum(self._done), None)

        return update
