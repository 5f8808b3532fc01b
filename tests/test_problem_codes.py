"""Every documented problem code the other tests do not produce, each from a minimal input.

For each: the exact (severity, code, offset, message) of ``rbkit check`` (C accelerator and
pure Python alike), and what real servers do with the same bytes: an RDB becomes a server's
dump.rdb (``sanitize-dump-payload yes``), an AOF its appendonly file or ``appendonlydir``.
Where a server loads the file, the keys it holds are read back (INFO keyspace, FUNCTION LIST).

The records are written as rdb.c writes them: the 9-byte header (``REDIS`` and four digits),
SELECTDB (0xFE, a length), a key record (type byte, key, value), RESIZEDB (0xFB), FREQ (0xF9,
one byte), FUNCTION_PRE_GA (0xF6: name, engine, has-description, code), EOF (0xFF) and the
CRC-64. So in ``REDIS0010 FE 00 <record>`` the record's type byte is at offset 11.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aof_support import aof, server_load
from conftest import binary
from rdb_bytes import length, lp, rstr
from server_verdict import loaded

import parsers.rdb.walker as walker_module
from parsers.rdb.crc64 import crc64
from toolkit.check.backup import check_backup
from toolkit.check.problems import ERROR, WARNING
from toolkit.check.rdb import check_rdb
from toolkit.server.process import RedisServer

NOW_MS = 1_700_000_000_000
SELECT0 = b"\xfe\x00"
AT_RECORD = 11  # the first record after REDISnnnn and SELECTDB 0
Problems = tuple[tuple[str, str, int | None, str], ...]


def rdb(version: int, *records: bytes) -> bytes:
    """An RDB file: header, records, EOF, CRC-64."""
    out = b"REDIS%04d" % version + b"".join(records) + b"\xff"
    return out + struct.pack("<Q", crc64(out))


def string(key: bytes, value: bytes = b"v") -> bytes:
    """A string key record (type 0)."""
    return b"\x00" + rstr(key) + rstr(value)


LIB_CODE = b"redis.register_function('f', function() return 1 end)"


@dataclass(frozen=True)
class Case:
    data: bytes
    problems: Problems
    # Per server version: None when it loads the file, else what its log says as it refuses.
    servers: dict[str, str | None]
    keys: dict[int, int] = field(default_factory=dict)  # what a server that loads it holds
    libraries: list[str] = field(default_factory=list)  # and its FUNCTION LIST (7.0+)


CASES = {
    # A type byte no release has (60; Redis's newest ids reach 33): every server stops at it.
    "unknown_type": Case(
        rdb(10, SELECT0, b"\x3c" + rstr(b"k") + rstr(b"v")),
        (
            (
                ERROR,
                "unknown_type",
                AT_RECORD,
                "unknown value type 60 in a REDIS RDB 10 at offset 11",
            ),
        ),
        {"7.0": "Unknown RDB encoding type 60", "8.2": "Unknown RDB encoding type 60"},
    ),
    # A byte in the opcode range (0xF0 and up) that is no opcode; Redis reads it as a type.
    "unknown_opcode": Case(
        rdb(10, SELECT0, b"\xf0" + rstr(b"k") + rstr(b"v")),
        (
            (
                ERROR,
                "unknown_opcode",
                AT_RECORD,
                "unknown opcode 240 in a REDIS RDB 10 at offset 11",
            ),
        ),
        {"7.0": "Unknown RDB encoding type 240", "8.2": "Unknown RDB encoding type 240"},
    ),
    # KEY_META (0xF3) came with RDB 13: an RDB 12 (Redis 8.2) does not have it.
    "unknown_opcode-key-meta-in-rdb-12": Case(
        rdb(12, SELECT0, b"\xf3" + rstr(b"k") + rstr(b"v")),
        (
            (
                ERROR,
                "unknown_opcode",
                AT_RECORD,
                "unknown opcode 243 in a REDIS RDB 12 at offset 11",
            ),
            (
                WARNING,
                "opcode_too_new",
                None,
                "opcodes newer than RDB 12, the version in the header: KEY_META (RDB 13)",
            ),
        ),
        {"8.2": "Unknown RDB encoding type 243"},
    ),
    # A module value of type 6 (Redis 4.0 release candidates): no opcode framing, so only the
    # module can read past it. Module id 12345 is the type name 'AAAAAAAAM' (Redis says so).
    "unsupported": Case(
        rdb(9, SELECT0, b"\x06" + rstr(b"k") + length(12345) + b"\x00"),
        (
            (
                ERROR,
                "unsupported",
                AT_RECORD + 3,  # the value, after the type byte and the key 'k'
                "value of module type 'AAAAAAAAM' in the Redis 4.0 release-candidate format "
                "(type 6), which only that module can read at offset 14 while reading key 'k' "
                "in db 0",
            ),
        ),
        {
            "6.2": "no matching module type 'AAAAAAAAM'",
            "7.0": "no matching module type 'AAAAAAAAM'",
            "8.2": "Pre-release module format not supported",
        },
    ),
    # RESIZEDB says 5 keys, the db holds 1: a hint only, Redis loads the file.
    "resize_hint": Case(
        rdb(10, SELECT0, b"\xfb" + length(5) + length(0), string(b"k")),
        (
            (
                WARNING,
                "resize_hint",
                AT_RECORD,
                "db 0: the resize hint says 5 keys, the file holds 1",
            ),
        ),
        {"7.0": None, "8.2": None},
        {0: 1},
    ),
    # An empty set (type 2, no members) beside a string: Redis loads the file without it.
    "empty_keys": Case(
        rdb(9, SELECT0, b"\x02" + rstr(b"empty") + length(0), string(b"k")),
        ((WARNING, "empty_keys", None, "1 empty collection(s): Redis skips them when loading"),),
        {"6.2": None, "7.0": None, "8.2": None},
        {0: 1},
    ),
    # A library in the format of Redis 7.0-rc1/rc2 (opcode 246): 7.0 loads it (rdbFunctionLoad
    # rewrites it with a "#!lua name=" line), 7.2 and later refuse the file.
    "function_pre_ga": Case(
        rdb(
            10,
            b"\xf6" + rstr(b"mylib") + rstr(b"lua") + length(0) + rstr(LIB_CODE),
            SELECT0,
            string(b"k"),
        ),
        (
            (
                WARNING,
                "function_pre_ga",
                None,
                "functions in the Redis 7.0 release-candidate format: Redis 7.0 loads them, "
                "7.2 and later refuse to",
            ),
        ),
        {"7.0": None, "8.2": "Pre-release function format not supported"},
        {0: 1},
        ["mylib"],
    ),
    # A hash listpack (type 16, RDB 10) in an RDB 9 header: 6.2, which writes RDB 9, does not
    # know the type; 7.0 and 8.2 read it whatever the header says.
    "type_too_new": Case(
        rdb(9, SELECT0, b"\x10" + rstr(b"h") + rstr(lp(b"f", b"v"))),
        (
            (
                WARNING,
                "type_too_new",
                None,
                "value type(s) 16 came after RDB 9, the version in the header",
            ),
        ),
        {"6.2": "Unknown RDB encoding type 16", "7.0": None, "8.2": None},
        {0: 1},
    ),
    # A FREQ opcode (RDB 8, Redis 4.0) before a key of an RDB 7 file: every server here reads it.
    "opcode_too_new": Case(
        rdb(7, SELECT0, b"\xf9\x05", string(b"k")),
        (
            (
                WARNING,
                "opcode_too_new",
                None,
                "opcodes newer than RDB 7, the version in the header: FREQ (RDB 8)",
            ),
        ),
        {"6.2": None, "7.0": None, "8.2": None},
        {0: 1},
    ),
}
# db 0 selected twice, no key repeated: Redis loads both runs into db 0. The full check
# compares the keys themselves (duplicate_key) and has nothing to say; --quick, which does
# not, warns that keys may repeat.
REPEATED_DB = rdb(10, SELECT0, string(b"a"), b"\xfe\x01", string(b"b"), SELECT0, string(b"c"))


def keyspace(server: RedisServer) -> dict[int, int]:
    return {
        int(name[2:]): int(info["keys"])
        for name, info in server.client().info("keyspace").items()
    }  # fmt: skip


def libraries(server: RedisServer) -> list[str]:
    reply = server.client().execute_command("FUNCTION", "LIST")
    return sorted(lib[b"library_name"].decode() for lib in reply)


def problems_of(data: bytes, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Problems:
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
    result = check_rdb(data, now_ms=NOW_MS)
    assert result.valid is all(p.severity == WARNING for p in result.problems)
    return tuple((p.severity, p.code, p.offset, p.message) for p in result.problems)


@pytest.mark.parametrize("name", CASES)
def test_the_code_and_what_redis_does_with_the_file(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES[name]
    assert problems_of(case.data, fast=True, monkeypatch=monkeypatch) == case.problems
    assert problems_of(case.data, fast=False, monkeypatch=monkeypatch) == case.problems
    for version, refuses_with in case.servers.items():
        with loaded(binary(version), case.data) as got:
            if refuses_with is not None:
                assert isinstance(got, str), f"redis {version} loads it"
                assert refuses_with in got, got
                continue
            assert not isinstance(got, str), f"redis {version} refuses it: {got}"
            assert keyspace(got) == case.keys, version
            if got.binary.version >= (7, 0):
                assert libraries(got) == case.libraries, version
    # Errors are refused by every server here; a warning's file is loaded by at least one.
    has_error = any(severity == ERROR for severity, *_ in case.problems)
    assert has_error is all(r is not None for r in case.servers.values())


@pytest.mark.parametrize("fast", [True, False], ids=["c", "python"])
def test_repeated_db_is_a_quick_warning_and_loads(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walker_module, "USE_SPEEDUPS", fast)
    assert check_rdb(REPEATED_DB, now_ms=NOW_MS).problems == []
    quick = check_rdb(REPEATED_DB, now_ms=NOW_MS, quick=True)
    assert [(p.severity, p.code, p.offset, p.message) for p in quick.problems] == [
        (
            WARNING,
            "repeated_db",
            None,
            "db 0 is selected more than once: keys may repeat, and Redis refuses "
            "duplicated keys when loading",
        )
    ]
    for version in ("7.0", "8.2"):
        with loaded(binary(version), REPEATED_DB) as got:
            assert not isinstance(got, str), f"redis {version} refuses it: {got}"
            assert keyspace(got) == {0: 2, 1: 1}


def test_databases_names_the_setting_the_server_needs() -> None:
    """A key in db 20: a server with the default 16 databases refuses the file, one with the
    21 the warning names loads it."""
    data = rdb(10, b"\xfe" + length(20), string(b"k"))
    result = check_rdb(data, now_ms=NOW_MS)
    assert result.valid
    assert [(p.severity, p.code, p.offset, p.message) for p in result.problems] == [
        (WARNING, "databases", None, "db 20 needs a server with 'databases 21' or more "
         "(the default is 16)"),
    ]  # fmt: skip
    for version in ("7.0", "8.2"):
        with loaded(binary(version), data, databases=16) as got:
            assert isinstance(got, str)
            assert "configured to handle more than 16 databases" in got
        with loaded(binary(version), data, databases=21) as got:
            assert not isinstance(got, str), got
            assert keyspace(got) == {20: 1}


# -- AOF ---------------------------------------------------------------------------------------


def test_failing_commands_are_counted_and_redis_loads_the_file(tmp_path: Path) -> None:
    """An LPUSH onto a string: the loading server gets an error reply, drops the command and
    goes on (loadSingleAppendOnlyFile ignores replies)."""
    path = tmp_path / "appendonly.aof"
    path.write_bytes(aof(("SET", "k", "v"), ("LPUSH", "k", "x"), ("SET", "n", "1")))
    result = check_backup(path, now_ms=NOW_MS)
    assert result.valid
    assert [(p.severity, p.code, p.offset, p.message) for p in result.problems] == [
        (
            WARNING,
            "failing_commands",
            None,
            "1 command(s) fail when Redis loads them (an error reply, no effect): LPUSH: "
            "WRONGTYPE Operation against a key holding the wrong kind of value (1x)",
        )
    ]
    assert result.inventory is not None
    assert result.inventory.databases[0].keys == 2
    assert result.inventory.databases[0].by_type == {"string": 2}
    for version in ("6.2", "7.0", "8.2"):
        load = server_load(binary(version), path)
        assert (load.loads, load.keys) == (True, 2), (version, load.log)


def test_manifest_warning_for_a_key_redis_ignores(tmp_path: Path) -> None:
    """An unknown key in a manifest line: aofLoadManifestFromFile skips it and loads the set."""
    folder = tmp_path / "appendonlydir"
    folder.mkdir()
    (folder / "appendonly.aof.1.base.aof").write_bytes(aof(("SET", "a", "1")))
    (folder / "appendonly.aof.1.incr.aof").write_bytes(aof(("SET", "b", "2")))
    (folder / "appendonly.aof.manifest").write_bytes(
        b"file appendonly.aof.1.base.aof seq 1 type b color red\n"
        b"file appendonly.aof.1.incr.aof seq 1 type i\n"
    )
    result = check_backup(folder, now_ms=NOW_MS)
    assert result.valid
    assert [(p.severity, p.code, p.offset, p.message) for p in result.problems] == [
        (WARNING, "manifest", None, "appendonly.aof.manifest: line 1: unknown key 'color' ignored")
    ]
    for version in ("7.0", "8.2"):
        load = server_load(binary(version), folder)
        assert (load.loads, load.keys) == (True, 2), (version, load.log)
