"""Read a live server's keyspace without blocking it: what restore compares a backup with.

Everything here is a read a busy server serves between other clients: INFO, MODULE LIST,
FUNCTION LIST, and SCAN (COUNT 1000), never KEYS. Types are counted with one SCAN ... TYPE
per type on Redis 6.0+ (the server filters; no command per key), the types side by side on a
connection each (the server's work and ours overlap: about twice as fast on two cores), and
with the TYPE of each batch pipelined for whatever that leaves (older servers, unexpected
types). SCAN may return a key twice; keys are counted once (by a 64-bit hash of the name,
kept in a compact set: :mod:`toolkit.server.hashset`).
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import compress

import redis

from parsers.rdb.columns import xor64
from parsers.rdb.constants import REDIS_TYPES
from parsers.rdb.xxh64 import xxh64
from toolkit.server.hashset import HashSet, hash_set
from toolkit.steps import Progress

SCAN_COUNT = 1000
# The built-in types, as TYPE names them.
TYPES = REDIS_TYPES


def key_hash(key: bytes) -> int:
    """A 64-bit hash of a key name, the unit of the per-db key-name digest: XXH64, seed 0,
    as the C walk's per-key records have it (``key_hash`` of :mod:`parsers.rdb.columns`)."""
    return xxh64(key)


def digest_of(keys: Iterable[bytes]) -> int:
    """The order-independent digest of distinct key names: the XOR of their hashes."""
    d = 0
    for key in keys:
        d ^= key_hash(key)
    return d


@dataclass
class LiveDb:
    """One database as the server holds it."""

    keys: int = 0  # INFO keyspace
    expires: int = 0  # INFO keyspace
    scanned: int = 0  # distinct keys SCAN returned (and TYPE still found)
    by_type: dict[str, int] = field(default_factory=dict)  # TYPE of each scanned key
    digest: int = 0  # XOR of key_hash over the scanned keys
    watched: dict[int, str] = field(default_factory=dict)  # watched key hash -> TYPE, if seen
    met: MetKeys | None = None  # read by SCAN: every key it counted, by name hash


@dataclass
class MetKeys:
    """The keys a SCAN read counted, by the hashes of their names: one compact set per server
    read (a cluster's primaries read by SCAN add theirs), less those that were gone by the time
    their TYPE was asked. Whether a key whose TTL ran out during the read was still there is
    asked of it, for all such keys at once (:meth:`contains`)."""

    sets: list[HashSet] = field(default_factory=list)
    vanished: set[int] = field(default_factory=set)  # met by SCAN, TYPE then said "none"

    def contains(self, hashes: bytes | bytearray | memoryview | array) -> bytes:
        """One byte for each uint64 hash of a buffer: 1 where that key was counted."""
        n = len(memoryview(hashes).cast("B")) // 8
        mask = 0
        for held in self.sets:
            mask |= int.from_bytes(held.contains(hashes), "little")
        if self.vanished:
            gone = hash_set()
            gone.add(array("Q", self.vanished))
            mask &= ~int.from_bytes(gone.contains(hashes), "little")
        return mask.to_bytes(n, "little")

    def update(self, other: MetKeys) -> None:
        self.sets.extend(other.sets)
        self.vanished |= other.vanished


@dataclass
class LiveKeyspace:
    """What a live server holds, read with non-blocking commands only."""

    version: str
    server_name: str  # "redis" or "valkey"
    executable: str | None
    modules: list[str]  # MODULE LIST names (module type names are not listed there)
    functions: list[str] | None  # FUNCTION LIST library names; None before 7.0
    databases: dict[int, LiveDb]
    keys_loaded: int | None = None  # rdb_last_load_keys_loaded
    keys_expired: int | None = None  # rdb_last_load_keys_expired (dropped at load)
    sources: dict[str, str] = field(default_factory=dict)  # field -> where it was read
    time_ms: int = 0  # the server's TIME once everything was read
    seconds: float = 0.0  # how long the read took
    # How the keys were read: "scan", "snapshot" (its replication RDB, toolkit.stage.live_snapshot)
    # or "info" (INFO keyspace counts alone: no types, no key names)
    via: str = "scan"
    # A snapshot cut at this server time (ms): every key whose TTL runs out after it is there,
    # none other with a TTL (no key with a TTL is watched by name); None otherwise.
    cut_ms: int | None = None
    # A cluster's primaries read as one: per slot (16384), the cut of the snapshot of the
    # primary that holds it, or None where that one was read by SCAN (the keys it met say).
    slot_cuts: list[int | None] | None = None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return parse_version(self.version)

    @property
    def keys(self) -> int:
        return sum(d.keys for d in self.databases.values())


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.0.15"`` -> ``(7, 0, 15)`` (non-numeric parts end it)."""
    out: list[int] = []
    for part in text.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _pairs(item: object) -> dict[str, object]:
    """A RESP2 flat [name, value, ...] list or a RESP3/redis-py dict, with str names."""
    if isinstance(item, dict):
        return {_text(k): v for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return {_text(item[i]): item[i + 1] for i in range(0, len(item) - 1, 2)}
    return {}


def _db_client(client: redis.Redis, db: int) -> redis.Redis:
    """A client of the same server on database ``db`` (its own pool: SELECT is per connection)."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "db": db}
    return redis.Redis(
        connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs)
    )


class _Tally:
    """Keys of one db as SCAN meets them: each counted once, by the hash of its name (the
    hashes met kept in a compact :func:`~toolkit.server.hashset.hash_set`, 11 to 21 bytes a
    key, not a Python set of the whole keyspace)."""

    def __init__(self, watch: Set[int]) -> None:
        self.watch = watch if isinstance(watch, set | frozenset) else frozenset(watch)
        self.seen = hash_set()
        self.vanished: set[int] = set()  # in seen, but TYPE said "none"
        self.db = LiveDb()
        self.by_type: dict[str, int] = {}

    def fresh(self, hashes: array) -> bytes:
        """Which of ``hashes`` are met for the first time (a byte each, 1 where so); they
        count as met from now on."""
        return self.seen.add(hashes)

    def add(self, hashes: array, type_name: str) -> None:
        """Keys met for the first time, all of type ``type_name``."""
        if not hashes:
            return
        self.by_type[type_name] = self.by_type.get(type_name, 0) + len(hashes)
        self.db.digest ^= xor64(hashes)
        self.db.scanned += len(hashes)
        if self.watch:
            for h in self.watch.intersection(hashes):
                self.db.watched[h] = type_name

    def result(self) -> LiveDb:
        self.db.by_type = dict(sorted(self.by_type.items()))
        self.db.met = MetKeys([self.seen], self.vanished)
        return self.db


def _hashes(keys: Iterable[bytes | str]) -> array:
    return array("Q", [_hash(key) for key in keys])


def _hash(key: bytes | str) -> int:
    return key_hash(key if isinstance(key, bytes) else key.encode())


def _scan(client: redis.Redis, batch: int, type_name: str | None = None) -> Iterator[list]:
    """SCAN batches of keys (only those of ``type_name``, if given)."""
    cursor = 0
    while True:
        cursor, keys = client.scan(cursor, count=batch, _type=type_name)
        yield keys
        if int(cursor) == 0:
            return


def scan_db(
    client: redis.Redis,
    watch: Set[int] = frozenset(),
    *,
    types: Sequence[str] = (),
    batch: int = SCAN_COUNT,
    tick: Callable[[int], None] | None = None,
) -> LiveDb:
    """Count the keys of ``client``'s database per type, with their key-name digest.

    With ``types`` (Redis 6.0+), one SCAN ... TYPE per type counts that type's keys; when
    those add up to INFO keyspace's count the job is done. Otherwise (and without ``types``)
    a plain SCAN finds the remaining keys and a pipelined TYPE per batch names their types.
    """
    tally = _Tally(watch)
    stop = threading.Event()  # set when the caller is interrupted: the threads end at once

    def scan_type(type_name: str) -> array:
        hashes = array("Q")  # a key SCAN returns twice is here twice: the merge counts it once
        try:
            for keys in _scan(client, batch, type_name):
                if stop.is_set():
                    break
                hashes.extend(_hashes(keys))
                if tick is not None:
                    tick(len(keys))
        except redis.ResponseError:
            return array("Q")  # a type this server's SCAN does not take: the plain SCAN finds it
        return hashes

    if types:
        # redis-py's pool gives each thread a connection of its own.
        with ThreadPoolExecutor(max_workers=min(len(types), 8)) as pool:
            futures = [pool.submit(scan_type, t) for t in types]
            try:
                for type_name in types:
                    hashes = futures.pop(0).result()
                    tally.add(array("Q", compress(hashes, tally.fresh(hashes))), type_name)
                    del hashes  # merged: only the tally's set keeps them
            except BaseException:  # Ctrl-C: the pool's exit waits for one batch, not a db
                stop.set()
                raise
    if types:
        n = client.connection_pool.connection_kwargs.get("db", 0)
        info = client.info("keyspace").get(f"db{n}", {})
        if isinstance(info, dict) and int(info.get("keys", 0)) == tally.db.scanned:
            return tally.result()
    for keys in _scan(client, batch):
        if tick is not None and not types:
            tick(len(keys))
        hashes = _hashes(keys)
        new = tally.fresh(hashes)
        fresh = [(key, h) for key, h, n in zip(keys, hashes, new, strict=True) if n]
        if not fresh:
            continue
        pipe = client.pipeline(transaction=False)
        for key, _h in fresh:
            pipe.type(key)
        by_type: dict[str, array] = {}
        for (_key, h), t in zip(fresh, pipe.execute(), strict=True):
            name = _text(t)
            if name != "none":
                by_type.setdefault(name, array("Q")).append(h)
            else:  # deleted (or expired) since SCAN returned it
                tally.vanished.add(h)
        for name, found in by_type.items():
            tally.add(found, name)
    return tally.result()


def read_live(
    client: redis.Redis,
    *,
    watch: Mapping[int, Set[int]] | None = None,
    types: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> LiveKeyspace:
    """Read ``client``'s server: version, modules, functions, and per db the counts, types and
    key-name digest. ``watch`` (db -> key hashes) asks which of those keys are there; ``types``
    the types to expect (default: the built-in ones), each counted with its own SCAN ... TYPE
    (any other type is still found, by the fallback of :func:`scan_db`).

    The databases are scanned before INFO keyspace is read, so keys that had expired are gone
    (SCAN deletes the expired keys it meets) when the counts are taken; but not while writes are
    paused (CLIENT PAUSE WRITE pauses expiry too): SCAN then skips them, and INFO keyspace still
    counts them (and their TTLs).
    """
    started = time.monotonic()
    watch = watch or {}
    live = describe(client)
    version = live.version
    scan_types: list[str] = []
    if parse_version(version) >= (6, 0):
        scan_types = list(TYPES) if types is None else sorted(set(types))
    listed = info_keyspace(client)
    total = sum(keys for keys, _expires in listed.values())
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(done[0], total), total)

    for db in sorted(set(listed) | set(watch)):
        db_client = _db_client(client, db)
        try:
            live.databases[db] = scan_db(
                db_client, watch.get(db, frozenset()), types=scan_types, tick=tick
            )
        except redis.RedisError:
            if db in listed:
                raise
            # A watched db the server does not have (above its `databases`): nothing there.
        finally:
            db_client.close()
    for db, (keys, expires) in info_keyspace(client).items():
        stats = live.databases.setdefault(db, LiveDb())
        stats.keys, stats.expires = keys, expires
    live.databases = {
        db: s for db, s in sorted(live.databases.items()) if s.keys or s.scanned or s.watched
    }
    finish(client, live, started)
    return live


def read_counts(client: redis.Redis) -> LiveKeyspace:
    """Read ``client``'s server by INFO alone: per db the counts of keys and TTLs (taken as
    the keys found), no types and no key names (``via`` "info")."""
    started = time.monotonic()
    live = describe(client)
    for db, (keys, expires) in info_keyspace(client).items():
        live.databases[db] = LiveDb(keys=keys, expires=expires, scanned=keys)
    live.via = "info"
    finish(client, live, started)
    return live


def describe(client: redis.Redis) -> LiveKeyspace:
    """The server's version, name, executable, modules and function libraries; no keys yet."""
    info = client.info("server")
    version = _text(info.get("redis_version", "?"))
    server_name = _text(info.get("server_name", "redis"))
    if server_name == "valkey" and "valkey_version" in info:
        version = _text(info["valkey_version"])
    executable = _text(info["executable"]) if info.get("executable") else None
    modules = sorted(
        _text(_pairs(m).get("name", "?")) for m in client.execute_command("MODULE LIST")
    )
    functions: list[str] | None = None
    if parse_version(version) >= (7, 0):
        functions = sorted(
            _text(_pairs(lib).get("library_name", "?"))
            for lib in client.execute_command("FUNCTION LIST")
        )
    return LiveKeyspace(version, server_name, executable, modules, functions, {})


def finish(client: redis.Redis, live: LiveKeyspace, started: float) -> None:
    """Add what the server says of its last load, its TIME, and how long the read took."""
    for section in ("persistence", "stats"):
        values = client.info(section)
        for name, attr in (
            ("rdb_last_load_keys_loaded", "keys_loaded"),
            ("rdb_last_load_keys_expired", "keys_expired"),
        ):
            if name in values and getattr(live, attr) is None:
                setattr(live, attr, int(values[name]))
                live.sources[attr] = f"INFO {section} {name}"
    if not live.time_ms:
        seconds, micros = client.time()
        live.time_ms = int(seconds) * 1000 + int(micros) // 1000
    live.seconds = time.monotonic() - started


def info_keyspace(client: redis.Redis) -> dict[int, tuple[int, int]]:
    """INFO keyspace as db -> (keys, expires)."""
    out = {}
    for name, value in client.info("keyspace").items():
        if isinstance(name, str) and name.startswith("db") and isinstance(value, dict):
            out[int(name[2:])] = (int(value.get("keys", 0)), int(value.get("expires", 0)))
    return out
