"""Helpers for the fault-injection suite (tests/test_restore_faults.py).

- :class:`Sandbox`: rbkit run as a subprocess with a private TMPDIR and a mark in its
  environment, which every process it starts inherits (its lifeline watcher, a start
  command): what rbkit leaves behind is found by that mark and by that TMPDIR (a scratch
  redis-server works in a folder there), never by a broad name, so concurrent test runs on
  the machine do not count.
- :class:`AckWriter`: a client writing ``w:<n>`` keys that records each n the server
  acknowledged (its reply arrived).
- :func:`key_state` / :func:`reference_state`: a server's keys (other than ``w:*``) with
  their DEBUG DIGEST-VALUE and whether they expire, read with plain commands.
- :func:`kept_writes`: the ``w:*`` keys in every data file rbkit kept or rejected under the
  data dir, read by loading each into a scratch redis-server (never rbkit's parser).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from json_schemas import check_output
from redis.backoff import NoBackoff
from redis.retry import Retry
from restore_support import ROOT, Run, Target

from toolkit.server.process import ServerBinary, running_server

MARK = "RBKIT_FAULTS_MARK"
WRITE_PREFIX = b"w:"


@dataclass
class Sandbox:
    """Where one test's rbkit processes put their temporary files, and their mark."""

    tmp: Path
    mark: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        environ = {**os.environ, MARK: self.mark, "TMPDIR": os.fspath(self.tmp)}
        environ.pop("PYTHONDONTWRITEBYTECODE", None)
        environ.setdefault(
            "PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(), "rbkit-pycache")
        )
        return environ

    def command(self, *args: str | os.PathLike[str], fault: str | None = None) -> list[str]:
        """``rbkit ARGS``; with ``fault``, run through tests/kill_after.py with that fault."""
        rest = list(map(os.fspath, args))
        if fault is None:
            return [sys.executable, "-m", "toolkit", *rest]
        return [sys.executable, os.fspath(ROOT / "tests" / "kill_after.py"), fault, *rest]

    def popen(
        self, *args: str | os.PathLike[str], out: Path | None = None, fault: str | None = None
    ) -> subprocess.Popen[bytes]:
        """``rbkit ARGS`` started; its stdout into the file ``out`` if given (never a pipe,
        which could fill up), its stderr discarded."""
        with open(out or os.devnull, "wb") as stdout:
            return subprocess.Popen(
                self.command(*args, fault=fault),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.DEVNULL,
                env=self.env(),
            )

    def run(
        self, *args: str | os.PathLike[str], timeout: float = 120, fault: str | None = None
    ) -> Run:
        """``rbkit ARGS``, to its end; a run longer than ``timeout`` seconds fails the test
        (a hang guard, not a timing assertion)."""
        try:
            done = subprocess.run(
                self.command(*args, fault=fault),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                env=self.env(),
            )
        except subprocess.TimeoutExpired as e:
            out = (e.stdout or b"").decode(errors="replace")
            err = (e.stderr or b"").decode(errors="replace")
            raise AssertionError(
                f"rbkit {args} still running after {timeout} s: {out}{err}"
            ) from None
        run = Run(done.returncode, done.stdout.decode(), done.stderr.decode())
        assert "Traceback" not in run.text, run.text
        check_output(args, run.out)
        return run

    # -- what must not be left ---------------------------------------------------------------

    def processes(self, t: Target | None = None) -> list[str]:
        """rbkit's live processes: those that carry this sandbox's mark, and redis-servers
        working under its TMPDIR (a server's process title overwrites its environment, the
        mark with it); but the target's own server (a redis-server working in its data dir)
        and the start command it runs under (``sh -c 'redis-server ...'``)."""
        needle = f"{MARK}={self.mark}".encode()
        found: dict[int, str] = {}
        servers: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or _state(int(entry.name)) in ("Z", None):
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                cwd = os.readlink(entry / "cwd").removesuffix(" (deleted)")
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            server = "redis-server" in cmdline
            if server and t is not None and Path(cwd) == t.data.resolve():
                servers.append(int(entry.name))
            elif needle in environ or (server and Path(cwd).is_relative_to(self.tmp.resolve())):
                found[int(entry.name)] = cmdline
        for server in servers:  # its start command: the marked non-rbkit processes above it
            pid = _parent(server)
            while pid in found and not any(n in found[pid] for n in ("toolkit", "kill_after")):
                del found[pid]
                pid = _parent(pid)
        return [f"pid {pid}: {cmdline}" for pid, cmdline in sorted(found.items())]

    def temporaries(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir())

    def leftovers(self, t: Target, wait: float = 10.0) -> list[str]:
        """What rbkit left: marked processes, files in its TMPDIR, ``.rbkit-*`` entries, the
        journal or lock in the data dir. Waits up to ``wait`` seconds for them to go (the
        lifeline watcher of a killed rbkit cleans up after it)."""
        deadline = time.monotonic() + wait
        while True:
            left = [*self.processes(t), *(f"{self.tmp}/{n}" for n in self.temporaries())]
            left += [f"{p}" for p in sorted(t.data.iterdir()) if p.name.startswith(".rbkit-")]
            left += [
                os.fspath(t.data / n)
                for n in ("rbkit-restore.journal", "rbkit-restore.lock")
                if (t.data / n).exists()
            ]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def kill_marked(self) -> None:
        """Teardown: SIGKILL whatever still carries the mark (each by its pid)."""
        for line in self.processes():
            pid = int(line.split()[1].rstrip(":"))
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _stat_fields(pid: int) -> list[bytes]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def _state(pid: int) -> str | None:
    try:
        return _stat_fields(pid)[0].decode()
    except (OSError, IndexError):
        return None


def _parent(pid: int) -> int:
    try:
        return int(_stat_fields(pid)[1])
    except (OSError, IndexError, ValueError):
        return 0


# -- the writer --------------------------------------------------------------------------------


class AckWriter(threading.Thread):
    """Writes ``w:<n>`` (n = 0, 1, ...: every attempt a new n) to the target's address, one
    SET at a time, with a client that never retries on its own; records each n whose reply
    arrived. A write that fails is not retried: the next one is a new n, after a short pause,
    on a new connection."""

    def __init__(self, t: Target, pace: float = 0.002) -> None:
        super().__init__(daemon=True)
        self.target = t
        self.pace = pace
        self.acked: list[int] = []
        self.attempts = 0
        self.halt = threading.Event()
        self.first = threading.Event()

    def _client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.target.port,
            password=self.target.password,
            socket_timeout=3,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )

    def run(self) -> None:
        client = self._client()
        try:
            while not self.halt.is_set():
                n = self.attempts
                self.attempts += 1
                try:
                    if client.set(f"w:{n}", n):
                        self.acked.append(n)
                        self.first.set()
                except (redis.RedisError, OSError):
                    client.close()
                    self.halt.wait(0.02)
                    client = self._client()
                    continue
                self.halt.wait(self.pace)
        finally:
            client.close()

    def start_writing(self) -> AckWriter:
        self.start()
        assert self.first.wait(10), "the writer got no write acknowledged"
        return self

    def stop(self) -> set[bytes]:
        """Stop writing; the keys whose writes were acknowledged."""
        self.halt.set()
        self.join(30)
        assert not self.is_alive(), "the writer is stuck"
        return {b"w:%d" % n for n in self.acked}


# -- does the target take writes ------------------------------------------------------------

PROBE = "rbkit-faults-probe"


def write_refused(t: Target, wait: bool) -> str | None:
    """Send one SET (``w:probe``) and say why it did not go through, or None if it did.

    No clock decides: the probe either answers, or shows in CLIENT LIST as blocked (flags
    ``b``: a CLIENT PAUSE holds it), whichever comes first. With ``wait`` a blocked probe is
    waited for (a pause left by a killed rbkit lapses by itself) and only a refusal counts."""
    answer: dict[str, object] = {}

    def probe() -> None:
        client = redis.Redis(
            host="127.0.0.1",
            port=t.port,
            password=t.password,
            socket_timeout=60,
            retry=Retry(NoBackoff(), 0),
            client_name=PROBE,
        )
        try:
            answer["ok"] = client.set("w:probe", 1)
        except (redis.RedisError, OSError) as e:
            answer["error"] = f"{type(e).__name__}: {e}"
        finally:
            client.close()

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    watcher = t.client()
    try:
        while thread.is_alive():
            if not wait:
                clients = watcher.client_list()
                if any(c.get("name") == PROBE and "b" in c.get("flags", "") for c in clients):
                    thread.join(60)
                    return "a write waits on a CLIENT PAUSE left on the server"
            thread.join(0.01)
    finally:
        watcher.close()
    if "error" in answer:
        return f"the write was refused ({answer['error']})"
    return None if answer.get("ok") else f"the write was not acknowledged ({answer})"


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


# -- what a server holds -----------------------------------------------------------------------

State = dict[int, dict[bytes, tuple[bytes, bool]]]  # db -> key -> (DIGEST-VALUE, expires)


def key_state(client_for: object, databases: int = 16) -> State:
    """Every key but ``w:*`` of each db: its DEBUG DIGEST-VALUE and whether it has a TTL.
    ``client_for(db)`` makes a client for a db."""
    out: State = {}
    for db in range(databases):
        c: redis.Redis = client_for(db)  # type: ignore[operator]
        try:
            keys = sorted(k for k in c.scan_iter(count=1000) if not k.startswith(WRITE_PREFIX))
            if not keys:
                continue
            pipe = c.pipeline(transaction=False)
            for k in keys:
                pipe.execute_command("DEBUG", "DIGEST-VALUE", k)
                pipe.pttl(k)
            answers = pipe.execute()
        finally:
            c.close()
        digests = [a[0] if isinstance(a, list) else a for a in answers[0::2]]
        out[db] = {k: (d, ttl >= 0) for k, d, ttl in zip(keys, digests, answers[1::2], strict=True)}
    return out


def target_state(t: Target) -> State:
    return key_state(lambda db: t.client(db))


def writes_on(t: Target) -> set[bytes]:
    c = t.client()
    try:
        return set(c.scan_iter(match="w:*", count=1000))
    finally:
        c.close()


def _debug_config(binary: ServerBinary) -> dict[str, str]:
    return {"enable-debug-command": "local"} if binary.version >= (7, 0) else {}


def reference_state(binary: ServerBinary, backup: Path, work: Path) -> State:
    """What a server of ``binary`` holds after loading ``backup`` (an RDB) as its dump.rdb."""
    work.mkdir(parents=True)
    shutil.copyfile(backup, work / "dump.rdb")
    with running_server(binary, directory=work, config=_debug_config(binary)) as server:
        return key_state(lambda db: server.client(db, retry=Retry(NoBackoff(), 0)))


def describe(state: State, old: State, new: State) -> str:
    """Which of ``old`` and ``new`` the ``state`` is exactly (keys, values, expiring or not),
    as "old" or "new"; otherwise a sentence saying what is mixed."""
    if state == old:
        return "old"
    if state == new:
        return "new"
    have = {(db, k) for db, keys in state.items() for k in keys}
    olds = {(db, k) for db, keys in old.items() for k in keys}
    news = {(db, k) for db, keys in new.items() for k in keys}
    return (
        f"mixed: {len(have & olds)}/{len(olds)} old keys, {len(have & news)}/{len(news)} of "
        f"the backup's, {len(have - olds - news)} others"
    )


# -- kept files ----------------------------------------------------------------------------------


def _data_items(folder: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """The data files in ``folder`` a server could load, each with the settings to load it."""
    if (folder / "dump.rdb").is_file():
        yield folder / "dump.rdb", {"appendonly": "no", "dbfilename": "dump.rdb"}
    if (folder / "appendonlydir").is_dir():
        yield folder / "appendonlydir", {"appendonly": "yes", "appenddirname": "appendonlydir"}
    if (folder / "appendonly.aof").is_file():
        yield folder / "appendonly.aof", {"appendonly": "yes", "appendfilename": "appendonly.aof"}


def writes_in_file(
    binary: ServerBinary, path: Path, settings: dict[str, str], work: Path
) -> set[bytes]:
    """The ``w:*`` keys a data file holds, as a scratch server of ``binary`` loads it."""
    work.mkdir(parents=True)
    if path.is_dir():
        shutil.copytree(path, work / path.name)
    else:
        shutil.copyfile(path, work / path.name)
    with running_server(binary, directory=work, config=settings) as server:
        client = server.client(retry=Retry(NoBackoff(), 0))
        try:
            return set(client.scan_iter(match="w:*", count=1000))
        finally:
            client.close()


def kept_files(t: Target) -> list[tuple[Path, dict[str, str]]]:
    """Every data file in the rollback folders and their ``rejected*`` folders."""
    items = []
    for folder in t.rollback_dirs():
        for where in [folder, *sorted(folder.glob("rejected*"))]:
            items += list(_data_items(where))
    return items


def kept_writes(t: Target, work: Path) -> set[bytes]:
    found: set[bytes] = set()
    for i, (path, settings) in enumerate(kept_files(t)):
        found |= writes_in_file(t.binary, path, settings, work / f"kept-{i}")
    return found


# -- a small tmpfs -------------------------------------------------------------------------------


@contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted on ``path`` (root only); unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", os.fspath(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"cannot mount a tmpfs on {path} (the disk-full tests need root and mount): "
            f"{done.stderr.strip()}"
        )
    try:
        yield path
    finally:
        if subprocess.run(["umount", os.fspath(path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", os.fspath(path)], capture_output=True)


def resize_tmpfs(path: Path, size: int) -> None:
    done = subprocess.run(
        ["mount", "-o", f"remount,size={size}", os.fspath(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, f"remount {path} size={size}: {done.stderr.strip()}"
