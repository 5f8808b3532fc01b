"""Zipmap: short and long lengths, free bytes, the unknown count, and damage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rdb_bytes import zm

from parsers.errors import CorruptError
from parsers.rdb import zipmap


def corrupt(blob: bytes) -> CorruptError:
    with pytest.raises(CorruptError) as info:
        zipmap.validate(blob)
    with pytest.raises(CorruptError):
        list(zipmap.entries(blob))
    return info.value


def test_zipmap_c_example():
    blob = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff"
    assert zipmap.count(blob) == 2
    assert zipmap.validate(blob) == 2
    assert list(zipmap.entries(blob)) == [b"foo", b"bar", b"hello", b"world"]


def test_free_bytes_are_skipped():
    blob = bytes.fromhex("01 0161 0102 62 7878 ff")  # "a" -> "b" with 2 free bytes
    assert zipmap.validate(blob) == 1
    assert list(zipmap.entries(blob)) == [b"a", b"b"]


@pytest.mark.parametrize("size", [0, 253, 254, 300])
def test_short_and_long_lengths(size):
    big = b"q" * size
    blob = zm((big, b"v"), (b"k", big), free=1)
    assert zipmap.count(blob) == 2
    assert list(zipmap.entries(blob)) == [big, b"v", b"k", big]


def test_memoryview_input():
    blob = memoryview(zm((b"f", b"v")))
    assert zipmap.count(blob) == 1
    assert list(zipmap.entries(blob)) == [b"f", b"v"]


def test_unknown_count_is_walked():
    blob = zm((b"a", b"1"), (b"b", b"2"), (b"c", b"3"), count=254)
    assert zipmap.count(blob) == 3
    assert zipmap.validate(blob) == 3


def test_count_byte_255_that_does_not_match_is_corrupt_as_in_redis():
    # zipmap_big_len.rdb (HDT3213/rdb) has 0xff here; zipmap.c compares it with the pairs found.
    blob = zm((b"a", b"1"), (b"b", b"2"), count=255)
    assert corrupt(blob).what == "zipmap header says 255 pairs, found 2"


def test_a_count_byte_that_lies_is_caught_without_deep():
    blob = zm((b"a", b"1"), (b"b", b"2"), count=3)
    with pytest.raises(CorruptError):
        zipmap.count(blob)


def test_empty_zipmap_is_corrupt_as_in_redis():
    blob = b"\x00\xff"
    assert corrupt(blob).what == "zipmap is empty"
    with pytest.raises(CorruptError):
        zipmap.count(blob)


def test_missing_end_marker():
    blob = zm((b"a", b"b"))[:-1] + b"\x00"
    with pytest.raises(CorruptError) as info:
        zipmap.count(blob)
    assert info.value.offset == len(blob) - 1


def test_too_short():
    with pytest.raises(CorruptError, match="at least 2 bytes, blob has 1"):
        zipmap.count(b"\xff")


def test_count_mismatch_is_caught():
    blob = zm((b"a", b"b"), (b"c", b"d"), count=1)
    assert corrupt(blob).what == "zipmap header says 1 pairs, found 2"


def test_lying_field_length():
    blob = b"\x01\x09ab\x01\x00c\xff"
    err = corrupt(blob)
    assert err.what == "zipmap field of 9 bytes runs past the end marker at 7"
    assert err.offset == 1


def test_lying_value_length():
    blob = b"\x01\x01a\x09\x00c\xff"
    err = corrupt(blob)
    assert "value of 9 bytes plus 0 free" in err.what
    assert err.offset == 3


def test_lying_free_count():
    blob = b"\x01\x01a\x01\x07c\xff"
    assert corrupt(blob).offset == 3


def test_truncated_long_length():
    blob = b"\x01\xfe\x01\x00\xff"
    err = corrupt(blob)
    assert err.what == "zipmap 5-byte field length needs 5 bytes, 3 remain before the end marker"
    assert err.offset == 1


def test_value_length_byte_ff_reads_a_u32_as_zipmap_c_does():
    # zipmapDecodeLength: any first byte of 254 or more means a 4-byte length follows.
    assert list(zipmap.entries(b"\x01\x01a\xff\x02\x00\x00\x00\x00bc\xff")) == [b"a", b"bc"]
    err = corrupt(b"\x01\x01a\xff\x00\xff")
    assert err.what == "zipmap 5-byte value length needs 5 bytes, 2 remain before the end marker"
    assert err.offset == 3


def test_end_marker_before_the_last_byte_ends_the_map_as_in_redis():
    # zipmapValidateIntegrity stops at the first end marker and never looks past it.
    assert zipmap.validate(b"\x01\x01a\x01\x00b\xff\x00\xff") == 1


@given(
    st.lists(st.tuples(st.binary(max_size=300), st.binary(max_size=300)), min_size=1, max_size=8),
    st.integers(0, 4),
)
def test_round_trip(pairs, free):
    blob = zm(*pairs, free=free)
    assert zipmap.count(blob) == len(pairs)
    assert zipmap.validate(blob) == len(pairs)
    assert list(zipmap.entries(blob)) == [x for pair in pairs for x in pair]


def _outcome(fn, blob):
    try:
        return fn(blob)
    except CorruptError:
        return CorruptError


@given(st.binary(max_size=64))
def test_random_bytes_give_a_value_or_corrupt_error(data):
    for fn in (zipmap.count, zipmap.validate, lambda b: list(zipmap.entries(b))):
        _outcome(fn, data)


@given(st.integers(0, 255), st.binary(max_size=64))
def test_random_entries_in_a_valid_frame(zmlen, body):
    blob = bytes([zmlen]) + body + b"\xff"
    deep = _outcome(zipmap.validate, blob)
    decoded = _outcome(lambda b: list(zipmap.entries(b)), blob)
    if deep is CorruptError:
        assert decoded is CorruptError
    else:
        assert len(decoded) == 2 * deep
