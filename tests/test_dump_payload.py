"""DUMP payloads (parsers/rdb/dump.py) against what real servers return for every type.

Each payload of Redis 6.2, 7.0 and 8.2 must decode to what the server itself answers to
GET/LRANGE/SMEMBERS/ZRANGE/HGETALL/XRANGE/XINFO; module values (FalkorDB's graphdata and Redis
8's vectorset) to their type name; damaged payloads to a FormatError with an offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import binary, falkordb
from diff_support import found_kinds, read_key, save_copy, url_of, write_dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.errors import CorruptError, FormatError, TruncatedError, UnsupportedError
from parsers.rdb.crc64 import crc64
from parsers.rdb.decode import (
    HashValue,
    ListValue,
    ModuleValue,
    SetValue,
    StreamValue,
    StringValue,
    Value,
    ZSetValue,
)
from parsers.rdb.dump import decode_dump
from toolkit.diff.compute import compute_diff
from toolkit.diff.values import size_of
from toolkit.server.process import running_server

VERSIONS = ("6.2", "7.0", "8.2")
RDB_VERSION = {"6.2": 9, "7.0": 10, "8.2": 12}


def _extra(c: redis.Redis, version: str) -> None:
    """Encodings the shared dataset lacks: big strings, integers, an empty-ish stream."""
    c.set("int:neg", -42)
    c.set("int:big", 2**62)
    c.set("raw:long", "x" * 70000)
    c.rpush("list:ints", *range(-5, 300))
    c.zadd("zset:inf", {"lo": float("-inf"), "hi": float("inf"), "z": 0})
    c.xadd("stream:empty", {"a": "1"}, id="5-1")
    c.xdel("stream:empty", "5-1")
    c.hset("hash:ints", mapping={str(i): i * 1000 for i in range(50)})
    if version == "8.2":
        c.hset("hash:fttl", mapping={"a": "1", "b": "2"})
        c.execute_command("HPEXPIREAT", "hash:fttl", 4_102_444_800_000, "FIELDS", 1, "a")


def _as_oracle(value: Value) -> object:
    """A decoded value in the shape diff_support.read_key gives."""
    if isinstance(value, StringValue):
        return value.data
    if isinstance(value, ListValue):
        return value.items
    if isinstance(value, SetValue):
        return value.members
    if isinstance(value, ZSetValue):
        return tuple(sorted(value.members.items()))
    if isinstance(value, HashValue):
        return tuple(sorted(value.fields.items()))
    assert isinstance(value, StreamValue)
    entries = tuple((f"{ms}-{seq}".encode(), tuple(sorted(p))) for (ms, seq), p in value.entries)
    groups = tuple(
        sorted(
            (
                g.name,
                f"{g.last_id[0]}-{g.last_id[1]}".encode(),
                g.pending,
                tuple(sorted(g.consumers)),
            )
            for g in value.groups
        )
    )
    return entries, groups


@pytest.fixture(scope="module", params=VERSIONS)
def server_payloads(request: pytest.FixtureRequest) -> Iterator[tuple[str, redis.Redis]]:
    version = request.param
    with running_server(binary(version)) as server:
        write_dataset(server)
        c = server.client()
        _extra(c, version)
        yield version, c


def test_every_payload_decodes_to_what_the_server_holds(
    server_payloads: tuple[str, redis.Redis],
) -> None:
    version, c = server_payloads
    types = set()
    for key in c.scan_iter(count=1000):
        payload = c.dump(key)
        dumped = decode_dump(payload)
        assert dumped.rdb_version == RDB_VERSION[version] and dumped.magic == "REDIS"
        oracle = read_key(c, key)
        assert _as_oracle(dumped.value) == oracle.value, key
        assert size_of(dumped.value) == oracle.size, key
        assert dumped.raw == payload[1:-10]
        types.add(oracle.type)
    assert types == {"string", "list", "set", "zset", "hash", "stream"}
    if version == "8.2":
        fttl = decode_dump(c.dump("hash:fttl")).value
        assert isinstance(fttl, HashValue)
        assert fttl.field_expires_ms == {b"a": 4_102_444_800_000}


def test_module_values(tmp_path: Path) -> None:
    """Module values decode to their type name; their serialized bytes in a DUMP payload are
    the bytes the RDB file holds (so a file and its server diff as equal)."""
    with running_server(binary("8.2"), modules=[falkordb()]) as server:
        c = server.client()
        c.execute_command("GRAPH.QUERY", "g", "CREATE (:P {name: 'a'})-[:K]->(:P {name: 'b'})")
        c.execute_command("VADD", "vs", "VALUES", 3, 0.1, 0.2, 0.3, "elem1")
        for key, type_name in ((b"g", "graphdata"), (b"vs", "vectorset")):
            assert c.type(key) == type_name.encode()
            dumped = decode_dump(c.dump(key))
            assert isinstance(dumped.value, ModuleValue)
            assert dumped.value.module == type_name and dumped.type_name == type_name
            assert size_of(dumped.value) is None
        rdb = save_copy(server, tmp_path / "m.rdb")
        # The live side by DUMP (SCAN): the payloads are what this test is about.
        report = compute_diff(str(rdb), url_of(server), values=True, via="scan")
        assert report.same and report.values_compared == 2
        assert any("2 module value(s)" in n for n in report.a.notes + report.b.notes)
        c.execute_command("VADD", "vs", "VALUES", 3, 0.5, 0.2, 0.3, "elem2")
        report = compute_diff(str(rdb), url_of(server), values=True, via="scan")
        assert (0, b"vs") in found_kinds(report)


# -- damaged payloads ------------------------------------------------------------------------


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<Q", crc64(body))


@pytest.fixture(scope="module")
def samples() -> Iterator[list[bytes]]:
    with running_server(binary("7.0")) as server:
        write_dataset(server)
        c = server.client()
        keys = [b"str:plain", b"list:small", b"set:int", b"zset:small", b"hash:small", b"stream:1"]
        yield [c.dump(k) for k in keys]


def test_damaged_payloads(samples: list[bytes]) -> None:
    good = samples[1]
    flipped = bytearray(good)
    flipped[3] ^= 1
    with pytest.raises(CorruptError, match="checksum mismatch") as info:
        decode_dump(bytes(flipped))
    assert info.value.offset == len(good) - 8
    with pytest.raises(TruncatedError, match="10-byte footer"):
        decode_dump(good[:8])
    body = good[:-8]
    longer = _with_crc(body[:-2] + b"\x00" + body[-2:])  # a stray byte before the footer
    with pytest.raises(CorruptError, match="decodes to") as info:
        decode_dump(longer)
    assert info.value.offset == len(good) - 10
    with pytest.raises(UnsupportedError):
        decode_dump(_with_crc(b"\x63" + body[1:]))  # type 99
    cut = _with_crc(body[:5] + body[-2:])  # value cut short, footer and CRC fine
    with pytest.raises(FormatError) as info:
        decode_dump(cut)
    assert 0 <= info.value.offset <= len(cut)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_payloads_decode_or_raise_format_errors(
    samples: list[bytes], data: st.DataObject
) -> None:
    payload = bytearray(data.draw(st.sampled_from(samples))[:-8])
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    try:
        decode_dump(_with_crc(bytes(payload)))
    except FormatError as e:
        assert 0 <= e.offset <= len(payload) + 8
