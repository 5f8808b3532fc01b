"""Property tests: whatever the input, rbkit answers with a verdict or its own error.

``check_rdb`` always returns a CheckResult; iterating ``RdbWalker.walk()`` ends normally or
raises a FormatError, nothing else. Each example runs under a 10-second alarm, so a hang fails
loudly instead of stalling the suite.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from alarms import alarm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.errors import FormatError
from parsers.rdb.envelope import is_enveloped, unwrap
from parsers.rdb.walker import RdbWalker
from toolkit.check.problems import ERROR
from toolkit.check.rdb import CheckResult, check_rdb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
RDB_NAMES = sorted(p.name.removesuffix(".rdb") for p in FIXTURES.glob("*.rdb"))
NOW_MS = 1_700_000_000_000

# A valid header for each magic and a few versions, to get past read_header quickly.
HEADERS = [b"REDIS0009", b"REDIS0010", b"REDIS0012", b"VALKEY080"]


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.rdb").read_bytes()


def walk_outcome(data: bytes, deep: bool) -> int | FormatError:
    """The number of keys walked, or the FormatError the walk (or the header, or a Valkey
    VKCS envelope around the RDB, which check_rdb reads through) raised."""
    try:
        if is_enveloped(data):
            data = unwrap(data)[1]
        walker = RdbWalker(data, deep=deep)
        return sum(1 for _ in walker.walk())
    except FormatError as e:
        return e


def assert_answers_sanely(data: bytes, deep: bool) -> None:
    """Our error or success, nothing else; and check_rdb agrees with the walk."""
    with alarm():
        outcome = walk_outcome(data, deep)
        result = check_rdb(data, now_ms=NOW_MS, quick=not deep)
    assert isinstance(result, CheckResult)
    assert result.size == len(data)
    for problem in result.problems:
        assert problem.offset is None or 0 <= problem.offset <= len(data), problem
    found = [(p.code, p.offset) for p in result.problems if p.severity == ERROR]
    if isinstance(outcome, FormatError):
        # The walk and check's tally read keys with the same code: they fail alike.
        assert 0 <= outcome.offset <= len(data), str(outcome)
        assert isinstance(outcome.code, str) and outcome.code
        assert (outcome.code, outcome.offset) in found, (str(outcome), found)
        assert not result.valid
    else:
        assert result.inventory is not None
        assert result.inventory.keys == outcome
        # What a walk that reached the end can still find wrong: the file as a whole (its
        # checksum, a key stored twice in the full check) and its function libraries' code.
        whole_file = {"checksum_mismatch", "bad_function"} | ({"duplicate_key"} if deep else set())
        assert {code for code, _ in found} <= whole_file, found
        assert result.valid == (not found)


# -- (a) arbitrary bytes ----------------------------------------------------------------------


@FUZZ
@given(data=st.binary(max_size=512), deep=st.booleans())
def test_arbitrary_bytes_get_a_verdict(data: bytes, deep: bool) -> None:
    assert_answers_sanely(data, deep)


@settings(FUZZ, max_examples=300)
@given(
    header=st.sampled_from(HEADERS),
    body=st.binary(max_size=512),
    deep=st.booleans(),
)
def test_arbitrary_bytes_after_a_valid_header_get_a_verdict(
    header: bytes, body: bytes, deep: bool
) -> None:
    assert_answers_sanely(header + body, deep)


# Bodies built from pieces an RDB is made of, so the walk gets past the first byte more often.
PIECES = st.one_of(
    st.sampled_from([bytes([op]) for op in range(0xF0, 0x100)]),  # opcodes
    st.integers(0, 26).map(lambda t: bytes([t])),  # value types
    st.sampled_from([b"\x80", b"\x81", b"\xc0", b"\xc1", b"\xc2", b"\xc3", b"\x3f", b"\x40"]),
    st.binary(min_size=1, max_size=12),
)


@settings(FUZZ, max_examples=300)
@given(
    header=st.sampled_from(HEADERS),
    pieces=st.lists(PIECES, max_size=40),
    deep=st.booleans(),
)
def test_bodies_of_rdb_pieces_get_a_verdict(header: bytes, pieces: list[bytes], deep: bool) -> None:
    assert_answers_sanely(header + b"".join(pieces), deep)


# -- (b) mutated real fixtures ----------------------------------------------------------------


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    """A fixture with 1-4 overwrites, insertions, deletions or a truncation after its header
    (damaged headers have their own tests)."""
    data = bytearray(fixture(draw(st.sampled_from(RDB_NAMES))))
    for _ in range(draw(st.integers(1, 4))):
        if len(data) <= 9:
            break
        pos = draw(st.integers(9, len(data) - 1))
        kind = draw(st.sampled_from(["overwrite", "insert", "delete", "truncate"]))
        if kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        else:
            del data[pos:]
    return bytes(data)


@settings(FUZZ, max_examples=300)
@given(data=mutated_fixture(), deep=st.booleans())
def test_mutated_fixture_gets_a_verdict(data: bytes, deep: bool) -> None:
    assert_answers_sanely(data, deep)


@settings(FUZZ, max_examples=100)
@given(name=st.sampled_from(RDB_NAMES), garbage=st.binary(min_size=1, max_size=64))
def test_fixture_with_trailing_bytes_stays_valid(name: str, garbage: bytes) -> None:
    data = fixture(name)
    with alarm():
        result = check_rdb(data + garbage, now_ms=NOW_MS)
    assert result.valid, result.problems
    assert ("trailing_bytes", len(data)) in [(p.code, p.offset) for p in result.warnings]


# -- (c) intact fixtures ----------------------------------------------------------------------


@pytest.mark.parametrize("name", RDB_NAMES)
@pytest.mark.parametrize("deep", [False, True])
def test_walk_counts_the_expected_keys(name: str, deep: bool) -> None:
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))
    walker = RdbWalker(fixture(name), deep=deep)
    with alarm():
        per_db = Counter(db for db, *_ in walker.walk())
    assert sum(per_db.values()) == sum(len(rows) for rows in expected["keys"].values())
    assert per_db == Counter({int(db): len(rows) for db, rows in expected["keys"].items()})
    assert walker.checksum is not None and walker.checksum.status == "ok"
