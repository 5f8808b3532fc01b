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


def pairs(second: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    return st.lists(st.tuples(second, MEMBER), min_size=1, max_size=3).map(
        lambda ps: [x for p in ps for x in p]
    )


C_COMMANDS = [
    cmd(b"SET", C_KEY, MEMBER),
    cmd(b"RPUSH", C_KEY, MEMBERS),
    cmd(b"LPUSH", C_KEY, MEMBERS),
    cmd(b"SADD", C_KEY, MEMBERS),
    cmd(b"HSET", C_KEY, pairs(MEMBER)),
    cmd(b"HMSET", C_KEY, pairs(MEMBER)),
    cmd(b"ZADD", C_KEY, pairs(SCORE)),
    cmd(b"PEXPIREAT", C_KEY, INT),
    cmd(b"DEL", C_KEY),
]
PY_COMMANDS = [
    cmd(b"SET", KEY, MEMBER, st.sampled_from([[b"PXAT", b"2000"], [b"NX"], [b"GET"], [b"EX"]])),
    cmd(b"SET", KEY),
    cmd(b"HSET", KEY, MEMBER),
    cmd(b"ZADD", KEY, st.sampled_from([b"NX", b"XX", b"CH"]), SCORE, MEMBER),
    cmd(b"PEXPIREAT", KEY, INT, b"NX"),
    cmd(b"DEL", KEY, KEY),
    cmd(b"SREM", KEY, MEMBERS),
    cmd(b"INCR", KEY),
    cmd(b"APPEND", KEY, MEMBER),
    cmd(b"LPOP", KEY),
    cmd(b"HDEL", KEY, MEMBER),
    cmd(b"ZREM", KEY, MEMBER),
    cmd(b"RENAME", KEY, KEY),
    cmd(b"MOVE", KEY, DB),
    cmd(b"COPY", KEY, KEY, b"DB", DB),
    cmd(b"EXPIRE", KEY, b"100"),
    cmd(b"SELECT", DB),
    cmd(b"SELECT", DB),
    cmd(b"SWAPDB", DB, DB),
    cmd(b"FLUSHDB"),
    cmd(b"FLUSHALL"),
    cmd(b"FOOBAR", KEY),
    cmd(b"MULTI"),
    cmd(b"EXEC"),
    cmd(b"DISCARD"),
]
SCRIPT = cmd(b"EVAL", b"return 1", b"1", KEY)
C_COMMAND = st.sampled_from(C_COMMANDS).flatmap(lambda s: s)
ITEM = st.one_of(
    C_COMMAND.map(lambda c: [c]),
    C_COMMAND.map(lambda c: [c]),
    st.sampled_from(PY_COMMANDS).flatmap(lambda s: s).map(lambda c: [c]),
    st.integers(1_600_000_000, 1_700_000_000).map(lambda t: [b"#TS:%d" % t]),
    st.tuples(
        st.lists(C_COMMAND, min_size=1, max_size=3), st.sampled_from([b"EXEC", b"DISCARD"])
    ).map(lambda t: [(b"MULTI",), *t[0], (t[1],)]),
)
STREAM = st.lists(ITEM, min_size=1, max_size=30).map(lambda items: [x for i in items for x in i])


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
