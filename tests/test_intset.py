"""Intset: the three widths, exact size, non-emptiness, and strict order (deep only)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rdb_bytes import iset

from parsers.errors import CorruptError
from parsers.rdb import intset


def test_hand_written_16bit():
    blob = bytes.fromhex("02000000 03000000 0100 0200 0300")
    assert intset.count(blob) == 3
    assert intset.validate(blob) == 3
    assert list(intset.entries(blob)) == [1, 2, 3]


def test_hand_written_negative_32bit():
    blob = bytes.fromhex("04000000 02000000 ffffffff 00000100")
    assert list(intset.entries(blob)) == [-1, 65536]


@pytest.mark.parametrize(
    ("width", "values"),
    [
        (2, [-32768, 0, 32767]),
        (4, [-(2**31), -5, 2**31 - 1]),
        (8, [-(2**63), 0, 2**63 - 1]),
    ],
)
def test_every_width(width, values):
    blob = iset(width, *values)
    assert intset.count(blob) == len(values)
    assert intset.validate(blob) == len(values)
    assert list(intset.entries(blob)) == values


def test_memoryview_input():
    blob = memoryview(iset(8, 1, 2**40))
    assert intset.count(blob) == 2
    assert list(intset.entries(blob)) == [1, 2**40]


@pytest.mark.parametrize("width", [0, 1, 3, 16, 2**32 - 1])
def test_bad_encoding(width):
    blob = struct.pack("<II", width, 1) + b"\x00" * 8
    with pytest.raises(CorruptError) as info:
        intset.count(blob)
    assert info.value.what == f"intset encoding is {width}, expected 2, 4 or 8"
    assert info.value.offset == 0


def test_size_mismatch_extra_byte():
    blob = iset(4, 1, 2) + b"\x00"
    with pytest.raises(CorruptError) as info:
        intset.count(blob)
    assert info.value.what == "intset header says 2 entries of 4 bytes (16 bytes), blob has 17"
    assert info.value.offset == 4


def test_size_mismatch_lying_length():
    with pytest.raises(CorruptError, match="says 4000000000 entries"):
        intset.count(iset(8, 1, 2, length=4_000_000_000))


def test_too_short_for_a_header():
    with pytest.raises(CorruptError, match="at least 8 bytes, blob has 7"):
        intset.count(bytes(7))


def test_empty_intset_is_rejected_as_redis_does():
    with pytest.raises(CorruptError, match="empty"):
        intset.count(iset(2))


def test_unsorted_is_deep_only():
    blob = iset(2, 1, 3, 2)
    assert intset.count(blob) == 3
    with pytest.raises(CorruptError) as info:
        intset.validate(blob)
    assert info.value.what == "intset value 2 is not greater than the one before it (3)"
    assert info.value.offset == 12
    with pytest.raises(CorruptError):
        list(intset.entries(blob))


def test_duplicate_is_deep_only():
    blob = iset(4, 7, 7)
    assert intset.count(blob) == 2
    with pytest.raises(CorruptError):
        intset.validate(blob)


@given(st.sampled_from([2, 4, 8]), st.data())
def test_round_trip(width, data):
    bits = 8 * width
    ints = st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1)
    values = sorted(data.draw(st.sets(ints, min_size=1, max_size=30)))
    blob = iset(width, *values)
    assert intset.count(blob) == len(values)
    assert intset.validate(blob) == len(values)
    assert list(intset.entries(blob)) == values


@given(st.binary(max_size=64))
def test_random_bytes_give_a_value_or_corrupt_error(data):
    for fn in (intset.count, intset.validate, lambda b: list(intset.entries(b))):
        with contextlib.suppress(CorruptError):
            fn(data)


@given(st.sampled_from([2, 4, 8]), st.binary(max_size=64))
def test_random_values_in_a_valid_frame(width, body):
    body = body[: len(body) - len(body) % width]
    blob = struct.pack("<II", width, len(body) // width) + body
    try:
        n = intset.validate(blob)
    except CorruptError:
        return
    values = list(intset.entries(blob))
    assert len(values) == n
    assert values == sorted(set(values))
