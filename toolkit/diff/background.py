"""A side's slow part started in a forked process while this one opens the other side: an
RDB file's check, or a server's snapshot taken and checked.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

from toolkit import lifeline
from toolkit.check.backup import check_backup
from toolkit.check.result import CheckResult
from toolkit.diff.cluster_live import is_cluster_node
from toolkit.diff.forked import Forked
from toolkit.diff.live import LiveServer
from toolkit.diff.rdb_side import SnapshotSide
from toolkit.diff.side import SCAN, Progress, refuse_invalid
from toolkit.diff.snapshot_sides import snapshot_side
from toolkit.errors import DiffError, UsageError
from toolkit.server.connect import ConnectOptions, Server, looks_like_server
from toolkit.server.snapshot import SnapshotFailed, SnapshotRefused, take_snapshot
from toolkit.steps import no_progress, progress_of


class BackgroundCheck:
    """The check of an RDB file run in a forked process, while this one does something else
    (checks the other side of a diff: two cores, two files). Only a plain local RDB file is
    checked so (no scratch server, nothing to clean up); :meth:`result` waits for it, and
    raises what the check raised. :meth:`close` ends the process if it is still running."""

    def __init__(self, path: Path, job: Forked) -> None:
        self.path = path
        self._job = job

    @classmethod
    def start(cls, spec: str, modules: tuple[str, ...]) -> BackgroundCheck | None:
        """A background check of ``spec`` when it is a plain local RDB file and this system
        can fork; else None (it is checked as before, in this process)."""
        if looks_like_server(spec) and not Path(spec).exists():
            return None
        path = Path(spec)
        try:
            with open(path, "rb") as f:
                head = f.read(6)
        except OSError:
            return None  # not a plain file (a directory, a URL...): checked in this process
        if not head.startswith((b"REDIS", b"VALKEY")) or not path.is_file():
            return None
        job = Forked.start(lambda: check_backup(path, modules=modules))
        return cls(path, job) if job is not None else None

    def result(self) -> CheckResult:
        result: CheckResult = self._job.result()
        return result

    def close(self) -> None:
        self._job.close()


class BackgroundSnapshot:
    """A live server's replication snapshot taken, and checked, in a forked process while
    this one opens the other side of the diff: the server's wait and fork and the other
    side's check overlap. Only for one server (a cluster node is left to the usual path, as
    is any error but a refusal: the side is then opened as before, which says what is
    wrong); :meth:`side` waits for it."""

    def __init__(self, spec: str, directory: Path, job: Forked) -> None:
        self.spec = spec
        self._directory = directory
        self._job: Forked | None = job

    @classmethod
    def start(
        cls, spec: str, connect: ConnectOptions | None, via: str
    ) -> BackgroundSnapshot | None:
        """A background snapshot of ``spec`` when it names a server to be read so (auto mode
        or ``--via snapshot``) and this system can fork; else None."""
        if via == SCAN or not looks_like_server(spec) or Path(spec).exists():
            return None
        try:
            server = Server.parse(spec, connect)
        except UsageError:
            return None  # the side, opened as usual, says what is wrong
        directory = lifeline.scratch_dir("rbkit-snapshot-")
        job = Forked.start(lambda: _snapshot_job(server, directory / "snapshot.rdb"))
        if job is None:
            lifeline.remove_dir(directory)
            return None
        return cls(spec, directory, job)

    def side(self, server: Server, label: str, progress: Progress) -> SnapshotSide:
        """The side, as :func:`snapshot_side` gives it (raising what it raises); where the
        forked process did not get as far, it is taken here."""
        assert self._job is not None and self._directory is not None
        job, self._job = self._job, None
        dest = self._directory / "snapshot.rdb"
        with progress_of(progress or no_progress, f"snapshot of {label} ({server.address})") as bar:
            while not job.done():  # the bytes the server has sent so far
                with contextlib.suppress(OSError):
                    bar(dest.stat().st_size, None)
                time.sleep(0.1)
        try:
            outcome = job.result()
        except DiffError:  # the process died: take it here
            outcome = ("again",)
        if outcome[0] == "ok":
            _, snap, result = outcome
            refuse_invalid(result)
            directory, self._directory = self._directory, None
            return SnapshotSide(result, server.display, snap, directory)
        self.close()
        if outcome[0] == "refused":
            raise SnapshotRefused(outcome[1])
        if outcome[0] == "failed":
            raise SnapshotFailed(outcome[1])
        return snapshot_side(server, label, progress)

    def close(self) -> None:
        if self._job is not None:
            self._job.close()
            self._job = None
        if self._directory is not None:
            lifeline.remove_dir(self._directory)
            self._directory = None


def _snapshot_job(server: Server, dest: Path) -> tuple[Any, ...]:
    """In the forked process: ("ok", snapshot, check result), ("refused" or "failed",
    message), or ("again",) for a cluster node or any other error (the side is then opened
    in the main process, which says what is wrong)."""
    try:
        live = LiveServer(server)
        try:
            if is_cluster_node(live):
                return ("again",)
        finally:
            live.close()
        snap = take_snapshot(server, dest)
        result = check_backup(dest)
        snap.settled()
        return ("ok", dataclasses.replace(snap, reaping=None), result)
    except SnapshotRefused as e:
        return ("refused", str(e))
    except SnapshotFailed as e:
        return ("failed", str(e))
    except Exception:  # the main process tries again itself, and says what went wrong
        return ("again",)
