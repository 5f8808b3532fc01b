"""The restore's target: where its data lives, how it persists, how to reach, stop and start it.

Learned from the running server (``CONFIG GET``, ``INFO server``, ``MODULE LIST``) and from its
config file (``--config``, or the ``config_file`` INFO names). The server restarts from the
config file, so the two must agree on every setting that decides which file it loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis

from toolkit.errors import ConfigError, ConnectError, ServerError, TargetError, UsageError
from toolkit.restore.writes import REFUSE_WRITES, can_pause
from toolkit.server.config import DEFAULTS, RedisConfig, read_config
from toolkit.server.connect import ConnectOptions, Server
from toolkit.server.identity import RunAs, inspect, server_in
from toolkit.server.process import binary_version
from toolkit.server.read import parse_version

# The settings that decide which file the server loads, and where.
PERSISTENCE = ("dir", "dbfilename", "appendonly", "appenddirname", "appendfilename")


@dataclass
class Target:
    """A Redis server and its data directory, as a restore sees them."""

    config: RedisConfig  # the settings it starts with (from its config file, or CONFIG GET)
    url: str | None = field(repr=False)  # how to reach it (may hold a password: see address)
    password: str | None = field(default=None, repr=False)  # its config file's requirepass
    connect: ConnectOptions = field(default_factory=ConnectOptions, repr=False)
    running: bool = False
    pid: int | None = None
    run_id: str | None = None  # INFO's run_id: tells the server that ran from a new one
    version: str | None = None  # the server's own version when running, else the executable's
    executable: Path | None = None  # the binary it runs (or ran, or --redis-server)
    run_as: RunAs | None = None  # the user it runs as (a stopped one: its data dir's owner)
    clients: int = 0  # other clients connected when rbkit looked
    pausable: bool = False  # CLIENT PAUSE ... WRITE can hold writes off
    module_paths: list[Path] = field(default_factory=list)
    module_names: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where it was read
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # reasons to refuse, one sentence each
    _server: Server | None = field(default=None, init=False, repr=False)

    @property
    def server(self) -> Server | None:
        """How to reach it (toolkit/server/connect.py); None without an address."""
        if self._server is None and self.url is not None:
            try:
                self._server = Server.parse(self.url, self.connect, password=self.password)
            except UsageError as e:
                raise TargetError(str(e)) from None
        return self._server

    @property
    def address(self) -> str:
        """The URL to print: never with its password."""
        return self.server.display if self.server is not None else "no address"

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def appendonly(self) -> bool:
        return self.config.appendonly

    def setting(self, name: str) -> str:
        return self.config.get(name)

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return parse_version(self.version or "0")

    def client(self, timeout: float = 10.0, db: int | None = None) -> redis.Redis:
        """A client that never retries on its own (callers poll and notice a dead server)."""
        if self.server is None:
            raise TargetError("the target has no address (no port or unixsocket in its config)")
        return self.server.client(db, timeout=timeout)


def _url_from_config(config: RedisConfig) -> str | None:
    socket_path = config.get("unixsocket")
    port = int(config.get("port") or 0)
    tls_port = int(config.get("tls-port") or 0)
    if port or tls_port:
        binds = config.get("bind").split()
        host = next((b.lstrip("-") for b in binds if b.lstrip("-") not in ("*", "::*")), "")
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"redis://{host}:{port}" if port else f"rediss://{host}:{tls_port}"
    if socket_path:
        path = Path(socket_path)
        if not path.is_absolute() and config.path is not None:
            path = config.path.parent / path
        return f"unix://{quote(os.fspath(path))}"
    return None


def discover(
    config_path: Path | None,
    url: str | None,
    *,
    executable: Path | None = None,
    start_cmd: str | None = None,
    stop_cmd: str | None = None,
    connect: ConnectOptions | None = None,
) -> Target:
    """Describe the target from ``config_path`` and/or ``url`` (reached with ``connect``).
    Raises TargetError (ConnectError) when neither tells enough (it cannot be reached);
    reasons to refuse the restore go to ``Target.problems``.

    ``executable`` is the binary a stopped target is started with (``--redis-server``, or the
    one an earlier restore's journal recorded); a running target is started again with the
    binary it runs, as the user it runs as."""
    file_config: RedisConfig | None = None
    if config_path is not None:
        file_config = _read(config_path)
    if url is None and file_config is None:
        raise TargetError("say which server to restore into: --config redis.conf or --url URL")
    password = None
    if file_config is not None:
        url = url or _url_from_config(file_config)
        password = file_config.get("requirepass") or None
    config = file_config or RedisConfig(None, {})
    target = Target(config, url, password, connect or ConnectOptions())
    live = _read_live(target, stop_cmd)
    if not isinstance(live, _Live):
        if file_config is None:
            raise ConnectError(f"{live}; for a stopped target, pass --config redis.conf")
        target.sources = {name: _source(file_config, name) for name in PERSISTENCE}
        target.notes.append(f"the target is not running ({target.address}): nothing to save")
        target.module_paths = [_module_path(file_config, m) for m in file_config.modules]
        _stopped_binary(target, executable)
    else:
        _merge_live(target, live, file_config)
        _running_binary(target, executable)
    if not target.running and (pid := server_in(target.data_dir)) is not None:
        target.problems.append(
            f"a redis-server (pid {pid}) runs in {target.data_dir} but does not answer at "
            f"{target.address}: it would save over the restored file; stop it or pass the "
            "right --url"
        )
    supervised = target.setting("supervised").lower()
    if supervised in ("systemd", "upstart") and start_cmd is None:
        target.problems.append(
            f"the target runs under {supervised} (supervised {supervised}): pass --stop-cmd "
            "and --start-cmd (e.g. 'systemctl stop redis-server' / 'systemctl start "
            "redis-server') so that it is stopped and started the way it is managed"
        )
    if target.config.path is None and start_cmd is None:
        target.problems.append(
            "the target was started without a config file: rbkit cannot start it again as it "
            "was; pass --start-cmd (and --stop-cmd) or --config"
        )
    if target.run_as is not None and start_cmd is None and not _may_start_as(target.run_as):
        target.problems.append(
            f"the target runs as user {target.run_as}, and rbkit (user {os.geteuid()}) cannot "
            "start a process as another user: run rbkit as root or as that user, or pass "
            "--start-cmd"
        )
    return target


def _may_start_as(run_as: RunAs) -> bool:
    return run_as.is_current or os.geteuid() == 0


def _read(path: Path) -> RedisConfig:
    try:
        return read_config(path.absolute())
    except ConfigError as e:
        raise TargetError(str(e)) from None


def _source(config: RedisConfig | None, name: str) -> str:
    if config is not None and name in config.settings:
        return f"{config.path}" if config.path else "CONFIG GET"
    return "Redis's default"


def _module_path(config: RedisConfig, module: str) -> Path:
    path = Path(module)
    if not path.is_absolute() and config.path is not None:
        path = config.path.parent / path
    return path


@dataclass
class _Live:
    settings: dict[str, str]
    info: dict[str, object]
    modules: list[dict[str, object]]
    clients: int
    problems: list[str]


# The commands a file restore sends to a running target, and what they are for.
NEEDED = {
    "config": "CONFIG GET reads where and how it keeps its data",
    "info": "INFO reads its version, process and persistence state",
    "bgsave": "BGSAVE proves it can save before anything changes",
    "shutdown": "SHUTDOWN SAVE stops it with every acknowledged write on disk",
    "client": "CLIENT PAUSE WRITE holds writes off while rbkit needs the keyspace still",
    "command": "COMMAND tells which commands write",
}


def _read_live(target: Target, stop_cmd: str | None) -> _Live | ConnectError | None:
    """What the running server says of itself; the ConnectError that says why when nothing
    answers (None: no address). A server that answers but cannot be used (a password, TLS)
    raises its ConnectError."""
    if target.server is None:
        return None
    try:
        target.server.check()
    except ConnectError as e:
        if e.unreachable:
            return e
        raise
    client = target.client(timeout=5)
    try:
        settings: dict[str, str] = {}
        wanted = ("databases", "aof-load-truncated", "supervised", "daemonize", "logfile")
        for name in (*PERSISTENCE, *wanted, "pidfile", "min-replicas-to-write"):
            try:
                got = client.config_get(name)
            except redis.ResponseError as e:
                raise TargetError(
                    f"{target.address}: CONFIG GET {name}: {e}: rbkit reads where and how the "
                    "target keeps its data with CONFIG GET; use a user that may run CONFIG "
                    "(ACL: +config|get) on a server where it is not renamed"
                ) from None
            if name in got:
                settings[name] = str(got[name])
        info = client.info("server")
        modules = [_pairs(m) for m in client.execute_command("MODULE LIST")]
        clients = max(0, int(client.info("clients").get("connected_clients", 1)) - 1)
        problems = _denied(client, stop_cmd)
        return _Live(settings, info, modules, clients, problems)
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise target.server.error(e) from None
    except redis.RedisError as e:
        raise TargetError(f"{target.address}: {e}") from None
    finally:
        client.close()


def _denied(client: redis.Redis, stop_cmd: str | None) -> list[str]:
    """The commands the restore needs that this server renamed or this user may not run,
    each with the way forward (checked before anything changes)."""
    problems = []
    needed = [n for n in NEEDED if not (n == "shutdown" and stop_cmd is not None)]
    try:
        known = {_s(name).lower() for name in client.command()}
    except redis.ResponseError:
        known = set(needed)  # COMMAND itself renamed: each is tried when used
    for name in needed:
        if name not in known:
            way = "pass --stop-cmd" if name == "shutdown" else "undo the rename-command"
            problems.append(
                f"the target has no {name.upper()} command (renamed or removed by "
                f"rename-command); {NEEDED[name]}: {way}"
            )
    try:
        user = _s(client.execute_command("ACL", "WHOAMI"))
    except redis.ResponseError:
        return problems  # before Redis 6, or ACL not allowed: each is tried when used
    probes = {
        "config": ("CONFIG", "GET", "dir"),
        "bgsave": ("BGSAVE",),
        "shutdown": ("SHUTDOWN", "SAVE"),
        "client": ("CLIENT", "PAUSE", "1", "WRITE"),
    }
    for name, args in probes.items():
        if name not in needed:
            continue
        try:
            answer = client.execute_command("ACL", "DRYRUN", user, *args)
        except redis.ResponseError:
            return problems  # before Redis 7.0, or ACL DRYRUN not allowed
        if _s(answer) != "OK":
            problems.append(
                f"user {user!r} may not run {' '.join(args[:2])} ({_s(answer)}); "
                f"{NEEDED[name]}: grant it (ACL SETUSER {user} +{name}) or use another user"
            )
    return problems


def _pairs(item: object) -> dict[str, object]:
    if isinstance(item, dict):
        return {_s(k): v for k, v in item.items()}
    assert isinstance(item, list | tuple)
    return {_s(item[i]): item[i + 1] for i in range(0, len(item) - 1, 2)}


def _s(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _merge_live(target: Target, live: _Live, file_config: RedisConfig | None) -> None:
    """The running server's settings win; its config file must agree with them."""
    target.running = True
    info = live.info
    target.pid = int(info["process_id"]) if info.get("process_id") else None  # type: ignore[call-overload]
    target.run_id = _s(info["run_id"]) if info.get("run_id") else None
    # Valkey reports a Redis-compatible redis_version beside its own.
    target.version = _s(info.get("valkey_version") or info.get("redis_version", "?"))
    target.clients = live.clients
    target.problems.extend(live.problems)
    target.pausable = can_pause(target.version_tuple)
    if info.get("executable"):
        target.executable = Path(_s(info["executable"]))
    if file_config is None and info.get("config_file"):
        path = Path(_s(info["config_file"]))
        try:
            file_config = read_config(path)
            target.notes.append(f"config file {path} (INFO server config_file)")
        except ConfigError as e:
            target.problems.append(f"the server's config file cannot be read: {e}")
    settings = dict(live.settings)
    if settings.get("min-replicas-to-write") == REFUSE_WRITES[1]:
        # Started refusing writes by a restore that was cut off: not the target's own value.
        del settings["min-replicas-to-write"]
        target.notes.append(
            "the server refuses writes (started so by an rbkit restore that was cut off)"
        )
    target.sources = {name: "CONFIG GET" for name in settings}
    if file_config is not None:
        for name in PERSISTENCE:
            if name not in settings:
                continue
            running, on_file = settings[name], file_config.get(name)
            if name == "dir":
                same = Path(running) == file_config.data_dir.resolve()
            else:
                same = running.lower() == on_file.lower()
            if not same:
                target.problems.append(
                    f"the running server has {name} {running!r} but {file_config.path} says "
                    f"{on_file!r}: it restarts with the file's; make them agree first "
                    "(CONFIG REWRITE, or edit the file)"
                )
        merged = {**file_config.settings, **settings}
        target.config = RedisConfig(file_config.path, merged, file_config.modules)
    else:
        target.config = RedisConfig(None, settings)
    target.module_names = sorted(_s(m.get("name", "?")) for m in live.modules)
    # Built-in modules are listed with an empty path (Redis 8's vectorset) or with their name
    # as their path (Valkey 9's Lua scripting engine: name "lua", path "lua").
    paths = [
        Path(_s(m["path"]))
        for m in live.modules
        if m.get("path") and _s(m["path"]) != _s(m.get("name", ""))
    ]
    if file_config is not None and not paths:
        paths = [_module_path(file_config, m) for m in file_config.modules]
    target.module_paths = paths
    if any("path" not in m for m in live.modules):
        target.notes.append(
            "MODULE LIST gives no module paths before Redis 7.0: the scratch server loads "
            "the config file's loadmodule lines"
        )


def _running_binary(target: Target, override: Path | None) -> None:
    """The binary and user of the running target, from its process; the binary's version must
    be the one the server reports."""
    assert target.pid is not None
    proc = inspect(target.pid, target.executable)
    try:
        here = proc is not None and Path(f"/proc/{target.pid}/cwd").resolve() == (
            target.data_dir.resolve()
        )
    except OSError:
        here = False
    if proc is None or not here:
        target.problems.append(
            f"the server at {target.address} (pid {target.pid}) is not a process rbkit can "
            f"see working in {target.data_dir}: run the restore on the target's own host, "
            "as root or as the user it runs as"
        )
        target.executable = override.absolute() if override else None
        return
    target.run_as = proc.run_as
    if override is not None:
        target.executable = override.absolute()
    elif proc.executable is None:
        target.executable = None
        target.problems.append(
            f"cannot tell which binary to start the target with: {proc.note}; pass "
            "--redis-server PATH"
        )
        return
    else:
        target.executable = proc.executable
    _same_version(target, target.version_tuple)


def _stopped_binary(target: Target, executable: Path | None) -> None:
    """A stopped target is started with ``executable``; never a guess from PATH."""
    try:
        target.run_as = RunAs.of_path(target.data_dir)
    except OSError:
        target.run_as = None
    if executable is None:
        target.problems.append(
            "the target is not running, so rbkit cannot tell which redis-server it runs on: "
            "pass --redis-server PATH (the binary that starts it)"
        )
        return
    target.executable = executable.absolute()
    _same_version(target, None)


def _same_version(target: Target, running: tuple[int, ...] | None) -> None:
    """Read the binary's version; it must equal ``running`` (the server's own) if given."""
    assert target.executable is not None
    try:
        version = binary_version(target.executable)
    except (ServerError, OSError) as e:
        target.problems.append(f"{target.executable}: {e}")
        return
    if running is None:
        target.version = ".".join(map(str, version))
        target.pausable = can_pause(version)
    elif version != running[:3]:
        target.problems.append(
            f"the target runs {target.version}, but {target.executable} is "
            f"{'.'.join(map(str, version))} (upgraded since it started?): it would come back "
            "as another version; pass --redis-server PATH of a "
            f"{target.version} binary"
        )


__all__ = ["DEFAULTS", "PERSISTENCE", "Target", "TargetError", "discover"]
