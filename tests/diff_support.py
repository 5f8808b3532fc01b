"""Helpers of the diff tests: a dataset of every type, a change set touching every kind of
difference, and an oracle that reads a real server with plain commands (GET, LRANGE,
SMEMBERS, ZRANGE, HGETALL, XRANGE, XINFO, PEXPIRETIME) to say what a diff must find.

The oracle never uses rbkit's parsers: what it expects comes from the server itself.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import redis

from toolkit.diff.model import (
    ADDED,
    EXPIRED,
    REMOVED,
    SIZE,
    TTL_CHANGED,
    TTL_GAINED,
    TTL_LOST,
    TYPE,
    VALUE,
    DiffReport,
)
from toolkit.server.process import RedisServer

# A fixed absolute expiry far ahead, so files saved by different servers hold the same one.
FAR = 4_102_444_800_000  # 2100-01-01 in ms
HOUR = 3_600_000
DBS = (0, 3)


@dataclass(frozen=True)
class Snap:
    """One key as the oracle reads it."""

    type: str
    expire_ms: int | None
    size: int
    value: object


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def read_key(c: redis.Redis, key: bytes) -> Snap | None:
    t = _s(c.type(key))
    if t == "none":
        return None
    try:
        exp = int(c.execute_command("PEXPIRETIME", key))
    except redis.ResponseError:  # Redis 6.2: no PEXPIRETIME; TIME + PTTL, to the ms or so
        pttl = int(c.pttl(key))
        sec, usec = c.time()
        exp = -1 if pttl < 0 else int(sec) * 1000 + int(usec) // 1000 + pttl
    expire = None if exp < 0 else exp
    if t == "string":
        v: object = c.get(key)
        size = c.strlen(key)
    elif t == "list":
        v = tuple(c.lrange(key, 0, -1))
        size = c.llen(key)
    elif t == "set":
        v = frozenset(c.smembers(key))
        size = c.scard(key)
    elif t == "zset":
        v = tuple(sorted(c.zrange(key, 0, -1, withscores=True)))
        size = c.zcard(key)
    elif t == "hash":
        v = tuple(sorted(c.hgetall(key).items()))
        size = c.hlen(key)
    elif t == "stream":
        entries = tuple((eid, tuple(sorted(f.items()))) for eid, f in c.xrange(key))
        groups = tuple(
            sorted(
                (
                    g["name"],
                    g["last-delivered-id"],
                    g["pending"],
                    tuple(sorted(x["name"] for x in c.xinfo_consumers(key, g["name"]))),
                )
                for g in c.xinfo_groups(key)
            )
        )
        v = (entries, groups)
        size = c.xlen(key)
    else:
        v, size = None, 0
    return Snap(t, expire, int(size), v)


def snapshot(server: RedisServer, dbs: Iterable[int] = DBS) -> dict[tuple[int, bytes], Snap]:
    """Every key of ``dbs`` as the oracle reads it."""
    out: dict[tuple[int, bytes], Snap] = {}
    for db in dbs:
        c = server.client(db)
        for key in c.scan_iter(count=1000):
            snap = read_key(c, key)
            if snap is not None:
                out[(db, key)] = snap
        c.close()
    return out


def expected_kinds(
    before: dict[tuple[int, bytes], Snap],
    after: dict[tuple[int, bytes], Snap],
    *,
    values: bool,
    tolerance: int = 1000,
    b_time: int | None = None,
) -> dict[tuple[int, bytes], tuple[str, ...]]:
    """What a diff of ``before`` against ``after`` must list, key by key."""
    out: dict[tuple[int, bytes], tuple[str, ...]] = {}
    for k in before.keys() | after.keys():
        a, b = before.get(k), after.get(k)
        if b is None:
            assert a is not None
            gone = a.expire_ms is not None and b_time is not None and a.expire_ms <= b_time
            out[k] = (EXPIRED,) if gone else (REMOVED,)
            continue
        if a is None:
            out[k] = (ADDED,)
            continue
        kinds = []
        if a.type != b.type:
            kinds.append(TYPE)
        elif a.size != b.size:
            kinds.append(SIZE)
        if a.expire_ms is None and b.expire_ms is not None:
            kinds.append(TTL_GAINED)
        elif a.expire_ms is not None and b.expire_ms is None:
            kinds.append(TTL_LOST)
        elif (
            a.expire_ms is not None
            and b.expire_ms is not None
            and abs(a.expire_ms - b.expire_ms) > tolerance
        ):
            kinds.append(TTL_CHANGED)
        if values and a.type == b.type and a.value != b.value:
            kinds.append(VALUE)
        if kinds:
            out[k] = tuple(kinds)
    return out


def found_kinds(report: DiffReport) -> dict[tuple[int, bytes], tuple[str, ...]]:
    """What a diff listed, key by key (the report must list every differing key)."""
    return {(k.db, k.key): k.kinds for k in report.keys}


def write_dataset(server: RedisServer) -> None:
    """Keys of every type and several encodings in dbs 0 and 3 (the same on every version:
    fixed stream ids, fixed absolute TTLs)."""
    c = server.client(0)
    c.set("str:plain", "hello")
    c.set("str:int", 12345)
    c.set("str:big", "abc" * 3000)  # LZF-compressed in the file
    c.set("str:ttl", "t")
    c.pexpireat("str:ttl", FAR)
    c.set("str:keep", "k")
    c.set("user:1:name", "ann")
    c.set("user:2:name", "bob")
    c.set("user:3:name", "cyd")
    c.rpush("list:small", *[f"i{i}" for i in range(10)], 7, -3)
    c.rpush("list:big", *[f"item-{i}" * 3 for i in range(2000)])
    c.sadd("set:int", 1, 2, 3, 70000)
    c.sadd("set:str", "a", "b", "c")
    c.sadd("set:big", *[f"m{i}" for i in range(600)])
    c.zadd("zset:small", {"a": 1.5, "b": -2, "c": 3e10})
    c.pexpireat("zset:small", FAR)
    c.zadd("zset:big", {f"m{i}": i / 7 for i in range(300)})
    c.hset("hash:small", mapping={"f1": "v1", "f2": "2", "f3": ""})
    c.hset("hash:big", mapping={f"field{i}": f"value{i}" for i in range(600)})
    for i in range(1, 6):
        c.xadd("stream:1", {"k": f"v{i}", "n": i}, id=f"1000-{i}")
    c.xgroup_create("stream:1", "g1", id="0")
    c.xreadgroup("g1", "alice", {"stream:1": ">"}, count=2)
    c.xgroup_create("stream:1", "g2", id="1000-3")
    c.close()
    c3 = server.client(3)
    c3.set("other:a", "1")
    c3.set("other:b", "2")
    c3.hset("other:h", mapping={"x": "1"})
    c3.close()


def apply_changes(server: RedisServer) -> None:
    """A change of every kind, and a value change in every type."""
    c = server.client(0)
    c.delete("str:plain", "user:3:name")  # removed
    c.set("new:str", "fresh")  # added
    c.hset("new:hash", mapping={"a": "1"})
    c.delete("set:str")  # type change: set -> string
    c.set("set:str", "now a string")
    c.delete("str:keep")  # type change: string -> list
    c.rpush("str:keep", "x")
    c.pexpireat("hash:small", FAR)  # TTL gained
    c.persist("str:ttl")  # TTL lost
    c.pexpireat("zset:small", FAR + HOUR)  # TTL changed
    c.set("str:int", 54321)  # value, same size
    c.append("str:big", "!")  # size and value
    c.lset("list:small", 3, "changed")  # value, same size
    c.rpush("list:big", "one more")  # size and value
    c.srem("set:int", 2)  # value, same size
    c.sadd("set:int", 9)
    c.sadd("set:big", "m-new")  # size
    c.zincrby("zset:big", 1, "m5")  # value, same size
    c.hset("hash:big", "field7", "other")  # value, same size
    c.xgroup_setid("stream:1", "g2", "1000-5")  # value (a group moved), same size
    c.set("user:1:name", "ann2")
    c.close()
    c3 = server.client(3)
    c3.delete("other:a")
    c3.set("other:c", "3")
    c3.close()


def save_copy(server: RedisServer, target: Path) -> Path:
    """SAVE and copy the dump to ``target``."""
    c = server.client(0)
    c.save()
    c.close()
    shutil.copyfile(server.directory / "dump.rdb", target)
    return target


def url_of(server: RedisServer) -> str:
    return f"redis://127.0.0.1:{server.port}"
