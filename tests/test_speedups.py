"""The C accelerator of RdbWalker.tally must change nothing but the speed.

Every outcome (the tally, or the error with its offset and message and what was counted
before it; in the full check also every key hash entry noted in the search for keys stored
twice, what that search found, and the keys counted per cluster hash slot) is compared with
the pure-Python walk, in both modes (the full check of every value and the quick one), on real
fixtures, on damaged copies of them, on copies with damage inside values and the checksum
zeroed, and on hypothesis mutations.
"""

from __future__ import annotations

import importlib
import json
import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdb_bytes import rdb_file, rstr

import parsers.rdb.walker as walker_module
from parsers.cluster.slots import SlotCounts
from parsers.errors import FormatError
from parsers.rdb.constants import OPCODE_SINCE
from parsers.rdb.keyhash import ENTRY, ENTRY_SIZE
from parsers.rdb.records import Tally
from parsers.rdb.walker import RdbWalker
from toolkit.check.dupkeys import KeyIndex

FIXTURES = sorted(Path(__file__).parent.parent.joinpath("fixtures", "rdb").glob("*.rdb"))
NOW_MS = 1_795_000_000_000  # between the fixtures' short TTLs and their 10-year ones
REDIS_TYPES = ("string", "list", "set", "zset", "hash", "stream")  # TYPE's answers, not modules'


def outcome(data: bytes, fast: bool, deep: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
    try:
        walker = RdbWalker(data, deep=deep)
    except FormatError as e:
        return ("header", str(e))
    keys = KeyIndex(walker.record_key) if deep else None
    slots = SlotCounts() if deep else None
    try:
        tally = walker.tally(NOW_MS, top=5, keys=keys, slots=slots)
    except FormatError as e:
        partial = walker.partial
        assert partial is not None
        return (
            "error",
            type(e).__name__,
            e.code,
            e.offset,
            str(e),
            partial.last_key,
            counted(partial.tally),
            too_new(walker),
            noted(keys),
            bytes(slots.buffer) if slots is not None else None,
        )
    return (
        counted(tally),
        sorted(tally.by_bytes),
        sorted(tally.by_elements),
        walker.checksum,
        too_new(walker),
        noted(keys),
        keys.finish() if keys is not None else None,
        bytes(slots.buffer) if slots is not None else None,  # keys per cluster hash slot
    )


def noted(keys: KeyIndex | None) -> list[tuple[int, int]] | None:
    """Every key hash entry the walk noted (hash, record offset and expiry bit), sorted."""
    if keys is None:
        return None
    return sorted(
        ENTRY.unpack_from(bucket, i)
        for bucket in keys.buckets
        for i in range(0, len(bucket), ENTRY_SIZE)
    )


def too_new(walker: RdbWalker) -> list[int]:
    """The opcodes seen that the header's version should not hold (what check warns about)."""
    return sorted(op for op in walker.opcodes_seen if OPCODE_SINCE.get(op, 0) > walker.version)


def counted(tally: Tally) -> Any:
    return {
        db: (t.counts, t.bytes, t.expires, t.expired, t.empty, t.modules)
        for db, t in tally.dbs.items()
    }


def same_outcome(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    for deep in (True, False):
        assert outcome(data, True, deep, monkeypatch) == outcome(data, False, deep, monkeypatch)


def test_the_accelerator_is_built() -> None:
    """The compiled module imports (a missing compiler at install is a failure here, not a
    silent fall back to Python), and it is the one the walker uses."""
    built = importlib.import_module("parsers.rdb._speedups")
    assert walker_module._speedups is built, "setup.py did not build parsers.rdb._speedups"


@pytest.mark.parametrize("package", ["parsers.rdb", "parsers.aof"])
def test_the_built_accelerators_are_newer_than_their_sources(package: str) -> None:
    """An extension older than a C file it is built from is an old build: the tests would
    compare the Python path with code that is no longer in the tree (`make test` rebuilds)."""
    built = Path(importlib.import_module(f"{package}._speedups").__file__ or "")
    sources = sorted(built.parent.glob("_*.[ch]"))
    assert sources, built.parent
    stale = [s.name for s in sources if s.stat().st_mtime > built.stat().st_mtime]
    assert not stale, f"{built.name} is older than {stale}: rebuild with make install"


# A run of 1000 string records as rdb.c writes them: type 0, then an 8-byte key and a 6-byte
# value, each after its 1-byte length: 17 bytes each, from offset 11 (after REDIS0010 and
# SELECTDB 0) to the EOF opcode.
RUN = rdb_file([(0, b"key:%04d" % i, rstr(b"val:%02d" % (i % 100))) for i in range(1000)]).data
RUN_START, RECORD = 11, 17
NO_TOP = 1 << 62  # no key is big enough for the top lists: nothing is handed back for them


def test_scan_takes_a_whole_run_of_records_in_one_call() -> None:
    """Both C scans read every record of the run, up to the EOF opcode, in one call; with a
    limit, they stop at the first record that starts at or after it."""
    c = walker_module._speedups
    eof = RUN_START + 1000 * RECORD
    last_key = eof - RECORD
    pos, counts, nbytes, nexp, nexpired, last_at = c.scan(
        RUN, RUN_START, len(RUN), NOW_MS, NO_TOP, NO_TOP, 27
    )
    assert (pos, counts[0], sum(counts), nbytes, nexp, nexpired, last_at) == (
        eof, 1000, 1000, 1000 * RECORD, 0, 0, last_key,
    )  # fmt: skip
    # No key-hash buckets (keys=None): the duplicate search is not asked for here.
    full = c.scan_full(RUN, RUN_START, len(RUN), NOW_MS, NO_TOP, NO_TOP, 0, None, 0, 0, 0)
    assert full[:2] == (eof, counts)
    assert full[2:] == (1000 * RECORD, 0, 0, 0, last_key, None, 0)
    stop = c.scan_full(RUN, RUN_START, 500, NOW_MS, NO_TOP, NO_TOP, 0, None, 0, 0, 0)
    first_after = (500 - RUN_START + RECORD - 1) // RECORD  # records starting before 500
    assert (stop[0], stop[1][0]) == (RUN_START + first_after * RECORD, first_after)


def test_the_quick_check_reads_the_run_in_c(monkeypatch: pytest.MonkeyPatch) -> None:
    """--quick (tally with the count-only scan), no top lists: Python reads the first record
    (it sets the top lists' threshold the scan is given), C the 999 after it."""
    real = walker_module._speedups
    taken: list[int] = []

    def scan(buf: Any, pos: int, *args: Any) -> Any:
        out = real.scan(buf, pos, *args)
        taken.append(sum(out[1]))
        return out

    monkeypatch.setattr(walker_module, "_speedups", SimpleNamespace(scan=scan))
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", True)
    tally = RdbWalker(RUN, deep=False).tally(NOW_MS, top=0)
    assert tally.dbs[0].counts[0] == 1000
    assert sum(taken) == 999


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_the_full_check_reads_every_record_but_module_values_in_c(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the default check (tally with the full scan) hands to C: every key record but the
    module values and Valkey's HASH_2, which Python reads (the server's own listing says which
    keys are module values). A
    build that quietly fell back to Python, or a walker that stopped calling C, fails here."""
    real = walker_module._speedups
    taken = Counter()

    def scan_full(buf: Any, pos: int, *args: Any) -> Any:
        out = real.scan_full(buf, pos, *args)
        taken["calls"] += 1
        taken["records"] += sum(out[1]) + (out[7] is not None)  # extra: checked, then handed back
        return out

    def no_quick_scan(*args: Any) -> Any:
        raise AssertionError("the full check used the quick scan")

    monkeypatch.setattr(
        walker_module, "_speedups", SimpleNamespace(scan_full=scan_full, scan=no_quick_scan)
    )
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", True)
    expected = json.loads(path.with_name(path.stem + ".expected.json").read_text("utf-8"))
    rows = [row for rows in expected["keys"].values() for row in rows]
    data = path.read_bytes()
    # Valkey's HASH_2 (type 22 under its magic: hashes with field TTLs) is read by Python too.
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", False)
    plain = RdbWalker(data)
    hash_2 = sum(1 for _, t, *_ in plain.walk() if plain.magic == "VALKEY" and t == 22)
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", True)
    RdbWalker(data, deep=True).tally(NOW_MS)
    assert taken["calls"] > 0
    assert taken["records"] == sum(1 for row in rows if row["type"] in REDIS_TYPES) - hash_2


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
@pytest.mark.parametrize("deep", [True, False], ids=["full", "quick"])
def test_fixture_tally_is_the_same_in_c_and_python(
    path: Path, deep: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    fast = outcome(data, True, deep, monkeypatch)
    assert fast[0] != "error"
    assert fast == outcome(data, False, deep, monkeypatch)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_truncated_and_flipped_copies_end_alike(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    step = max(1, len(data) // 60)
    for cut in range(0, len(data), step):
        same_outcome(data[:cut], monkeypatch)
    for at in range(9, len(data), step):
        for value in (0x00, 0x3F, 0x7F, 0xC3, 0xFF, data[at] ^ 0x01):
            damaged = bytearray(data)
            damaged[at] = value
            same_outcome(bytes(damaged), monkeypatch)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    index=st.integers(0, len(FIXTURES) - 1),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_fixtures_end_alike(
    index: int, edits: list[tuple[float, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytearray(FIXTURES[index].read_bytes())
    for where, value in edits:
        data[min(len(data) - 1, 9 + int(where * (len(data) - 9)))] = value
    same_outcome(bytes(data), monkeypatch)


def value_spans(data: bytes) -> list[tuple[int, int]]:
    """Where each key's value lies in an intact fixture."""
    return [(v, end) for _db, _t, _k, v, end, _n, _e in RdbWalker(data).walk() if end > v]


WITH_VALUES = [p for p in FIXTURES if value_spans(p.read_bytes())]


@pytest.mark.parametrize("path", WITH_VALUES, ids=[p.name for p in WITH_VALUES])
def test_damage_inside_values_ends_alike(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The full check's ground: bytes changed inside values, the checksum zeroed so that only
    the value checks can tell."""
    data = path.read_bytes()
    spans = value_spans(data)
    rng = random.Random(path.name)
    for _ in range(120):
        damaged = bytearray(data)
        damaged[-8:] = bytes(8)
        for _ in range(rng.randint(1, 3)):
            start, end = rng.choice(spans)
            at = rng.randrange(start, end)
            damaged[at] = rng.choice((0x00, 0xFF, 0x7F, 0xC3, damaged[at] ^ 1, rng.randrange(256)))
        same_outcome(bytes(damaged), monkeypatch)
