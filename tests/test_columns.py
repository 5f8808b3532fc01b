"""Per-key records from the fast path (parsers/rdb/columns.py, toolkit/columns.py) against the
Python walker's own keys, on every RDB fixture: the same names, types, lengths and expiries,
and a value hash equal to XXH64 of the value's bytes as the xxhash package computes it."""

from __future__ import annotations

import os
from array import array
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import xxhash
from conftest import RDB_FILES

from parsers.errors import FormatError
from parsers.rdb import walker as walker_module
from parsers.rdb.columns import (
    NO_EXPIRY,
    NO_KEY,
    fingerprints,
    key_columns,
    py_xor64,
    string_lengths_at,
    strings_at,
    values_at,
    xor64,
)
from parsers.rdb.constants import ENCODING_NAMES, TYPE_NAMES
from parsers.rdb.strings import string_length
from parsers.rdb.walker import RdbWalker
from parsers.rdb.xxh64 import py_xxh64, xxh64
from toolkit.columns import record_batches

Row = tuple[Any, ...]


def walker_rows(data: bytes) -> list[Row]:
    """(db, type byte, key, value offset, value bytes, elements, expiry, XXH64 of the value,
    XXH64 of the name with seeds 0 and 1, name offset) per key, from RdbWalker.walk and the
    xxhash package."""
    w = RdbWalker(data)
    return [
        (
            e.db,
            e.type_id,
            bytes(w.key_at(e.key_offset)),
            e.value_offset,
            e.end - e.value_offset,
            e.elements,
            e.expire_ms,
            xxhash.xxh64_intdigest(data[e.value_offset : e.end]),
            xxhash.xxh64_intdigest(bytes(w.key_at(e.key_offset))),
            xxhash.xxh64_intdigest(bytes(w.key_at(e.key_offset)), seed=1),
            e.key_offset,
        )
        for e in w.walk()
    ]


def column_rows(data: bytes, *, deep: bool, rows: int) -> list[Row]:
    out: list[Row] = []
    for batch in key_columns(RdbWalker(data, deep=deep), rows):
        assert 0 < len(batch) <= rows
        cols = [
            batch.column(n)
            for n in ("db", "type_id", "value_offset", "value_bytes", "elements", "expire_ms")
        ]
        hashes = [batch.column(n) for n in ("value_hash", "key_hash", "key_hash2", "key_offset")]
        for r in range(len(batch)):
            db, t, offset, size, n, exp = (c[r] for c in cols)
            exp_ms = None if exp == NO_EXPIRY else exp
            out.append((db, t, batch.key(r), offset, size, n, exp_ms, *(h[r] for h in hashes)))
    return out


@pytest.fixture(params=[True, False], ids=["speedups", "python"])
def speedups(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", request.param)
    return bool(request.param)


@pytest.mark.parametrize("deep", [False, True], ids=["quick", "deep"])
@pytest.mark.parametrize("rows", [1, 5, 65536])
@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_records_match_the_walker(path: Path, rows: int, deep: bool, speedups: bool) -> None:
    data = path.read_bytes()
    assert column_rows(data, deep=deep, rows=rows) == walker_rows(data)


def test_the_accelerator_is_built_and_fills_rows() -> None:
    """The C path is there and reads a run of keys itself (not only the Python fallback)."""
    from parsers.rdb import _speedups
    from parsers.rdb.columns import KeyColumns

    data = (RDB_FILES[0].parent / "redis-7.0-strings-only.rdb").read_bytes()
    w = RdbWalker(data)
    first = next(e for e in w.walk() if e.expire_ms is None)
    batch = KeyColumns(1000)
    pos, rows, used = _speedups.records(
        data, first.key_offset - 1, len(data), 0, False, False, batch.columns, 0, batch.names, 0
    )  # fmt: skip
    assert rows > 1 and used > 0 and pos > first.end


@pytest.mark.parametrize("seed", [0, 1, 2**64 - 1])
@pytest.mark.parametrize("size", [0, 1, 3, 4, 7, 8, 31, 32, 33, 64, 100, 1000])
def test_xxh64_matches_the_reference(size: int, seed: int) -> None:
    data = os.urandom(size)
    want = xxhash.xxh64_intdigest(data, seed=seed)
    assert xxh64(data, seed) == py_xxh64(data, seed) == want


@pytest.mark.parametrize("count", [0, 1, 2, 7, 1000])
def test_xor64_is_the_xor_of_the_values(count: int) -> None:
    values = [int.from_bytes(os.urandom(8), "little") for _ in range(count)]
    data = b"".join(v.to_bytes(8, "little") for v in values)
    want = 0
    for v in values:
        want ^= v
    assert xor64(data) == py_xor64(data) == want
    with pytest.raises(ValueError):
        xor64(data + b"x")


@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_arrow_batches_hold_the_records(path: Path) -> None:
    data = path.read_bytes()
    expected = walker_rows(data)
    batches = list(record_batches(RdbWalker(data), with_internal=True, rows=4))
    if not expected:
        assert batches == []
        return
    table = pa.Table.from_batches(batches)
    got = table.to_pylist()
    assert len(got) == len(expected)
    for row, (db, t, key, offset, size, n, exp, h, kh, kh2, ko) in zip(got, expected, strict=True):
        assert row["db"] == db and row["key"] == key and row["rdb_type"] == t
        assert row["value_offset"] == offset and row["value_bytes"] == size
        assert row["elements"] == n and row["expire_ms"] == exp and row["value_hash"] == h
        assert (row["key_hash"], row["key_hash2"], row["key_offset"]) == (kh, kh2, ko)
        assert row["encoding"] == ENCODING_NAMES[t]
        if TYPE_NAMES[t] != "module":
            assert row["type"] == TYPE_NAMES[t]
        else:
            assert row["type"] not in ("module", "?", "")


@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_strings_read_at_offsets_are_the_walkers(path: Path) -> None:
    """strings_at (the diff reads the names and string lengths of differing keys with it) gives
    each key's name as the walker reads it, and each string value's STRLEN as Python's
    string_length gives it; a negative offset gives an empty name and length -1."""
    data = path.read_bytes()
    w = RdbWalker(data)
    entries = list(w.walk())
    names = [bytes(w.key_at(e.key_offset)) for e in entries]
    strings = [e for e in entries if e.type_id == 0]
    offsets = array("q", [e.key_offset for e in entries] + [-1])
    values = array("q", [e.value_offset for e in strings] + [-1])
    with open(path, "rb") as f:
        got = strings_at(f.fileno(), offsets)
        lengths = string_lengths_at(f.fileno(), values)
    assert got is not None and lengths is not None
    data_, ends = got
    ends_ = array("q", bytes(ends))
    assert [bytes(data_[ends_[i] : ends_[i + 1]]) for i in range(len(offsets))] == [*names, b""]
    assert list(array("q", bytes(lengths))) == [
        *(string_length(data, e.value_offset) for e in strings),
        -1,
    ]


def test_strings_at_declines_what_does_not_read(tmp_path: Path) -> None:
    """An offset past the end, or at a string whose declared length runs past the file, gives
    None (the caller then reads key by key, and the Python reader words the error); a
    string longer than the first read is read whole."""
    long = b"x" * 5000
    path = tmp_path / "strings.bin"
    # a 14-bit length (5000 bytes), then a 6-bit one declaring 40 bytes with 3 left
    path.write_bytes(bytes([0x40 | (5000 >> 8), 5000 & 0xFF]) + long + bytes([40]) + b"abc")
    with open(path, "rb") as f:
        fd = f.fileno()
        got = strings_at(fd, array("q", [0]))
        assert got is not None and bytes(got[0]) == long
        assert strings_at(fd, array("q", [5002])) is None
        assert strings_at(fd, array("q", [10**9])) is None
        assert string_lengths_at(fd, array("q", [10**9])) is None
        assert list(array("q", bytes(string_lengths_at(fd, array("q", [0, 5002]))))) == [5000, 40]


@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_values_read_at_name_offsets_are_the_walkers(path: Path, speedups: bool) -> None:
    """values_at (the diff reads again what it judges of the keys its join hands back) gives
    each key's type byte, value offset, value bytes and elements as the walker reads them,
    from the offset of its name alone; an offset below 1 names no key."""
    data = path.read_bytes()
    entries = list(RdbWalker(data).walk())
    offsets = array("q", [e.key_offset for e in entries] + [-1])
    with open(path, "rb") as f:
        types, *numbers = values_at(RdbWalker(data), f.fileno(), offsets, lambda i: 0)
    got = list(zip(types, *(array("q", bytes(b)) for b in numbers), strict=True))
    assert got == [
        *((e.type_id, e.value_offset, e.end - e.value_offset, e.elements) for e in entries),
        (NO_KEY, -1, -1, -1),
    ]


def test_values_at_a_cut_record_raise_the_walkers_error(tmp_path: Path, speedups: bool) -> None:
    """A record cut short is declined by the C reader and read by the walker, which raises a
    FormatError naming the offset the input ends at (no C guess at the length)."""
    data = (RDB_FILES[0].parent / "redis-7.0-all-types.rdb").read_bytes()
    big = max(RdbWalker(data).walk(), key=lambda e: e.end - e.value_offset)
    cut = data[: big.value_offset + (big.end - big.value_offset) // 2]
    path = tmp_path / "cut.rdb"
    path.write_bytes(cut)
    with open(path, "rb") as f, pytest.raises(FormatError) as raised:
        values_at(RdbWalker(cut), f.fileno(), array("q", [big.key_offset]), lambda i: 0)
    assert raised.value.offset is not None and raised.value.offset <= len(cut)


@pytest.mark.parametrize("values", [False, True], ids=["meta", "values"])
@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_fingerprints_are_xxh64_of_the_fields(path: Path, values: bool, speedups: bool) -> None:
    """fingerprints (what the diff's join compares) is XXH64 (the xxhash package) of the
    packed fields the docstring names: a collection by type code, elements and expiry
    without ``values``; anything else by RDB type, value bytes, expiry and value hash."""
    import struct

    codes = bytes((t * 7 + 3) % 256 for t in range(256))
    data = path.read_bytes()
    for batch in key_columns(RdbWalker(data), 50):
        got = array("Q", bytes(fingerprints(batch, codes, values)))
        want = []
        for r in range(len(batch)):
            t = batch.column("type_id")[r]
            exp = batch.column("expire_ms")[r]
            if not values and t not in (0, 6, 7):
                n = batch.column("elements")[r]
                packed = struct.pack("<BB6xqqQ", 1, codes[t], n, exp, 0)
            else:
                size, h = batch.column("value_bytes")[r], batch.column("value_hash")[r]
                packed = struct.pack("<BB6xqqQ", 0, t, size, exp, h)
            want.append(xxhash.xxh64_intdigest(packed))
        assert list(got) == want


def test_walks_in_threads_at_once_match_the_walker() -> None:
    """records() walks without the GIL, so deep walks (which check each value with the C
    sanitizer) may run in several threads at once, beside strings_at in this one: each thread
    has its own checking context, and every walk gives the walker's rows."""
    import threading

    paths = [p for p in RDB_FILES if p.stat().st_size > 2000]
    want = {p: walker_rows(p.read_bytes()) for p in paths}
    got: dict[tuple[int, Path], list[Row]] = {}

    def walk(t: int) -> None:
        for _ in range(3):
            for p in paths:
                got[t, p] = column_rows(p.read_bytes(), deep=True, rows=7)

    threads = [threading.Thread(target=walk, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    names_read = 0
    while any(thread.is_alive() for thread in threads):
        for p in paths:
            entries = list(RdbWalker(p.read_bytes()).walk())
            with open(p, "rb") as f:
                read = strings_at(f.fileno(), array("q", [e.key_offset for e in entries]))
            assert read is not None
            names_read += len(entries)
    for thread in threads:
        thread.join()
    assert names_read
    assert all(got[t, p] == want[p] for t in range(4) for p in paths)
