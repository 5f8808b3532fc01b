"""Helpers for the file-mode restore tests: real target servers, each with its own config file
and data directory, started as an operator would (``redis-server /path/redis.conf`` in a
session of its own), and ``rbkit restore`` run as a subprocess.

Every server a test starts (or that rbkit starts for it) is stopped by :func:`cleanup`: by
SHUTDOWN NOSAVE on its port, then SIGKILL of any redis-server still running in its data dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import binary
from json_schemas import check_output
from redis.backoff import NoBackoff
from redis.retry import Retry

from toolkit.check.backup import check_backup
from toolkit.server.process import (
    ServerBinary,
    free_port,
    running_server,
)

ROOT = Path(__file__).resolve().parent.parent
RDB = ROOT / "fixtures" / "rdb"
AOF = ROOT / "fixtures" / "aof"
REDIS_UID = 102  # the Debian package's `redis` user
OLD_KEYS = 120  # keys a target holds before the restore: old:0 .. old:119
JOURNAL = "rbkit-restore.journal"
LOCK = "rbkit-restore.lock"
STEPS = ("save", "stop", "keep", "install", "start", "verify")


# -- the backups and what they hold ----------------------------------------------------------


def expected_json(backup: Path) -> dict[str, Any]:
    """The ``*.expected.json`` of a fixture (an .rdb, an .aof, or an appendonlydir inside a
    fixture folder)."""
    if backup.name == "appendonlydir":
        path = backup.parent.with_name(backup.parent.name + ".expected.json")
    else:
        path = backup.with_name(backup.name.rsplit(".", 1)[0] + ".expected.json")
    return json.loads(path.read_text(encoding="utf-8"))


def alive_counts(backup: Path, now_ms: int | None = None) -> dict[int, int]:
    """Per db, the keys of the fixture's expected JSON that have not expired by ``now_ms``."""
    now_ms = now_ms or int(time.time() * 1000)
    out = {}
    for db, keys in expected_json(backup)["keys"].items():
        alive = [k for k in keys if k["expire_ms"] is None or k["expire_ms"] > now_ms]
        if alive:
            out[int(db)] = len(alive)
    return out


def file_keys(path: Path) -> int:
    """The number of keys a backup file holds, by rbkit's own check."""
    result = check_backup(path)
    assert result.valid, [p.message for p in result.problems]
    assert result.inventory is not None
    return sum(d.keys for d in result.inventory.databases.values())


# -- rbkit as a subprocess -------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> dict[str, Any]:
        return json.loads(self.out)


def rbkit(
    *args: str | os.PathLike[str],
    env: dict[str, str] | None = None,
    kill_after: str | None = None,
) -> Run:
    """``rbkit ARGS`` in a subprocess, stdin not a terminal; ``kill_after="STEP"`` (or
    "STEP:TERM") kills it right after its journal records STEP done (tests/kill_after.py)."""
    environ = {**os.environ, **(env or {})}
    # Bytecode cached outside the repo: compiling every module again costs each run ~0.5 s.
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    environ.setdefault("PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(), "rbkit-pycache"))
    command = [sys.executable, "-m", "toolkit"]
    if kill_after is not None:
        command = [sys.executable, os.fspath(ROOT / "tests" / "kill_after.py"), kill_after]
    done = subprocess.run(
        [*command, *map(os.fspath, args)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
        env=environ,
    )
    run = Run(done.returncode, done.stdout.decode(), done.stderr.decode())
    assert "Traceback" not in run.text, run.text
    check_output(args, run.out)
    return run


def scratch_servers() -> list[int]:
    """redis-server processes working in a scratch directory of rbkit's."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cwd = os.readlink(entry / "cwd") if entry.name.isdigit() else ""
        except OSError:
            continue
        if cwd.startswith("/tmp/rbkit-stage-"):
            found.append(int(entry.name))
    return found


# -- target servers --------------------------------------------------------------------------


@dataclass
class Target:
    """A redis-server with its own ``redis.conf`` and data dir under ``root``."""

    root: Path
    binary: ServerBinary
    port: int = 0
    save: str = '""'
    appendonly: bool = False
    password: str | None = None
    user: str | None = None  # run it as this user (runuser)
    daemonize: bool = False
    modules: list[Path] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.data.mkdir(parents=True, exist_ok=True)
        (self.root / "run").mkdir(exist_ok=True)
        self.write_config()
        if self.user is not None:  # what it writes: its data dir, log and pid file
            self.log.touch()
            for path in (self.data, self.log, self.root / "run"):
                shutil.chown(path, self.user, self.user)

    @property
    def conf(self) -> Path:
        return self.root / "redis.conf"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def version(self) -> tuple[int, int, int]:
        return self.binary.version

    def write_config(self, path: Path | None = None, **changes: str) -> Path:
        """Write the config file (or a variant of it at ``path``)."""
        settings = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "dir": os.fspath(self.data),
            "logfile": os.fspath(self.log),
            "save": self.save,
            "appendonly": "yes" if self.appendonly else "no",
            "daemonize": "yes" if self.daemonize else "no",
            **self.extra,
        }
        if self.daemonize:
            settings["pidfile"] = os.fspath(self.root / "run" / "redis.pid")
        if self.password:
            settings["requirepass"] = self.password
        if self.version >= (7, 0):
            settings["enable-debug-command"] = "local"
        settings.update(changes)
        lines = [f"{k} {v}" for k, v in settings.items()]
        lines += [f"loadmodule {m}" for m in self.modules]
        path = path or self.conf
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def start_command(self, conf: Path | None = None) -> list[str]:
        args = [os.fspath(self.binary.path), os.fspath(conf or self.conf)]
        return ["runuser", "-u", self.user, "--", *args] if self.user else args

    def start(self, timeout: float = 60.0) -> None:
        """Start it as an operator would, and wait until it has loaded its data."""
        process = subprocess.Popen(
            self.start_command(),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.ready():
            code = process.poll()
            if code not in (None, 0) or (code == 0 and not self.daemonize):
                raise AssertionError(f"redis-server exited with {code}: {self.log_tail()}")
            assert time.monotonic() < deadline, f"not up after {timeout} s: {self.log_tail()}"
            time.sleep(0.02)
        if self.daemonize:
            process.wait(10)

    def client(self, db: int = 0, timeout: float = 10) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            password=self.password,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def ready(self) -> bool:
        """Up and done loading."""
        c = self.client(timeout=2)
        try:
            return int(c.info("persistence").get("loading", 0)) == 0
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError):
            return False
        finally:
            c.close()

    def up(self) -> bool:
        c = self.client(timeout=2)
        try:
            c.ping()
            return True
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False
        except redis.ResponseError:
            return True
        finally:
            c.close()

    def pid(self) -> int:
        c = self.client()
        try:
            return int(c.info("server")["process_id"])
        finally:
            c.close()

    def info(self, section: str) -> dict[str, Any]:
        c = self.client()
        try:
            return c.info(section)
        finally:
            c.close()

    def stop(self, timeout: float = 30, nosave: bool = True) -> None:
        """SHUTDOWN NOSAVE (or a plain SHUTDOWN: it saves if it has save points) and wait
        until the process is gone."""
        pid = self.pid()
        c = self.client()
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            c.shutdown(nosave=nosave)
        c.close()
        deadline = time.monotonic() + timeout
        while _alive(pid) or self.up():
            assert time.monotonic() < deadline, f"pid {pid} still running"
            time.sleep(0.02)

    def restart(self, nosave: bool = True) -> None:
        """Stop it and start it again from its config file."""
        self.stop(nosave=nosave)
        self.start()

    def cleanup(self) -> None:
        """Stop whatever runs on this port or in this data dir (test teardown)."""
        if self.up():
            with contextlib.suppress(redis.RedisError, AssertionError, KeyError):
                self.stop(timeout=10)
        for pid in redis_pids_in(self.data):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def log_tail(self, n: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # -- what it holds -------------------------------------------------------------------

    def counts(self) -> dict[int, int]:
        """db -> keys, from INFO keyspace (after a SCAN of each db, so expired keys are gone)."""
        c = self.client()
        try:
            dbs = [int(k[2:]) for k in c.info("keyspace")]
            for db in dbs:
                d = self.client(db)
                try:
                    for _ in d.scan_iter(count=1000):
                        pass
                finally:
                    d.close()
            return {int(k[2:]): int(v["keys"]) for k, v in c.info("keyspace").items()}
        finally:
            c.close()

    def keys(self, db: int = 0, pattern: str = "*") -> set[bytes]:
        c = self.client(db)
        try:
            return set(c.scan_iter(match=pattern, count=1000))
        finally:
            c.close()

    def digest(self) -> tuple[str, dict[int, int]]:
        """The keyspace's DEBUG DIGEST (names, values, expiries) with the per-db counts."""
        c = self.client()
        try:
            value = c.execute_command("DEBUG", "DIGEST")
        finally:
            c.close()
        return (value.decode() if isinstance(value, bytes) else str(value)), self.counts()

    def save_now(self) -> None:
        """SAVE: its data files on disk."""
        c = self.client()
        try:
            c.save()
        finally:
            c.close()

    def fill_old(self, n: int = OLD_KEYS) -> None:
        """Write the "old" data: keys old:0.. in db 0 and one in db 3."""
        c = self.client()
        try:
            pipe = c.pipeline(transaction=False)
            for i in range(n):
                pipe.set(f"old:{i}", f"value {i}")
            pipe.execute()
        finally:
            c.close()
        c3 = self.client(3)
        try:
            c3.hset("old:hash", mapping={"a": "1", "b": "2"})
        finally:
            c3.close()

    def listing(self) -> dict[str, tuple[int, int, int, str]]:
        """Every entry under the data dir: relative path -> (mode, uid, size, sha256)."""
        return listing(self.data)

    def rollback_dirs(self) -> list[Path]:
        return sorted(self.data.glob("rbkit-rollback-*"))


def listing(directory: Path) -> dict[str, tuple[int, int, int, str]]:
    out = {}
    for path in sorted(directory.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[os.fspath(path.relative_to(directory))] = (st.st_mode, st.st_uid, st.st_size, digest)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def redis_pids_in(directory: Path) -> list[int]:
    """The redis-server processes whose working directory is ``directory``."""
    want = directory.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"redis-server" not in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                continue
            if (entry / "cwd").resolve() == want and _alive(int(entry.name)):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def copy_backup(src: Path, dest_dir: Path) -> Path:
    """A copy of a fixture (file or appendonlydir) to damage or chown."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copyfile(src, dest)
    return dest


@pytest.fixture
def make_target(tmp_path: Path) -> Iterator[Callable[..., Target]]:
    """``make_target("7.0", fill=True, appendonly=True, ...)`` -> a started Target; every one
    is stopped at teardown (with whatever rbkit started in its data dir)."""
    made: list[Target] = []

    def make(version: str = "7.0", *, start: bool = True, fill: bool = False, **kw: Any) -> Target:
        t = Target(tmp_path / f"target{len(made)}", binary(version), **kw)
        made.append(t)
        if start:
            t.start()
            if fill:
                t.fill_old()
        return t

    yield make
    for t in made:
        t.cleanup()


# -- writes that must not be lost ------------------------------------------------------------


class AckWriter(threading.Thread):
    """A client writing ``w:<n>`` keys to a target, one SET at a time, that records the n of
    every write the server acknowledged (its reply arrived). A failed write is retried as a
    new n after a short pause, so it goes on across a restart of the server."""

    def __init__(self, t: Target, prefix: str = "w:") -> None:
        super().__init__(daemon=True)
        self.target = t
        self.prefix = prefix
        self.acked: list[int] = []
        self.failed = 0
        self.halt = threading.Event()
        self.first = threading.Event()

    def run(self) -> None:
        n = 0
        client = self.target.client(timeout=30)
        while not self.halt.is_set():
            try:
                client.set(f"{self.prefix}{n}", n)
                self.acked.append(n)
                self.first.set()
            except (redis.RedisError, OSError):
                self.failed += 1
                client.close()
                time.sleep(0.01)
                client = self.target.client(timeout=30)
            n += 1
        client.close()

    def stop(self) -> list[bytes]:
        """Stop writing; the acknowledged keys."""
        self.halt.set()
        self.join(60)
        assert not self.is_alive(), "the writer is stuck"
        return [f"{self.prefix}{n}".encode() for n in self.acked]


def keys_of(path: Path, appendonly: bool = False, db: int = 0) -> set[bytes]:
    """The keys a data file (an RDB, or an appendonlydir) holds, read by loading it into a
    scratch redis-server 7.0 and scanning it: never rbkit's own parser."""
    with tempfile.TemporaryDirectory(prefix="rbkit-test-kept-") as tmp:
        config = {"appendonly": "no"}
        if path.is_dir():
            shutil.copytree(path, Path(tmp) / "appendonlydir")
            config = {"appendonly": "yes", "appenddirname": "appendonlydir"}
        else:
            shutil.copyfile(path, Path(tmp) / "dump.rdb")
        with running_server(binary("7.0"), directory=Path(tmp), config=config) as server:
            client = server.client(db)
            try:
                return set(client.scan_iter(count=1000))
            finally:
                client.close()


def kept_keys(t: Target, pattern: str = "w:") -> set[bytes]:
    """Every ``pattern*`` key in any data file rbkit kept or rejected under the data dir."""
    found: set[bytes] = set()
    for folder in t.rollback_dirs():
        for path in [*folder.rglob("dump.rdb"), *folder.rglob("appendonlydir")]:
            found |= {k for k in keys_of(path) if k.startswith(pattern.encode())}
    return found
