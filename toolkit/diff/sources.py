"""The two sides of a diff: open one from its spec string and read its keys.

A spec is a live server URL (``redis://``, ``rediss://``, ``unix://``), a saved
``check --json`` report (a JSON file with ``"schema": "rbkit.check/1"``: counts only), or any
backup ``rbkit check`` accepts (RDB, AOF, ``appendonlydir``, manifest, data directory). A
backup is checked first and refused when the check finds an error: the diff of a damaged
file would be meaningless.

What a side offers is :class:`~toolkit.diff.side.Side`; each kind is in its own module
(``rdb_side``, ``aof_side``, ``set_side``, ``report_side``, ``live_sides``), a server's
snapshot is taken in ``snapshot_sides``, and ``background`` starts the second side's slow
part in a forked process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toolkit.check.backup import check_backup
from toolkit.check.cluster.layout import is_set
from toolkit.diff.aof_side import AofSide
from toolkit.diff.background import BackgroundCheck, BackgroundSnapshot
from toolkit.diff.cluster_live import ClusterLive, is_cluster_node
from toolkit.diff.live import LiveServer
from toolkit.diff.live_sides import ClusterLiveSide, LiveSide
from toolkit.diff.rdb_side import RdbSide
from toolkit.diff.report_side import ReportSide
from toolkit.diff.saved_report import read_report
from toolkit.diff.set_side import SetSide, checked_set
from toolkit.diff.side import AUTO, SCAN, SNAPSHOT, Progress, Side, refuse_invalid
from toolkit.diff.snapshot_sides import cluster_snapshot_side, snapshot_side
from toolkit.errors import BackupIOError, ConnectError, DiffError, ServerError, UsageError
from toolkit.server.connect import ConnectOptions, Server, looks_like_server
from toolkit.server.snapshot import SnapshotFailed, SnapshotRefused
from toolkit.sources import remote
from toolkit.sources.opened import open_backup
from toolkit.steps import no_progress, progress_of


def local_spec(stack: contextlib.ExitStack[Any], spec: str, tmpdir: Path | None) -> str:
    """``spec`` as :func:`open_side` takes it: a server as is; a backup made local
    (toolkit/sources: compressed, ``-``, s3:// or https://), its copy kept until ``stack``
    closes. Raises DiffError when it cannot be read."""
    if looks_like_server(spec) and not remote.is_remote(spec):
        return spec
    try:
        return os.fspath(stack.enter_context(open_backup(spec, tmpdir)).path)
    except BackupIOError as e:
        raise DiffError(str(e)) from None


def open_side(
    spec: str,
    label: str,
    progress: Progress = None,
    modules: tuple[str, ...] = (),
    connect: ConnectOptions | None = None,
    via: str = AUTO,
    checked: BackgroundCheck | BackgroundSnapshot | None = None,
) -> Side:
    """Open side ``label`` ("A" or "B") from ``spec``. Raises DiffError for bad input.

    ``spec`` names a server when :func:`looks_like_server` says so (a file of that name that
    exists wins), reached with ``connect`` and read ``via`` its replication snapshot, SCAN,
    or (:data:`AUTO`) the snapshot where the server gives one safely, else SCAN.
    ``modules`` are passed to the check of a backup (an AOF's module commands need them).
    ``checked``: the check of this very file, or the snapshot of this very server, already
    under way (:class:`BackgroundCheck`, :class:`BackgroundSnapshot`)."""
    ahead = checked if isinstance(checked, BackgroundSnapshot) and checked.spec == spec else None
    if isinstance(checked, BackgroundCheck) and checked.path == Path(spec):
        try:
            result = checked.result()
        except BackupIOError as e:
            raise DiffError(str(e)) from None
        refuse_invalid(result)
        return RdbSide(result) if result.format == "rdb" else AofSide(result)
    if looks_like_server(spec):
        try:
            server = Server.parse(spec, connect)
        except UsageError as e:
            raise DiffError(str(e)) from None
        return _open_live(server, label, progress, via, ahead)
    path = Path(spec)
    report = read_report(path)
    if report is not None:
        return ReportSide(path, report)
    if is_set(path):
        return SetSide(checked_set(path))

    try:
        with progress_of(progress or no_progress, f"checking {label} ({path.name})") as bar:
            result = check_backup(path, progress=bar, modules=modules)
    except BackupIOError as e:
        raise DiffError(str(e)) from None
    refuse_invalid(result)
    if result.format == "rdb":
        return RdbSide(result)
    return AofSide(result)


def _open_live(
    server: Server,
    label: str,
    progress: Progress,
    via: str,
    ahead: BackgroundSnapshot | None = None,
) -> Side:
    """A server's side: its snapshot checked as an RDB (``ahead``: already under way), or
    its keys read by SCAN. (The diff closes an unused ``ahead``.)"""
    live = LiveServer(server)  # connects: a refused password or no answer ends here
    if is_cluster_node(live):
        return _open_cluster(ClusterLive(live), progress, via)
    reason = None
    if via != SCAN:
        take: Callable[[], Side] = (
            (lambda: ahead.side(server, label, progress))
            if ahead is not None
            else (lambda: snapshot_side(server, label, progress))
        )
        side, reason = _try_snapshot(take, via, live.close)
        if side is not None:
            return side
        reason = reason.removeprefix(f"{server.display}: ").removeprefix("not read by SYNC: ")
    scanned = LiveSide(live)
    scanned.source.via = SCAN
    if reason is not None:
        scanned.source.notes.append(f"read by SCAN, not as a replication snapshot: {reason}")
    return scanned


def _open_cluster(cluster: ClusterLive, progress: Progress, via: str) -> Side:
    """A live cluster's side: its primaries' snapshots as a backup set, or its keys by SCAN
    (asked for, or in auto mode when a primary will not give a snapshot: the report says why)."""
    reason = None
    if via != SCAN:
        side, reason = _try_snapshot(
            lambda: cluster_snapshot_side(cluster, progress), via, cluster.close
        )
        if side is not None:
            return side
        reason = reason.replace(": not read by SYNC: ", ": ", 1)
    scanned = ClusterLiveSide(cluster)
    scanned.source.via = SCAN
    if reason is not None:
        scanned.source.notes.append(f"read by SCAN, not as its primaries' snapshots: {reason}")
    return scanned


def _try_snapshot(
    take: Callable[[], Side], via: str, close: Callable[[], None]
) -> tuple[Side | None, str]:
    """The side ``take`` reads from a snapshot (``close`` then drops the SCAN connection), or
    None and why not where auto mode reads by SCAN instead. A refusal under ``--via
    snapshot``, and any other server error, is a DiffError."""
    try:
        side = take()
    except (SnapshotRefused, SnapshotFailed) as e:
        if via != SNAPSHOT:
            return None, str(e)
        close()
        raise DiffError(str(e)) from None
    except (ServerError, ConnectError) as e:
        close()
        raise DiffError(str(e)) from None
    except BaseException:
        close()
        raise
    close()
    return side, ""
