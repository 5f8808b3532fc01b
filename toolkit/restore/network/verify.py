"""Reading the target back after a network restore.

Two ways, by what the target held before:

- ``keyspace`` (the dbs written to were empty, nothing was left out): the restore drill's
  comparison (toolkit/stage/drill.py read_expected/compare_expected over
  toolkit/server/read.py and toolkit/stage/compare.py): per db the keys, keys with a TTL,
  keys per type and the key-name digest must equal the backup's, allowing for keys whose
  TTL ran out; on a cluster the primaries' keyspaces (read four at a time) are added up
  first.
- ``keys`` (other keys were there, some were left out, or a selection was restored): every
  restored key (every selected one, with the TTL ``--ttl`` gave it) is asked for
  with pipelined TYPE and PEXPIRETIME (PTTL before 7.0): it must exist with the backup's
  type and TTL, unless its TTL has run out since.

Function libraries must be on the target (on every primary of a cluster) either way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

from parsers.cluster.slots import SLOTS
from parsers.printable import printable
from toolkit.check.result import CheckResult
from toolkit.restore.network.load import LoadStats
from toolkit.restore.network.plan import (
    Plan,
    all_fields_expired,
    field_ttl_types,
    is_empty_collection,
)
from toolkit.restore.network.source import Item, RdbSource
from toolkit.restore.network.target import reply_names
from toolkit.server.connect import Server
from toolkit.server.read import LiveDb, LiveKeyspace, MetKeys, info_keyspace, parse_version
from toolkit.stage.compare import Allowance, BackupKeys, Comparison, Mismatch
from toolkit.stage.drill import compare_expected, read_expected
from toolkit.text import utc_iso

KEYSPACE = "keyspace"
KEYS = "keys"
BATCH = 1000
# A hash whose last field TTL runs out this soon may be gone by the time it is asked for.
FIELD_SLACK_MS = 60_000
MAX_LISTED = 10
# From this many keys on, the target is read back as its replication snapshot: below it SCAN
# is about as fast, and the snapshot waits the server's repl-diskless-sync-delay (5 s by
# default; rbkit leaves the setting of a server it did not start alone) before its fork.
SNAPSHOT_MIN_KEYS = 200_000
# Primaries of a cluster read back at once: their snapshots' delays and forks overlap (the
# scratch files of as many snapshots are on disk together).
NODES_AT_ONCE = 4


@dataclass
class Verification:
    mode: str  # keyspace or keys
    checked: int = 0  # keys asked for (keys mode) or read (keyspace mode)
    mismatches: list[Mismatch] = field(default_factory=list)  # the first MAX_LISTED
    mismatch_count: int = 0
    allowances: list[Allowance] = field(default_factory=list)
    comparison: Comparison | None = None
    live: LiveKeyspace | None = None
    libraries_missing: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def verified(self) -> bool:
        return not self.mismatch_count

    def mismatch(
        self,
        sentence: str,
        db: int | None = None,
        what: str = "key",
        expected: object = None,
        found: object = None,
    ) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < MAX_LISTED:
            self.mismatches.append(Mismatch(db, what, expected, found, sentence))


def verify(
    plan: Plan,
    result: CheckResult,
    source: RdbSource,
    url: Server,
    stats: LoadStats,
    keys: BackupKeys | None,
) -> Verification:
    """Read the target back and compare with the backup. Raises redis errors to the caller."""
    started = time.monotonic()
    exact = plan.target_empty and keys is not None and not stats.all_fields_expired
    exact = exact and not any(d.left_out for d in plan.dbs.values()) and plan.selection is None
    if exact:
        assert keys is not None
        out = _keyspace(plan, result, url, stats, keys)
    else:
        out = _keys(plan, source, url)
    _libraries(out, plan, url, stats)
    out.seconds = time.monotonic() - started
    return out


@dataclass
class _Node:
    """The target, or one primary of a cluster: a client, its address, and the slots it
    holds (None: not a cluster)."""

    client: redis.Redis
    server: Server
    slots: list[int] | None = None


@contextmanager
def _clients(plan: Plan, url: Server) -> Iterator[list[_Node]]:
    """The target, or each primary of a cluster with the slots its client maps to it."""
    if not plan.target.cluster_enabled:
        client = url.client()
        try:
            yield [_Node(client, url)]
        finally:
            client.close()
        return
    with url.cluster() as rc:
        held: dict[str, list[int]] = {}
        for slot, nodes in rc.nodes_manager.slots_cache.items():
            if nodes:
                held.setdefault(nodes[0].name, []).append(slot)
        yield [
            _Node(rc.get_redis_connection(n), url.at(n.host, n.port), held.get(n.name, []))
            for n in rc.get_primaries()
        ]


def _keyspace(
    plan: Plan, result: CheckResult, url: Server, stats: LoadStats, keys: BackupKeys
) -> Verification:
    out = Verification(KEYSPACE)
    since = stats.started_ms

    def read(node: _Node) -> tuple[LiveKeyspace, list[str]]:
        notes: list[str] = []
        snapshot = _snapshot_of(node.server, node.client)
        live = read_expected(node.client, result, keys, since, server=snapshot, notes=notes)
        return live, notes

    with (
        _clients(plan, url) as nodes,
        ThreadPoolExecutor(max_workers=min(NODES_AT_ONCE, len(nodes))) as pool,
    ):
        done = list(pool.map(read, nodes))
    lives = [live for live, _notes in done]
    notes = [note for _live, node_notes in done for note in node_notes]
    live = lives[0] if nodes[0].slots is None else merge(lives, [n.slots or [] for n in nodes])
    wanted = set(plan.dbs)
    live.databases = {db: d for db, d in live.databases.items() if db in wanted}
    comparison = compare_expected(result, live, keys, since, False)
    comparison.notes.extend(notes)
    comparison.mismatches = [m for m in comparison.mismatches if m.what != "functions"]
    out.comparison, out.live = comparison, live
    out.checked = sum(d.scanned for d in live.databases.values())
    for m in comparison.mismatches:
        out.mismatch(m.sentence, m.db, m.what, m.expected, m.found)
    out.allowances = list(comparison.allowances)
    return out


def _snapshot_of(server: Server, client: redis.Redis) -> Server | None:
    """``server`` (the target, or one primary of a cluster) when it is to be read as its
    replication snapshot: it holds SNAPSHOT_MIN_KEYS keys or more; else None (SCAN)."""
    held = sum(keys for keys, _expires in info_keyspace(client).values())
    return server if held >= SNAPSHOT_MIN_KEYS else None


def merge(lives: list[LiveKeyspace], slots: list[list[int]]) -> LiveKeyspace:
    """The keyspaces of a cluster's primaries as one (``slots``: those each holds): counts
    added, digests XORed, function libraries those that every primary has, and per slot the
    cut of its primary's snapshot (None where it was read by SCAN)."""
    first = lives[0]
    functions = None
    if all(lv.functions is not None for lv in lives):
        functions = sorted(set.intersection(*(set(lv.functions or []) for lv in lives)))
    out = LiveKeyspace(
        min((lv.version for lv in lives), key=parse_version),
        first.server_name,
        first.executable,
        first.modules,
        functions,
        {},
    )
    for lv in lives:
        for db, d in lv.databases.items():
            m = out.databases.setdefault(db, LiveDb())
            m.keys += d.keys
            m.expires += d.expires
            m.scanned += d.scanned
            m.digest ^= d.digest
            m.watched.update(d.watched)
            if d.met is not None:  # a primary read by SCAN: the keys it counted
                if m.met is None:
                    m.met = MetKeys()
                m.met.update(d.met)
            for t, n in d.by_type.items():
                m.by_type[t] = m.by_type.get(t, 0) + n
        out.time_ms = max(out.time_ms, lv.time_ms)
        out.seconds += lv.seconds
    out.sources["cluster"] = f"{len(lives)} primaries added up"
    vias = {lv.via for lv in lives}
    out.via = vias.pop() if len(vias) == 1 else "+".join(sorted({lv.via for lv in lives}))
    out.slot_cuts = [None] * SLOTS
    for lv, held in zip(lives, slots, strict=True):
        for slot in held:
            out.slot_cuts[slot] = lv.cut_ms
    return out


def _keys(plan: Plan, source: RdbSource, url: Server) -> Verification:
    out = Verification(KEYS)
    exact_ttl = plan.target.version >= (7, 0)
    ttl_types = field_ttl_types(source.magic)
    batch: list[Item] = []
    pick = plan.selection.picker if plan.selection is not None else None  # selection.py
    with _Reader(plan, url, "PEXPIRETIME" if exact_ttl else "PTTL") as reader:
        for item in source.items():
            if item.db in plan.skip_dbs or item.type_name in plan.skip_types:
                continue
            if pick is not None and pick.decide(item) is not None:  # TTL as --ttl set it
                continue
            if is_empty_collection(item.type_id, item.elements):
                continue
            if item.expire_ms is not None and item.expire_ms <= time.time() * 1000:
                continue
            if item.type_id in ttl_types:  # skipped by the load when all its fields expired
                value, _meta = source.decode(item)
                if all_fields_expired(value, time.time() * 1000 + FIELD_SLACK_MS):
                    continue
            batch.append(item)
            if len(batch) >= BATCH:
                _check_batch(out, reader.read(batch), batch, exact_ttl)
                batch = []
        if batch:
            _check_batch(out, reader.read(batch), batch, exact_ttl)
    return out


class _Reader:
    """TYPE and a TTL command for batches of keys, pipelined per db (or by the cluster)."""

    def __init__(self, plan: Plan, url: Server, ttl_cmd: str) -> None:
        self.url = url
        self.ttl_cmd = ttl_cmd
        self.rc = url.cluster() if plan.target.cluster_enabled else None
        self.clients: dict[int, redis.Redis] = {}

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.rc is not None:
            self.rc.close()
        for client in self.clients.values():
            client.close()

    def read(self, items: list[Item]) -> list[tuple[str, int]]:
        """(TYPE, TTL reply) of each item."""
        groups: dict[int, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(0 if self.rc is not None else item.db, []).append(i)
        out: list[tuple[str, int]] = [("none", -2)] * len(items)
        for db, indexes in groups.items():
            if self.rc is not None:
                pipe = self.rc.pipeline()
            else:
                client = self.clients.get(db)
                if client is None:
                    client = self.clients[db] = self.url.client(db)
                pipe = client.pipeline(transaction=False)
            for i in indexes:
                pipe.execute_command("TYPE", items[i].key)
                pipe.execute_command(self.ttl_cmd, items[i].key)
            got = pipe.execute()
            for n, i in enumerate(indexes):
                out[i] = (_text(got[2 * n]), int(got[2 * n + 1]))
        return out


def _check_batch(
    out: Verification, replies: list[tuple[str, int]], items: list[Item], exact_ttl: bool
) -> None:
    now = time.time() * 1000
    for item, (type_name, ttl) in zip(items, replies, strict=True):
        out.checked += 1
        where = f"db {item.db}: '{printable(item.key)}'"
        if type_name == "none":
            if item.expire_ms is not None and item.expire_ms <= now:
                continue  # its TTL ran out since it was restored
            out.mismatch(f"{where} is missing", item.db, "key", item.type_name, None)
            continue
        if type_name != item.type_name:
            out.mismatch(
                f"{where} is a {type_name}, expected a {item.type_name}",
                item.db,
                "type",
                item.type_name,
                type_name,
            )
        if item.expire_ms is None and ttl != -1:
            out.mismatch(f"{where} has a TTL, expected none", item.db, "expiry", None, ttl)
        elif item.expire_ms is not None and ttl == -1:
            out.mismatch(
                f"{where} has no TTL, expected one (expires at {utc_iso(item.expire_ms)})",
                item.db,
                "expiry",
                item.expire_ms,
                None,
            )
        elif item.expire_ms is not None and exact_ttl and ttl != item.expire_ms:
            out.mismatch(
                f"{where} expires at {utc_iso(ttl)}, expected {utc_iso(item.expire_ms)}",
                item.db,
                "expiry",
                item.expire_ms,
                ttl,
            )


def _libraries(out: Verification, plan: Plan, url: Server, stats: LoadStats) -> None:
    wanted = set(stats.libraries)
    if not wanted:
        return
    with _clients(plan, url) as nodes:
        for node in nodes:
            listed = node.client.execute_command("FUNCTION LIST")
            have = set(reply_names(listed, "library_name"))
            for name in sorted(wanted - have):
                if name not in out.libraries_missing:
                    out.libraries_missing.append(name)
                    out.mismatch(
                        f"function library {name} is not on the target",
                        None,
                        "functions",
                        name,
                        None,
                    )


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
