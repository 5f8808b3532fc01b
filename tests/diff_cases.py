"""A small before/after pair of RDB files for the diff tests, saved by a real Redis 7.0.

The changes between the two cover every kind of difference a key-level diff reports (removed,
added, type, size, TTL gained/lost/changed, a TTL moved less than the tolerance, a value
changed at the same size) in two dbs. Expiry times are absolute and far in the future
(PIVOT_MS + offsets) so that a test may pin both sides' times to PIVOT_MS and get stable TTLs.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from conftest import binary
from diff_support import Snap, snapshot

from toolkit.server.process import RedisServer, running_server

PIVOT_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z
HOUR_MS = 3_600_000
DBS = (0, 1)


def _save(server: RedisServer, target: Path) -> Path:
    client = server.client()
    client.save()
    shutil.copyfile(server.directory / "dump.rdb", target)
    return target


def fill_before(server: RedisServer) -> None:
    """The "before" keyspace: 10 keys in db 0, 2 in db 1."""
    r = server.client()
    r.set("user:1", "alice")
    r.set("user:2", "bob")
    r.set("user:3", "carol")
    r.set("user:4", "dave")
    r.hset("cart:1", mapping={"apple": 1, "pear": 2, "fig": 3})
    r.pexpireat("cart:1", PIVOT_MS + HOUR_MS)
    r.rpush("cart:2", "apple", "pear")
    r.set("session:a", "x", pxat=PIVOT_MS + HOUR_MS)
    r.set("session:b", "y")
    r.set("session:c", "z", pxat=PIVOT_MS + HOUR_MS)
    r.zadd("queue", {"a": 1, "b": 2, "c": 3})
    r1 = server.client(db=1)
    r1.rpush("jobs:1", "a", "b", "c")
    r1.set("jobs:2", "done")


def change_to_after(server: RedisServer) -> None:
    """From "before" to "after": one key of every kind of difference."""
    r = server.client()
    r.delete("user:1")  # removed
    r.set("user:3", "caroline")  # size
    r.set("user:4", "erin")  # same size, other value: only --values sees it
    r.hset("cart:1", "plum", 4)  # size ...
    r.pexpireat("cart:1", PIVOT_MS + 3 * HOUR_MS)  # ... and TTL changed
    r.delete("cart:2")
    r.sadd("cart:2", "apple", "pear")  # type
    r.persist("session:a")  # TTL lost
    r.pexpireat("session:b", PIVOT_MS + 2 * HOUR_MS)  # TTL gained
    r.pexpireat("session:c", PIVOT_MS + HOUR_MS + 500)  # within the 1000 ms tolerance
    r.set("user:5", "frank")  # added
    r.set("plain", "no separator")  # added, no key family
    r1 = server.client(db=1)
    r1.delete("jobs:1")  # removed
    r1.xadd("events", {"kind": "deploy"}, id="1-1")  # added


@dataclass(frozen=True)
class Pair:
    """The two files, and each keyspace as the server held it when it saved the file (read
    with plain commands by diff_support's oracle, never by rbkit)."""

    before: Path
    after: Path
    before_keys: dict[tuple[int, bytes], Snap]
    after_keys: dict[tuple[int, bytes], Snap]


def write_pair_with_oracle(directory: Path) -> Pair:
    """``directory/before.rdb`` and ``directory/after.rdb``, saved by one Redis 7.0 server,
    with the server's own view of each keyspace."""
    with running_server(binary("7.0")) as server:
        fill_before(server)
        before_keys = snapshot(server, DBS)
        before = _save(server, directory / "before.rdb")
        change_to_after(server)
        after_keys = snapshot(server, DBS)
        after = _save(server, directory / "after.rdb")
    return Pair(before, after, before_keys, after_keys)


def write_pair(directory: Path) -> tuple[Path, Path]:
    """``directory/before.rdb`` and ``directory/after.rdb``, saved by one Redis 7.0 server."""
    pair = write_pair_with_oracle(directory)
    return pair.before, pair.after
