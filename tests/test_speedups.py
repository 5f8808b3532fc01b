"""The C accelerator of RdbWalker.tally must change nothing but the speed.

Every outcome (the tally, or the error with its offset and message and what was counted
before it) is compared with the pure-Python walk, in both modes (the full check of every value
and the quick one), on real fixtures, on damaged copies of them, on copies with damage inside
values and the checksum zeroed, and on hypothesis mutations.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parsers.rdb.walker as walker_module
from parsers.errors import FormatError
from parsers.rdb.constants import OPCODE_SINCE
from parsers.rdb.records import Tally
from parsers.rdb.walker import RdbWalker

FIXTURES = sorted(Path(__file__).parent.parent.joinpath("fixtures", "rdb").glob("*.rdb"))
NOW_MS = 1_795_000_000_000  # between the fixtures' short TTLs and their 10-year ones


def outcome(data: bytes, fast: bool, deep: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
    try:
        walker = RdbWalker(data, deep=deep)
    except FormatError as e:
        return ("header", str(e))
    try:
        tally = walker.tally(NOW_MS, top=5)
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
        )
    return (
        counted(tally),
        sorted(tally.by_bytes),
        sorted(tally.by_elements),
        walker.checksum,
        too_new(walker),
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
    assert walker_module._speedups is not None, "setup.py did not build parsers.rdb._speedups"


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
