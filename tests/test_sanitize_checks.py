"""Each check Redis makes when it loads a value with sanitize-dump-payload yes, proven on a real
server: a minimal RDB holding one damaged value, which every test server that reads its RDB
version refuses, next to its intact twin, which they all load. rbkit must call the damaged one
INVALID with the check's problem code at an offset inside the damaged value (in C and in pure
Python alike), and the twin VALID. Then values Redis accepts however odd they look, which rbkit
must accept too.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import lzf
import pytest
from aof_support import aof, server_load
from conftest import binary, falkordb
from rdb_bytes import (
    Group,
    encode,
    encoding,
    frame,
    iset,
    length,
    lp,
    lzf_str,
    pack,
    prevlen,
    rdb_file,
    rstr,
    stream_id,
    stream_listpack,
    stream_value,
    zl,
    zm,
)
from server_verdict import refusal, servers_reading

import parsers.rdb.walker as walker_module
from parsers.errors import (
    BAD_FIELD_TTL,
    BAD_INTSET,
    BAD_LISTPACK,
    BAD_LZF,
    BAD_MODULE_VALUE,
    BAD_QUICKLIST,
    BAD_SCORE,
    BAD_STREAM,
    BAD_ZIPLIST,
    BAD_ZIPMAP,
    DUPLICATE,
)
from parsers.rdb.decode import StreamValue, decode_value
from parsers.rdb.strings import read_length
from parsers.rdb.walker import RdbWalker
from toolkit.check.backup import check_backup
from toolkit.check.problems import ERROR
from toolkit.check.rdb import check_rdb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
NOW_MS = 1_700_000_000_000
FAR = 4_102_444_800_000  # 2100-01-01: field expiries no server drops while loading
TEXT = b"the quick brown fox jumps over the lazy dog; " * 3


@dataclass(frozen=True)
class Case:
    """One value type and RDB version, a value Redis loads and one it refuses."""

    name: str
    type_id: int
    version: int
    good: bytes
    bad: bytes
    code: str
    refused_by: tuple[str, ...] = ()  # when only some servers refuse it; () for all


def lzf_backref_first() -> bytes:
    """LZF data whose first token copies from before the start (lzf_decompress: EINVAL)."""
    packed = bytearray(lzf.compress(TEXT))
    packed[0] = 0x20
    return bytes(packed)


# -- streams ------------------------------------------------------------------------------------

MASTER = stream_id(1000, 0)
ENTRIES = [(0, 0, (b"v1",)), (0, 1, (b"v2",))]
PEL = [(1000, 0), (1000, 1)]


def stream(
    listpacks: list[tuple[bytes, bytes]] | None = None,
    length_: int = 2,
    groups: list[Group] | None = None,
) -> bytes:
    if listpacks is None:
        listpacks = [(MASTER, stream_listpack((b"f",), ENTRIES))]
    if groups is None:
        groups = [Group(b"g1", PEL, [(b"c1", [PEL[0]]), (b"c2", [PEL[1]])])]
    return stream_value(listpacks, length_, (1000, 1), groups)


def hash_ex(*items: bytes | int) -> bytes:
    """A HASH_LISTPACK_EX value: the minimum expiry, then the (field, value, ttl) listpack."""
    return struct.pack("<Q", FAR) + rstr(lp(*items))


def hash_meta(*fields: tuple[int, bytes, bytes], min_expire: int = FAR) -> bytes:
    """A HASH_METADATA value: the minimum expiry, then (ttl relative to it + 1, field, value)."""
    out = struct.pack("<Q", min_expire) + length(len(fields))
    return out + b"".join(length(ttl) + rstr(f) + rstr(v) for ttl, f, v in fields)


CASES = [
    # strings: LZF contents and declared length (rdbLoadLzfStringObject)
    Case("lzf-contents", 0, 10, lzf_str(TEXT), lzf_str(TEXT, packed=lzf_backref_first()), BAD_LZF),
    Case("lzf-length", 0, 10, lzf_str(TEXT), lzf_str(TEXT, ulen=len(TEXT) + 1), BAD_LZF),
    Case(
        "lzf-inside-a-list",
        1,
        9,
        length(2) + rstr(b"a") + lzf_str(TEXT),
        length(2) + rstr(b"a") + lzf_str(TEXT, ulen=len(TEXT) - 1),
        BAD_LZF,
    ),
    # quicklists (LIST_QUICKLIST_2, LIST_QUICKLIST)
    Case(
        "quicklist-container",
        18,
        10,
        length(1) + length(2) + rstr(lp(b"a", b"b")),
        length(1) + length(3) + rstr(lp(b"a", b"b")),
        BAD_QUICKLIST,
    ),
    Case(
        "quicklist-empty-node",
        18,
        10,
        length(1) + length(1) + rstr(b"x"),
        length(1) + length(1) + rstr(b""),
        BAD_QUICKLIST,
    ),
    Case(
        "listpack-backlen",
        18,
        10,
        length(1) + length(2) + rstr(pack(encode(b"abc"), encode(b"b"))),
        length(1) + length(2) + rstr(pack(encode(b"abc")[:-1] + b"\x03", encode(b"b"))),
        BAD_LISTPACK,
    ),
    Case(
        "listpack-count",
        18,
        10,
        length(1) + length(2) + rstr(lp(b"a", b"b")),
        length(1) + length(2) + rstr(lp(b"a", b"b", count=3)),
        BAD_LISTPACK,
    ),
    Case(
        "listpack-encoding-byte",
        18,
        10,
        length(1) + length(2) + rstr(pack(encode(b"a"), b"\x05\x01")),
        length(1) + length(2) + rstr(pack(encode(b"a"), b"\xf5\x01")),
        BAD_LISTPACK,
    ),
    Case(
        "ziplist-prevlen",
        14,
        9,
        length(1) + rstr(zl(b"a", b"b")),
        length(1) + rstr(frame(prevlen(0) + encoding(b"a") + prevlen(5) + encoding(b"b"), 2, 13)),
        BAD_ZIPLIST,
    ),
    Case("ziplist-tail", 10, 9, rstr(zl(b"a", b"b")), rstr(zl(b"a", b"b", tail=10)), BAD_ZIPLIST),
    Case("ziplist-bytes", 10, 9, rstr(zl(b"a")), rstr(zl(b"a", total=99)), BAD_ZIPLIST),
    # sets
    Case(
        "set-duplicate",
        2,
        9,
        length(2) + rstr(b"a") + rstr(b"b"),
        length(2) + rstr(b"a") + rstr(b"a"),
        DUPLICATE,
    ),
    Case(
        "set-duplicate-integer-and-text",
        2,
        9,
        length(2) + rstr(b"1") + b"\xc0\x02",
        length(2) + rstr(b"1") + b"\xc0\x01",
        DUPLICATE,
    ),
    Case("intset-order", 11, 9, rstr(iset(2, 1, 2)), rstr(iset(2, 2, 1)), BAD_INTSET),
    Case("intset-duplicate", 11, 9, rstr(iset(4, 1, 2)), rstr(iset(4, 1, 1)), BAD_INTSET),
    Case(
        "intset-width",
        11,
        9,
        rstr(iset(2, 1, 2)),
        rstr(struct.pack("<II", 3, 2) + b"\x01\x00\x02\x00\x00\x00"),
        BAD_INTSET,
    ),
    Case("intset-empty", 11, 9, rstr(iset(2, 7)), rstr(iset(2)), BAD_INTSET),
    Case("set-listpack-duplicate", 20, 11, rstr(lp(b"a", b"b")), rstr(lp(b"a", b"a")), DUPLICATE),
    Case("set-listpack-integer-and-text", 20, 11, rstr(lp(1, b"2")), rstr(lp(1, b"1")), DUPLICATE),
    # sorted sets
    Case(
        "zset-nan-binary",
        5,
        9,
        length(1) + rstr(b"m") + struct.pack("<d", 1.5),
        length(1) + rstr(b"m") + struct.pack("<d", math.nan),
        BAD_SCORE,
    ),
    Case(
        "zset-score-text",
        3,
        9,
        length(2) + rstr(b"a") + rstr(b"1.5x") + rstr(b"b") + rstr(b"  -2e3"),
        length(2) + rstr(b"a") + rstr(b"1.5x") + rstr(b"b") + rstr(b"x2"),
        BAD_SCORE,
    ),
    Case(
        "zset-nan-text",
        3,
        9,
        length(1) + rstr(b"m") + b"\xfe",
        length(1) + rstr(b"m") + b"\xfd",
        BAD_SCORE,
    ),
    Case(
        "zset-duplicate",
        3,
        9,
        length(2) + rstr(b"a") + rstr(b"1") + rstr(b"b") + rstr(b"2"),
        length(2) + rstr(b"a") + rstr(b"1") + rstr(b"a") + rstr(b"2"),
        DUPLICATE,
    ),
    Case(
        "zset-listpack-duplicate",
        17,
        10,
        rstr(lp(b"a", 1, b"b", 2)),
        rstr(lp(b"a", 1, b"a", 2)),
        DUPLICATE,
    ),
    Case("zset-listpack-odd", 17, 10, rstr(lp(b"a", 1)), rstr(lp(b"a", 1, b"b")), BAD_LISTPACK),
    Case(
        "zset-ziplist-duplicate",
        12,
        9,
        rstr(zl(b"a", 1, b"b", 2)),
        rstr(zl(b"a", 1, b"a", 2)),
        DUPLICATE,
    ),
    # hashes
    Case(
        "hash-duplicate",
        4,
        9,
        length(2) + rstr(b"f") + rstr(b"1") + rstr(b"g") + rstr(b"2"),
        length(2) + rstr(b"f") + rstr(b"1") + rstr(b"f") + rstr(b"2"),
        DUPLICATE,
    ),
    Case(
        "hash-listpack-duplicate",
        16,
        10,
        rstr(lp(5, b"x", b"6", b"y")),
        rstr(lp(5, b"x", b"5", b"y")),
        DUPLICATE,
    ),
    Case("hash-ziplist-odd", 13, 9, rstr(zl(b"f", b"1")), rstr(zl(b"f", b"1", b"g")), BAD_ZIPLIST),
    Case(
        "hash-ziplist-duplicate",
        13,
        9,
        rstr(zl(b"f", b"1", b"g", b"2")),
        rstr(zl(b"f", b"1", b"f", b"2")),
        DUPLICATE,
    ),
    Case("zipmap-count", 9, 9, rstr(zm((b"f", b"1"))), rstr(zm((b"f", b"1"), count=2)), BAD_ZIPMAP),
    Case(
        "zipmap-duplicate",
        9,
        9,
        rstr(zm((b"f", b"1"), (b"g", b"2"))),
        rstr(zm((b"f", b"1"), (b"f", b"2"))),
        DUPLICATE,
    ),
    # hash field expiries (Redis 7.4+)
    Case(
        "field-expiry-range",
        24,
        12,
        hash_meta((1, b"f", b"v")),
        hash_meta((1 << 48, b"f", b"v")),
        BAD_FIELD_TTL,
    ),
    Case(
        "field-min-expiry-range",
        24,
        12,
        hash_meta((0, b"f", b"v")),
        hash_meta((0, b"f", b"v"), min_expire=(1 << 48) + 1),
        BAD_FIELD_TTL,
    ),
    Case(
        "field-expiry-duplicate",
        24,
        12,
        hash_meta((1, b"f", b"v"), (0, b"g", b"w")),
        hash_meta((1, b"f", b"v"), (0, b"f", b"w")),
        DUPLICATE,
    ),
    Case(
        "listpack-ex-ttl-text",
        25,
        12,
        hash_ex(b"a", b"1", FAR),
        hash_ex(b"a", b"1", str(FAR).encode() + b"x"),
        BAD_FIELD_TTL,
    ),
    Case(
        "listpack-ex-ttl-order",
        25,
        12,
        hash_ex(b"a", b"1", FAR, b"b", b"2", 0),
        hash_ex(b"a", b"1", 0, b"b", b"2", FAR),
        BAD_FIELD_TTL,
    ),
    Case(
        "listpack-ex-ttl-range",
        25,
        12,
        hash_ex(b"a", b"1", FAR),
        hash_ex(b"a", b"1", 1 << 48),
        BAD_FIELD_TTL,
    ),
    Case(
        "listpack-ex-duplicate",
        25,
        12,
        hash_ex(b"a", b"1", 0, b"b", b"2", 0),
        hash_ex(b"a", b"1", 0, b"a", b"2", 0),
        DUPLICATE,
    ),
    # streams (rdbLoadObject and streamValidateListpackIntegrity)
    Case(
        "stream-lp-count",
        19,
        10,
        stream(),
        stream([(MASTER, stream_listpack((b"f",), ENTRIES, lp_count_delta=1))]),
        BAD_STREAM,
    ),
    Case(
        "stream-entry-count",
        19,
        10,
        stream(),
        # the master entry says 1 entry (and 0 deleted); 2 follow
        stream([(MASTER, lp(1, 0, 1, b"f", 0, 2, 0, 0, b"v1", 4, 2, 0, 1, b"v2", 4))]),
        BAD_STREAM,
    ),
    Case(
        "stream-master-id-size",
        19,
        10,
        stream(),
        stream([(MASTER[:15], stream_listpack((b"f",), ENTRIES))]),
        BAD_STREAM,
    ),
    Case(
        "stream-master-id-repeated",
        19,
        10,
        stream(
            [
                (MASTER, stream_listpack((b"f",), ENTRIES[:1])),
                (stream_id(1000, 1), stream_listpack((b"f",), [(0, 0, (b"v2",))])),
            ]
        ),
        stream(
            [
                (MASTER, stream_listpack((b"f",), ENTRIES[:1])),
                (MASTER, stream_listpack((b"f",), [(0, 1, (b"v2",))])),
            ]
        ),
        BAD_STREAM,
    ),
    Case(
        "stream-length-without-listpacks",
        19,
        10,
        stream([], 0, []),
        stream([], 2, []),
        BAD_STREAM,
    ),
    Case(
        "stream-group-repeated",
        19,
        10,
        stream(groups=[Group(b"g1", [], []), Group(b"g2", [], [])]),
        stream(groups=[Group(b"g1", [], []), Group(b"g1", [], [])]),
        BAD_STREAM,
    ),
    Case(
        "stream-pel-repeated",
        19,
        10,
        stream(),
        stream(groups=[Group(b"g1", [PEL[0], PEL[0]], [(b"c1", [PEL[0]])])]),
        BAD_STREAM,
    ),
    Case(
        "stream-consumer-entry-not-in-group-pel",
        19,
        10,
        stream(),
        stream(groups=[Group(b"g1", [PEL[0]], [(b"c1", [PEL[0]]), (b"c2", [PEL[1]])])]),
        BAD_STREAM,
    ),
    Case(
        "stream-pel-entry-without-consumer",
        19,
        10,
        stream(),
        stream(groups=[Group(b"g1", PEL, [(b"c1", [PEL[0]])])]),
        BAD_STREAM,
    ),
    Case(
        "stream-consumer-repeated",
        19,
        10,
        stream(),
        stream(groups=[Group(b"g1", PEL, [(b"c1", [PEL[0]]), (b"c1", [PEL[1]])])]),
        BAD_STREAM,
    ),
    # Debian's 7.0.15 refuses a pending entry held by two consumers; 8.2.3 loads it
    Case(
        "stream-entry-of-two-consumers",
        19,
        10,
        stream(),
        stream(groups=[Group(b"g1", PEL, [(b"c1", [PEL[0], PEL[1]]), (b"c2", [PEL[1]])])]),
        BAD_STREAM,
        refused_by=("7.0",),
    ),
    Case(
        "stream-consumer-pel-repeated",
        19,
        10,
        stream(),
        stream(groups=[Group(b"g1", PEL, [(b"c1", [PEL[0], PEL[1], PEL[0]])])]),
        BAD_STREAM,
    ),
]


def outcome(data: bytes, fast: bool, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """rbkit's errors (code, offset) on ``data``, with or without the C accelerator."""
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
    result = check_rdb(data, now_ms=NOW_MS)
    return [(p.code, p.offset, p.message) for p in result.problems if p.severity == ERROR]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_redis_refuses_the_damaged_value_and_rbkit_says_why(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = rdb_file([(case.type_id, b"k", case.good)], case.version)
    bad = rdb_file([(case.type_id, b"k", case.bad)], case.version)
    servers = servers_reading(case.version)
    if case.refused_by:
        servers = [binary(v) for v in case.refused_by]
    for server in servers:
        assert refusal(server, good.data) is None, f"{server.version_text} refuses the twin"
        said = refusal(server, bad.data)
        assert said is not None, f"redis {server.version_text} loads the damaged value"
    assert outcome(good.data, True, monkeypatch) == []
    found = outcome(bad.data, True, monkeypatch)
    assert found == outcome(bad.data, False, monkeypatch)
    assert [code for code, _, _ in found] == [case.code], found
    (start, end), offset = bad.values[0], found[0][1]
    assert start <= offset < end, (offset, (start, end))


def test_module_value_framing_is_checked_as_the_module_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A module value's opcodes (here FalkorDB's, in Redis 8.2 with the module loaded)."""
    module = falkordb()
    data = (FIXTURES / "redis-8.2-modules.rdb").read_bytes()
    start, end = next((v, e) for _db, t, _k, v, e, _n, _x in RdbWalker(data).walk() if t == 7)
    opcode_at = read_length(data, start)[1]  # after the module id: the first value's opcode
    damaged = bytearray(data)
    damaged[opcode_at] = 6  # no such opcode
    damaged[-8:] = bytes(8)
    server = binary("8.2")
    assert refusal(server, data, modules=[module]) is None
    assert refusal(server, bytes(damaged), modules=[module]) is not None
    found = outcome(bytes(damaged), True, monkeypatch)
    assert found == outcome(bytes(damaged), False, monkeypatch)
    assert [code for code, _, _ in found] == [BAD_MODULE_VALUE]
    assert start <= found[0][1] < end


# -- what Redis accepts, however odd ---------------------------------------------------------

ODDITIES = [
    # rdbLoadLen reads a byte with the two top bits set as a 6-bit length
    ("length-byte-0xc2", 1, 9, b"\xc2" + rstr(b"a") + rstr(b"b")),
    # lzf_decompress's failures are 0 bytes: a declared length of 0 always matches
    ("lzf-of-length-0", 0, 10, b"\xc3" + length(2) + length(0) + b"\xff\xff"),
    # a listpack node with no entries is skipped
    (
        "quicklist-empty-listpack-node",
        18,
        10,
        length(2) + length(2) + rstr(lp()) + length(2) + rstr(lp(b"a")),
    ),
    # the tail of an empty ziplist is not looked at (an empty list: skipped with a warning)
    ("empty-ziplist-tail-0", 10, 9, rstr(zl(tail=0))),
    # zipmapValidateIntegrity stops at the first end marker
    ("zipmap-early-end", 9, 9, rstr(zm((b"f", b"1"))[:-1] + b"\xff\x00\xff")),
    # sscanf reads a prefix, after blanks
    ("score-text-prefix", 3, 9, length(1) + rstr(b"m") + rstr(b" 7.5 points")),
    # the listpack of a stream has its header count unchecked
    (
        "stream-listpack-count",
        19,
        10,
        stream(
            [
                (
                    MASTER,
                    stream_listpack((b"f",), ENTRIES)[:4]
                    + b"\x63\x00"
                    + stream_listpack((b"f",), ENTRIES)[6:],
                )
            ]
        ),
    ),
    # a stream's length is stored, not counted (Redis 5 wrote such streams)
    ("stream-length-3-of-2-entries", 19, 10, stream(length_=3)),
]


@pytest.mark.parametrize(
    ("type_id", "version", "value"), [o[1:] for o in ODDITIES], ids=[o[0] for o in ODDITIES]
)
def test_values_redis_accepts_are_valid(
    type_id: int, version: int, value: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = rdb_file([(type_id, b"k", value)], version)
    for server in servers_reading(version):
        assert refusal(server, file.data) is None, f"redis {server.version_text} refuses it"
    assert outcome(file.data, True, monkeypatch) == []
    assert outcome(file.data, False, monkeypatch) == []
    assert check_rdb(file.data, now_ms=NOW_MS, quick=True).valid  # nor does --quick refuse it


def test_a_stream_keeps_its_stored_length_when_decoded() -> None:
    """diff --values reads it as Redis does: XLEN says 3, XRANGE gives the 2 entries."""
    file = rdb_file([(19, b"k", stream(length_=3))], 10)
    start, _end = file.values[0]
    value = decode_value(file.data, 19, start)
    assert isinstance(value, StreamValue)
    assert value.length == 3
    assert [entry_id for entry_id, _ in value.entries] == [(1000, 0), (1000, 1)]


PREAMBLE_CASES = [c for c in CASES if c.name in ("intset-order", "lzf-contents")]


@pytest.mark.parametrize("case", PREAMBLE_CASES, ids=[c.name for c in PREAMBLE_CASES])
def test_an_aof_preamble_is_checked_as_fully_as_an_rdb(case: Case, tmp_path: Path) -> None:
    """The same damaged value as the RDB preamble of an AOF (commands after it): a server
    with appendonly yes and sanitize-dump-payload yes refuses to start with it, its intact
    twin loads, and rbkit calls the damaged one INVALID with the same code."""
    tail = aof((b"SET", b"after", b"1"))
    for name, value in (("good", case.good), ("bad", case.bad)):
        data = rdb_file([(case.type_id, b"k", value)], case.version).data + tail
        (tmp_path / f"{name}.aof").write_bytes(data)
    server = binary("7.0")
    assert server_load(server, tmp_path / "good.aof", **{"sanitize-dump-payload": "yes"}).loads
    assert not server_load(server, tmp_path / "bad.aof", **{"sanitize-dump-payload": "yes"}).loads
    assert check_backup(tmp_path / "good.aof").valid
    bad = check_backup(tmp_path / "bad.aof")
    assert not bad.valid
    assert [p.code for p in bad.problems if p.severity == ERROR] == [case.code]
