"""rbkit's default verdict against real servers' own, on RDB files damaged inside values.

Seeded copies of the fixtures get one to three bytes changed inside one value (the checksum
zeroed, so that only the value checks can tell), and each copy is loaded as dump.rdb with
``sanitize-dump-payload yes`` by every test server that reads its RDB version (6.2, 7.0,
8.2; the Valkey 9.1 fixtures by valkey-server 9.1.2). rbkit must say VALID exactly when the
server loads it, on every file and server.

Module values are left intact: beyond their framing, their content is the module's to judge
(FalkorDB's graphs, Redis 8's vector sets), and rbkit reads them without the module.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conftest import falkordb
from server_verdict import refusal, servers_reading

from parsers.rdb.walker import RdbWalker
from toolkit.check.rdb import check_rdb
from toolkit.server.process import ServerBinary

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
# Every fixture with values other than strings, except the one whose module values need the
# module in the server.
NAMES = (
    "redis-6.2-all-types",
    "redis-7.0-all-types",
    "redis-8.2-all-types",
    "redis-8.2-hash-field-ttl",
    "valkey-9.1-all-types",
    "valkey-9.1-hash-field-ttl",
)
FILES = 300
SEED = 20_261_202
WORKERS = 4
# Checks a newer server makes that an older one does not: rbkit makes them (a file some
# server refuses is not VALID). Per server, what rbkit's error then says.
NEWER_CHECKS = {
    "6.2.14": ("holds no listpack",),  # 7.0: "Stream length inconsistent with rax entries"
    "8.2.3": ("already has a consumer assigned",),  # Debian's 7.0.15 refuses it
}


@dataclass(frozen=True)
class Damaged:
    name: str  # fixture, key and where
    data: bytes
    version: int
    magic: str


def damaged_copies() -> list[Damaged]:
    """FILES copies, round robin over the fixtures, each with damage inside one value."""
    rng = random.Random(SEED)
    sources = []
    for name in NAMES:
        data = (FIXTURES / f"{name}.rdb").read_bytes()
        walker = RdbWalker(data)
        keys = [
            (bytes(walker.key_at(k)), t, v, end)
            for _db, t, k, v, end, _n, _x in walker.walk()
            if end > v and t != 7 and (t != 0 or data[v] == 0xC3)  # and LZF strings
        ]
        sources.append((name, data, walker.version, walker.magic, keys))
    out = []
    for i in range(FILES):
        name, data, version, magic, keys = sources[i % len(sources)]
        key, type_id, start, end = rng.choice(keys)
        copy = bytearray(data)
        copy[-8:] = bytes(8)
        places = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = rng.randrange(start, end)
            copy[at] = rng.choice(
                (rng.randrange(256), copy[at] ^ (1 << rng.randrange(8)), (copy[at] + 1) % 256, 0)
            )
            places.append(at)
        out.append(
            Damaged(f"{name} {key!r} (type {type_id}) at {places}", bytes(copy), version, magic)
        )
    return out


def server_says_valid(job: tuple[Damaged, ServerBinary]) -> bool:
    """The server's verdict; 8.2 with the FalkorDB module, whose values 8.2-all-types holds."""
    damaged, binary = job
    modules = [falkordb()] if binary.version[:2] == (8, 2) and not binary.valkey else []
    return refusal(binary, damaged.data, modules=modules) is None


def server_name(binary: ServerBinary) -> str:
    """``redis 8.2.3`` or ``valkey 9.1.2``."""
    return f"{'valkey' if binary.valkey else 'redis'} {binary.version_text}"


def test_rbkit_agrees_with_every_server_on_damaged_values() -> None:
    copies = damaged_copies()
    jobs = [(d, binary) for d in copies for binary in servers_reading(d.version, d.magic)]
    with ThreadPoolExecutor(WORKERS) as pool:
        server_valid = list(pool.map(server_says_valid, jobs))
    verdicts: dict[bytes, list[bool]] = {}
    for (damaged, _binary), loads in zip(jobs, server_valid, strict=True):
        verdicts.setdefault(damaged.data, []).append(loads)
    figures: Counter[tuple[str, str]] = Counter()
    disagreements = []
    for (damaged, binary), loads in zip(jobs, server_valid, strict=True):
        result = check_rdb(damaged.data)
        errors = " | ".join(p.message for p in result.problems if p.severity == "error")
        said = "loads" if loads else "refuses"
        if result.valid == loads:
            figures[(server_name(binary), f"{said}, agree")] += 1
        elif (
            loads
            and any(text in errors for text in NEWER_CHECKS.get(binary.version_text, ()))
            and not all(verdicts[damaged.data])  # another server refuses it
        ):
            figures[(server_name(binary), "loads, rbkit makes a newer server's check")] += 1
        else:
            disagreements.append(f"{damaged.name}: {server_name(binary)} {said}, {errors}")
    print(f"\n{len(copies)} damaged files, {len(jobs)} loads:")
    for (version, what), n in sorted(figures.items()):
        print(f"  {version}: {n} {what}")
    assert not disagreements, "\n".join(disagreements)
