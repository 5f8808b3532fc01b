"""The journal of a network restore, and resuming one that was cut off (``--resume``).

The journal is a file of JSON lines: a header (the backup's path and sha256, the target's
address without its password and its ``run_id``, the options that decide what is written),
then, as the load goes (load.py), a ``sent`` line before each batch goes out (written to
disk first), an ``acked`` line once the server has answered every key of it (with the
counts so far), ``libraries`` once the function libraries are loaded, ``loaded`` at the end.
Keys are numbered in the order the backup is walked (every key, skipped or not), so
"every key before number N was acknowledged" is one number. The running restore holds the
journal's flock (released when the process ends, even by a kill).

A resumed load skips the keys acknowledged before, writes those sent without an answer with
REPLACE (they may be there: the journal says this restore sent them), and goes on; the
verification then reads back every key of the backup. The journal goes once the restore is
verified (or found different); it stays when the load stopped, for ``--resume``.

By default it lives under ``$XDG_STATE_HOME/rbkit/network-restores`` (``~/.local/state``;
the temp dir without a home), named by the target's address and the backup's sha256.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import JournalError
from toolkit.restore.network.target import TargetInfo
from toolkit.text import plural, utc_iso

FORMAT = "rbkit.network-journal/1"
DONE = 1 << 62  # ordinal past every key: a load that ended


class Refused(Exception):
    """The restore must not go on as asked; ``reasons`` say why and what to do."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def state_dir() -> Path:
    """Where journals go by default: $XDG_STATE_HOME/rbkit, ~/.local/state/rbkit, else a
    directory of this user's in the temp dir."""
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / "rbkit" / "network-restores"
    home = os.environ.get("HOME")
    if home:
        return Path(home) / ".local" / "state" / "rbkit" / "network-restores"
    return Path(tempfile.gettempdir()) / f"rbkit-{os.getuid()}" / "network-restores"


def _address(display: str) -> str:
    """The target's address as a file name: ``redis://u@host:6379`` -> ``u_host_6379``."""
    bare = display.split("://", 1)[-1]
    return re.sub(r"[^A-Za-z0-9.-]+", "_", bare).strip("_") or "target"


def journal_path(directory: Path, sha256: str, display: str) -> Path:
    return directory / f"{_address(display)}--{sha256[:16]}.journal"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(8 << 20):
                digest.update(chunk)
    except OSError as e:
        raise JournalError(f"{path}: {e.strerror or e}") from None
    return digest.hexdigest()


@dataclass
class Header:
    """What a journal was written for."""

    backup: str
    sha256: str
    target: str  # the URL without its password
    run_id: str
    replace: bool
    path: str  # payload or commands
    started_ms: int
    format: str = FORMAT


@dataclass
class Journal:
    """A journal: read back (an earlier run's) and appended to (this run's)."""

    file: Path
    header: Header
    acked_through: int = 0
    sent_through: int = 0
    restored: dict[str, int] = field(default_factory=dict)
    walked: dict[str, Any] = field(default_factory=dict)
    libraries: list[str] | None = None
    finished: bool = False  # the load ended (every key sent and acknowledged)
    lock_fd: int | None = None  # held (flock) while this process writes it

    def lock(self) -> bool:
        """Take the journal's flock for this process (released when it ends, even by a
        kill); False when another process holds it: that restore is running now."""
        if self.lock_fd is not None:
            return True
        try:
            fd = os.open(self.file, os.O_RDONLY)
        except OSError as e:
            raise JournalError(f"{self.file}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.lock_fd = fd
        return True

    # -- reading --------------------------------------------------------------------------

    @classmethod
    def read(cls, file: Path) -> Journal:
        """The journal at ``file``; a last line cut off by a kill is ignored."""
        try:
            lines = file.read_bytes().split(b"\n")
        except OSError as e:
            raise JournalError(f"{file}: {e.strerror or e}") from None
        records = []
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                if n >= len(lines) - 2:  # the line being written when it was cut off
                    break
                raise JournalError(f"{file}: line {n + 1} is not JSON") from None
        if not records or records[0].get("format") != FORMAT:
            raise JournalError(f"{file}: not a journal of rbkit's network restore ({FORMAT})")
        try:
            out = cls(file, Header(**records[0]))
        except TypeError:
            raise JournalError(f"{file}: its header is not {FORMAT}'s") from None
        for r in records[1:]:
            out._apply(r)
        return out

    def _apply(self, r: dict[str, Any]) -> None:
        if "sent" in r:
            self.sent_through = max(self.sent_through, int(r["sent"][1]))
        elif "acked" in r:
            self.acked_through = int(r["acked"])
            self.restored = dict(r.get("restored") or {})
            self.walked = dict(r.get("walked") or {})
        elif "libraries" in r:
            self.libraries = list(r["libraries"])
        elif r.get("loaded"):
            self.finished = True
            self.acked_through = self.sent_through = DONE

    @property
    def keys_acked(self) -> int:
        return sum(self.restored.values())

    @property
    def unsure(self) -> int:
        """Keys sent without an answer (written again, with REPLACE, on resume)."""
        return max(0, min(self.sent_through, DONE) - self.acked_through)

    # -- writing (load.py's LoadJournal) --------------------------------------------------

    @classmethod
    def create(cls, file: Path, header: Header) -> Journal:
        try:
            file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(file, "w", encoding="utf-8") as f:
                f.write(json.dumps(asdict(header)) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise JournalError(f"{file}: {e.strerror or e}") from None
        out = cls(file, header)
        out.lock()
        return out

    def _append(self, record: dict[str, Any], sync: bool = False) -> None:
        try:
            with open(self.file, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
        except OSError as e:
            raise JournalError(f"{self.file}: {e.strerror or e}") from None

    def sent(self, first: int, through: int) -> None:
        """Keys ``first`` to ``through`` are about to be sent (on disk before they are)."""
        self._append({"sent": [first, through]}, sync=True)

    def acked(self, through: int, restored: dict[str, int], walked: dict[str, object]) -> None:
        self._append({"acked": through, "restored": restored, "walked": walked})

    def libraries_loaded(self, names: list[str]) -> None:
        self._append({"libraries": names}, sync=True)

    def loaded(self) -> None:
        self._append({"loaded": True}, sync=True)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file.unlink()
        self.release()

    def release(self) -> None:
        """Let the flock go (the restore ended; a kept journal may be resumed)."""
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def summary(self) -> str:
        """``N keys acknowledged, started at TIME``, for sentences."""
        started = utc_iso(self.header.started_ms)
        if self.finished:
            return f"every key sent and acknowledged, started at {started}"
        return f"{plural(self.keys_acked, 'key')} acknowledged, started at {started}"


# -- deciding ------------------------------------------------------------------------------


@dataclass
class Resumption:
    """Where this restore journals, and the earlier run it continues (None: a fresh one)."""

    file: Path | None  # None: no journal (an AOF backup)
    sha256: str
    backup: Path  # the RDB file restored
    previous: Journal | None = None
    notes: list[str] = field(default_factory=list)


# Restores that keep no journal: what they are, and why they cannot be resumed.
AOF = (
    "an AOF backup",
    "it is loaded into a scratch server and saved as an RDB anew on each run, and the order "
    "of its keys changes; restore it again from the start (with --replace)",
)
SET = (
    "a cluster backup set",
    "its shards are read in turn and AOF shards converted anew on each run; restore it again "
    "from the start (with --replace)",
)
SELECTIVE = (
    "a selective restore",
    "the journal does not record the selection; run it again (--on-conflict skip leaves the "
    "keys it wrote as they are)",
)


def prepare(
    backup: Path,
    *,
    unjournaled: tuple[str, str] | None,
    info: TargetInfo,
    replace: bool,
    resume: bool,
    restart: bool,
    journal: Path | None,
    dry_run: bool,
) -> Resumption:
    """Find the journal of ``backup`` into the target and decide: a fresh restore, a resumed
    one, or Refused (an unfinished journal without --resume or --restart; --resume with no
    journal, a changed backup, another server, other options). ``unjournaled`` names a
    restore that keeps no journal (:data:`AOF`, :data:`SET`, :data:`SELECTIVE`)."""
    if unjournaled is not None:
        what, why = unjournaled
        if resume:
            raise Refused([f"{what} cannot be resumed: {why}"])
        note = f"{what} over the network keeps no journal"
        return Resumption(None, "", backup, notes=[note])
    sha = file_sha256(backup)
    directory = journal.parent if journal is not None else state_dir()
    file = journal if journal is not None else journal_path(directory, sha, info.display)
    existing = _read(file, restart, dry_run) if file.is_file() else None
    if existing is not None and not existing.lock():
        raise Refused(
            [
                f"a restore of this backup into {info.display} is running now (another rbkit "
                f"holds its journal {file}): let it finish, or stop it and pass --resume"
            ]
        )
    try:
        return _decide(backup, sha, file, existing, journal, info, replace, resume, restart,
                       dry_run)  # fmt: skip
    except Refused:
        if existing is not None:
            existing.release()
        raise


def _decide(
    backup: Path,
    sha: str,
    file: Path,
    existing: Journal | None,
    journal: Path | None,
    info: TargetInfo,
    replace: bool,
    resume: bool,
    restart: bool,
    dry_run: bool,
) -> Resumption:
    directory = file.parent
    stale = [] if journal is not None else _stale(directory, info.display, backup, sha)
    if restart:
        for old in ([existing] if existing else []) + stale:
            if not dry_run:
                old.remove()
        what = "discarded" if not dry_run else "would be discarded"
        notes = [f"--restart: the journal {j.file} ({j.summary()}) {what}" for j in stale]
        if existing is not None:
            notes.insert(0, f"--restart: the journal {file} ({existing.summary()}) {what}")
            existing.release()
        return Resumption(file, sha, backup, None, notes)
    if not resume:
        for j in ([existing] if existing else []) + stale:
            which = "this backup" if j is existing else "this backup (as it was then)"
            raise Refused(
                [
                    f"an interrupted restore of {which} into {info.display} left its journal "
                    f"at {j.file} ({j.summary()}): pass --resume to continue it, or --restart "
                    "to discard the journal and start over"
                ]
            )
        return Resumption(file, sha, backup)
    if existing is None:
        for old in stale:
            raise Refused(
                [
                    f"the backup changed since the interrupted restore: its sha256 is {sha}, "
                    f"the journal {old.file} recorded {old.header.sha256}; --restart discards "
                    "that journal and starts over"
                ]
            )
        where = f"into {info.display} at {file}"
        raise Refused([f"nothing to resume: no journal of this backup {where}"])
    _same(existing, sha, info, replace)
    note = f"resuming the restore of the journal {file} ({existing.summary()})"
    return Resumption(file, sha, backup, existing, [note])


def _read(file: Path, restart: bool, dry_run: bool) -> Journal | None:
    """The journal at ``file``; one that cannot be read is refused, or with ``restart``
    discarded."""
    try:
        return Journal.read(file)
    except JournalError as e:
        if not restart:
            raise Refused([f"{e}: --restart discards it and starts over"]) from None
        if not dry_run:
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
        return None


def _stale(directory: Path, display: str, backup: Path, sha: str) -> list[Journal]:
    """Journals of the same backup path into the same target, for another sha256."""
    out = []
    for file in sorted(directory.glob(f"{_address(display)}--*.journal")):
        with contextlib.suppress(JournalError):
            j = Journal.read(file)
            if j.header.sha256 != sha and j.header.backup == os.fspath(backup.resolve()):
                out.append(j)
    return out


def _same(j: Journal, sha: str, info: TargetInfo, replace: bool) -> None:
    h = j.header
    restart = "--restart discards the journal and starts over"
    if h.sha256 != sha:
        raise Refused(
            [
                f"the backup changed since the interrupted restore: its sha256 is {sha}, the "
                f"journal {j.file} recorded {h.sha256}; {restart}"
            ]
        )
    if h.target != info.display:
        raise Refused([f"the journal {j.file} is of a restore into {h.target}, not {info.display}"])
    if h.run_id != info.run_id:
        raise Refused(
            [
                f"{info.display} is not the server the interrupted restore wrote to: its "
                f"run_id is {info.run_id}, the journal recorded {h.run_id} (a restarted or "
                f"replaced server: what it holds now is not known to the journal); {restart}"
            ]
        )
    if h.replace != replace:
        flag = "with" if h.replace else "without"
        raise Refused([f"the interrupted restore ran {flag} --replace: resume it the same way"])


def discount(info: TargetInfo, previous: Journal) -> str | None:
    """Take the keys and libraries the interrupted run wrote out of what the target holds
    (the preflight then judges only the target's own); a note saying so, or None."""
    ours = {int(db): n + previous.unsure for db, n in previous.restored.items()}
    if previous.unsure:
        for db in info.keys_by_db():
            ours.setdefault(db, previous.unsure)
    taken = 0
    for node in info.nodes:
        for db, (keys, expires) in list(node.keyspace.items()):
            n = min(keys, ours.get(db, 0))
            if n:
                ours[db] -= n
                taken += n
                node.keyspace[db] = (keys - n, max(0, expires - n))
    libraries = set(previous.libraries or [])
    if libraries:
        info.functions = [f for f in info.functions or [] if f not in libraries]
        for node in info.nodes:
            node.functions = [f for f in node.functions or [] if f not in libraries]
    if not taken and not libraries:
        return None
    return (
        f"{plural(taken, 'key')} on the target came from the interrupted restore (its journal "
        f"{previous.file}): they are not counted as the target's own"
    )


def header_for(backup: Path, sha: str, info: TargetInfo, replace: bool, path: str) -> Header:
    return Header(
        os.fspath(backup.resolve()), sha, info.display, info.run_id, replace, path,
        int(time.time() * 1000),
    )  # fmt: skip


@dataclass
class JournalReport:
    """What the report says about the journal (its JSON, field for field)."""

    path: str
    resumed: bool = False
    keys_before: int = 0  # keys acknowledged by the interrupted run(s): not written again
    walked_before: int = 0  # keys of the backup walked by them (skipped ones too)
    rewritten: int = 0  # keys sent by them without an answer: written again with REPLACE
    kept: bool = False  # left for --resume (the load stopped)

    @classmethod
    def of(cls, r: Resumption) -> JournalReport | None:
        if r.file is None:
            return None
        p = r.previous
        if p is None:
            return cls(os.fspath(r.file))
        walked = min(p.acked_through, DONE - 1) if not p.finished else -1
        return cls(os.fspath(r.file), True, p.keys_acked, walked, p.unsure)
