"""Build the benchmark data files in benchmarks/data/ with a real Redis 7.0 server.

Each artefact has its own builder function and an entry in ARTEFACTS, so later artefacts
(a pair of RDBs to diff) slot in beside the others. An artefact that already exists is skipped
unless --force is given (or the file it is made from is newer).

    python benchmarks/make_data.py            # bench.rdb (2.8 M keys), bench-aof/,
                                              # bench-aof-preamble/, bench-diff.rdb
    python benchmarks/make_data.py --x4       # also bench-x4.rdb (4x the counts), bench-x4-diff.rdb
    python benchmarks/make_data.py --x8       # also bench-x8.rdb (22.4 M keys), bench-x8-diff.rdb
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from toolkit.server.process import RedisServer, find_binary, running_server  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "data"

# Keys per EVAL for the small collections: about 100,000 commands, well under a second, so
# the server never turns "busy" (lua-time-limit is raised anyway, to be safe).
CHUNK = 10_000
# Elements per RPUSH/SADD/ZADD/HSET call inside the script (keeps unpack() well below
# Lua's C-stack limit of 8,000 values).
BATCH = 500

# ARGV: kind, key prefix, first index, last index, items per key, elements per call.
# Items are "item:J" (list), "member:J" (set: non-integer so the set is not an intset),
# "zmember:J" with score J (sorted set), "field:J" -> "value:J" (hash), J counting from 1.
FILL_SCRIPT = """
local kind, prefix = ARGV[1], ARGV[2]
local first, last = tonumber(ARGV[3]), tonumber(ARGV[4])
local n, batch = tonumber(ARGV[5]), tonumber(ARGV[6])
for i = first, last do
  local key = prefix .. i
  local j = 1
  while j <= n do
    local stop = math.min(j + batch - 1, n)
    local args = {}
    for k = j, stop do
      if kind == 'list' then
        args[#args + 1] = 'item:' .. k
      elseif kind == 'set' then
        args[#args + 1] = 'member:' .. k
      elseif kind == 'zset' then
        args[#args + 1] = k
        args[#args + 1] = 'zmember:' .. k
      else
        args[#args + 1] = 'field:' .. k
        args[#args + 1] = 'value:' .. k
      end
    end
    local cmd = ({list = 'RPUSH', set = 'SADD', zset = 'ZADD', hash = 'HSET'})[kind]
    redis.call(cmd, key, unpack(args))
    j = stop + 1
  end
end
return last - first + 1
"""


@dataclass(frozen=True)
class Collection:
    """A family of keys "<prefix><N>" of one type, each with the same number of items."""

    kind: str  # list, set, zset, hash
    prefix: str
    count: int
    items: int


def rdb_recipe(scale: int) -> tuple[int, list[Collection]]:
    """The string count for DEBUG POPULATE and the collections, times `scale`."""
    return 2_000_000 * scale, [
        Collection("list", "list:", 200_000 * scale, 10),
        Collection("set", "set:", 200_000 * scale, 8),
        Collection("zset", "zset:", 200_000 * scale, 6),
        Collection("hash", "hash:", 200_000 * scale, 6),
        Collection("list", "biglist:", 50 * scale, 20_000),
        Collection("hash", "bighash:", 50 * scale, 5_000),
    ]


def fill(server: RedisServer, strings: int, collections: list[Collection]) -> int:
    """Populate the server: strings key:N -> value:N, then the collections. Returns DBSIZE."""
    client = server.client(socket_timeout=None)
    client.execute_command("DEBUG", "POPULATE", strings)  # keys key:0.., values value:0..
    script = client.register_script(FILL_SCRIPT)
    for c in collections:
        # Big collections get fewer keys per call so each call stays around 100,000 items.
        per_call = max(1, min(CHUNK, 100_000 // c.items))
        for first in range(0, c.count, per_call):
            last = min(first + per_call, c.count) - 1
            script(args=[c.kind, c.prefix, first, last, c.items, BATCH])
    return int(client.dbsize())


def save_rdb(server: RedisServer, target: Path) -> None:
    """SAVE and copy the server's dump.rdb to target (through a temp name, then rename)."""
    client = server.client(socket_timeout=None)
    client.save()
    dump = server.directory / str(client.config_get("dbfilename")["dbfilename"])
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(dump, partial)
    os.replace(partial, target)


def make_rdb(target: Path, scale: int) -> int:
    """Build an RDB from rdb_recipe(scale) on a throwaway Redis 7.0. Returns the key count."""
    strings, collections = rdb_recipe(scale)
    config = {"enable-debug-command": "local", "lua-time-limit": "60000"}
    with running_server(find_binary("7.0"), config=config) as server:
        keys = fill(server, strings, collections)
        save_rdb(server, target)
    return keys


# The AOF's server: the rewrite triggered by CONFIG SET appendonly yes writes a base file of
# plain commands (no RDB preamble; with it, Redis 7's default, an RDB base file); fsync is left
# to the kernel, nothing needs to be durable.
AOF_CONFIG = {"appendonly": "no", "aof-use-rdb-preamble": "no", "appendfsync": "no"}
AOF_REWRITE_TIMEOUT = 600.0  # seconds; the rewrite of bench.rdb takes a few


def wait_for_rewrite(server: RedisServer, timeout: float = AOF_REWRITE_TIMEOUT) -> None:
    """Wait until AOF is on and no rewrite is running or scheduled; fail if it did not work."""
    client = server.client(socket_timeout=None)
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        done = (
            info.get("aof_enabled") == 1
            and info.get("aof_rewrite_in_progress") == 0
            and info.get("aof_rewrite_scheduled") == 0
        )
        if done:
            if info.get("aof_last_bgrewrite_status") != "ok":
                raise RuntimeError(f"AOF rewrite failed: {server.log_tail()}")
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"AOF rewrite not finished after {timeout:.0f} s")
        time.sleep(0.2)


def make_aof(target: Path, source: Path, preamble: bool = False) -> int:
    """target/appendonlydir: the keyspace of the RDB `source` as a pure-command AOF (with
    ``preamble``: as an RDB base file, Redis 7's default layout).

    A throwaway Redis 7.0 loads `source` as its dump.rdb with appendonly off; CONFIG SET
    appendonly yes then rewrites the whole keyspace into a new base AOF (plus an empty incr
    file and the manifest). The directory is copied once the server has shut down. Returns
    the key count, after checking it matches the RDB's.
    """
    if not source.exists():
        raise FileNotFoundError(f"{source} not found: build it first")
    with tempfile.TemporaryDirectory(prefix="rbkit-bench-aof-") as tmp:
        directory = Path(tmp)
        shutil.copyfile(source, directory / "dump.rdb")
        config = {**AOF_CONFIG, "aof-use-rdb-preamble": "yes" if preamble else "no"}
        with running_server(find_binary("7.0"), directory=directory, config=config) as s:
            client = s.client(socket_timeout=None)
            keys = int(client.dbsize())
            client.config_set("appendonly", "yes")
            wait_for_rewrite(s)
            after = int(client.dbsize())
            if after != keys:
                raise RuntimeError(f"key count changed during the rewrite: {keys} -> {after}")
            aof_dir = directory / str(client.config_get("appenddirname")["appenddirname"])
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(aof_dir, partial / "appendonlydir")
    replace_dir(partial, target)
    return keys


# The diff pair: bench-diff.rdb is bench.rdb with 1% of its keys deleted, 1% changed and 1%
# added. Families are picked by key number: N % 100 == 0 deleted, N % 100 == 1 changed.
DIFF_CONFIG = {"appendonly": "no"}
PIPELINE = 10_000  # commands per pipeline round trip


def apply_diff_changes(server: RedisServer, scale: int) -> dict[str, int]:
    """Delete, change and add 1% of the keys of rdb_recipe(scale), with pipelines.

    Changed keys (N % 100 == 1) alternate between a change of size and a change of value at
    the same size, so that `diff --values` finds more than `diff` does:
    strings: a longer value, or the same length with other bytes (every 10th also gets a TTL);
    lists: one more item, or the first item replaced (LSET);  sets: one more member, or one
    member swapped;  sorted sets: one more member, or a score moved (ZINCRBY);  hashes: one
    more field, or a field's value replaced. Added keys are new strings ``added:N`` and new
    hashes ``added-hash:N``. Returns the counts.
    """
    strings, collections = rdb_recipe(scale)
    client = server.client(socket_timeout=None)
    pipe = client.pipeline(transaction=False)
    queued = 0
    done = {"deleted": 0, "changed": 0, "added": 0}

    def flush(force: bool = False) -> None:
        nonlocal queued
        if queued >= PIPELINE or (force and queued):
            pipe.execute()
            queued = 0

    families = [("string", "key:", strings), *((c.kind, c.prefix, c.count) for c in collections)]
    for kind, prefix, count in families:
        for n in range(0, count, 100):
            pipe.delete(f"{prefix}{n}")
            queued += 1
            done["deleted"] += 1
            flush()
        for i, n in enumerate(range(1, count, 100)):
            key, same_size = f"{prefix}{n}", i % 2 == 1
            if kind == "string":
                value = f"VALUE:{n}" if same_size else f"value:{n}:changed"
                pipe.set(key, value, ex=30 * 86400 if i % 10 == 0 else None)
            elif kind == "list" and same_size:
                pipe.lset(key, 0, "item:X")
            elif kind == "list":
                pipe.rpush(key, "item:new")
            elif kind == "set":
                if same_size:
                    pipe.srem(key, "member:1")
                    queued += 1
                pipe.sadd(key, "member:new")
            elif kind == "zset" and same_size:
                pipe.zincrby(key, 0.5, "zmember:1")
            elif kind == "zset":
                pipe.zadd(key, {"zmember:new": 0})
            else:
                pipe.hset(key, "field:1" if same_size else "field:new", "value:X")
            queued += 1
            done["changed"] += 1
            flush()
    added_strings = len(range(0, strings, 100))  # as many added as deleted: strings, then hashes
    for n in range(done["deleted"]):
        if n < added_strings:
            pipe.set(f"added:{n}", f"value:{n}")
        else:
            pipe.hset(f"added-hash:{n}", mapping={"field:1": "value:1", "field:2": "value:2"})
        queued += 1
        done["added"] += 1
        flush()
    flush(force=True)
    return done


@contextmanager
def changed_copy(target: Path, source: Path) -> Iterator[RedisServer]:
    """A throwaway Redis 7.0 that has loaded a copy of the RDB ``source``: the block changes
    it, and it is saved as ``target`` after."""
    if not source.exists():
        raise FileNotFoundError(f"{source} not found: build it first")
    with tempfile.TemporaryDirectory(prefix="rbkit-bench-copy-") as tmp:
        directory = Path(tmp)
        shutil.copyfile(source, directory / "dump.rdb")
        with running_server(find_binary("7.0"), directory=directory, config=DIFF_CONFIG) as s:
            yield s
            save_rdb(s, target)


def make_diff_copy(target: Path, source: Path, scale: int) -> int:
    """target: the RDB `source` (built by rdb_recipe(scale)) with 1% of its keys deleted,
    1% changed and 1% added, by a throwaway Redis 7.0 that loads it, changes it and SAVEs.
    Returns the key count of the new file."""
    with changed_copy(target, source) as s:
        client = s.client(socket_timeout=None)
        before = int(client.dbsize())
        done = apply_diff_changes(s, scale)
        keys = int(client.dbsize())
        if keys != before - done["deleted"] + done["added"]:
            raise RuntimeError(f"unexpected key count {keys} after {done} on {before} keys")
    print(
        f"  {done['deleted']:,} deleted, {done['changed']:,} changed, {done['added']:,} added "
        f"of {before:,} keys"
    )
    return keys


# ARGV: SCAN cursor, count, first expiry (Unix ms), spread (ms). Every key but each tenth the
# scan meets gets an absolute expiry in [first, first + spread); returns the next cursor.
# (make_cache_copy)
TTL_SCRIPT = """
local reply = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
local first, spread = tonumber(ARGV[3]), tonumber(ARGV[4])
for i, key in ipairs(reply[2]) do
  if i % 10 ~= 0 then
    redis.call('PEXPIREAT', key, first + (i * 7919 + #key * 104729) % spread)
  end
end
return reply[1]
"""


def make_cache_copy(target: Path, source: Path, ahead_ms: int, spread_ms: int) -> int:
    """target: the RDB ``source`` with nine keys in ten given a TTL that runs out between
    ``ahead_ms`` and ``ahead_ms + spread_ms`` from now, as a cache holds them: the same keys
    and values, so the two files' times differ by what the TTLs cost. Built when used
    (``restore.py --cache``): its keys expire. Returns the key count."""
    with changed_copy(target, source) as s:
        client = s.client(socket_timeout=None)
        script = client.register_script(TTL_SCRIPT)
        first = int(time.time() * 1000) + ahead_ms
        cursor = 0
        while True:
            cursor = int(script(args=[cursor, CHUNK, first, spread_ms]))
            if cursor == 0:
                break
        keys = int(client.dbsize())
        info = client.info("keyspace")
        expiring = sum(int(db["expires"]) for db in info.values())
    print(f"  {expiring:,} of {keys:,} keys with a TTL")
    return keys


def replace_dir(new: Path, target: Path) -> None:
    """Put the directory `new` at `target`, removing an older target only once `new` is in."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def size_of(path: Path) -> int:
    """Bytes in a file, or in all the files under a directory."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


@dataclass(frozen=True)
class Artefact:
    """A generated file or directory: its name in data/, whether it is built by default, its
    builder, and the artefact it is made from (rebuilt when that one is newer)."""

    name: str
    default: bool
    build: Callable[[Path], int]  # writes the artefact, returns its key count
    note: str
    source: str | None = None


def scaled(scale: int) -> list[Artefact]:
    """bench-x<scale>.rdb (rdb_recipe(scale)) and its diff copy: built only when asked for."""
    name, diff = f"bench-x{scale}.rdb", f"bench-x{scale}-diff.rdb"
    return [
        Artefact(name, False, lambda p: make_rdb(p, scale), f"{scale}x the counts of bench.rdb"),
        Artefact(
            diff,
            False,
            lambda p: make_diff_copy(p, p.with_name(name), scale),
            f"{name} with 1% of keys deleted, 1% changed, 1% added",
            source=name,
        ),
    ]


SCALES = (4, 8)  # --x4: 11.2 M keys (~0.5 GB a file); --x8: 22.4 M keys (~1 GB a file)

ARTEFACTS: list[Artefact] = [
    Artefact("bench.rdb", True, lambda p: make_rdb(p, 1), "2.8 M keys, strings + collections"),
    Artefact(
        "bench-aof",
        True,
        lambda p: make_aof(p, p.with_name("bench.rdb")),
        "bench.rdb's keyspace as a multi-part AOF, plain commands",
        source="bench.rdb",
    ),
    Artefact(
        "bench-aof-preamble",
        True,
        lambda p: make_aof(p, p.with_name("bench.rdb"), preamble=True),
        "bench.rdb's keyspace as a multi-part AOF with an RDB base (aof-use-rdb-preamble yes)",
        source="bench.rdb",
    ),
    Artefact(
        "bench-diff.rdb",
        True,
        lambda p: make_diff_copy(p, p.with_name("bench.rdb"), 1),
        "bench.rdb with 1% of keys deleted, 1% changed, 1% added: the diff pair",
        source="bench.rdb",
    ),
    *(artefact for scale in SCALES for artefact in scaled(scale)),
]


def up_to_date(target: Path, artefact: Artefact) -> bool:
    """The artefact exists and is not older than the one it is made from."""
    if not target.exists():
        return False
    if artefact.source is None:
        return True
    source = target.with_name(artefact.source)
    return not source.exists() or source.stat().st_mtime <= target.stat().st_mtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for scale in SCALES:
        parser.add_argument(
            f"--x{scale}",
            action="store_true",
            help=f"also build bench-x{scale}.rdb and its diff copy (slow)",
        )
    parser.add_argument("--force", action="store_true", help="rebuild files that exist")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="output folder")
    args = parser.parse_args(argv)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    extra = {a.name for n in SCALES if getattr(args, f"x{n}") for a in scaled(n)}
    wanted = [a for a in ARTEFACTS if a.default or a.name in extra]
    for artefact in wanted:
        target = args.data_dir / artefact.name
        if up_to_date(target, artefact) and not args.force:
            size = size_of(target) / 1e6
            print(f"{artefact.name}: exists ({size:.1f} MB), skipped (--force to rebuild)")
            continue
        print(f"{artefact.name}: building ({artefact.note}) ...", flush=True)
        start = time.perf_counter()
        keys = artefact.build(target)
        elapsed = time.perf_counter() - start
        size = size_of(target) / 1e6
        print(f"{artefact.name}: {size:.1f} MB, {keys:,} keys, {elapsed:.1f} s -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
