"""LZF: exact lengths, the allocation cap, and damaged data."""

from __future__ import annotations

import lzf as binding
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.errors import CorruptError
from parsers.rdb import lzf


def test_hand_written_literal_run():
    # control byte 4: copy the next 5 bytes
    assert lzf.decompress(bytes.fromhex("04 68656c6c6f"), 5) == b"hello"


def test_hand_written_back_reference():
    # literal "a", then a back-reference of length 3+2 at distance 1
    assert lzf.decompress(bytes.fromhex("00 61 6000"), 6) == b"aaaaaa"


def test_round_trip_with_the_binding():
    text = b"redis " * 50
    assert lzf.decompress(binding.compress(text), len(text)) == text


def test_memoryview_input():
    text = b"abcabcabcabcabcabcabcabc"
    packed = memoryview(b"xx" + binding.compress(text))[2:]
    assert lzf.decompress(packed, len(text)) == text


def test_expected_length_too_long():
    with pytest.raises(CorruptError) as info:
        lzf.decompress(bytes.fromhex("04 68656c6c6f"), 6)
    assert info.value.what == "LZF data does not decompress to 6 bytes"
    assert info.value.offset == 0


def test_expected_length_too_short():
    with pytest.raises(CorruptError, match="does not decompress to 4 bytes"):
        lzf.decompress(bytes.fromhex("04 68656c6c6f"), 4)


def test_back_reference_before_the_start():
    with pytest.raises(CorruptError, match="does not decompress to 5 bytes"):
        lzf.decompress(bytes.fromhex("6000"), 5)


def test_literal_run_past_the_input():
    with pytest.raises(CorruptError):
        lzf.decompress(bytes.fromhex("1f 6162"), 32)


def test_length_above_the_cap_is_refused():
    with pytest.raises(CorruptError) as info:
        lzf.decompress(b"\x00a", 2_000, max_len=1_000)
    assert info.value.what == "LZF length 2000 is above the 1000-byte limit"


def test_default_cap_is_one_gib():
    with pytest.raises(CorruptError, match="above the 1073741824-byte limit"):
        lzf.decompress(b"\x00a" * 100, 2**30 + 1)


def test_impossible_expansion_is_refused_before_allocating():
    with pytest.raises(CorruptError, match="LZF data of 4 bytes cannot decompress to 10000 bytes"):
        lzf.decompress(b"\x00a\xe0\x00", 10_000)


def test_best_possible_expansion_is_allowed():
    # one literal then long references of 264 bytes each: 88 output bytes per input byte at most
    text = b"a" * 100_000
    packed = binding.compress(text)
    assert len(text) <= len(packed) * lzf.MAX_EXPANSION
    assert lzf.decompress(packed, len(text)) == text


def test_zero_length_inflates_to_nothing_whatever_the_data():
    # lzf_decompress reports every failure as 0 bytes, which Redis compares with the length: 0.
    assert lzf.decompress(b"", 0) == b""
    assert lzf.decompress(b"\x00a", 0) == b""
    assert lzf.decompress(b"\xff\xff", 0) == b""


def test_negative_length():
    with pytest.raises(CorruptError, match="negative"):
        lzf.decompress(b"\x00a", -1)


@given(st.binary(min_size=1, max_size=300))
def test_round_trip(text):
    packed = binding.compress(text)
    if packed is None:  # the binding gives up on input it cannot shrink
        return
    assert lzf.decompress(packed, len(text)) == text


@given(st.binary(max_size=64), st.integers(-2, 2000))
def test_random_bytes_give_bytes_of_that_length_or_corrupt_error(data, n):
    try:
        out = lzf.decompress(data, n)
    except CorruptError:
        return
    assert len(out) == n


@given(st.binary(max_size=64), st.integers(0, 300))
def test_fits_says_what_decompress_finds(data: bytes, expected_len: int) -> None:
    """The position-only walk (used before allocating for a large length) agrees with liblzf."""
    try:
        lzf.decompress(data, expected_len)
        inflates = True
    except CorruptError:
        inflates = False
    assert lzf.fits(data, expected_len) == inflates or expected_len == 0
