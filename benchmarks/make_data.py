"""Build the benchmark data files in benchmarks/data/ with a real Redis 7.0 server.

Each artefact has its own builder function and an entry in ARTEFACTS, so later artefacts
(a pair of RDBs to diff) slot in beside the others. An artefact that already exists is skipped
unless --force is given (or the file it is made from is newer).

    python benchmarks/make_data.py            # bench.rdb (2.8 M keys) and bench-aof/
    python benchmarks/make_data.py --x4       # also bench-x4.rdb (4x the counts)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from toolkit.servers import RedisServer, find_binary, running_server  # noqa: E402

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
# plain commands (no RDB preamble); fsync is left to the kernel, nothing needs to be durable.
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


def make_aof(target: Path, source: Path) -> int:
    """target/appendonlydir: the keyspace of the RDB `source` as a pure-command AOF.

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
        with running_server(find_binary("7.0"), directory=directory, config=AOF_CONFIG) as s:
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


ARTEFACTS: list[Artefact] = [
    Artefact("bench.rdb", True, lambda p: make_rdb(p, 1), "2.8 M keys, strings + collections"),
    Artefact("bench-x4.rdb", False, lambda p: make_rdb(p, 4), "4x the counts of bench.rdb"),
    Artefact(
        "bench-aof",
        True,
        lambda p: make_aof(p, p.with_name("bench.rdb")),
        "bench.rdb's keyspace as a multi-part AOF, plain commands",
        source="bench.rdb",
    ),
    # Later: a diff pair ("diff-a.rdb", "diff-b.rdb").
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
    parser.add_argument("--x4", action="store_true", help="also build bench-x4.rdb (slow)")
    parser.add_argument("--force", action="store_true", help="rebuild files that exist")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="output folder")
    args = parser.parse_args(argv)

    args.data_dir.mkdir(parents=True, exist_ok=True)
    wanted = [a for a in ARTEFACTS if a.default or (args.x4 and a.name == "bench-x4.rdb")]
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
