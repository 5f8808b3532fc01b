"""Writing the backup into the target: pipelined batches of RESTORE (payload path) or plain
commands (command path), routed by db on one server or by slot on a cluster.

A batch holds up to :data:`BATCH_KEYS` keys or about :data:`BATCH_BYTES` of arguments. On one
server each db has its own connection; a batch is sent whole, and its replies are read while
the next batch is being built and sent, so the server works while Python does. Keys whose TTL
has run out by the time they are sent are skipped (and counted), and so are empty collections
(RESTORE refuses them; Redis skips them when it loads a file). The load stops at the first
batch with a failed command (by then at most one more batch has been sent): a restore over the
network has no rollback, so it does not pile up more damage.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import AskError, MovedError

from parsers.errors import FormatError
from parsers.printable import printable
from parsers.rdb.constants import COLLECTION_TYPES
from parsers.rdb.crc64 import crc64
from parsers.rdb.dump import dump_payload
from toolkit.restore.network.commands import Command, NoCommands, command_bytes, rebuild
from toolkit.restore.network.plan import (
    PAYLOAD,
    Plan,
    all_fields_expired,
    field_ttl_types,
)
from toolkit.restore.network.source import Item, RdbSource
from toolkit.server.connect import Server

BATCH_KEYS = 1000
BATCH_BYTES = 4 << 20
MAX_FAILURES_LISTED = 10
_CRC = struct.Struct("<Q").pack


@dataclass
class Failure:
    db: int | None
    key: bytes | None
    error: str


@dataclass
class LoadStats:
    """What the load did, per db and in all."""

    restored: Counter[int] = field(default_factory=Counter)  # keys sent (and accepted)
    expired: Counter[int] = field(default_factory=Counter)  # TTL run out: skipped
    empty: Counter[int] = field(default_factory=Counter)  # empty collections: skipped
    left_out: Counter[int] = field(default_factory=Counter)  # cannot go there (forced)
    skipped: Counter[str] = field(default_factory=Counter)  # by a selection: reason -> keys
    libraries: list[str] = field(default_factory=list)
    commands: int = 0
    bytes: int = 0
    batches: int = 0
    fields_expired: int = 0  # hash fields whose TTL had run out: not sent
    field_ttls_dropped: int = 0  # fields sent without their TTL (forced)
    pel_lost: int = 0  # stream pending entries that could not be re-created
    all_fields_expired: int = 0  # hashes not created: every field's TTL had run out
    failures: list[Failure] = field(default_factory=list)
    failed: int = 0  # keys (or libraries) whose commands failed
    stopped: str | None = None  # why the load stopped early
    seconds: float = 0.0
    started_ms: int = 0  # wall clock when the first key was sent

    @property
    def keys(self) -> int:
        return sum(self.restored.values())


# -- batches -----------------------------------------------------------------------------------


def pack_into(parts: list[bytes], commands: Iterable[Command]) -> None:
    """Append ``commands`` to ``parts`` as RESP arrays of bulk strings."""
    for cmd in commands:
        parts.append(b"*%d\r\n" % len(cmd))
        for a in cmd:
            parts.append(b"$%d\r\n%b\r\n" % (len(a), a))


class Batch:
    """One pipelined batch. ``packed``: per db the RESP pieces to send (one server); else the
    commands themselves (a cluster client routes them). Per key, how many replies it gets
    (``counts``; absent: one each)."""

    def __init__(self, packed: bool) -> None:
        self.packed = packed
        self.parts: dict[int, list[bytes]] = {}
        self.keys: dict[int, list[bytes]] = {}
        self.counts: dict[int, list[int]] = {}
        self.units: list[tuple[int, bytes, list[Command]]] = []  # unpacked only
        self.count = 0
        self.commands = 0
        self.size = 0

    def lists(self, db: int) -> tuple[list[bytes], list[bytes]]:
        """The RESP pieces and the keys of ``db`` in this batch."""
        parts = self.parts.get(db)
        if parts is None:
            parts = self.parts[db] = []
            self.keys[db] = []
        return parts, self.keys[db]

    def add(self, db: int, key: bytes, commands: list[Command]) -> None:
        self.count += 1
        self.commands += len(commands)
        self.size += command_bytes(commands)
        if not self.packed:
            self.units.append((db, key, commands))
            return
        parts, keys = self.lists(db)
        pack_into(parts, commands)
        keys.append(key)
        self.counts.setdefault(db, []).append(len(commands))


# -- writers -----------------------------------------------------------------------------------


class Writer(Protocol):
    packed: bool

    def send(self, batch: Batch) -> None:
        """Send every command of ``batch`` (replies are read by :meth:`collect`)."""

    def collect(self, batch: Batch) -> list[tuple[int, bytes, str]]:
        """Read ``batch``'s replies; return (db, key, error) of each key that failed."""

    def close(self) -> None: ...


class _Replies:
    """Reads RESP2 replies from a socket, counting them; errors come back as text."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def _fill(self) -> None:
        if self.pos:
            del self.buf[: self.pos]
            self.pos = 0
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise redis.ConnectionError("the server closed the connection")
        self.buf += chunk

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line = bytes(self.buf[self.pos : end])
                self.pos = end + 2
                return line
            self._fill()

    def reply(self) -> str | None:
        """Skip one reply; its error text if it is an error, else None."""
        if self.buf.startswith(b"+OK\r\n", self.pos):
            self.pos += 5
            return None
        line = self._line()
        kind = line[:1]
        if kind == b"-":
            return line[1:].decode("utf-8", "replace")
        if kind == b"$":
            n = int(line[1:])
            if n >= 0:
                while len(self.buf) - self.pos < n + 2:
                    self._fill()
                self.pos += n + 2
        elif kind == b"*":
            for _ in range(max(0, int(line[1:]))):
                self.reply()
        return None


class ServerWriter:
    """One server: a connection per db (SELECT is per connection), commands sent as packed
    RESP and replies counted off the socket (redis-py connects: TLS, AUTH, SELECT)."""

    packed = True

    def __init__(self, url: Server) -> None:
        self.url = url
        self.clients: dict[int, redis.Redis] = {}
        self.conns: dict[int, redis.connection.AbstractConnection] = {}
        self.readers: dict[int, _Replies] = {}

    def _socket(self, db: int) -> socket.socket:
        if db not in self.conns:
            client = self.clients[db] = self.url.client(db)
            conn = self.conns[db] = client.connection_pool.get_connection()
            conn.connect()
            self.readers[db] = _Replies(conn._sock)  # type: ignore[attr-defined]
        return self.readers[db].sock

    def send(self, batch: Batch) -> None:
        for db, parts in batch.parts.items():
            self._socket(db).sendall(b"".join(parts))

    def collect(self, batch: Batch) -> list[tuple[int, bytes, str]]:
        failed = []
        for db, keys in batch.keys.items():
            reply = self.readers[db].reply
            counts = batch.counts.get(db)
            for i, key in enumerate(keys):
                error = None
                for _ in range(counts[i] if counts else 1):
                    error = reply() or error
                if error is not None:
                    failed.append((db, key, error))
        return failed

    def close(self) -> None:
        for db, conn in self.conns.items():
            conn.disconnect()
            self.clients[db].connection_pool.release(conn)
        for client in self.clients.values():
            client.close()


class ClusterWriter:
    """A Redis Cluster: each key's commands go, pipelined per primary, to the node that owns
    the key's slot (by redis-py's slot table). A key answered with -MOVED (the slot has moved)
    is sent again after the table is refreshed; one answered with -ASK (the slot is being
    migrated) is sent to the importing node after ASKING. Each key is routed by its own name,
    not by parsing the commands, so XGROUP and XCLAIM go where their key is."""

    packed = False
    MAX_REDIRECTS = 5

    def __init__(self, url: Server) -> None:
        self.rc: RedisCluster = url.cluster()
        self.failed: list[tuple[int, bytes, str]] = []

    def send(self, batch: Batch) -> None:
        self.failed = self._send(batch.units, ask=None, attempt=0)

    def _send(
        self, units: list[tuple[int, bytes, list[Command]]], ask: str | None, attempt: int
    ) -> list[tuple[int, bytes, str]]:
        groups: dict[str, tuple[ClusterNode, list[tuple[int, bytes, list[Command]]]]] = {}
        for unit in units:
            if ask is not None:
                node = self.rc.get_node(node_name=ask)
                if node is None:  # a node the table does not know yet
                    host, port = ask.rsplit(":", 1)
                    node = ClusterNode(host, int(port))
            else:
                node = self.rc.get_node_from_key(unit[1])
            groups.setdefault(node.name, (node, []))[1].append(unit)
        failed: list[tuple[int, bytes, str]] = []
        moved: list[tuple[int, bytes, list[Command]]] = []
        asked: dict[str, list[tuple[int, bytes, list[Command]]]] = {}
        for node, group in groups.values():
            client = self.rc.get_redis_connection(node)
            pipe = client.pipeline(transaction=False)
            for _db, _key, commands in group:
                for cmd in commands:
                    if ask is not None:
                        pipe.execute_command("ASKING")
                    pipe.execute_command(*cmd)
            replies = iter(pipe.execute(raise_on_error=False))
            step = 2 if ask is not None else 1
            for unit in group:
                got = [next(replies) for _ in range(step * len(unit[2]))][step - 1 :: step]
                errors = [r for r in got if isinstance(r, Exception)]
                if not errors:
                    continue
                redirect = len(errors) == len(got) and attempt < self.MAX_REDIRECTS
                if redirect and isinstance(errors[0], MovedError):
                    moved.append(unit)
                elif redirect and isinstance(errors[0], AskError):
                    e = errors[0]
                    asked.setdefault(f"{e.host}:{e.port}", []).append(unit)
                else:
                    failed.append((unit[0], unit[1], str(errors[0])))
        if moved:
            self.rc.nodes_manager.initialize()
            failed += self._send(moved, ask=None, attempt=attempt + 1)
        for name, group in asked.items():
            failed += self._send(group, ask=name, attempt=attempt + 1)
        return failed

    def collect(self, batch: Batch) -> list[tuple[int, bytes, str]]:
        return self.failed

    def close(self) -> None:
        self.rc.close()


# -- the load ----------------------------------------------------------------------------------


def load_libraries(plan: Plan, url: Server, stats: LoadStats) -> None:
    """FUNCTION LOAD [REPLACE] each library, on every primary of a cluster."""
    if plan.libraries_action not in ("load", "replace"):
        return
    args: list[bytes] = [b"FUNCTION", b"LOAD"]
    if plan.libraries_action == "replace":
        args.append(b"REPLACE")
    rc = url.cluster() if plan.target.cluster_enabled else None
    clients = [rc.get_redis_connection(n) for n in rc.get_primaries()] if rc else [url.client()]
    try:
        for lib in plan.libraries:
            if lib.pre_ga:
                continue
            errors = []
            for client in clients:
                try:
                    client.execute_command(*args, lib.code)
                except redis.ResponseError as e:
                    errors.append(str(e))
            if errors:
                stats.failed += 1
                stats.failures.append(
                    Failure(None, None, f"FUNCTION LOAD {printable(lib.name)}: {errors[0]}")
                )
            else:
                stats.libraries.append(lib.name)
    finally:
        if rc is not None:
            rc.close()
        else:
            clients[0].close()


def load(
    plan: Plan,
    source: RdbSource,
    url: Server,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_keys: int = BATCH_KEYS,
    batch_bytes: int = BATCH_BYTES,
) -> LoadStats:
    """Write ``source`` into the target as ``plan`` says. Network failures end the load with
    ``stopped`` set; they are not raised."""
    stats = LoadStats()
    started = time.monotonic()
    stats.started_ms = int(time.time() * 1000)
    writer: Writer = ClusterWriter(url) if plan.target.cluster_enabled else ServerWriter(url)
    try:
        load_libraries(plan, url, stats)
        if stats.failures:
            stats.stopped = "a function library failed to load; no key was written"
            return stats
        _load_keys(plan, source, writer, stats, progress, batch_keys, batch_bytes)
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        stats.stopped = f"the connection to {url.display} failed: {e}"
    except redis.RedisError as e:
        stats.stopped = f"{url.display}: {e}"
    except FormatError as e:
        stats.stopped = f"reading the backup: {e}"
    except KeyboardInterrupt:
        stats.stopped = "interrupted (Ctrl-C): the keys restored so far stay on the target"
    finally:
        with contextlib.suppress(redis.RedisError, OSError):  # closing a broken connection
            writer.close()
        stats.seconds = time.monotonic() - started
    return stats


class _Pipeline:
    """The batch being filled and the one sent before it (whose replies are read once the
    next one is sent)."""

    def __init__(self, writer: Writer, stats: LoadStats, keys: int, size: int) -> None:
        self.writer, self.stats = writer, stats
        self.max_keys, self.max_size = keys, size
        self.batch = Batch(writer.packed)
        self.in_flight: Batch | None = None

    @property
    def full(self) -> bool:
        return self.batch.count >= self.max_keys or self.batch.size >= self.max_size

    def flush(self) -> bool:
        """Send the batch, read the previous one's replies; False when that had a failure."""
        ok = _send(self.writer, self.batch, self.in_flight, self.stats)
        self.in_flight, self.batch = self.batch, Batch(self.writer.packed)
        return ok

    def finish(self) -> None:
        if self.batch.count and not self.flush():
            return
        if self.in_flight is not None:
            _collect(self.writer, self.in_flight, self.stats)


class _RestorePacker:
    """RESTORE key ttl payload [ABSTTL] [REPLACE] for one server, in RESP, straight from the
    file's bytes into a batch: the hot loop of a large restore."""

    def __init__(self, source: RdbSource, replace: bool) -> None:
        self.mm = source.mm
        self.footer = struct.pack("<H", source.rdb_version)
        self.types = [bytes([t]) for t in range(256)]
        rep = b"$7\r\nREPLACE\r\n" if replace else b""
        self.head_plain = b"*%d\r\n$7\r\nRESTORE\r\n" % (4 + replace)
        self.head_plain += b"$%d\r\n%b\r\n$1\r\n0\r\n$%d\r\n"
        self.head_ttl = b"*%d\r\n$7\r\nRESTORE\r\n" % (5 + replace)
        self.head_ttl += b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n"
        self.tail_plain = b"\r\n" + rep
        self.tail_ttl = b"\r\n$6\r\nABSTTL\r\n" + rep

    def add(self, batch: Batch, item: Item) -> None:
        key, expire = item.key, item.expire_ms
        body = b"".join((self.types[item.type_id], self.mm[item.start : item.end], self.footer))
        n = len(body) + 8
        parts, keys = batch.lists(item.db)
        if expire is None:
            parts.append(self.head_plain % (len(key), key, n))
            parts.append(body)
            parts.append(_CRC(crc64(body)) + self.tail_plain)
        else:
            ttl = b"%d" % expire
            parts.append(self.head_ttl % (len(key), key, len(ttl), ttl, n))
            parts.append(body)
            parts.append(_CRC(crc64(body)) + self.tail_ttl)
        keys.append(key)
        batch.count += 1
        batch.commands += 1
        batch.size += n


def _restore_command(item: Item, version: int, replace: bool) -> Command:
    """RESTORE as a command (for the cluster writer, which routes commands)."""
    payload = dump_payload(item.type_id, item.raw, version)
    opts = (b"REPLACE",) if replace else ()
    if item.expire_ms is None:
        return (b"RESTORE", item.key, b"0", payload, *opts)
    return (b"RESTORE", item.key, b"%d" % item.expire_ms, payload, b"ABSTTL", *opts)


def _load_keys(
    plan: Plan,
    source: RdbSource,
    writer: Writer,
    stats: LoadStats,
    progress: Callable[[int, int], None] | None,
    batch_keys: int,
    batch_bytes: int,
) -> None:
    payload_path = plan.path == PAYLOAD
    skip_dbs, skip_types = plan.skip_dbs, plan.skip_types
    ttl_types = field_ttl_types(source.magic) if payload_path else frozenset()
    collections = COLLECTION_TYPES
    packer = _RestorePacker(source, plan.replace) if payload_path and writer.packed else None
    pipeline = _Pipeline(writer, stats, batch_keys, batch_bytes)
    pick = plan.selection.picker if plan.selection is not None else None  # selection.py
    damage: FormatError | None = None
    try:
        for item in source.items(progress):
            db = item.db
            if db in skip_dbs or item.type_name in skip_types:
                stats.left_out[db] += 1
                continue
            if pick is not None and not pick(item, stats.skipped, stats.expired):
                continue
            if item.elements == 0 and item.type_id in collections:  # Redis skips them too
                stats.empty[db] += 1
                continue
            expire = item.expire_ms
            if expire is not None and expire <= time.time() * 1000:
                stats.expired[db] += 1
                continue
            if item.type_id in ttl_types and _all_fields_gone(source, item, stats):
                continue
            if packer is not None:
                packer.add(pipeline.batch, item)
            elif payload_path:
                command = _restore_command(item, source.rdb_version, plan.replace)
                pipeline.batch.add(db, item.key, [command])
            else:
                commands = _commands_for(plan, source, item, stats)
                if commands is None:
                    continue
                pipeline.batch.add(db, item.key, commands)
            if pipeline.full and not pipeline.flush():
                return
    except FormatError as e:  # a damaged backup (forced): what came before it is sent
        damage = e
    pipeline.finish()
    if damage is not None:
        raise damage


def _all_fields_gone(source: RdbSource, item: Item, stats: LoadStats) -> bool:
    """A hash whose every field's TTL has run out is skipped, as an expired key."""
    value, _meta = source.decode(item)
    if not all_fields_expired(value, time.time() * 1000):
        return False
    stats.all_fields_expired += 1
    stats.expired[item.db] += 1
    return True


def _commands_for(
    plan: Plan, source: RdbSource, item: Item, stats: LoadStats
) -> list[Command] | None:
    value, meta = source.decode(item)
    try:
        built = rebuild(item.key, value, caps=plan.caps, now_ms=int(time.time() * 1000), meta=meta)
    except NoCommands:
        stats.left_out[item.db] += 1
        return None
    stats.fields_expired += built.fields_expired
    stats.field_ttls_dropped += built.field_ttls_dropped
    stats.pel_lost += built.pel_lost
    if not built.commands:  # a hash whose every field's TTL had run out
        stats.all_fields_expired += 1
        stats.expired[item.db] += 1
        return None
    cmds = built.commands
    if plan.replace:
        cmds.insert(0, (b"DEL", item.key))
    if item.expire_ms is not None:
        cmds.append((b"PEXPIREAT", item.key, b"%d" % item.expire_ms))
    return cmds


def _send(writer: Writer, batch: Batch, in_flight: Batch | None, stats: LoadStats) -> bool:
    """Send ``batch``, then read the replies of the batch sent before it; False when that
    one had a failure (the load then stops)."""
    writer.send(batch)
    stats.batches += 1
    stats.bytes += batch.size
    stats.commands += batch.commands
    if in_flight is None:
        return True
    if _collect(writer, in_flight, stats):
        return True
    _collect(writer, batch, stats)  # sent already: its replies are read and counted too
    return False


def _collect(writer: Writer, batch: Batch, stats: LoadStats) -> bool:
    failed = writer.collect(batch)
    bad: Counter[int] = Counter(db for db, _key, _e in failed)
    if batch.packed:
        for db, keys in batch.keys.items():
            stats.restored[db] += len(keys) - bad[db]
    else:
        for db, _key, _commands in batch.units:
            stats.restored[db] += 1
        for db, n in bad.items():
            stats.restored[db] -= n
    for db, key, error in failed:
        stats.failed += 1
        if len(stats.failures) < MAX_FAILURES_LISTED:
            stats.failures.append(Failure(db, key, error))
    if failed and stats.stopped is None:
        stats.stopped = (
            f"{len(failed)} of {batch.count} keys of a batch failed; the load stopped there"
        )
    return not failed
