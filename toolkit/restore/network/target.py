"""The server (or cluster) a network restore writes to: its URL, the clients to reach it, and
what it says about itself before anything is written (read-only commands only: INFO, MODULE
LIST, FUNCTION LIST, CONFIG GET, COMMAND INFO). ``proto-max-bulk-len`` (CONFIG GET) is the
largest argument it takes: a value whose DUMP payload is larger goes in chunks (chunked.py).

The target is reached as toolkit/server/connect.py reaches every server; a password is used
to connect and never shown: reports and errors name the target by ``Server.display``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from parsers.rdb.versions import readable_rdb_version
from toolkit.errors import TargetError, UsageError
from toolkit.server.connect import ConnectOptions, Server
from toolkit.server.read import info_keyspace, parse_version

Version = tuple[int, ...]

INSPECT_TIMEOUT = 30.0  # seconds a reply to INFO, FUNCTION LIST or COMMAND INFO may take
# A RESTORE of a large value (or a pipeline of many) may keep the server busy for a while.
SOCKET_TIMEOUT = 300.0
DEFAULT_BULK_LEN = 512 << 20  # Redis's default proto-max-bulk-len


def parse_target(url: str, options: ConnectOptions | None = None) -> Server:
    """The server ``url`` (or ``host:port``) names, reached with ``options``; a TargetError
    for one that cannot be used, or that names a db."""
    try:
        server = Server.parse(url, options, read_timeout=SOCKET_TIMEOUT)
    except UsageError as e:
        raise TargetError(str(e)) from None
    if server.db not in (None, 0):
        raise TargetError(
            f"{server.display}: the URL names db {server.db}; a network restore writes each "
            "key into the db it has in the backup, so give the URL without a db"
        )
    return server


@dataclass
class NodeInfo:
    """One server of the target (the only one, or a cluster primary)."""

    address: str
    version: str
    keyspace: dict[int, tuple[int, int]]  # db -> (keys, expires), INFO keyspace
    functions: list[str] | None  # FUNCTION LIST library names; None before 7.0
    modules: list[str] | None  # MODULE LIST names; None when not allowed


@dataclass
class TargetInfo:
    """What the target says about itself before a restore."""

    display: str
    server_name: str  # redis or valkey
    version: Version
    version_text: str
    role: str  # master or slave
    cluster_enabled: bool
    cluster_state: str | None
    nodes: list[NodeInfo]
    databases: int | None  # CONFIG GET databases (None: not allowed)
    databases_source: str
    modules: list[str] | None  # names every node lists (None: MODULE LIST not allowed)
    functions: list[str] | None  # libraries on any node (None before 7.0)
    commands: dict[str, bool] = field(default_factory=dict)  # COMMAND INFO: known or not
    used_memory: int | None = None
    maxmemory: int | None = None
    notes: list[str] = field(default_factory=list)
    run_id: str = ""  # INFO server run_id of the server at the URL (a new one per start)
    bulk_limit: int = DEFAULT_BULK_LEN  # proto-max-bulk-len: the largest argument it takes
    bulk_limit_source: str = "CONFIG GET proto-max-bulk-len"

    @property
    def valkey(self) -> bool:
        return self.server_name == "valkey"

    @property
    def rdb_version(self) -> int:
        """The newest RDB (and DUMP payload) version this server reads."""
        return readable_rdb_version(self.version, self.valkey)

    @property
    def name(self) -> str:
        """``redis 7.0.15`` (or ``valkey 9.0.0``), for sentences."""
        return f"{self.server_name} {self.version_text}"

    def keys_by_db(self) -> dict[int, int]:
        """Keys per db over all nodes (INFO keyspace)."""
        out: dict[int, int] = {}
        for node in self.nodes:
            for db, (keys, _expires) in node.keyspace.items():
                out[db] = out.get(db, 0) + keys
        return out

    def has(self, command: str) -> bool:
        return self.commands.get(command.upper(), False)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def reply_names(items: Iterable[object], key: str) -> list[str]:
    """The ``key`` field of each item of a MODULE LIST or FUNCTION LIST reply, sorted."""
    out = []
    for item in items:
        if isinstance(item, dict):
            pairs = {_text(k): v for k, v in item.items()}
        else:
            flat = list(item)  # type: ignore[call-overload]
            pairs = {_text(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}
        out.append(_text(pairs.get(key, "?")))
    return sorted(out)


def _version_of(info: dict[str, Any]) -> tuple[str, str]:
    name = _text(info.get("server_name", "redis"))
    version = _text(info.get("redis_version", "0"))
    if name == "valkey" and info.get("valkey_version"):
        version = _text(info["valkey_version"])
    return name, version


def read_node(client: redis.Redis, address: str) -> NodeInfo:
    """INFO server and keyspace, FUNCTION LIST and MODULE LIST of one server."""
    _name, version = _version_of(client.info("server"))
    functions = None
    if parse_version(version) >= (7, 0):
        functions = reply_names(client.execute_command("FUNCTION LIST"), "library_name")
    try:
        modules: list[str] | None = reply_names(client.execute_command("MODULE LIST"), "name")
    except redis.ResponseError:
        modules = None
    return NodeInfo(address, version, info_keyspace(client), functions, modules)


def inspect_target(url: Server, *, cluster: bool, dbs: Iterable[int] = ()) -> TargetInfo:
    """Read what a restore needs to know about the target. ``dbs`` are the databases the
    backup writes to (checked against ``databases`` when CONFIG GET is not allowed).

    Raises ConnectError when the server cannot be reached or refuses the login, TargetError
    when it answers something else than Redis would.
    """
    url.check()
    try:
        return _inspect(url, cluster, list(dbs))
    except (redis.AuthenticationError, redis.ConnectionError, redis.TimeoutError, OSError) as e:
        raise url.error(e) from None
    except redis.RedisError as e:
        raise TargetError(f"{url.display}: {e}") from None


def _inspect(url: Server, cluster: bool, dbs: list[int]) -> TargetInfo:
    client = url.client(timeout=INSPECT_TIMEOUT)
    try:
        server = client.info("server")
        name, version = _version_of(server)
        cluster_info = client.info("cluster")
        enabled = int(cluster_info.get("cluster_enabled", 0)) == 1
        role = _text(client.info("replication").get("role", "master"))
        memory = client.info("memory")
        state = None
        if enabled:
            reply = client.execute_command("CLUSTER INFO")
            state = _text(reply.get("cluster_state", "?")) if isinstance(reply, dict) else "?"
        commands = _commands(client)
        databases, source = _databases(url, client, enabled, dbs)
        info = TargetInfo(
            display=url.display,
            server_name=name,
            version=parse_version(version),
            version_text=version,
            role=role,
            cluster_enabled=enabled,
            cluster_state=state,
            nodes=[],
            databases=databases,
            databases_source=source,
            modules=None,
            functions=None,
            commands=commands,
            used_memory=int(memory.get("used_memory", 0)) or None,
            maxmemory=int(memory.get("maxmemory", 0)) or None,
            run_id=_text(server.get("run_id", "")),
        )
        _bulk_limit(info, client)
        if enabled and cluster and state == "ok":
            with url.cluster() as rc:
                for node in rc.get_primaries():
                    info.nodes.append(read_node(rc.get_redis_connection(node), node.name))
            info.version = min(parse_version(n.version) for n in info.nodes)
            info.version_text = min(info.nodes, key=lambda n: parse_version(n.version)).version
        else:
            info.nodes.append(read_node(client, url.display))
        lists = [n.modules for n in info.nodes]
        if all(m is not None for m in lists):
            info.modules = sorted(set.intersection(*(set(m or []) for m in lists)))
        if info.version >= (7, 0):
            info.functions = sorted({f for n in info.nodes for f in n.functions or []})
        return info
    finally:
        client.close()


def _bulk_limit(info: TargetInfo, client: redis.Redis) -> None:
    """proto-max-bulk-len by CONFIG GET; the default (512 MB), said so, when not allowed."""
    try:
        value = client.config_get("proto-max-bulk-len").get("proto-max-bulk-len")
    except redis.ResponseError:
        value = None
    if value is not None:
        info.bulk_limit = int(value)
        return
    info.bulk_limit_source = "CONFIG GET not allowed: the default 512 MB assumed"
    info.notes.append(
        f"CONFIG GET proto-max-bulk-len is not allowed on {info.display}: the default 512 MB "
        "is assumed (a larger value would be sent in chunks only past that)"
    )


# Commands whose presence decides what a restore can send (asked with COMMAND INFO).
PROBED_COMMANDS = ("HPEXPIREAT", "FUNCTION", "XSETID", "XGROUP", "XCLAIM")


def _commands(client: redis.Redis) -> dict[str, bool]:
    reply = client.execute_command("COMMAND INFO", *PROBED_COMMANDS)
    if isinstance(reply, dict):  # redis-py parses it into {name: info}
        known = {k.upper() for k in map(_text, reply)}
        return {c: c in known for c in PROBED_COMMANDS}
    return {c: r is not None for c, r in zip(PROBED_COMMANDS, reply, strict=False)}


def _databases(
    server: Server, client: redis.Redis, cluster: bool, dbs: list[int]
) -> tuple[int | None, str]:
    """The target's ``databases``: from CONFIG GET, else probed with SELECT (read-only)."""
    if cluster:
        return 1, "a cluster has db 0 only"
    try:
        value = client.config_get("databases").get("databases")
        if value is not None:
            return int(value), "CONFIG GET databases"
    except redis.ResponseError:
        pass
    highest = max(dbs, default=0)
    probe = server.client(highest, timeout=INSPECT_TIMEOUT)
    try:
        probe.ping()
        return None, f"CONFIG GET not allowed; SELECT {highest} works"
    except redis.ResponseError:
        return highest, f"CONFIG GET not allowed; SELECT {highest} fails"
    finally:
        probe.close()
