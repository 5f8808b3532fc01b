"""The two sides of a diff: open one from its spec string and read its keys.

A spec is a live server URL (``redis://``, ``rediss://``, ``unix://``), a saved
``check --json`` report (a JSON file with ``"schema": "rbkit.check/1"``: counts only), or any
backup ``rbkit check`` accepts (RDB, AOF, ``appendonlydir``, manifest, data directory). A
backup is checked first and refused when the check finds an error: the diff of a damaged
file would be meaningless.

Each side fills a :class:`~toolkit.diff.table.KeyTable` (``collect``) or gives per-db counts
(``counts``), and its :class:`~toolkit.diff.model.Source` says what it was and when its data
was current.
"""

from __future__ import annotations

import contextlib
import dataclasses
import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from parsers.errors import FormatError
from parsers.printable import printable
from parsers.rdb.constants import COLLECTION_TYPES, REDIS_TYPES, TYPE_NAMES, ValueType
from parsers.rdb.decode import read_value
from parsers.rdb.dump import decode_dump
from parsers.rdb.strings import read_length, read_string, skip_string, string_length
from parsers.rdb.walker import RdbWalker
from toolkit import lifeline
from toolkit.check.backup import check_backup
from toolkit.check.cluster.layout import is_set
from toolkit.check.cluster.verdict import ClusterCheck, check_cluster
from toolkit.check.keyspace import UNKNOWN_TIME
from toolkit.check.problems import ERROR
from toolkit.check.result import CheckResult
from toolkit.diff.cluster_live import ClusterLive, is_cluster_node
from toolkit.diff.cluster_snapshot import ShardSnapshot, snapshot_set
from toolkit.diff.forked import Forked
from toolkit.diff.live import LiveServer
from toolkit.diff.model import Source
from toolkit.diff.saved_report import SavedReport, read_report
from toolkit.diff.table import (
    BUCKET_SHIFT,
    MASK64,
    NO_TTL,
    KeyTable,
    clamp_expiry,
)
from toolkit.diff.values import digest, size_of, string_digest
from toolkit.errors import BackupIOError, ConnectError, DiffError, ServerError, UsageError
from toolkit.mapped import release_behind
from toolkit.server.connect import ConnectOptions, Server, looks_like_server
from toolkit.server.process import RedisServer, free_port
from toolkit.server.read import parse_version, scan_db
from toolkit.server.snapshot import Snapshot, SnapshotFailed, SnapshotRefused, take_snapshot
from toolkit.sources import remote
from toolkit.sources.opened import open_backup
from toolkit.steps import KEYS, ProgressFactory, no_progress, progress_of
from toolkit.steps import Progress as ProgressBar

Progress = ProgressFactory | None
Matcher = Callable[[bytes], object] | None
# How a live side is read: its replication snapshot, SCAN, or the snapshot where it can be.
SNAPSHOT, SCAN, AUTO = "snapshot", "scan", "auto"
# An expiry no key has: no key is left out as expired.
NEVER = -(1 << 64)
# Keys per pipeline when reading a scratch server's values.
DUMP_BATCH = 1000
_STRING = int(ValueType.STRING)
_MODULE_2 = int(ValueType.MODULE_2)
# Bytes read at a name's offset to get it (longer names take a second read).
NAME_READ = 256


@dataclass
class DbCounts:
    """One db's counts, as a side reports them when only counts are compared."""

    keys: int = 0
    expires: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class Side:
    """One opened side. Subclasses fill ``source`` and implement what they can."""

    kind = ""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.empty_skipped = 0  # empty collections left out (Redis drops them on load)
        self.module_values = 0  # module values whose digests were taken
        self.expired_left_out = 0  # keys past their TTL at a snapshot's time, left out

    @property
    def live(self) -> LiveServer | None:
        """The server to re-read keys from (a live side only)."""
        return None

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        raise NotImplementedError

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
        raise NotImplementedError

    def name_reader(self) -> Callable[[int], bytes] | None:
        """Reads a key name back from the ref ``collect`` stored (None: names kept in the
        table)."""
        return None

    def close(self) -> None:
        """Release what the side holds open (mapped file, connections, scratch server)."""


def added_counts(sides: list[Side], dbs: set[int] | None) -> dict[int, DbCounts]:
    """The counts of several sides (a set's shards, a cluster's primaries) added up."""
    out: dict[int, DbCounts] = {}
    for side in sides:
        for db, c in side.counts(dbs).items():
            into = out.setdefault(db, DbCounts())
            into.keys += c.keys
            into.expires += c.expires
            for name, n in c.by_type.items():
                into.by_type[name] = into.by_type.get(name, 0) + n
    return dict(sorted(out.items()))


# -- opening --------------------------------------------------------------------------------


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
    tmpdir: Path | None = None,
) -> Side:
    """Open side ``label`` ("A" or "B") from ``spec``. Raises DiffError for bad input.

    ``spec`` names a server when :func:`looks_like_server` says so (a file of that name that
    exists wins), reached with ``connect`` and read ``via`` its replication snapshot, SCAN,
    or (:data:`AUTO`) the snapshot where the server gives one safely, else SCAN.
    ``modules`` are passed to the check of a backup (an AOF's module commands need them).
    ``checked``: the check of this very file, or the snapshot of this very server, already
    under way (:class:`BackgroundCheck`, :class:`BackgroundSnapshot`). ``tmpdir``: where a
    server's snapshot is written (default: the system's temporary directory)."""
    ahead = checked if isinstance(checked, BackgroundSnapshot) and checked.spec == spec else None
    if isinstance(checked, BackgroundCheck) and checked.path == Path(spec):
        try:
            result = checked.result()
        except BackupIOError as e:
            raise DiffError(str(e)) from None
        _refuse_invalid(result)
        return RdbSide(result) if result.format == "rdb" else AofSide(result)
    if looks_like_server(spec):
        try:
            server = Server.parse(spec, connect)
        except UsageError as e:
            raise DiffError(str(e)) from None
        return _open_live(server, label, progress, via, ahead, tmpdir)
    path = Path(spec)
    report = read_report(path)
    if report is not None:
        return ReportSide(path, report)
    if is_set(path):
        return SetSide(_checked_set(path))

    try:
        with progress_of(progress or no_progress, f"checking {label} ({path.name})") as bar:
            result = check_backup(path, progress=bar, modules=modules)
    except BackupIOError as e:
        raise DiffError(str(e)) from None
    _refuse_invalid(result)
    if result.format == "rdb":
        return RdbSide(result)
    return AofSide(result)


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
        cls, spec: str, connect: ConnectOptions | None, via: str, tmpdir: Path | None = None
    ) -> BackgroundSnapshot | None:
        """A background snapshot of ``spec`` when it names a server to be read so (auto mode
        or ``--via snapshot``) and this system can fork; else None."""
        if via == SCAN or not looks_like_server(spec) or Path(spec).exists():
            return None
        try:
            server = Server.parse(spec, connect)
        except UsageError:
            return None  # the side, opened as usual, says what is wrong
        directory = lifeline.scratch_dir("rbkit-snapshot-", tmpdir)
        job = Forked.start(lambda: _snapshot_job(server, directory / "snapshot.rdb"))
        if job is None:
            lifeline.remove_dir(directory)
            return None
        return cls(spec, directory, job)

    def side(self, server: Server, label: str, progress: Progress) -> SnapshotSide:
        """The side, as :func:`_snapshot_side` gives it (raising what it raises); where the
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
            _refuse_invalid(result)
            directory, self._directory = self._directory, None
            return SnapshotSide(result, server.display, snap, directory)
        tmpdir = self._directory.parent
        self.close()
        if outcome[0] == "refused":
            raise SnapshotRefused(outcome[1])
        if outcome[0] == "failed":
            raise SnapshotFailed(outcome[1])
        return _snapshot_side(server, label, progress, tmpdir)

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


def _open_live(
    server: Server,
    label: str,
    progress: Progress,
    via: str,
    ahead: BackgroundSnapshot | None = None,
    tmpdir: Path | None = None,
) -> Side:
    """A server's side: its snapshot checked as an RDB (``ahead``: already under way), or
    its keys read by SCAN. (The diff closes an unused ``ahead``.)"""
    live = LiveServer(server)  # connects: a refused password or no answer ends here
    if is_cluster_node(live):
        return _open_cluster(ClusterLive(live), progress, via, tmpdir)
    reason = None
    if via != SCAN:
        take: Callable[[], Side] = (
            (lambda: ahead.side(server, label, progress))
            if ahead is not None
            else (lambda: _snapshot_side(server, label, progress, tmpdir))
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


def _open_cluster(
    cluster: ClusterLive, progress: Progress, via: str, tmpdir: Path | None = None
) -> Side:
    """A live cluster's side: its primaries' snapshots as a backup set, or its keys by SCAN
    (asked for, or in auto mode when a primary will not give a snapshot: the report says why)."""
    reason = None
    if via != SCAN:
        side, reason = _try_snapshot(
            lambda: _cluster_snapshot_side(cluster, progress, tmpdir), via, cluster.close
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


def _snapshot_side(
    server: Server, label: str, progress: Progress, tmpdir: Path | None = None
) -> SnapshotSide:
    directory = lifeline.scratch_dir("rbkit-snapshot-", tmpdir)
    try:
        dest = directory / "snapshot.rdb"
        with progress_of(progress or no_progress, f"snapshot of {label} ({server.address})") as bar:
            snap = take_snapshot(server, dest, progress=bar)
        with progress_of(progress or no_progress, f"checking {label}'s snapshot") as bar:
            result = check_backup(dest, progress=bar)
        snap.settled()
        _refuse_invalid(result)
        return SnapshotSide(result, server.display, snap, directory)
    except BaseException:
        lifeline.remove_dir(directory)
        raise


def _cluster_snapshot_side(
    cluster: ClusterLive, progress: Progress, tmpdir: Path | None = None
) -> ClusterSnapshotSide:
    """Every primary of ``cluster`` read as its replication snapshot, into a scratch backup set
    (under ``tmpdir``) checked as ``check --cluster`` checks one."""
    directory = lifeline.scratch_dir("rbkit-snapshot-", tmpdir)
    try:
        shots = snapshot_set(cluster, directory, progress)
        check = _checked_set(directory)
        for shot in shots:
            shot.snapshot.settled()
        return ClusterSnapshotSide(check, cluster.name, shots, directory)
    except BaseException:
        lifeline.remove_dir(directory)
        raise


def _refuse_invalid(result: CheckResult) -> None:
    errors = [p for p in result.problems if p.severity == ERROR]
    if not errors:
        return
    p = errors[0]
    where = f" (offset {p.offset})" if p.offset is not None and "offset" not in p.message else ""
    more = f" and {len(errors) - 1} more error(s)" if len(errors) > 1 else ""
    raise DiffError(
        f"{result.name}: not a valid backup: {p.message}{where}{more}; a diff of a damaged "
        "backup would be meaningless (see rbkit check)"
    )


def _mtime_ms(path: Path) -> int | None:
    try:
        return int(path.stat().st_mtime * 1000)
    except OSError:
        return None


def _aux_ctime_ms(aux: dict[str, Any]) -> int | None:
    ctime = aux.get("ctime")
    try:
        return int(str(ctime)) * 1000 if ctime is not None else None
    except ValueError:
        return None


# -- a saved check report ------------------------------------------------------------------


class ReportSide(Side):
    kind = "report"

    def __init__(self, path: Path, report: SavedReport) -> None:
        source = Source("report", str(path), version=report.redis_ver)
        if report.last_ts is not None:
            source.time_ms, source.time_source = report.last_ts * 1000, "report aof last #TS"
        elif report.ctime_s is not None:
            source.time_ms, source.time_source = report.ctime_s * 1000, "report aux ctime"
        super().__init__(source)
        self._counts = {
            db: DbCounts(c.keys, c.expires, dict(c.by_type)) for db, c in report.databases.items()
        }
        source.keys_read = sum(c.keys for c in self._counts.values())
        source.notes.append(f"{path} is a saved check report: counts only")
        for n, text in (
            (
                sum(c.expired_at_check for c in report.databases.values()),
                "keys already expired when it was checked",
            ),
            (sum(c.empty for c in report.databases.values()), "empty collections"),
        ):
            if n:
                source.notes.append(f"its counts include {n:,} {text}, which a server drops")

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        return {db: c for db, c in self._counts.items() if dbs is None or db in dbs}


# -- an RDB file ---------------------------------------------------------------------------


class RdbSide(Side):
    kind = "rdb"

    def __init__(self, result: CheckResult) -> None:
        path = Path(result.path)
        source = Source("rdb", result.name, version=result.aux.get("redis-ver"))
        ctime = _aux_ctime_ms(result.aux)
        if ctime is not None:
            source.time_ms, source.time_source = ctime, "aux ctime"
        else:
            source.time_ms, source.time_source = _mtime_ms(path), "file mtime"
        super().__init__(source)
        source.notes.extend(result.notes)
        self.result = result
        self.path = path
        self._stack = contextlib.ExitStack()
        self._mm: mmap.mmap | None = None
        self._fd = -1
        self.expired_by = NEVER  # keys expiring at or before this ms are left out
        self.ref_base = 0  # added to every name offset stored (a set's shard number << 48)

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        inv = self.result.inventory
        out: dict[int, DbCounts] = {}
        for db, s in (inv.databases if inv else {}).items():
            if dbs is None or db in dbs:
                out[db] = DbCounts(s.keys, s.expires, dict(s.by_type))
        self.source.keys_read = sum(c.keys for c in out.values())
        return out

    def mapped(self) -> mmap.mmap | None:
        """The file, mapped read-only (None when empty); unmapped by :meth:`close`."""
        return self._map()

    @property
    def fd(self) -> int:
        """The open file's descriptor (after :meth:`mapped`), for reading with pread."""
        return self._fd

    def _map(self) -> mmap.mmap | None:
        if self._mm is None:
            try:
                f = self._stack.enter_context(open(self.path, "rb"))  # noqa: SIM115
                self._fd = f.fileno()
                if os.fstat(self._fd).st_size:
                    self._mm = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
                    self._stack.callback(_close_map, self._mm)
            except OSError as e:
                raise DiffError(f"{self.path}: {e.strerror or e}") from None
        return self._mm

    def name_reader(self) -> Callable[[int], bytes]:
        """Reads names with pread, not through the map: the few names a report needs are
        scattered over the file, and mapped pages touched at random would stay in RSS."""

        def read(ref: int) -> bytes:
            chunk = os.pread(self._fd, NAME_READ, ref)
            try:
                return bytes(read_string(chunk, 0)[0])
            except (FormatError, IndexError):  # a name longer than the chunk
                assert self._mm is not None
                end = skip_string(self._mm, ref)
                return bytes(read_string(os.pread(self._fd, end - ref, ref), 0)[0])

        return read

    def close(self) -> None:
        self._stack.close()
        self._mm = None

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
        mm = self._map()
        if mm is None:
            return
        released = 0
        size = len(mm)
        label = self.path.name

        bar = (progress or no_progress)(f"reading {label}")

        def hook(offset: int) -> None:
            nonlocal released
            released = release_behind(mm, offset, released)
            if bar is not None:
                bar(offset, size)

        try:
            walker = RdbWalker(mm, on_progress=hook)
            self._walk(walker, mm, table, dbs, match, values)
        except FormatError as e:
            raise DiffError(f"{self.path}: {e}") from None
        finally:
            if bar is not None:
                bar.close()
        self.source.seconds = time.monotonic() - started

    def _walk(
        self,
        walker: RdbWalker,
        buf: mmap.mmap,
        table: KeyTable,
        dbs: set[int] | None,
        match: Matcher,
        values: bool,
    ) -> None:
        """Every key into ``table``: the loop is written out, as it runs per key."""
        types = table.types
        codes = {t: types.code(name) for t, name in TYPE_NAMES.items() if name != "module"}
        module_codes: dict[int, int] = {}  # module id -> type code
        collections = COLLECTION_TYPES
        magic, mv = walker.magic, walker.mv
        m64, shift = MASK64, BUCKET_SHIFT
        tables = table.dbs
        n_read = 0
        empty = 0
        modules = 0
        expired_by, expired = self.expired_by, 0
        base = self.ref_base
        for db, t, key_offset, value_offset, end, n, expire in walker.walk():
            if dbs is not None and db not in dbs:
                continue
            if expire is not None and expire <= expired_by:
                expired += 1
                continue
            if n == 0 and t in collections:
                empty += 1
                continue
            b = buf[key_offset]
            key = (
                buf[key_offset + 1 : key_offset + 1 + b]
                if b < 0x40
                else read_string(buf, key_offset)[0]
            )
            if match is not None and not match(key):
                continue
            if t == _STRING:
                code = codes[t]
                size: int | None = string_length(buf, value_offset)
            elif t == _MODULE_2:
                module_id = read_length(buf, value_offset)[0]
                code = module_codes.get(module_id, -1)
                if code < 0:
                    code = module_codes[module_id] = types.code(walker.module_name_at(value_offset))
                size = None
            else:
                code = codes[t]
                size = n
            h1 = hash(key) & m64
            d = tables.get(db)
            if d is None:
                d = table.db(db)
            bk = d.buckets[h1 >> shift]
            if bk is None:
                bk = d.bucket(h1 >> shift)
            bk.h1.append(h1)
            bk.h2.append(hash(key + b"\x00") & m64)
            bk.ref.append(key_offset + base)
            bk.exp.append(NO_TTL if expire is None else clamp_expiry(expire))
            bk.meta.append(code if size is None else (size + 1) << 8 | code)
            d.count += 1
            n_read += 1
            if values:
                if t == _STRING:
                    bk.add_digest(string_digest(read_string(buf, value_offset)[0]))
                else:
                    try:
                        value = read_value(buf, t, value_offset, magic=magic, mv=mv)[0]
                    except FormatError as e:
                        raise e.located(key=bytes(key), db=db) from None
                    module = t == _MODULE_2
                    modules += module
                    bk.add_digest(digest(value, buf[value_offset:end] if module else None))
        self.source.keys_read = n_read
        self.empty_skipped = empty
        self.module_values = modules
        self.expired_left_out = expired


def _close_map(mm: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):
        mm.close()


# -- a cluster backup set ---------------------------------------------------------------------

SHARD_SHIFT = 48  # a set side's name refs: shard number << 48 | offset in its RDB file


def _checked_set(path: Path) -> ClusterCheck:
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


class _InScratchDir:
    """A side read from files rbkit wrote into a scratch folder, removed when it closes."""

    _directory: Path

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            lifeline.remove_dir(self._directory)


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


class ClusterSnapshotSide(_InScratchDir, SetSide):
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
        self._directory = directory


# -- an AOF --------------------------------------------------------------------------------


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
    times = [_mtime_ms(path)]
    if result.aof is not None and result.aof.layout == "multi-part":
        times += [_mtime_ms(path.parent / f.name) for f in result.aof.files]
    known = [t for t in times if t is not None]
    return max(known) if known else None


# -- a live server -------------------------------------------------------------------------


class SnapshotSide(_InScratchDir, RdbSide):
    """A live server read as its replication snapshot: an RDB file in a scratch dir, read
    like any other (consistent in time, so no key is re-read); the source says it is live."""

    def __init__(self, result: CheckResult, name: str, snap: Snapshot, directory: Path) -> None:
        super().__init__(result)
        source = self.source
        source.kind, source.name, source.via = "live", name, SNAPSHOT
        if snap.time_ms is not None:
            source.time_ms, source.time_source = snap.time_ms, "server TIME after its snapshot"
            # What a reader of the server sees: keys past their TTL are gone.
            self.expired_by = snap.time_ms
        source.notes.append(
            f"read as its replication snapshot (SYNC): {snap.bytes:,} bytes in "
            f"{snap.seconds:.2f} s, consistent at one moment"
        )
        if snap.delay and snap.framing == "eof-mark":
            source.notes.append(
                f"of those seconds, the server waited {snap.delay} s before it forked (its "
                "repl-diskless-sync-delay, for other replicas to join; rbkit leaves it as set)"
            )
        self._directory = directory


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
