"""The pieces of the full check that emulate C library and Redis helpers: scores as glibc's
sscanf reads them, string2ll, LZF inflation, the walk of a stream listpack. Each is held to
its model (libc itself, util.c's rules) and the C accelerator to the Python code."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from typing import Any

import lzf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdb_bytes import length, lp, rdb_file, stream_id, stream_value

import parsers.rdb.walker as walker_module
from parsers.errors import FormatError
from parsers.rdb.sanitize import stream_listpack_ok, string2ll, text_score
from parsers.rdb.walker import RdbWalker

LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
SCORE_CHARS = "0123456789.eE+-xXpinfatyINFAY \t\0"
SCORE_TEXT = st.binary(max_size=10) | st.text(alphabet=SCORE_CHARS, max_size=10).map(str.encode)
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def glibc_score(text: bytes) -> float | None:
    """What rdbLoadDoubleValue gets: sscanf(buf, "%lg") on the text as a C string."""
    value = ctypes.c_double()
    if LIBC.sscanf(text.split(b"\0", 1)[0], b"%lg", ctypes.byref(value)) != 1:
        return None
    return value.value


def loads(score: float | None) -> bool:
    return score is not None and not math.isnan(score)


@pytest.mark.parametrize(
    "text",
    [b"1", b" 1.5x", b"1e", b"1e+", b".", b"-", b"+.5", b"inf", b"-infinity", b"infi", b"INFx",
     b"nan", b"0x", b"0x.", b"0x1p3", b"0xg", b"\x001", b"1\x00x", b"e5", b"1.", b"- 1"],
)  # fmt: skip
def test_scores_read_as_glibc_reads_them(text: bytes) -> None:
    assert loads(text_score(text)) == loads(glibc_score(text))


@FUZZ
@given(text=SCORE_TEXT)
def test_any_score_text_reads_as_glibc_reads_it(text: bytes) -> None:
    assert loads(text_score(text)) == loads(glibc_score(text))


@pytest.mark.parametrize(
    ("text", "value"),
    [(b"0", 0), (b"-1", -1), (b"9223372036854775807", 2**63 - 1),
     (b"-9223372036854775808", -(2**63)), (b"9223372036854775808", None), (b"-0", None),
     (b"01", None), (b"+1", None), (b"", None), (b" 1", None), (b"1 ", None)],
)  # fmt: skip
def test_string2ll_follows_util_c(text: bytes, value: int | None) -> None:
    assert string2ll(text) == value


def test_stream_walk_of_t_stream_c() -> None:
    master = [2, 0, 1, b"f", 0]
    entry = [2, 0, 0, b"v", 4]
    assert stream_listpack_ok(master + entry + entry)
    assert not stream_listpack_ok(master + entry)  # one entry short
    assert not stream_listpack_ok(master + entry + entry + [7])  # one item too many
    assert stream_listpack_ok([b"2", b"0", b"1", b"f", b"0", *entry, *entry])  # text integers
    assert not stream_listpack_ok([b"2 ", 0, 1, b"f", 0, *entry, *entry])
    assert stream_listpack_ok([1, 0, -2, 0, 2, 0, 0, 1])  # negative field counts: walked as 0
    assert not stream_listpack_ok([])


# -- the C accelerator against Python ---------------------------------------------------------


def outcome(data: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
    walker = RdbWalker(data, deep=True)
    try:
        tally = walker.tally(0, top=0)
    except FormatError as e:
        return (e.code, e.offset, str(e))
    return {db: (t.counts, t.bytes, t.empty) for db, t in tally.dbs.items()}


def same(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert outcome(data, True, monkeypatch) == outcome(data, False, monkeypatch)


TEXT = b"abcabcabcabcabc the quick brown fox, the quick brown fox, abcabcabc"


@FUZZ
@given(
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=3),
    ulen_delta=st.integers(-3, 3),
    cut=st.integers(0, 3),
)
def test_lzf_strings_are_judged_alike(
    edits: list[tuple[int, int]], ulen_delta: int, cut: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    packed = bytearray(lzf.compress(TEXT))
    for at, value in edits:
        packed[at % len(packed)] = value
    packed = packed[: len(packed) - cut]
    value = b"\xc3" + length(len(packed)) + length(max(0, len(TEXT) + ulen_delta)) + packed
    same(rdb_file([(0, b"k", value), (1, b"l", length(1) + value)]).data, monkeypatch)


ITEMS = st.lists(
    st.integers(-3, 5) | st.sampled_from([b"f", b"v", b"1", b"-1", b"x", 1 << 40]), max_size=16
)


@FUZZ
@given(items=ITEMS, count=st.none() | st.integers(0, 20))
def test_stream_listpacks_are_judged_alike(
    items: list[int | bytes], count: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = stream_value([(stream_id(1, 0), lp(*items, count=count))], len(items), (1, 0), [])
    data = rdb_file([(19, b"s", value)]).data
    same(data, monkeypatch)
    assert (outcome(data, False, monkeypatch).__class__ is dict) == stream_listpack_ok(items)
