"""The C accelerator of RdbWalker.tally must change nothing but the speed.

Every outcome (the tally, or the error with its offset and message) is compared with the
pure-Python walk on real fixtures, on damaged copies of them, and on hypothesis mutations.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import parsers.rdb.walker as walker_module
from parsers.errors import FormatError
from parsers.rdb.walker import RdbWalker

FIXTURES = sorted(Path(__file__).parent.parent.joinpath("fixtures", "rdb").glob("*.rdb"))
NOW_MS = 1_795_000_000_000  # between the fixtures' short TTLs and their 10-year ones

pytestmark = pytest.mark.skipif(
    walker_module._speedups is None and shutil.which("cc") is None,
    reason="no C compiler here, so the accelerator was not built",
)


def outcome(data: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
    try:
        walker = RdbWalker(data)
        tally = walker.tally(NOW_MS, top=5)
    except FormatError as e:
        return ("error", type(e).__name__, e.offset, str(e))
    dbs = {
        db: (t.counts, t.bytes, t.expires, t.expired, t.empty, t.modules)
        for db, t in tally.dbs.items()
    }
    return (dbs, sorted(tally.by_bytes), sorted(tally.by_elements), walker.checksum)


def same_outcome(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert outcome(data, True, monkeypatch) == outcome(data, False, monkeypatch)


def test_the_accelerator_is_built() -> None:
    assert walker_module._speedups is not None, "setup.py did not build parsers.rdb._speedups"


@pytest.mark.parametrize("path", FIXTURES, ids=[p.name for p in FIXTURES])
def test_fixture_tally_is_the_same_in_c_and_python(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = path.read_bytes()
    fast = outcome(data, True, monkeypatch)
    assert fast[0] != "error"
    assert fast == outcome(data, False, monkeypatch)


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
