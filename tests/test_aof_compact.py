"""The AOF check with the compact C store gives the same result as with the Python model alone.

Every AOF fixture, damaged copies of them, and generated AOFs (single files, with an RDB
preamble, and multi-part) mixing the commands the store applies with those it leaves to the
Python model -- wrong types, bad scores and integers, MULTI, SELECT, FLUSHALL, SWAPDB,
expiries, unknown commands, scripts -- are checked both ways: the JSON reports, the keys
(``entries``) and each key's value and expiry must be equal.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from aof_support import aof
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.rdb.crc64 import crc64
from parsers.rdb.decode import decode_value
from parsers.rdb.walker import RdbWalker
from toolkit.check import aof as aof_module
from toolkit.check.backup import check_backup
from toolkit.check.keyspace import compact as compact_module
from toolkit.check.report import check_report

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "aof"
SOURCES = sorted(p for p in FIXTURES.iterdir() if not p.name.endswith(".json"))
SOURCES = [p for p in SOURCES if p.name != "damaged"]
DAMAGED = sorted(p for p in (FIXTURES / "damaged").iterdir() if not p.name.endswith(".json"))
NOW = 1_700_000_000_000
PREAMBLE_AOF = FIXTURES / "redis-6.2-preamble.aof"


def outcome(path: Path, compact: bool, mp: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """The report, the keys, and each key's value and expiry, checked one way."""
    mp.setattr(aof_module, "USE_COMPACT", compact)
    if (path / "appendonlydir").is_dir():
        path = path / "appendonlydir"
    result = check_backup(path, now_ms=NOW, top=5)
    report = json.dumps(check_report(result), sort_keys=True, default=str)
    if result.replay is None:
        return report, None
    ks = result.replay.keyspace
    entries = sorted(ks.entries())
    values = [(db, key, ks.value(db, key), ks.expire_of(db, key)) for db, key, *_ in entries]
    strings = [v for v in values if isinstance(v[2], int)]
    return report, entries, strings, sorted(result.replay.touched), ks.compact is not None


def same(path: Path, mp: pytest.MonkeyPatch) -> tuple[Any, ...]:
    fast = outcome(path, True, mp)
    slow = outcome(path, False, mp)
    assert fast[:-1] == slow[:-1]
    return fast


def test_the_store_is_built() -> None:
    assert compact_module.available(), "toolkit.check.keyspace._compact is not built"


@pytest.mark.parametrize("path", SOURCES + DAMAGED, ids=lambda p: p.name)
def test_fixtures_check_alike(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    same(path, monkeypatch)


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.aof") if p.stat().st_size)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_cut_and_flipped_fixtures_check_alike(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, target in enumerate(_files(path)):
        data = target.read_bytes()
        for j, at in enumerate(sorted({len(data) * k // 7 for k in range(1, 7)} - {0})):
            for how in ("cut", "flip"):
                copy = tmp_path / f"{i}-{j}-{how}"
                if path.is_dir():
                    shutil.copytree(path, copy)
                    victim = copy / target.relative_to(path)
                else:
                    victim = copy
                damaged = data[:at] if how == "cut" else data[:at] + b"?" + data[at + 1 :]
                victim.write_bytes(damaged)
                same(copy, monkeypatch)


# -- generated AOFs ----------------------------------------------------------------------------


def _preamble() -> tuple[bytes, list[bytes]]:
    """The RDB part of a fixture with a preamble, and a few of its keys."""
    data = PREAMBLE_AOF.read_bytes()
    walker = RdbWalker(data)
    keys = [bytes(walker.key_at(rec[2])) for rec in walker.walk()]
    return data[: len(data) - walker.trailing_bytes], keys[:3]


RDB_PART, RDB_KEYS = _preamble()
KEYS = [b"a", b"b", b"c", b"d", b"e", b"f", b"0", *RDB_KEYS]
KEY = st.sampled_from(KEYS)
C_KEY = st.sampled_from([*KEYS, b"c1", b"c2", b"c3"])  # c*: named by the store's commands only
MEMBER = st.sampled_from([b"m1", b"m2", b"m3", b"", b"m1"])
MEMBERS = st.lists(MEMBER, min_size=1, max_size=4)
SCORE = st.sampled_from(
    [b"1", b"-2.5", b"1e3", b".5", b"7.", b"+3", b"inf", b"-inf", b"nan", b"x", b" 1", b"1_0"]
)
INT = st.sampled_from(
    [b"1000", b"1800000000000", b"-5", b"0", b"007", b"x", b"9223372036854775807",
     b"9223372036854775808", b"-9223372036854775808"]
)  # fmt: skip
DB = st.sampled_from([b"0", b"1", b"2"])
NAME_CASE = st.sampled_from([bytes.upper, bytes.lower])


def cmd(name: bytes, *parts: Any) -> st.SearchStrategy[tuple[bytes, ...]]:
    strategies = [p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]

    def build(t: tuple) -> tuple[bytes, ...]:
        case, *values = t
        out = [case(name)]
        for v in values:
            out.extend(v if isinstance(v, list) else [v])
        return tuple(out)

    return st.tuples(NAME_CASE, *strategies).map(build)


def pairs(
    first: st.SearchStrategy[bytes], second: st.SearchStrategy[bytes] = MEMBER
) -> st.SearchStrategy[list[bytes]]:
    return st.lists(st.tuples(first, second), min_size=1, max_size=3).map(
        lambda ps: [x for p in ps for x in p]
    )


def items(
    key: st.SearchStrategy[bytes],
    c_key: st.SearchStrategy[bytes],
    member: st.SearchStrategy[bytes] = MEMBER,
) -> st.SearchStrategy:
    """Streams of AOF items: store commands on ``c_key`` (with ``member``), Python commands
    on ``key``."""
    members = st.lists(member, min_size=1, max_size=4)
    c_commands = [
        cmd(b"SET", c_key, member),
        cmd(b"RPUSH", c_key, members),
        cmd(b"LPUSH", c_key, members),
        cmd(b"SADD", c_key, members),
        cmd(b"HSET", c_key, pairs(member)),
        cmd(b"HMSET", c_key, pairs(member)),
        cmd(b"ZADD", c_key, pairs(SCORE, member)),
        cmd(b"PEXPIREAT", c_key, INT),
        cmd(b"DEL", c_key),
    ]
    py_commands = [
        cmd(b"SET", key, MEMBER, st.sampled_from([[b"PXAT", b"2000"], [b"NX"], [b"GET"], [b"EX"]])),
        cmd(b"SET", key),
        cmd(b"HSET", key, MEMBER),
        cmd(b"ZADD", key, st.sampled_from([b"NX", b"XX", b"CH"]), SCORE, MEMBER),
        cmd(b"PEXPIREAT", key, INT, b"NX"),
        cmd(b"DEL", key, key),
        cmd(b"SREM", key, MEMBERS),
        cmd(b"INCR", key),
        cmd(b"APPEND", key, MEMBER),
        cmd(b"LPOP", key),
        cmd(b"HDEL", key, MEMBER),
        cmd(b"ZREM", key, MEMBER),
        cmd(b"RENAME", key, key),
        cmd(b"MOVE", key, DB),
        cmd(b"COPY", key, key, b"DB", DB),
        cmd(b"EXPIRE", key, b"100"),
        cmd(b"SELECT", DB),
        cmd(b"SELECT", DB),
        cmd(b"SWAPDB", DB, DB),
        cmd(b"FLUSHDB"),
        cmd(b"FLUSHALL"),
        cmd(b"FOOBAR", key),
        cmd(b"MULTI"),
        cmd(b"EXEC"),
        cmd(b"DISCARD"),
    ]
    c_command = st.sampled_from(c_commands).flatmap(lambda s: s)
    item = st.one_of(
        c_command.map(lambda c: [c]),
        c_command.map(lambda c: [c]),
        st.sampled_from(py_commands).flatmap(lambda s: s).map(lambda c: [c]),
        st.integers(1_600_000_000, 1_700_000_000).map(lambda t: [b"#TS:%d" % t]),
        st.tuples(
            st.lists(c_command, min_size=1, max_size=3), st.sampled_from([b"EXEC", b"DISCARD"])
        ).map(lambda t: [(b"MULTI",), *t[0], (t[1],)]),
    )
    return st.lists(item, min_size=1, max_size=30).map(lambda its: [x for i in its for x in i])


STREAM = items(KEY, C_KEY)


def encode(items: list[Any]) -> bytes:
    return b"".join(i + b"\r\n" if isinstance(i, bytes) else aof(i) for i in items)


MANIFEST = (
    b"file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=STREAM,
    incr=st.none() | STREAM,
    preamble=st.booleans(),
    script=st.booleans(),
    cut=st.integers(0, 30),
)
def test_generated_aofs_check_alike(
    base: list[Any],
    incr: list[Any] | None,
    preamble: bool,
    script: bool,
    cut: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        tmp = tmp_path_factory.mktemp("gen")
        data = (RDB_PART if preamble else b"") + encode(base)
        if script:
            data += aof((b"EVAL", b"return 1", b"1", b"a"))
        if cut:
            data = data[:-cut]
        if incr is None:
            path = tmp / "appendonly.aof"
            path.write_bytes(data)
        else:
            path = tmp / "appendonlydir"
            path.mkdir()
            (path / "appendonly.aof.manifest").write_bytes(MANIFEST)
            (path / "appendonly.aof.1.base.aof").write_bytes(data)
            (path / "appendonly.aof.1.incr.aof").write_bytes(encode(incr))
        used = same(path, mp)[-1]
        if script and not cut:  # a script whose keys its arguments do not tell
            assert not used


def test_a_plain_aof_uses_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "appendonly.aof"
    commands = [(b"SET", b"s", b"v"), (b"SADD", b"t", b"x", b"y"), (b"INCR", b"n")]
    commands += [(b"SADD", b"s", b"x"), (b"ZADD", b"z", b"1", b"a", b"2", b"a")]
    path.write_bytes(aof(*commands))
    report, entries, _strings, _touched, used = same(path, monkeypatch)
    assert used
    assert [(db, key, t, n) for db, key, t, _e, n in entries] == [
        (0, b"n", "string", 1),
        (0, b"s", "string", 1),
        (0, b"t", "set", 2),
        (0, b"z", "zset", 1),
    ]
    assert "SADD: WRONGTYPE" in report


# -- generated RDB parts: most keys untouched, some named by store or Python commands -----------

RDB_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
RDB_SOURCES = [
    "redis-6.2-all-types",
    "redis-7.0-all-types",
    "redis-7.0-databases-32",
    "redis-8.2-all-types",
    "redis-8.2-hash-field-ttl",
    "redis-8.2-modules",
    "valkey-9.1-all-types",
    "valkey-9.1-hash-field-ttl",
]


class RdbSource:
    """An RDB fixture's bytes and records ``(type, key span, value span, expire)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.data = (RDB_FIXTURES / f"{name}.rdb").read_bytes()
        walker = RdbWalker(self.data)
        self.records = [
            (t, (k, v), (v, end), expire) for _db, t, k, v, end, _n, expire in walker.walk()
        ]
        self.keys = [bytes(walker.key_at(k)) for _t, (k, _v), _val, _e in self.records]
        # a few members of its sets, sorted sets and hashes (for commands adding them again)
        self.members: dict[bytes, list[bytes]] = {}
        for key, (t, _k, (v, _end), _e) in zip(self.keys, self.records, strict=True):
            value = decode_value(self.data, t, v, magic=walker.magic)
            got = getattr(value, "members", None) or getattr(value, "fields", None) or ()
            self.members[key] = sorted(got)[:3]
        self.eof = len(self.data) - 9  # the EOF opcode, then the checksum


def _string(b: bytes) -> bytes:
    assert len(b) < 64
    return bytes([len(b)]) + b


# Records spliced in (type byte + value): an empty string, empty collections (Redis skips
# them), a plain set and a plain hash.
EXTRA_VALUES = [
    b"\x00" + _string(b""),
    b"\x02\x00",
    b"\x04\x00",
    b"\x01\x00",
    b"\x02\x02" + _string(b"x") + _string(b"y"),
    b"\x04\x01" + _string(b"f") + _string(b"v"),
]


@st.composite
def rdb_case(draw: st.DrawFn) -> tuple[RdbSource, bytes, list[Any]]:
    """An RDB fixture with records spliced in (copies of its values under other keys of it:
    duplicate keys; the extra values under its keys or new ones; maybe an expiry), and the
    commands of a file after it, naming a few of its keys."""
    src = RdbSource(draw(st.sampled_from(RDB_SOURCES)))
    data = src.data
    inserts: list[tuple[int, bytes]] = []
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(src.records) - 1))
        _t, (k0, k1), (_v0, end), _e = src.records[at]
        key = data[k0:k1] if draw(st.booleans()) else _string(draw(st.sampled_from(NEW_KEYS)))
        if draw(st.booleans()):
            t, _k, (v0, v1), _e = src.records[draw(st.integers(0, len(src.records) - 1))]
            record = bytes([t]) + key + data[v0:v1]
        else:
            value = draw(st.sampled_from(EXTRA_VALUES))
            record = value[:1] + key + value[1:]
        if draw(st.booleans()):
            ms = draw(st.sampled_from([1_000, NOW + 60_000, 1 << 50]))
            record = b"\xfc" + ms.to_bytes(8, "little") + record
        inserts.append((end, record))
    out = bytearray()
    pos = 0
    for end, record in sorted(inserts, key=lambda i: i[0]):
        out += data[pos:end] + record
        pos = end
    out += data[pos : src.eof + 1]
    out += crc64(bytes(out)).to_bytes(8, "little")
    named = draw(st.lists(st.sampled_from(src.keys), min_size=0, max_size=4))
    c_named = draw(st.lists(st.sampled_from(src.keys), min_size=0, max_size=4))
    key = st.sampled_from([b"a", b"b", *named]) if named else st.sampled_from([b"a", b"b"])
    c_key = st.sampled_from([b"c1", b"c2", *c_named]) if c_named else st.sampled_from([b"c1"])
    member = st.sampled_from([b"m1", b"m2", *(m for k in c_named for m in src.members[k])])
    return src, bytes(out), draw(items(key, c_key, member))


NEW_KEYS = [b"n1", b"n2", b"a", b"c1"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=rdb_case(),
    layout=st.sampled_from(["preamble", "base", "base+incr"]),
    rows=st.sampled_from([1, 3, 4096]),  # keys per batch of the C walk: batch ends crossed
)
def test_generated_rdb_parts_check_alike(
    case: tuple[RdbSource, bytes, list[Any]],
    layout: str,
    rows: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    src, rdb, commands = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(aof_module, "RDB_BATCH_ROWS", rows)
        tmp = tmp_path_factory.mktemp("rdbpart")
        if layout == "preamble":
            path = tmp / "appendonly.aof"
            path.write_bytes(rdb + encode(commands))
        else:
            path = tmp / "appendonlydir"
            path.mkdir()
            (path / "appendonly.aof.manifest").write_bytes(MANIFEST)
            (path / "appendonly.aof.1.base.aof").write_bytes(rdb)
            incr = encode(commands) if layout == "base+incr" else b""
            (path / "appendonly.aof.1.incr.aof").write_bytes(incr)
        fast = outcome(path, True, mp)
        slow = outcome(path, False, mp)
        assert fast[:-1] == slow[:-1], src.name


def test_untouched_rdb_keys_go_to_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An RDB base's keys that no command names are held by the store, undecoded; a key
    named by a command is the Python model's; a duplicate key is still found."""
    src = RdbSource("redis-7.0-all-types")
    path = tmp_path / "appendonlydir"
    path.mkdir()
    (path / "appendonly.aof.manifest").write_bytes(MANIFEST)
    t, (k0, k1), (v0, v1), _e = src.records[-1]  # in the last db: the one the EOF ends
    dup = src.data[: src.eof] + bytes([t]) + src.data[k0:k1] + src.data[v0:v1] + b"\xff"
    (path / "appendonly.aof.1.base.aof").write_bytes(dup + crc64(dup).to_bytes(8, "little"))
    touched = src.keys[1]
    (path / "appendonly.aof.1.incr.aof").write_bytes(aof((b"SADD", touched, b"zz")))
    report, _entries, *_rest, used = same(path, monkeypatch)
    assert used and "duplicate_key" in report
    monkeypatch.setattr(aof_module, "USE_COMPACT", True)
    result = check_backup(path, now_ms=NOW)
    ks = result.replay.keyspace  # type: ignore[union-attr]
    store = ks.compact
    python_keys = {key for d in ks._dbs.values() for key in d.keys}
    assert touched in python_keys
    assert store.value(0, touched) is None
    in_store = [key for _db, key, *_ in store.entries(0)]
    assert len(in_store) > len(src.keys) // 2
    assert not set(in_store) & python_keys
