"""Listpack: every entry encoding, the unknown count, and each kind of damage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rdb_bytes import backlen, encode, lp, pack

from parsers.errors import CorruptError
from parsers.rdb import listpack


def corrupt(blob: bytes) -> CorruptError:
    """The error validate raises; entries and (for header damage) count must agree."""
    with pytest.raises(CorruptError) as info:
        listpack.validate(blob)
    with pytest.raises(CorruptError):
        list(listpack.entries(blob))
    return info.value


# -- hand-written blobs ------------------------------------------------------------------------


def test_empty_listpack():
    blob = bytes.fromhex("07000000 0000 ff")
    assert listpack.count(blob) == 0
    assert listpack.validate(blob) == 0
    assert list(listpack.entries(blob)) == []


def test_hand_written_7bit_uint_and_6bit_string():
    # 0x05 + backlen 01; 0x83 "abc" + backlen 04
    blob = bytes.fromhex("0e000000 0200 0501 83616263 04 ff")
    assert listpack.count(blob) == 2
    assert listpack.validate(blob) == 2
    assert list(listpack.entries(blob)) == [5, b"abc"]


def test_hand_written_13bit_negative():
    # 0xDF 0xFF is 13-bit 0x1FFF == -1; backlen 02
    blob = bytes.fromhex("0a000000 0100 dfff02 ff")
    assert list(listpack.entries(blob)) == [-1]


@pytest.mark.parametrize(
    "value",
    [
        0,
        127,
        128,
        -1,
        4095,
        -4096,
        4096,
        -4097,
        32767,
        -32768,
        32768,
        -(2**23),
        2**23 - 1,
        2**23,
        -(2**31),
        2**31 - 1,
        2**31,
        -(2**63),
        2**63 - 1,
    ],
)
def test_every_integer_encoding(value):
    blob = lp(value)
    assert listpack.count(blob) == 1
    assert listpack.validate(blob) == 1
    assert list(listpack.entries(blob)) == [value]


@pytest.mark.parametrize("length", [0, 1, 63, 64, 125, 126, 127, 4095, 4096, 16377, 16378])
def test_every_string_encoding_and_backlen_width(length):
    # 6-bit (<64), 12-bit (<4096), 32-bit; entry sizes cross the 1/2/3-byte backlen thresholds
    value = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    blob = lp(b"x", value, 7)
    assert listpack.validate(blob) == 3
    assert list(listpack.entries(blob)) == [b"x", value, 7]


def test_backlen_widths_follow_listpack_c():
    assert backlen(5) == b"\x05"
    assert backlen(128) == bytes([1, 0x80])
    assert backlen(16382) == bytes([127, 0xFE])
    assert backlen(16383) == bytes([0, 0xFF, 0xFF])
    assert len(backlen(2097151)) == 4
    assert len(backlen(268435455)) == 5


def test_memoryview_input():
    blob = memoryview(lp(b"field", 12345, b"v" * 100))
    assert listpack.count(blob) == 3
    assert listpack.validate(blob) == 3
    assert list(listpack.entries(blob)) == [b"field", 12345, b"v" * 100]


def test_unknown_count_is_walked():
    blob = pack(encode(1), encode(b"two"), encode(3), count=65535)
    assert listpack.count(blob) == 3
    assert listpack.validate(blob) == 3


def test_unknown_count_walk_still_checks_entries():
    blob = pack(encode(1), b"\x85ab\x06", count=65535)
    with pytest.raises(CorruptError):
        listpack.count(blob)


# -- damage ------------------------------------------------------------------------------------


def test_wrong_total_size():
    blob = pack(encode(1), total=20)
    with pytest.raises(CorruptError) as info:
        listpack.count(blob)
    assert info.value.what == "listpack header says 20 bytes, blob has 9"
    assert info.value.offset == 0
    corrupt(blob)


def test_too_short_for_a_header():
    with pytest.raises(CorruptError, match="at least 7 bytes, blob has 3"):
        listpack.count(b"\x03\x00\x00")


def test_missing_end_marker():
    blob = lp(1)[:-1] + b"\x00"
    with pytest.raises(CorruptError) as info:
        listpack.count(blob)
    assert info.value.offset == len(blob) - 1
    assert "0x00" in info.value.what


def test_count_larger_than_blob_can_hold_fails_cheaply():
    blob = pack(encode(1), count=2)
    with pytest.raises(CorruptError, match="says 2 entries, 9 bytes hold at most 1"):
        listpack.count(blob)


def test_count_mismatch_is_deep_only():
    blob = pack(encode(1), encode(2), count=1)
    assert listpack.count(blob) == 1
    err = corrupt(blob)
    assert err.what == "listpack header says 1 entries, found 2"
    assert err.offset == 4


def test_lying_string_length_runs_past_the_end():
    # 6-bit string says 10 bytes, 3 follow
    blob = pack(b"\x8aabc\x04")
    err = corrupt(blob)
    assert err.offset == 6
    assert "before the end marker" in err.what


def test_truncated_32bit_string_header():
    blob = pack(b"\xf0\x01\x00")
    err = corrupt(blob)
    assert err.what == "listpack entry header needs 5 bytes, 3 remain before the end marker"
    assert err.offset == 6


def test_truncated_12bit_string_header():
    blob = pack(b"\xe0", count=65535)
    assert corrupt(blob).offset == 6


def test_truncated_integer_entry():
    blob = pack(b"\xf4\x01\x02\x03")
    assert corrupt(blob).offset == 6


def test_bad_backlen():
    blob = pack(b"\x83abc\x05")
    err = corrupt(blob)
    assert err.what == "listpack backlen says 5 bytes, entry is 4"
    assert err.offset == 10


def test_bad_two_byte_backlen_first_byte():
    # 200-byte entry: backlen 01 c8; the last byte alone equals 200, the first must be checked
    good = encode(b"y" * 198)
    assert good[-2:] == b"\x01\xc8"
    bad = good[:-2] + b"\x02\xc8"
    with pytest.raises(CorruptError, match="backlen says 328 bytes, entry is 200"):
        listpack.validate(pack(bad))


def test_backlen_running_over_five_bytes():
    # a 4-byte string of 0x80s whose backlen byte 0x85 has the continuation bit set
    blob = pack(b"\x84\x80\x80\x80\x80\x85")
    err = corrupt(blob)
    assert err.what == "listpack backlen runs over 5 bytes"
    assert err.offset == 11


def test_unknown_encoding_byte():
    blob = pack(b"\xf5\x01")
    err = corrupt(blob)
    assert err.what == "listpack entry has unknown encoding byte 0xf5"
    assert err.offset == 6


def test_end_marker_before_the_last_byte():
    blob = pack(encode(1), b"\xff", encode(2), count=1)
    err = corrupt(blob)
    assert err.what == "listpack end marker found at 8, expected at 11 (the last byte)"
    assert err.offset == 8


def test_damage_is_found_at_every_truncation():
    blob = lp(b"a" * 70, -5000, 2**40, b"hello")
    for cut in range(len(blob) - 1):
        damaged = bytearray(blob[:cut] + b"\xff")
        if len(damaged) >= 4:
            damaged[0:4] = struct.pack("<I", len(damaged))
        with pytest.raises(CorruptError):
            listpack.validate(bytes(damaged))


# -- properties --------------------------------------------------------------------------------

values = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.binary(max_size=300),
)


@given(st.lists(values, max_size=20))
def test_round_trip(items):
    blob = lp(*items)
    assert listpack.count(blob) == len(items)
    assert listpack.validate(blob) == len(items)
    assert list(listpack.entries(blob)) == items


def _outcome(fn, blob):
    try:
        return fn(blob)
    except CorruptError:
        return CorruptError


@given(st.binary(max_size=64))
def test_random_bytes_give_a_value_or_corrupt_error(data):
    for fn in (listpack.count, listpack.validate, lambda b: list(listpack.entries(b))):
        _outcome(fn, data)


@given(st.binary(max_size=64), st.sampled_from([0, 1, 2, 3, 65535]))
def test_random_entries_in_a_valid_frame(body, n):
    blob = struct.pack("<IH", len(body) + 7, n) + body + b"\xff"
    deep = _outcome(listpack.validate, blob)
    decoded = _outcome(lambda b: list(listpack.entries(b)), blob)
    if deep is CorruptError:
        assert decoded is CorruptError
    else:
        assert len(decoded) == deep
