"""The drill's scratch server: its settings for a backup, the backup copied in as the server
looks for it, and what its log says about the load (seconds, keys expired, why it failed)."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from parsers.rdb.constants import DEFAULT_DATABASES
from toolkit import lifeline
from toolkit.check.result import CheckResult
from toolkit.server.process import RedisServer, ServerBinary, free_port
from toolkit.server.read import LiveKeyspace
from toolkit.stage.compat import needed_databases

T = TypeVar("T")

_LOG_LINE = re.compile(r"^\d+:[A-Z] \d+ \w+ \d+ [\d:.]+ (?P<level>[.\-*#]) (?P<text>.*)$")
_LOAD_TIME = re.compile(r"DB loaded from (?:disk|append only file): ([\d.]+) seconds")
_LOG_EXPIRED = re.compile(r"keys loaded: (\d+), keys expired: (\d+)")
_LOG_NOISE = ("WARNING Memory overcommit", "WARNING you have Transparent Huge Pages")


class ScratchServer(RedisServer):
    """A RedisServer whose clients never retry: redis-py's default retries (with backoff)
    would hide for seconds that the server died while loading."""

    def client(self, db: int = 0, **kwargs: object) -> redis.Redis:
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        return super().client(db, **kwargs)


def copy_size(result: CheckResult) -> int:
    if result.aof is not None and result.aof.layout == "multi-part":
        return sum(_size(p) for p in aof_dir_files(result))
    return _size(Path(result.path))


def aof_dir_files(result: CheckResult) -> list[Path]:
    """The files of a multi-part AOF's directory, as a copy of it would take them (all of
    them: a damaged manifest, staged with --force, is then judged by the server)."""
    try:
        return sorted(p for p in Path(result.path).parent.iterdir() if p.is_file())
    except OSError:
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# Read back as its replication snapshot (toolkit.stage.live_snapshot), streamed at once.
_STREAMED = {"repl-diskless-sync": "yes", "repl-diskless-sync-delay": "0"}
_RDB = {"dbfilename": "dump.rdb", "appendonly": "no"}


def with_modules(settings: dict[str, str], modules: Sequence[Path]) -> dict[str, str]:
    """``settings`` with ``modules`` to load (absolute: the server changes into its ``dir``
    before it loads them)."""
    if modules:
        settings["loadmodule"] = "\n".join(os.fspath(Path(m).absolute()) for m in modules)
    return settings


def scratch_settings(result: CheckResult, binary: ServerBinary, notes: list[str]) -> dict[str, str]:
    """The config of a scratch server that loads this backup; why, said in ``notes``.
    (The drill's, and diff's when it loads an AOF to read its values.)"""
    settings: dict[str, str] = dict(_STREAMED)
    databases = needed_databases(result)
    if databases > DEFAULT_DATABASES:
        settings["databases"] = str(databases)
        notes.append(
            f"databases {databases}: the backup uses db {databases - 1} (the default is 16)"
        )
    if result.format == "rdb":
        settings.update(_RDB)
        return settings
    assert result.aof is not None
    settings.update(
        {
            "appendonly": "yes",
            "appendfsync": "no",
            "auto-aof-rewrite-percentage": "0",
        }
    )
    if result.aof.layout == "multi-part":
        manifest = Path(result.path).name
        settings["appendfilename"] = manifest.removesuffix(".manifest")
        settings["appenddirname"] = "appendonlydir"
    else:
        settings["appendfilename"] = "appendonly.aof"
        if binary.version >= (7, 0):
            notes.append(
                f"a single-file AOF on Redis {binary.version_text}: the server upgrades it "
                "to a multi-part appendonlydir when it loads it (in the scratch copy)"
            )
    cut = [p for p in result.problems if p.code in ("truncated_tail", "unterminated_multi")]
    if cut:
        settings["aof-load-truncated"] = "yes"
        notes.append(
            "aof-load-truncated yes: the backup ends in a cut-off command or transaction, "
            "which the server drops (" + cut[0].message + ")"
        )
    else:
        settings["aof-load-truncated"] = "no"
        notes.append(
            "aof-load-truncated no: the AOF ends cleanly, so the drill allows no truncation"
        )
    return settings


def install_backup(result: CheckResult, directory: Path, settings: dict[str, str]) -> int:
    """Copy the backup into the scratch directory as the server will look for it."""
    src = Path(result.path)
    if result.format == "rdb":
        shutil.copyfile(src, directory / settings["dbfilename"])
        return _size(src)
    assert result.aof is not None
    if result.aof.layout != "multi-part":
        shutil.copyfile(src, directory / settings["appendfilename"])
        return _size(src)
    target = directory / settings["appenddirname"]
    target.mkdir()
    total = 0
    for path in aof_dir_files(result):
        shutil.copyfile(path, target / path.name)
        total += _size(path)
    return total


def link_or_copy(src: Path, dest: Path) -> None:
    """``src`` hard-linked as ``dest`` (for files nothing writes in place); copied where the
    two folders are on different file systems (or links are refused), if it fits: a copy
    never fills the disk. Raises OSError."""
    try:
        os.link(src, dest)
        return
    except OSError:
        pass
    need, free = _size(src), shutil.disk_usage(dest.parent).free
    if need > free:
        raise OSError(errno.ENOSPC, f"a copy of {src.name} needs {need} bytes, {free} are free")
    shutil.copyfile(src, dest)


def load_log(path: Path, limit: int = 20) -> list[str]:
    """The server's log lines from "Server initialized" on (without the usual host warnings)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for i, line in enumerate(lines):
        if line.endswith(" Server initialized"):
            lines = lines[i:]
            break
    out = []
    for line in lines:
        m = _LOG_LINE.match(line)
        text = m.group("text") if m else line.strip()
        if not text or any(text.startswith(noise) for noise in _LOG_NOISE):
            continue
        out.append(text)
    return out[-limit:]


def logged_load_seconds(path: Path) -> float | None:
    return _search_log(path, _LOAD_TIME, lambda m: float(m.group(1)))


def expired_from_log(live: LiveKeyspace, path: Path) -> None:
    """Before 7.0 INFO has no rdb_last_load_keys_*; the load's log line has them."""
    if live.keys_expired is not None:
        return
    found = _search_log(path, _LOG_EXPIRED, lambda m: (int(m.group(1)), int(m.group(2))))
    if found is not None:
        live.keys_loaded, live.keys_expired = found
        live.sources["keys_loaded"] = live.sources["keys_expired"] = (
            "redis.log 'Done loading RDB' line"
        )


def _search_log(
    path: Path, pattern: re.Pattern[str], value: Callable[[re.Match[str]], T]
) -> T | None:
    """``value`` of the last log line matching ``pattern`` (None: no such line)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    matches = list(pattern.finditer(text))
    return value(matches[-1]) if matches else None


class EarlyLoad:
    """A scratch server started on an RDB file before its check is done, so that the check
    (the restore's gate) and the server's load run side by side. The file is the restore's
    private copy: hard-linked in where it can be (the server only reads it, and the install
    hashes it again), else copied. Its settings come from the
    target the restore is for (its ``databases`` and modules), not from the check; the stage
    takes it over once the gate has passed (:meth:`fits` says whether it can), and a refused
    or cut-off restore closes it unused. Nothing of the target is touched."""

    def __init__(
        self,
        rdb: Path,
        binary: ServerBinary,
        databases: int,
        modules: Sequence[Path] = (),
        workdir: Path | None = None,
    ) -> None:
        self.settings = with_modules({**_STREAMED, **_RDB, "databases": str(databases)}, modules)
        self.rdb = rdb
        self.databases = databases
        self.directory = lifeline.scratch_dir("rbkit-stage-", workdir)
        self.server = ScratchServer(binary, self.directory, free_port(), self.settings)
        self.copied = 0
        self.since_ms = 0
        self._taken = False
        try:
            link_or_copy(rdb, self.directory / "dump.rdb")
            self.copied = _size(rdb)
            self.since_ms = int(time.time() * 1000)
            self.server.spawn()
        except BaseException:
            self.close()
            raise

    def fits(self, result: CheckResult) -> bool:
        """Whether this server loads what the stage of ``result`` would load."""
        return (
            result.format == "rdb"
            and Path(result.path) == self.rdb
            and needed_databases(result) <= self.databases
        )

    def take(self) -> ScratchServer:
        """The server, now the stage's to stop (and its directory the stage's to remove)."""
        self._taken = True
        return self.server

    def close(self) -> None:
        """Stop the server and remove its directory, unless the stage took them."""
        if self._taken:
            return
        self._taken = True
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.server.kill()
        lifeline.remove_dir(self.directory)
