"""Build the benchmark data files in benchmarks/data/ with a real Redis 7.0 server.

Each artefact has its own builder function and an entry in ARTEFACTS, so later artefacts
(an AOF, a pair of RDBs to diff) slot in beside the RDBs. An artefact whose file already
exists is skipped unless --force is given.

    python benchmarks/make_data.py            # bench.rdb (about 2.8 M keys)
    python benchmarks/make_data.py --x4       # also bench-x4.rdb (4x the counts)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
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


@dataclass(frozen=True)
class Artefact:
    """A generated file: its name in data/, whether it is built by default, its builder."""

    name: str
    default: bool
    build: Callable[[Path], int]  # writes the file, returns its key count
    note: str


ARTEFACTS: list[Artefact] = [
    Artefact("bench.rdb", True, lambda p: make_rdb(p, 1), "2.8 M keys, strings + collections"),
    Artefact("bench-x4.rdb", False, lambda p: make_rdb(p, 4), "4x the counts of bench.rdb"),
    # Later: an AOF ("bench.aof") and a diff pair ("diff-a.rdb", "diff-b.rdb").
]


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
        if target.exists() and not args.force:
            size = target.stat().st_size / 1e6
            print(f"{artefact.name}: exists ({size:.1f} MB), skipped (--force to rebuild)")
            continue
        print(f"{artefact.name}: building ({artefact.note}) ...", flush=True)
        start = time.perf_counter()
        keys = artefact.build(target)
        elapsed = time.perf_counter() - start
        size = target.stat().st_size / 1e6
        print(f"{artefact.name}: {size:.1f} MB, {keys:,} keys, {elapsed:.1f} s -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
