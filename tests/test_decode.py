"""Value decoding: every fixture key against what a live server of that version returns,
tiny inline values for the score and field-TTL encodings, and a fuzz rule on damaged values."""

from __future__ import annotations

import json
import math
import shutil
import struct
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import redis
from alarms import alarm
from conftest import binary, falkordb, stack_module_paths
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdb_bytes import length, lp, rstr

from parsers.errors import CorruptError, FormatError, TruncatedError, UnsupportedError
from parsers.rdb.decode import (
    HashValue,
    ListValue,
    ModuleValue,
    SetValue,
    StreamGroup,
    StreamValue,
    StringValue,
    Value,
    ZSetValue,
    decode_key_values,
    decode_value,
    read_double,
    read_value,
)
from parsers.rdb.walker import RdbWalker
from toolkit.server.process import RedisServer, running_server

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
RDB_FILES = sorted(FIXTURES.glob("*.rdb"))
VALUE_CLASSES = (StringValue, ListValue, SetValue, ZSetValue, HashValue, StreamValue, ModuleValue)
TYPE_OF = {
    StringValue: b"string",
    ListValue: b"list",
    SetValue: b"set",
    ZSetValue: b"zset",
    HashValue: b"hash",
    StreamValue: b"stream",
}
MODULES_NEEDING_FALKORDB = {"graphdata"}


# -- inline encoders ---------------------------------------------------------------------------


def decode(type_id: int, payload: bytes, magic: str = "REDIS") -> Value:
    """Decode ``payload`` placed after a few filler bytes (so offsets are file offsets)."""
    buf = b"PAD" + payload
    value, end = read_value(buf, type_id, 3, magic=magic)
    assert end == len(buf), "the value must end exactly where the payload does"
    return value


def failure(type_id: int, payload: bytes, magic: str = "REDIS") -> FormatError:
    with pytest.raises(FormatError) as info:
        read_value(b"PAD" + payload, type_id, 3, magic=magic)
    return info.value


# -- scores ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        (b"\xfe", math.inf),
        (b"\xff", -math.inf),
        (b"\x031.5", 1.5),
        (b"\x04-2.5", -2.5),
        (b"\x0517e-1", 1.7),
        (b"\x013", 3.0),
        (b"\x03inf", math.inf),
    ],
)
def test_text_score_encodings(raw: bytes, score: float) -> None:
    assert read_double(raw, 0) == (score, len(raw))


def test_text_score_253_is_nan() -> None:
    value, end = read_double(b"\xfd", 0)
    assert math.isnan(value) and end == 1


def test_text_score_that_is_not_a_number() -> None:
    with pytest.raises(CorruptError) as info:
        read_double(b"xx\x031_5", 2)
    assert info.value.offset == 2


def test_text_score_running_past_the_end() -> None:
    with pytest.raises(TruncatedError):
        read_double(b"\x051.5", 0)


def test_zset_type3_with_infinities_and_text() -> None:
    payload = length(3) + rstr(b"a") + b"\xfe" + rstr(b"b") + b"\x04-2.5" + rstr(b"c") + b"\xff"
    assert decode(3, payload) == ZSetValue({b"a": math.inf, b"b": -2.5, b"c": -math.inf})


def test_zset_nan_score_is_refused_as_redis_does() -> None:
    error = failure(3, length(1) + rstr(b"a") + b"\xfd")
    assert isinstance(error, CorruptError) and "NaN" in error.what


def test_zset2_binary_little_endian_doubles() -> None:
    payload = length(2) + rstr(b"x") + struct.pack("<d", 0.1) + rstr(b"y")
    payload += struct.pack("<d", -math.inf)
    assert decode(5, payload) == ZSetValue({b"x": 0.1, b"y": -math.inf})


def test_zset2_truncated_score() -> None:
    error = failure(5, length(1) + rstr(b"x") + b"\x00\x00\x00")
    assert isinstance(error, TruncatedError)


def test_zset_listpack_scores_as_integers_and_strings() -> None:
    blob = lp(b"m1", 7, b"m2", b"1.5", b"m3", b"-inf", b"m4", -(2**40))
    value = decode(17, rstr(blob))
    assert value == ZSetValue({b"m1": 7.0, b"m2": 1.5, b"m3": -math.inf, b"m4": -(2.0**40)})


def test_zset_duplicate_member_is_corrupt() -> None:
    error = failure(17, rstr(lp(b"m", 1, b"m", 2)))
    assert isinstance(error, CorruptError) and "duplicate" in error.what


# -- hash field TTLs ----------------------------------------------------------------------------

MIN_EXPIRE = 1_800_000_000_000


def test_hash_metadata_ttls_are_relative_to_the_min_expire() -> None:
    payload = struct.pack("<Q", MIN_EXPIRE) + length(3)
    payload += length(0) + rstr(b"none") + rstr(b"v0")
    payload += length(1) + rstr(b"first") + rstr(b"v1")
    payload += length(1001) + rstr(b"later") + rstr(b"v2")
    assert decode(24, payload) == HashValue(
        {b"none": b"v0", b"first": b"v1", b"later": b"v2"},
        {b"first": MIN_EXPIRE, b"later": MIN_EXPIRE + 1000},
    )


def test_hash_metadata_pre_ga_ttls_are_absolute() -> None:
    payload = length(2) + length(0) + rstr(b"a") + rstr(b"1")
    payload += length(MIN_EXPIRE) + rstr(b"b") + rstr(b"2")
    assert decode(22, payload) == HashValue({b"a": b"1", b"b": b"2"}, {b"b": MIN_EXPIRE})


def test_hash_metadata_expiry_past_the_maximum_is_corrupt() -> None:
    payload = struct.pack("<Q", MIN_EXPIRE) + length(1) + length(1 << 48) + rstr(b"f") + rstr(b"v")
    error = failure(24, payload)
    assert isinstance(error, CorruptError) and error.offset == 3 + 8 + 1


def test_hash_listpack_ex_triplets_ttl_zero_is_none() -> None:
    blob = lp(b"a", b"1", 0, b"b", b"2", MIN_EXPIRE)
    expected = HashValue({b"a": b"1", b"b": b"2"}, {b"b": MIN_EXPIRE})
    assert decode(25, struct.pack("<Q", MIN_EXPIRE) + rstr(blob)) == expected
    assert decode(23, rstr(blob)) == expected


def test_hash_listpack_ex_not_in_triplets_is_corrupt() -> None:
    error = failure(25, struct.pack("<Q", MIN_EXPIRE) + rstr(lp(b"a", b"1")))
    assert isinstance(error, CorruptError) and error.offset == 3 + 8


def test_valkey_hash2_expiry_minus_one_is_none() -> None:
    payload = length(2) + rstr(b"a") + rstr(b"1") + struct.pack("<q", -1)
    payload += rstr(b"b") + rstr(b"2") + struct.pack("<q", MIN_EXPIRE)
    expected = HashValue({b"a": b"1", b"b": b"2"}, {b"b": MIN_EXPIRE})
    assert decode(22, payload, magic="VALKEY") == expected


def test_type_23_and_up_are_not_valkey_types() -> None:
    assert isinstance(failure(24, b"\x00", magic="VALKEY"), UnsupportedError)


# -- other encodings and errors ------------------------------------------------------------------


def test_integer_encoded_strings_decode_to_decimal_bytes() -> None:
    assert decode(0, b"\xc0\xf9") == StringValue(b"-7")
    assert decode(0, b"\xc2" + struct.pack("<i", 2**31 - 1)) == StringValue(b"2147483647")


def test_listpack_integers_in_lists_and_sets_come_back_as_decimal_bytes() -> None:
    quicklist2 = length(2) + length(2) + rstr(lp(b"a", 5, -(2**40))) + length(1) + rstr(b"plain")
    assert decode(18, quicklist2) == ListValue((b"a", b"5", b"-1099511627776", b"plain"))
    assert decode(20, rstr(lp(b"x", 12))) == SetValue(frozenset({b"x", b"12"}))


def test_intset_members() -> None:
    blob = struct.pack("<II", 2, 3) + struct.pack("<hhh", -5, 0, 300)
    assert decode(11, rstr(blob)) == SetValue(frozenset({b"-5", b"0", b"300"}))


def test_error_inside_a_blob_is_reported_at_the_blob_offset() -> None:
    blob = bytearray(lp(b"f", b"v"))
    blob[-1] = 0x00  # no end marker
    error = failure(16, rstr(bytes(blob)))
    assert isinstance(error, CorruptError)
    assert error.offset == 3 and "of the hash listpack" in error.what


def test_duplicate_set_member_is_corrupt() -> None:
    assert isinstance(failure(2, length(2) + rstr(b"a") + rstr(b"a")), CorruptError)


def test_truncated_value_is_a_truncated_error() -> None:
    error = failure(1, length(3) + rstr(b"abc") + b"\x05ab")
    assert isinstance(error, TruncatedError)


def test_a_count_larger_than_the_input_fails_before_allocating() -> None:
    error = failure(1, length(1 << 40))
    assert isinstance(error, TruncatedError) and error.offset == 3


def test_module_pre_ga_and_unknown_types_are_unsupported() -> None:
    assert isinstance(failure(6, b"\x00"), UnsupportedError)
    assert isinstance(failure(99, b"\x00"), UnsupportedError)


def test_stream_listpack_flags_deltas_and_deleted_entries() -> None:
    # Master id 5-3, master fields [f]. Entries: 5-3 same fields; 5-4 deleted; 6-0 with its
    # own fields (seq delta -3, stored as a negative integer).
    items: list[bytes | int] = [2, 1, 1, b"f", 0]
    items += [2, 0, 0, b"v1", 4]
    items += [3, 0, 1, b"v2", 4]
    items += [0, 1, -3, 2, b"a", b"1", b"b", b"x", 8]
    payload = length(1) + rstr(struct.pack(">QQ", 5, 3)) + rstr(lp(*items))
    payload += length(2) + length(6) + length(0)  # length, last id
    payload += length(1) + rstr(b"g") + length(5) + length(3)  # a group at 5-3
    payload += length(1) + struct.pack(">QQ", 5, 3) + struct.pack("<Q", 0) + length(1)
    payload += length(1) + rstr(b"alice") + struct.pack("<Q", 0) + length(1)
    payload += struct.pack(">QQ", 5, 3)
    assert decode(15, payload) == StreamValue(
        2,
        (6, 0),
        (((5, 3), ((b"f", b"v1"),)), ((6, 0), ((b"a", b"1"), (b"b", b"x")))),
        (StreamGroup(b"g", (5, 3), 1, (b"alice",), None),),
    )


def test_stream_entry_with_wrong_lp_count_is_corrupt() -> None:
    items: list[bytes | int] = [1, 0, 1, b"f", 0, 2, 0, 0, b"v1", 5]
    payload = length(1) + rstr(struct.pack(">QQ", 5, 3)) + rstr(lp(*items))
    payload += length(1) + length(5) + length(3) + length(0)
    error = failure(15, payload)
    assert isinstance(error, CorruptError) and "lp-count" in error.what


# -- live servers: every fixture key as the server returns it -------------------------------------


class Raw:
    """One connection giving raw RESP2 replies (no redis-py reshaping of XRANGE and the like)."""

    def __init__(self, server: RedisServer) -> None:
        self.conn = redis.Connection(
            host="127.0.0.1", port=server.port, socket_timeout=30, protocol=2
        )
        self.db = 0

    def __call__(self, *args: Any) -> Any:
        self.conn.send_command(*args)
        return self.conn.read_response()

    def select(self, db: int) -> None:
        if db != self.db:
            assert self("SELECT", db) in (b"OK", "OK", True)
            self.db = db


def pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[::2], flat[1::2], strict=True))


def id_text(stream_id: tuple[int, int]) -> bytes:
    return f"{stream_id[0]}-{stream_id[1]}".encode()


def compare_stream(raw: Raw, key: bytes, value: StreamValue) -> None:
    assert raw("XLEN", key) == value.length
    got = [(i, pairs(fields)) for i, fields in raw("XRANGE", key, "-", "+")]
    assert got == [(id_text(i), list(fields)) for i, fields in value.entries]
    info = dict(pairs(raw("XINFO", "STREAM", key)))
    assert info[b"last-generated-id"] == id_text(value.last_id)
    groups = [dict(pairs(g)) for g in raw("XINFO", "GROUPS", key)]
    assert [g[b"name"] for g in groups] == sorted(g.name for g in value.groups)
    for group, info in zip(sorted(value.groups, key=lambda g: g.name), groups, strict=True):
        assert info[b"last-delivered-id"] == id_text(group.last_id)
        assert info[b"pending"] == group.pending
        assert info[b"consumers"] == len(group.consumers)
        if b"entries-read" in info:  # 7.0+: nil where the file stores -1
            assert info[b"entries-read"] == group.entries_read
        consumers = [dict(pairs(c)) for c in raw("XINFO", "CONSUMERS", key, group.name)]
        assert sorted(c[b"name"] for c in consumers) == sorted(group.consumers)


def compare_hash(raw: Raw, key: bytes, value: HashValue, now_ms: int, field_ttls: bool) -> None:
    expired = {f for f, t in value.field_expires_ms.items() if t <= now_ms}
    live = {f: v for f, v in value.fields.items() if f not in expired}
    assert dict(pairs(raw("HGETALL", key))) == live
    if field_ttls and live:
        names = list(live)
        got = raw("HPEXPIRETIME", key, "FIELDS", len(names), *names)
        assert got == [value.field_expires_ms.get(f, -1) for f in names]
    else:
        assert not value.field_expires_ms


def compare_key(raw: Raw, key: bytes, value: Value, now_ms: int, version: tuple[int, int]) -> None:
    """The decoded value equals what the server returns for the key."""
    kind = raw("TYPE", key)
    if isinstance(value, ModuleValue):
        assert kind == value.module.encode()
        return
    assert kind == TYPE_OF[type(value)]
    if isinstance(value, StringValue):
        assert raw("GET", key) == value.data
    elif isinstance(value, ListValue):
        assert raw("LRANGE", key, 0, -1) == list(value.items)
    elif isinstance(value, SetValue):
        assert set(raw("SMEMBERS", key)) == value.members
    elif isinstance(value, ZSetValue):
        got = [(m, float(s)) for m, s in pairs(raw("ZRANGE", key, 0, -1, "WITHSCORES"))]
        assert dict(got) == value.members
        assert got == sorted(value.members.items(), key=lambda ms: (ms[1], ms[0]))
    elif isinstance(value, HashValue):
        compare_hash(raw, key, value, now_ms, field_ttls=version >= (7, 4))
    else:
        assert isinstance(value, StreamValue)
        compare_stream(raw, key, value)


@pytest.mark.parametrize("rdb", RDB_FILES, ids=lambda p: p.name)
def test_decoded_values_match_the_live_server(rdb: Path, tmp_path: Path) -> None:
    expected = json.loads(rdb.with_name(rdb.stem + ".expected.json").read_text("utf-8"))
    major_minor = ".".join(expected["server_version"].split(".")[:2])
    server_binary = binary(major_minor)
    modules = [falkordb()] if MODULES_NEEDING_FALKORDB & set(expected["modules"]) else []
    if server_binary.source == "redis-stack":
        modules = stack_module_paths()
    walker = RdbWalker(rdb.read_bytes())
    decoded = list(decode_key_values(walker))
    shutil.copy(rdb, tmp_path / "dump.rdb")
    config = {**expected["config"], "dbfilename": "dump.rdb"}
    version = server_binary.version[:2]
    with running_server(
        server_binary, directory=tmp_path, config=config, modules=modules
    ) as server:
        raw = Raw(server)
        seconds, micros = raw("TIME")
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        present: dict[int, int] = {}
        for db, key, expire_ms, value in decoded:
            raw.select(db)
            if not raw("EXISTS", key):
                # Only keys whose TTL had passed may be missing: the server dropped them.
                assert expire_ms is not None and expire_ms <= now_ms, key
                continue
            present[db] = present.get(db, 0) + 1
            compare_key(raw, key, value, now_ms, version)
            if version >= (7, 0):
                assert raw("PEXPIRETIME", key) == (-1 if expire_ms is None else expire_ms)
            else:
                assert (raw("PTTL", key) >= 0) == (expire_ms is not None)
        for db in range(int(expected["config"]["databases"])):
            raw.select(db)
            assert raw("DBSIZE") == present.get(db, 0), f"db {db}"


def test_fixtures_are_there_to_compare() -> None:
    assert RDB_FILES, "no fixtures: run fixtures/generate.py"


# -- damaged values: a value or our error, nothing else -------------------------------------------


@cache
def fixture_values(name: str) -> tuple[bytes, str, tuple[tuple[int, int, int], ...]]:
    """A fixture's bytes, magic and (type, value offset, end) of each key but the biggest."""
    data = (FIXTURES / name).read_bytes()
    walker = RdbWalker(data)
    keys = tuple((t, vpos, end) for _, t, _, vpos, end, _, _ in walker.walk() if end - vpos < 65536)
    return data, walker.magic, keys


FUZZ_NAMES = [p.name for p in RDB_FILES if fixture_values(p.name)[2]]


@st.composite
def damaged_value(draw: st.DrawFn) -> tuple[bytes, int, int, str]:
    """A fixture with one of its values overwritten, cut short or shifted in places."""
    data, magic, keys = fixture_values(draw(st.sampled_from(FUZZ_NAMES)))
    type_id, vpos, end = draw(st.sampled_from(keys))
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(vpos, max(vpos, min(end, len(buf)) - 1)))
        kind = draw(st.sampled_from(["overwrite", "overwrite", "insert", "delete", "truncate"]))
        if kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=4))
            buf[pos : pos + len(chunk)] = chunk
        elif kind == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del buf[pos : pos + draw(st.integers(1, 8))]
        else:
            del buf[pos:]
    if draw(st.integers(0, 9)) == 0:
        type_id = draw(st.integers(0, 30))
    return bytes(buf), type_id, vpos, magic


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=damaged_value())
def test_damaged_value_decodes_or_raises_our_error(case: tuple[bytes, int, int, str]) -> None:
    buf, type_id, vpos, magic = case
    with alarm():
        try:
            value = decode_value(buf, type_id, vpos, magic=magic)
        except FormatError as e:
            assert 0 <= e.offset <= len(buf), str(e)
            return
    assert isinstance(value, VALUE_CLASSES)


def test_intact_fixture_values_decode_from_a_memoryview() -> None:
    for name in FUZZ_NAMES:
        data, magic, keys = fixture_values(name)
        for type_id, vpos, end in keys:
            as_bytes = read_value(data, type_id, vpos, magic=magic)
            assert read_value(memoryview(data), type_id, vpos, magic=magic) == as_bytes
            assert as_bytes[1] == end


@st.composite
def damaged_file(draw: st.DrawFn) -> bytes:
    """A fixture with 1-3 overwrites, insertions or deletions after its header."""
    buf = bytearray(fixture_values(draw(st.sampled_from(FUZZ_NAMES)))[0])
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(9, len(buf) - 1))
        kind = draw(st.sampled_from(["overwrite", "insert", "delete"]))
        if kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=4))
            buf[pos : pos + len(chunk)] = chunk
        elif kind == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        else:
            del buf[pos : pos + draw(st.integers(1, 8))]
    return bytes(buf)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=damaged_file())
def test_damaged_file_decodes_or_raises_our_error(data: bytes) -> None:
    with alarm():
        try:
            for _db, _key, _expire, value in decode_key_values(RdbWalker(data)):
                assert isinstance(value, VALUE_CLASSES)
        except FormatError as e:
            assert 0 <= e.offset <= len(data), str(e)
