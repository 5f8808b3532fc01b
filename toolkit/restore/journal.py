"""The restore's journal and lock, both in the target's data directory.

The journal (``rbkit-restore.journal``) is one JSON object per line, each written and fsynced
before the step it announces: first the plan (what will be kept where, how to stop and start
the target), then ``{"step": NAME, "status": "begin" | "done" | "failed"}`` lines. A restore
cut off at any point is undone from it (``rbkit restore --rollback DIR``, or the next restore
does it first); a rollback journals its own "put back" step, so it can be cut off or run again.
When a restore ends (done, or rolled back and verified) the journal moves into its rollback
folder; after a rollback that failed it stays, for ``--rollback DIR`` to finish.

The lock (``rbkit-restore.lock``) holds the owner's pid, and the owner holds its flock; a lock
whose process is gone is stale and taken over (the journal says what that process did).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import JournalError
from toolkit.lifeline import pid_alive
from toolkit.steps import Step, timed

JOURNAL = "rbkit-restore.journal"
LOCK = "rbkit-restore.lock"
ROLLBACK_PREFIX = "rbkit-rollback-"


class LockHeld(JournalError):
    """Another restore, still running, holds the lock (the restore is refused)."""


def fsync_dir(path: Path) -> None:
    """Make a rename or create in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Journal:
    path: Path
    plan: dict[str, Any] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, data_dir: Path, plan: dict[str, Any]) -> Journal:
        journal = cls(data_dir / JOURNAL, plan)
        with open(journal.path, "x", encoding="utf-8") as f:
            f.write(json.dumps({"plan": plan}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(data_dir)
        return journal

    @classmethod
    def read(cls, data_dir: Path) -> Journal | None:
        """The journal of an unfinished restore in ``data_dir``; None if there is none."""
        path = data_dir / JOURNAL
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise JournalError(f"{path}: {e.strerror or e}") from None
        journal = cls(path)
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # cut off while being written: that step never began
                    break
                raise JournalError(f"{path}:{number}: not a JSON line") from None
            if "plan" in record:
                journal.plan = record["plan"]
            else:
                journal.entries.append(record)
        if not journal.plan:
            raise JournalError(f"{path}: no plan line")
        return journal

    def write(self, step: str, status: str, **detail: Any) -> None:
        record = {"step": step, "status": status, "time": time.time(), **detail}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.entries.append(record)

    def began(self, step: str) -> bool:
        return any(e["step"] == step for e in self.entries)

    def done(self, step: str) -> bool:
        return any(e["step"] == step and e["status"] == "done" for e in self.entries)

    @property
    def last(self) -> str:
        """The last step written, as "step (status)"."""
        if not self.entries:
            return "plan"
        e = self.entries[-1]
        return f"{e['step']} ({e['status']})"

    def close(self, folder: Path) -> Path | None:
        """The restore is over: move the journal into its rollback ``folder`` and return its
        new path; where no folder was made (nothing was moved), delete it and return None."""
        if not folder.is_dir():
            self.path.unlink(missing_ok=True)
            fsync_dir(self.path.parent)
            return None
        dest = folder / JOURNAL
        os.replace(self.path, dest)
        fsync_dir(self.path.parent)
        self.path = dest
        return dest


def _pid_in(text: bytes) -> int:
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return 0


def _holder(fd: int, path: Path, data_dir: Path) -> str | None:
    """Why the lock file open at ``fd`` is held by another process (its recorded pid is
    alive, or it holds the file's flock), or None."""
    pid = _pid_in(os.pread(fd, 100, 0))
    held = bool(pid) and pid != os.getpid() and pid_alive(pid)
    if not held:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BlockingIOError:
            held = True
        except OSError:  # no flock here (some network filesystems): the pid decides
            pass
    if held:
        return f"{path}: another restore (pid {pid or '?'}) is running in {data_dir}"
    return None


def lock_holder(data_dir: Path) -> str | None:
    """Why ``data_dir`` cannot be locked now (another restore runs there), or None."""
    path = data_dir / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _holder(fd, path, data_dir)
    finally:
        os.close(fd)


@contextmanager
def locked(data_dir: Path) -> Iterator[list[str]]:
    """Hold the restore lock of ``data_dir`` (the file, with its flock); yields notes (e.g. a
    stale lock taken over). Raises LockHeld when a running process holds it."""
    path = data_dir / LOCK
    notes: list[str] = []
    for _attempt in range(5):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise JournalError(f"{path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held = _holder(fd, path, data_dir) or f"{path}: another restore holds it"
            os.close(fd)
            raise LockHeld(held) from None
        except OSError:
            pass
        try:  # its last holder may have removed it meanwhile: lock the file that is there
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        pid = _pid_in(os.pread(fd, 100, 0))
        if pid and pid != os.getpid() and pid_alive(pid):
            os.close(fd)
            raise LockHeld(f"{path}: another restore (pid {pid}) is running in {data_dir}")
        if os.fstat(fd).st_size:
            notes.append(f"a stale lock of pid {pid or '?'} (no longer running) was taken over")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {int(time.time())}\n".encode(), 0)
        os.fsync(fd)
        break
    else:  # pragma: no cover - the lock file replaced five times in a row
        raise JournalError(f"{path}: cannot take the lock")
    try:
        yield notes
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def rollback_folder(data_dir: Path) -> Path:
    """A new, dated rollback folder name in ``data_dir`` (not created)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = data_dir / f"{ROLLBACK_PREFIX}{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = data_dir / f"{ROLLBACK_PREFIX}{stamp}-{n}"
    return path


@contextmanager
def journaled(steps: list[Step], name: str, journal: Journal | None = None) -> Iterator[Step]:
    """A timed step, journaled (begin, done) when ``journal`` is given; "failed" if it raises."""
    if journal is not None:
        journal.write(name, "begin")
    with timed(steps, name) as step:
        try:
            yield step
        except BaseException:
            if step.status == "ok":
                step.status = "failed"
            raise
    if journal is not None:
        journal.write(name, "done", detail=step.detail)
