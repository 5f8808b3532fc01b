"""Ziplist: every entry encoding, prevlen widths, zltail, the unknown count, and damage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rdb_bytes import encoding, frame, prevlen, zl

from parsers.errors import CorruptError
from parsers.rdb import ziplist


def corrupt(blob: bytes) -> CorruptError:
    with pytest.raises(CorruptError) as info:
        ziplist.validate(blob)
    with pytest.raises(CorruptError):
        list(ziplist.entries(blob))
    return info.value


# -- hand-written blobs (ziplist.c's own examples) ---------------------------------------------


def test_ziplist_c_example_2_and_5():
    blob = bytes.fromhex("0f000000 0c000000 0200 00f3 02f6 ff")
    assert ziplist.count(blob) == 2
    assert ziplist.validate(blob) == 2
    assert list(ziplist.entries(blob)) == [2, 5]


def test_ziplist_c_example_with_hello_world():
    blob = bytes.fromhex("1c000000 0e000000 0300 00f3 02f6 020b 48656c6c6f20576f726c64 ff")
    assert ziplist.validate(blob) == 3
    assert list(ziplist.entries(blob)) == [2, 5, b"Hello World"]


def test_empty_ziplist():
    blob = bytes.fromhex("0b000000 0a000000 0000 ff")
    assert ziplist.count(blob) == 0
    assert ziplist.validate(blob) == 0
    assert list(ziplist.entries(blob)) == []


@pytest.mark.parametrize(
    "value",
    [
        0,
        12,
        13,
        -1,
        127,
        -128,
        128,
        -32768,
        32767,
        2**23 - 1,
        -(2**23),
        2**31 - 1,
        -(2**31),
        2**31,
        -(2**63),
        2**63 - 1,
    ],
)
def test_every_integer_encoding(value):
    blob = zl(b"a", value)
    assert ziplist.count(blob) == 2
    assert ziplist.validate(blob) == 2
    assert list(ziplist.entries(blob)) == [b"a", value]


@pytest.mark.parametrize("length", [0, 1, 63, 64, 251, 252, 300, 16383, 16384])
def test_every_string_encoding_and_prevlen_width(length):
    # 6, 14 and 32-bit lengths; entries of 254+ bytes make the next prevlen 5 bytes wide
    value = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    blob = zl(value, 7, b"z")
    assert ziplist.validate(blob) == 3
    assert list(ziplist.entries(blob)) == [value, 7, b"z"]


def test_wide_prevlen_holding_a_small_length_is_valid():
    # Redis's cascade update may leave a 5-byte prevlen for a short previous entry
    first = prevlen(0) + encoding(b"ab")
    second = prevlen(len(first), big=True) + encoding(3)
    blob = frame(first + second, 2, last=10 + len(first))
    assert list(ziplist.entries(blob)) == [b"ab", 3]


def test_32bit_string_with_unused_low_bits_set():
    # ziplist.c masks an encoding byte below 0xc0 with 0xc0, so 0x81 reads as a 32-bit length
    blob = frame(b"\x00\x81\x00\x00\x00\x02hi", 1)
    assert list(ziplist.entries(blob)) == [b"hi"]


def test_memoryview_input():
    blob = memoryview(zl(b"k", 1000, b"v" * 70))
    assert ziplist.count(blob) == 3
    assert list(ziplist.entries(blob)) == [b"k", 1000, b"v" * 70]


def test_unknown_count_is_walked():
    blob = zl(1, 2, 3, count=65535)
    assert ziplist.count(blob) == 3
    assert ziplist.validate(blob) == 3


# -- damage ------------------------------------------------------------------------------------


def test_wrong_total_size():
    blob = zl(1, total=99)
    with pytest.raises(CorruptError) as info:
        ziplist.count(blob)
    assert info.value.what == "ziplist header says 99 bytes, blob has 13"
    assert info.value.offset == 0


def test_too_short_for_a_header():
    with pytest.raises(CorruptError, match="at least 11 bytes, blob has 10"):
        ziplist.count(bytes(10))


def test_missing_end_marker():
    blob = zl(1)[:-1] + b"\xfe"
    with pytest.raises(CorruptError) as info:
        ziplist.count(blob)
    assert info.value.offset == len(blob) - 1


@pytest.mark.parametrize("tail", [13, 1000])
def test_tail_past_the_end_marker_fails_cheaply(tail):
    blob = zl(1, tail=tail)
    with pytest.raises(CorruptError, match=f"tail offset {tail} is past the end marker at 12"):
        ziplist.count(blob)


@pytest.mark.parametrize("tail", [0, 9])
def test_tail_before_the_entries_fails_only_the_walk(tail):
    # ziplist.c's header check only bounds the tail above; the walk compares it with the last entry.
    blob = zl(1, tail=tail)
    assert ziplist.count(blob) == 1
    assert corrupt(blob).what == f"ziplist tail offset is {tail}, the last entry starts at 10"


def test_empty_ziplist_tail_is_not_checked_as_in_redis():
    assert ziplist.validate(zl(tail=0)) == 0


def test_tail_pointing_at_another_entry():
    blob = zl(1, 2, tail=10)
    assert ziplist.count(blob) == 2
    err = corrupt(blob)
    assert err.what == "ziplist tail offset is 10, the last entry starts at 12"
    assert err.offset == 4


def test_count_larger_than_blob_can_hold_fails_cheaply():
    with pytest.raises(CorruptError, match="says 5 entries, 13 bytes hold at most 1"):
        ziplist.count(zl(1, count=5))


def test_count_mismatch_is_deep_only():
    blob = zl(1, 2, count=1)
    assert ziplist.count(blob) == 1
    err = corrupt(blob)
    assert err.what == "ziplist header says 1 entries, found 2"
    assert err.offset == 8


def test_bad_prevlen():
    blob = frame(b"\x00\xf2" + b"\x03\xf3", 2, last=12)
    err = corrupt(blob)
    assert err.what == "ziplist entry says previous entry is 3 bytes, it is 2"
    assert err.offset == 12


def test_first_entry_with_nonzero_prevlen():
    blob = frame(b"\x01\xf2", 1)
    assert corrupt(blob).offset == 10


def test_truncated_wide_prevlen():
    blob = frame(b"\x00\xf2\xfe\x02\x00", 2, last=12)
    err = corrupt(blob)
    assert "5-byte prevlen needs 5 bytes, 3 remain" in err.what
    assert err.offset == 12


@pytest.mark.parametrize("enc", [0xC1, 0xCF, 0xD5, 0xE1, 0xFF])
def test_unknown_encoding_byte(enc):
    blob = frame(bytes([0, enc]) + b"\x00" * 9, 1)
    err = corrupt(blob)
    assert err.what == f"ziplist entry has unknown encoding byte 0x{enc:02x}"
    assert err.offset == 11


def test_lying_string_length():
    blob = frame(b"\x00\x0aabc", 1)  # says 10 bytes, 3 follow
    err = corrupt(blob)
    assert err.what == "ziplist entry needs 12 bytes, 5 remain before the end marker"
    assert err.offset == 10


def test_truncated_14bit_length():
    blob = frame(b"\x00\x40", 1)
    assert corrupt(blob).offset == 11


def test_truncated_32bit_length():
    blob = frame(b"\x00\x80\x00\x00", 1)
    assert corrupt(blob).offset == 11


def test_truncated_integer():
    blob = frame(b"\x00\xe0\x01\x02", 1)
    assert corrupt(blob).offset == 10


def test_end_marker_before_the_last_byte():
    blob = frame(b"\x00\xf2\xff\x00\xf2", 1)
    err = corrupt(blob)
    assert err.what == "ziplist end marker found at 12, expected at 15 (the last byte)"


def test_damage_is_found_at_every_truncation():
    blob = zl(b"a" * 300, -5000, 2**40, b"hello", 7)
    for cut in range(len(blob) - 1):
        damaged = bytearray(blob[:cut] + b"\xff")
        if len(damaged) >= 4:
            damaged[0:4] = struct.pack("<I", len(damaged))
        with pytest.raises(CorruptError):
            ziplist.validate(bytes(damaged))


# -- properties --------------------------------------------------------------------------------

values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=300),
)


@given(st.lists(values, max_size=20))
def test_round_trip(items):
    blob = zl(*items)
    assert ziplist.count(blob) == len(items)
    assert ziplist.validate(blob) == len(items)
    assert list(ziplist.entries(blob)) == items


def _outcome(fn, blob):
    try:
        return fn(blob)
    except CorruptError:
        return CorruptError


@given(st.binary(max_size=64))
def test_random_bytes_give_a_value_or_corrupt_error(data):
    for fn in (ziplist.count, ziplist.validate, lambda b: list(ziplist.entries(b))):
        _outcome(fn, data)


@given(st.binary(max_size=64), st.sampled_from([0, 1, 2, 3, 65535]), st.integers(10, 80))
def test_random_entries_in_a_valid_frame(body, n, tail):
    blob = frame(body, n, tail=min(tail, 10 + len(body)))
    deep = _outcome(ziplist.validate, blob)
    decoded = _outcome(lambda b: list(ziplist.entries(b)), blob)
    if deep is CorruptError:
        assert decoded is CorruptError
    else:
        assert len(decoded) == deep
