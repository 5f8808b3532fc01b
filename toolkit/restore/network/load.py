"""Writing the backup into the target: pipelined batches of RESTORE (payload path) or plain
commands (command path), routed by db on one server or by slot on a cluster.

A batch holds up to :data:`BATCH_KEYS` keys or about :data:`BATCH_BYTES` of arguments. On one
server each db has its own connection; a batch is sent whole, and its replies are read while
the next batch is being built and sent, so the server works while Python does. Keys whose TTL
has run out by the time they are sent are skipped (and counted), and so are empty collections
(RESTORE refuses them; Redis skips them when it loads a file). The load stops at the first
batch with a failed command (by then at most one more batch has been sent): a restore over the
network has no rollback, so it does not pile up more damage.

A key too big for one command (its DUMP payload, or one of its commands, larger than the
target's proto-max-bulk-len) is written on its own in chunks (chunked.py), once the batches
before it are answered. With a journal (resume.py), each batch is recorded before it is sent
and once every key of it is acknowledged; a resumed load skips the keys acknowledged before,
and writes those that were sent without an answer with REPLACE (they may be there already).
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
from toolkit.restore.network.chunked import (
    ChunkConnectionLost,
    ChunkWriter,
    largest_command,
    payload_size,
)
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
    chunked: Counter[int] = field(default_factory=Counter)  # keys written in chunks
    leftovers: list[tuple[int, bytes]] = field(default_factory=list)  # temporary keys left
    resumed: Counter[int] = field(default_factory=Counter)  # acknowledged in an earlier run

    @property
    def keys(self) -> int:
        return sum(self.restored.values())


# What the walk counts (besides the keys restored), as a journal records it per batch.
WALK_COUNTERS = ("expired", "empty", "left_out", "chunked")
WALK_TOTALS = ("fields_expired", "field_ttls_dropped", "pel_lost", "all_fields_expired")


def walk_snapshot(stats: LoadStats) -> dict[str, object]:
    """The walk's counters now (per db ones with string keys, for JSON)."""
    out: dict[str, object] = {
        name: {str(db): n for db, n in getattr(stats, name).items() if n} for name in WALK_COUNTERS
    }
    out.update({name: getattr(stats, name) for name in WALK_TOTALS})
    return out


def restore_snapshot(stats: LoadStats, restored: dict[str, int], walked: dict[str, object]) -> None:
    """Start ``stats`` where a journal's last acknowledged batch left them."""
    stats.restored = Counter({int(db): n for db, n in restored.items()})
    stats.resumed = Counter(stats.restored)
    for name in WALK_COUNTERS:
        per_db = walked.get(name) or {}
        assert isinstance(per_db, dict)
        setattr(stats, name, Counter({int(db): int(n) for db, n in per_db.items()}))
    for name in WALK_TOTALS:
        setattr(stats, name, int(walked.get(name) or 0))  # type: ignore[call-overload]


class LoadJournal(Protocol):
    """Where a load records its progress (resume.py), and where an earlier one stopped."""

    acked_through: int  # the keys walked before this one were acknowledged: skipped
    sent_through: int  # the keys before this one may be on the target: written with REPLACE
    libraries: list[str] | None  # function libraries loaded by an earlier run

    def sent(self, first: int, through: int) -> None: ...

    def acked(self, through: int, restored: dict[str, int], walked: dict[str, object]) -> None: ...

    def libraries_loaded(self, names: list[str]) -> None: ...

    def loaded(self) -> None: ...


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
        self.first = -1  # the walk's ordinals of its first key and after its last one
        self.through = 0
        self.walked: dict[str, object] = {}
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
    journal: LoadJournal | None = None,
    stats: LoadStats | None = None,
) -> LoadStats:
    """Write ``source`` into the target as ``plan`` says, recording progress in ``journal``
    (``stats``: where its earlier run left them). Network failures end the load with
    ``stopped`` set; they are not raised."""
    stats = stats or LoadStats()
    started = time.monotonic()
    stats.started_ms = stats.started_ms or int(time.time() * 1000)
    writer: Writer = ClusterWriter(url) if plan.target.cluster_enabled else ServerWriter(url)
    chunks = _Chunks(plan, url)
    try:
        if journal is not None and journal.libraries is not None:
            stats.libraries = list(journal.libraries)
        else:
            load_libraries(plan, url, stats)
            if stats.failures:
                stats.stopped = "a function library failed to load; no key was written"
                return stats
            if journal is not None:
                journal.libraries_loaded(stats.libraries)
        _load_keys(plan, source, writer, stats, progress, batch_keys, batch_bytes, journal, chunks)
        if journal is not None and stats.stopped is None and not stats.failures:
            journal.loaded()
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
            chunks.close()
        stats.seconds = time.monotonic() - started
    return stats


class _Pipeline:
    """The batch being filled and the one sent before it (whose replies are read once the
    next one is sent)."""

    def __init__(
        self, writer: Writer, stats: LoadStats, keys: int, size: int, journal: LoadJournal | None
    ) -> None:
        self.writer, self.stats, self.journal = writer, stats, journal
        self.max_keys, self.max_size = keys, size
        self.batch = Batch(writer.packed)
        self.in_flight: Batch | None = None

    @property
    def full(self) -> bool:
        return self.batch.count >= self.max_keys or self.batch.size >= self.max_size

    def add_ordinal(self, ordinal: int) -> None:
        """The key of walk ordinal ``ordinal`` was just added to the batch."""
        if self.batch.first < 0:
            self.batch.first = ordinal

    def flush(self, through: int) -> bool:
        """Send the batch (the keys walked before ``through``), read the previous one's
        replies; False when that had a failure."""
        batch, in_flight = self.batch, self.in_flight
        batch.through = through
        if self.journal is not None:
            batch.walked = walk_snapshot(self.stats)
            self.journal.sent(max(batch.first, 0), through)
        ok = _send(self.writer, batch, in_flight, self.stats)
        if ok and in_flight is not None:
            self._acked(in_flight)
        self.in_flight, self.batch = batch, Batch(self.writer.packed)
        return ok

    def _acked(self, batch: Batch) -> None:
        if self.journal is not None:
            restored = {str(db): n for db, n in self.stats.restored.items() if n}
            self.journal.acked(batch.through, restored, batch.walked)

    def finish(self, through: int) -> bool:
        """Send what is left and read every reply; False when a batch had a failure."""
        if self.batch.count and not self.flush(through):
            return False
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            if not _collect(self.writer, in_flight, self.stats):
                return False
            self._acked(in_flight)
        return True


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
    journal: LoadJournal | None,
    chunks: _Chunks,
) -> None:
    payload_path = plan.path == PAYLOAD
    skip_dbs, skip_types = plan.skip_dbs, plan.skip_types
    ttl_types = field_ttl_types(source.magic) if payload_path else frozenset()
    collections = COLLECTION_TYPES
    packed = payload_path and writer.packed
    packers = {r: _RestorePacker(source, r) for r in {plan.replace, True}} if packed else {}
    pipeline = _Pipeline(writer, stats, batch_keys, batch_bytes, journal)
    limit = plan.target.bulk_limit
    acked = journal.acked_through if journal is not None else 0
    unsure = journal.sent_through if journal is not None else 0
    pick = plan.selection.picker if plan.selection is not None else None  # selection.py
    damage: FormatError | None = None
    ordinal = -1
    try:
        for ordinal, item in enumerate(source.items(progress)):
            if ordinal < acked:  # acknowledged by the server in an earlier run
                continue
            # Sent by an earlier run without an answer: it may be there already.
            replace = plan.replace or ordinal < unsure
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
            commands = None
            if not payload_path:
                commands = _commands_for(plan, source, item, stats, replace)
                if commands is None:
                    continue
            big = payload_size(item.size) > limit if payload_path else False
            if big or (commands is not None and largest_command(commands) > limit):
                if not _chunked(pipeline, chunks, source, item, ordinal, replace):
                    return
                continue
            pipeline.add_ordinal(ordinal)
            if packed:
                packers[replace].add(pipeline.batch, item)
            elif payload_path:
                command = _restore_command(item, source.rdb_version, replace)
                pipeline.batch.add(db, item.key, [command])
            else:
                assert commands is not None
                pipeline.batch.add(db, item.key, commands)
            if pipeline.full and not pipeline.flush(ordinal + 1):
                return
    except FormatError as e:  # a damaged backup (forced): what came before it is sent
        damage = e
    if not pipeline.finish(ordinal + 1):
        return
    if damage is not None:
        raise damage


class _Chunks:
    """The chunk writer, made when the first key too big for one command comes."""

    def __init__(self, plan: Plan, url: Server) -> None:
        self.plan, self.url = plan, url
        self.writer: ChunkWriter | None = None

    def get(self) -> ChunkWriter:
        if self.writer is None:
            t = self.plan.target
            self.writer = ChunkWriter(
                self.url,
                cluster=t.cluster_enabled,
                limit=t.bulk_limit,
                caps=self.plan.caps,
                join_strings=t.version >= (7, 0),
            )
        return self.writer

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _chunked(
    pipeline: _Pipeline, chunks: _Chunks, source: RdbSource, item: Item, ordinal: int, replace: bool
) -> bool:
    """Write ``item`` in chunks once every batch before it is answered; False (the load
    stops) when it fails."""
    stats, journal = pipeline.stats, pipeline.journal
    if not pipeline.finish(ordinal):
        return False
    if journal is not None:
        journal.sent(ordinal, ordinal + 1)
    value, meta = source.decode(item)
    try:
        writer = chunks.get()
        outcome = writer.write(item.db, item.key, value, meta, item.expire_ms, replace=replace)
    except ChunkConnectionLost as e:
        stats.leftovers.append((item.db, e.temp))
        raise redis.ConnectionError(f"{e} (writing '{printable(item.key)}' in chunks)") from None
    stats.commands += outcome.commands
    stats.bytes += outcome.bytes
    stats.batches += 1
    if outcome.leftover is not None:
        stats.leftovers.append((item.db, outcome.leftover))
    if outcome.error is not None:
        stats.failed += 1
        stats.failures.append(Failure(item.db, item.key, outcome.error))
        stats.stopped = "a key written in chunks failed; the load stopped there"
        return False
    stats.restored[item.db] += 1
    stats.chunked[item.db] += 1
    if journal is not None:
        restored = {str(db): n for db, n in stats.restored.items() if n}
        journal.acked(ordinal + 1, restored, walk_snapshot(stats))
    return True


def _all_fields_gone(source: RdbSource, item: Item, stats: LoadStats) -> bool:
    """A hash whose every field's TTL has run out is skipped, as an expired key."""
    value, _meta = source.decode(item)
    if not all_fields_expired(value, time.time() * 1000):
        return False
    stats.all_fields_expired += 1
    stats.expired[item.db] += 1
    return True


def _commands_for(
    plan: Plan, source: RdbSource, item: Item, stats: LoadStats, replace: bool
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
    if replace:
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
