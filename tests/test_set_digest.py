"""The C path of a plain-encoded set's digest (diff --values): its members sorted by
parsers.rdb.decode.sorted_set_members, hashed by toolkit.diff.values.set_digest, give the
digest the Python decoder's SetValue gives (values.digest), for members stored raw, as
integers and LZF-compressed; a set that does not read so (a duplicate member, bytes left
over, a cut) is declined, and the Python decoder refuses it."""

from __future__ import annotations

import struct
from pathlib import Path

import lzf
import pytest
from conftest import RDB_FILES
from hypothesis import given, settings
from hypothesis import strategies as st
from rdb_bytes import length, lzf_str, rstr

from parsers.errors import FormatError
from parsers.rdb.constants import ValueType
from parsers.rdb.decode import read_value, sorted_set_members
from parsers.rdb.walker import RdbWalker
from toolkit.diff.values import digest, set_digest

SET = int(ValueType.SET)


def stored(member: bytes, form: int) -> bytes:
    """``member`` as an RDB string: raw (0), as an integer where it is one (1), or
    LZF-compressed where that shrinks it (2)."""
    if form == 1 and member.isdigit() and member == str(int(member)).encode():
        n = int(member)
        if n < 1 << 7:
            return b"\xc0" + struct.pack("<b", n)
        if n < 1 << 15:
            return b"\xc1" + struct.pack("<h", n)
        if n < 1 << 31:
            return b"\xc2" + struct.pack("<i", n)
    if form == 2 and member and lzf.compress(member):
        return lzf_str(member)
    return rstr(member)


def set_value(members: list[bytes], forms: list[int]) -> bytes:
    return length(len(members)) + b"".join(map(stored, members, forms))


def both(raw: bytes) -> tuple[bytes | None, bytes]:
    """(the C path's digest or None, the Python decoder's digest)."""
    got = sorted_set_members(raw)
    return (set_digest(*got) if got is not None else None), digest(read_value(raw, SET, 0)[0])


members = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.integers(0, 2**31 - 1).map(lambda n: str(n).encode()),
        st.binary(min_size=20, max_size=200).map(lambda b: b * 3),
    ),
    unique=True,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(members, st.data())
def test_the_c_path_digests_a_set_as_the_decoder_does(
    items: list[bytes], data: st.DataObject
) -> None:
    forms = data.draw(st.lists(st.integers(0, 2), min_size=len(items), max_size=len(items)))
    fast, slow = both(set_value(items, forms))
    assert fast == slow


def test_integer_and_compressed_members_are_read_as_their_text() -> None:
    items = [b"7", b"300", b"70000", b"x" * 100, b"", b"\xff\x00"]
    raw = set_value(items, [1, 1, 1, 2, 0, 0])
    assert raw.count(b"\xc3") == 1 and raw[1:2] == b"\xc0"  # as built: ints and one LZF
    got = sorted_set_members(raw)
    assert got is not None
    count, lengths, data = got
    assert count == len(items)
    assert data == b"".join(sorted(items))
    assert lengths == struct.pack(f"<{count}Q", *map(len, sorted(items)))


@pytest.mark.parametrize(
    "raw",
    [
        set_value([b"a", b"b", b"a"], [0, 0, 0]),  # a duplicate member
        set_value([b"5", b"5"], [1, 0]),  # the same member, once as an integer
        set_value([b"a", b"b"], [0, 0]) + b"x",  # bytes left over
        set_value([b"a", b"b"], [0, 0])[:-1],  # cut
        length(10**9) + rstr(b"a"),  # a count the bytes cannot hold
    ],
    ids=["duplicate", "duplicate-int", "left-over", "cut", "count"],
)
def test_a_set_that_does_not_read_is_declined(raw: bytes) -> None:
    assert sorted_set_members(raw) is None
    try:
        _, end = read_value(raw, SET, 0)
    except FormatError:
        return
    assert end != len(raw)  # the decoder reads a set, but not all of these bytes


@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_every_plain_set_of_the_fixtures(path: Path) -> None:
    data = path.read_bytes()
    sets = [e for e in RdbWalker(data).walk() if e.type_id == SET]
    for e in sets:
        fast, slow = both(data[e.value_offset : e.end])
        assert fast == slow
