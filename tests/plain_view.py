"""Two servers' keyspaces compared with plain commands, never with rbkit's decoders.

``reference(path, version)`` is a server that loaded a backup directly (as its dump.rdb);
``assert_same_keyspace(target, ref)`` then reads every key of the reference and the same key
on the target with GET, LRANGE, SMEMBERS, ZRANGE WITHSCORES, HGETALL (and HPEXPIRETIME),
XINFO STREAM FULL, TYPE, PEXPIRETIME (PTTL before 7.0) and OBJECT ENCODING; a FalkorDB graph
with GRAPH.RO_QUERY, another module's value with DUMP.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis
from conftest import binary, falkordb, server_ms, stack_module_paths

from toolkit.server.process import RedisServer, raw_reply, running_server

Version = tuple[int, ...]
# A stream's pending entries whose entry is gone cannot be carried by commands (XCLAIM needs
# the entry): key -> group -> how many of them a restore may lose.
LostPending = dict[bytes, dict[bytes, int]]
TTL_SLACK_MS = 5000  # before 7.0 a TTL is read as PTTL, relative to each server's clock
GRAPH_QUERIES = (
    "MATCH (n) RETURN id(n), labels(n), properties(n) ORDER BY id(n)",
    "MATCH (a)-[r]->(b) RETURN id(r), id(a), type(r), properties(r), id(b) ORDER BY id(r)",
)


@contextlib.contextmanager
def reference(path: Path, version: str) -> Iterator[RedisServer]:
    """A server of ``version`` that loaded ``path`` as its dump.rdb (64 databases; FalkorDB
    loaded into 8.2, for graph values; Redis Stack's modules into 7.4)."""
    with tempfile.TemporaryDirectory(prefix="rbkit-reference-") as tmp:
        directory = Path(tmp)
        shutil.copyfile(path, directory / "dump.rdb")
        modules = [falkordb()] if version == "8.2" else []
        if version == "7.4":  # Redis Stack: its module values need its modules
            modules = stack_module_paths()
        config = {"dbfilename": "dump.rdb", "databases": "64"}
        with running_server(binary(version), directory=directory, config=config,
                            modules=modules) as server:  # fmt: skip
            yield server


def dbs_of(server: RedisServer) -> list[int]:
    """The dbs that hold keys (INFO keyspace)."""
    return sorted(int(name[2:]) for name in server.client().info("keyspace"))


def expire_at(client: redis.Redis, key: bytes, version: Version) -> int | None:
    """The key's absolute expiry in ms (PEXPIRETIME; before 7.0 server TIME + PTTL)."""
    if version >= (7, 0):
        at = int(client.execute_command("PEXPIRETIME", key))
    else:
        ttl = int(client.pttl(key))
        at = -1 if ttl < 0 else server_ms(client) + ttl
    return None if at < 0 else at


def stream_view(
    client: redis.Redis, key: bytes, version: Version, lost: dict[bytes, int]
) -> dict[str, Any]:
    """XINFO STREAM FULL COUNT 0 (every entry and pending entry), less what a server decides
    for itself (radix tree sizes, consumers' seen and active times, lag) and, before 7.0, the
    fields 6.2 does not have. Pending entries whose stream entry is gone are dropped and
    counted (``lost`` says how many each group may lose; 0 unless given)."""
    full = raw_reply(client, "XINFO", "STREAM", key, "FULL", "COUNT", 0)
    entries = {eid for eid, _ in full[b"entries"]}
    out: dict[str, Any] = {
        "length": full[b"length"],
        "last-generated-id": full[b"last-generated-id"],
        "entries": full[b"entries"],
    }
    if version >= (7, 0):
        for name in ("entries-added", "max-deleted-entry-id", "recorded-first-entry-id"):
            out[name] = full[name.encode()]
    groups = []
    for g in full[b"groups"]:
        name = g[b"name"]
        pel = [p for p in g[b"pending"] if p[0] in entries or lost.get(name, 0) == 0]
        assert len(g[b"pending"]) - len(pel) == lost.get(name, 0), (key, name)
        consumers = [
            (c[b"name"], [p for p in c[b"pending"] if p[0] in {q[0] for q in pel}])
            for c in g[b"consumers"]
        ]
        group = {"name": name, "last-delivered-id": g[b"last-delivered-id"], "pending": pel,
                 "consumers": consumers}  # fmt: skip
        if version >= (7, 0):
            group["entries-read"] = g[b"entries-read"]
        groups.append(group)
    out["groups"] = groups
    return out


def key_view(
    client: redis.Redis, key: bytes, version: Version, lost: dict[bytes, int]
) -> tuple[str, Any]:
    """(TYPE, content) of a key, as plain commands show it on a server of ``version``."""
    kind = client.type(key).decode()
    if kind == "string":
        content: Any = client.get(key)
    elif kind == "list":
        content = client.lrange(key, 0, -1)
    elif kind == "set":
        content = sorted(client.smembers(key))
    elif kind == "zset":
        content = client.zrange(key, 0, -1, withscores=True)
    elif kind == "hash":
        fields = sorted(client.hgetall(key).items())
        content = fields
        if version >= (7, 4) and fields:
            names = [f for f, _ in fields]
            ttls = client.execute_command("HPEXPIRETIME", key, "FIELDS", len(names), *names)
            content = (fields, list(zip(names, ttls, strict=True)))
    elif kind == "stream":
        content = stream_view(client, key, version, lost)
    elif kind == "graphdata":  # FalkorDB: its nodes and edges (its DUMP varies run to run)
        content = [
            client.execute_command("GRAPH.RO_QUERY", key, query)[:2]  # header, rows (no stats)
            for query in GRAPH_QUERIES
        ]
    elif kind == "TopK-TYPE":  # RedisBloom's Top-K serializes differently after a RESTORE
        content = (
            client.execute_command("TOPK.LIST", key, "WITHCOUNT"),
            client.execute_command("TOPK.INFO", key),
        )
    else:  # another module's value: its serialized bytes (the payload, without version and CRC)
        content = client.dump(key)[:-10]
    return kind, content


def assert_same_keyspace(
    target: RedisServer,
    ref: RedisServer,
    *,
    skip_dbs: frozenset[int] = frozenset(),
    lost_pending: LostPending | None = None,
    client_of: Callable[[bytes], redis.Redis] | None = None,
    encodings: bool = True,
) -> int:
    """Every key ``ref`` holds (but in ``skip_dbs``) is on ``target`` (or, with
    ``client_of``, on the node that function gives) with the same type, content and expiry,
    and the same OBJECT ENCODING when both run one version (``encodings``); the target holds
    no other key. Returns how many keys were compared."""
    lost_pending = lost_pending or {}
    t_version, r_version = target.binary.version, ref.binary.version
    both = min(t_version, r_version)
    compared = 0
    ref_keys = 0
    for db in dbs_of(ref):
        if db in skip_dbs:
            continue
        r = ref.client(db)
        for key in r.scan_iter(count=1000):
            t = client_of(key) if client_of else target.client(db)
            lost = lost_pending.get(key, {})
            want, got = key_view(r, key, both, lost), key_view(t, key, both, {})
            assert got == want, (db, key, got, want)
            got_at, want_at = expire_at(t, key, t_version), expire_at(r, key, r_version)
            if both >= (7, 0) or None in (got_at, want_at):
                assert got_at == want_at, (db, key, got_at, want_at)
            else:
                assert abs(got_at - want_at) < TTL_SLACK_MS, (db, key, got_at, want_at)  # type: ignore[operator]
            if encodings and t_version == r_version:
                assert t.object("encoding", key) == r.object("encoding", key), (db, key)
            compared += 1
        ref_keys += r.dbsize()
    if client_of is None:
        for db in set(dbs_of(target)) | set(dbs_of(ref)):
            if db not in skip_dbs:
                assert target.client(db).dbsize() == ref.client(db).dbsize(), f"db {db}"
    assert compared == ref_keys
    return compared
