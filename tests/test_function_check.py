"""Function libraries (FUNCTION2): ``rbkit check`` calls INVALID (``bad_function``) what Redis
refuses to load ("Failed loading library"), and VALID what it loads.

Every library of the table is first loaded by real servers (Redis 7.0 and 8.2, as the
``dump.rdb`` they start with); the test fails unless they agree with each other and with rbkit.
Code that never finishes is not shown to a server (it would hang it: Redis loads libraries with
no time limit): rbkit must end it, and call the file INVALID, within its limits.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from rdb_bytes import rstr
from server_verdict import refusal, servers_reading

import toolkit.check.functions as function_check
from parsers.rdb.crc64 import crc64
from toolkit.check.functions import split_args
from toolkit.check.rdb import check_rdb

LIB = b"#!lua name=lib1\n"
F1 = b"redis.register_function('f1', function() return 1 end)\n"


def rdb(*records: bytes) -> bytes:
    out = bytearray(b"REDIS0010") + b"".join(records) + b"\xfe\x00" + b"\x00\x01k\x01v" + b"\xff"
    return bytes(out + struct.pack("<Q", crc64(bytes(out))))


def function2(payload: bytes) -> bytes:
    return b"\xf5" + rstr(payload)


def pre_ga(name: bytes, code: bytes) -> bytes:
    """The 7.0 release candidates' record: name, engine, no description, code."""
    return b"\xf6" + rstr(name) + rstr(b"LUA") + b"\x00" + rstr(code)


CASES: dict[str, tuple[list[bytes], bool]] = {  # records, whether Redis loads the file
    "positional": ([function2(LIB + F1)], True),
    "named arguments": (
        [
            function2(
                LIB + b"redis.register_function{function_name='f1', callback=function() end,"
                b" flags={'no-writes', 'ALLOW-OOM'}, description='d'}\n"
            )
        ],
        True,
    ),
    "log and version": (
        [
            function2(
                LIB + b"redis.log(redis.LOG_NOTICE, 'loading', redis.REDIS_VERSION)\n"
                b"if redis.REDIS_VERSION_NUM > 0 then " + F1 + b" end\n"
            )
        ],
        True,
    ),
    "string methods": ([function2(LIB + b"local n = ('ab'):rep(2)\n" + F1)], True),
    "engine in capitals": ([function2(b"#!LUA   name=lib1  \n" + F1)], True),
    "syntax error": ([function2(LIB + F1[:-2] + b"\n")], False),
    "Lua 5.2 goto": ([function2(LIB + b"goto done\n::done::\n" + F1)], False),
    "registers nothing": ([function2(LIB + b"local unused = function() return 1 end\n")], False),
    "calls redis.call at load": ([function2(LIB + b"redis.call('SET', 'x', '1')\n" + F1)], False),
    "reads a standard library": (
        [function2(LIB + b"local s = string.format('%d', 1)\n" + F1)],
        False,
    ),
    "uses pcall": ([function2(LIB + b"local ok = pcall(function() end)\n" + F1)], False),
    "writes a global": ([function2(LIB + b"counter = 1\n" + F1)], False),
    "unknown flag": (
        [
            function2(
                LIB + b"redis.register_function{function_name='f1', callback=function() end,"
                b" flags={'no-writes', 'bogus'}}\n"
            )
        ],
        False,
    ),
    "bad function name": ([function2(LIB + F1.replace(b"'f1'", b"'f-1'"))], False),
    "function twice in a library": ([function2(LIB + F1 + F1)], False),
    "function of another library": (
        [function2(LIB + F1), function2(b"#!lua name=lib2\n" + F1.replace(b"f1", b"F1"))],
        False,
    ),
    "library twice": ([function2(LIB + F1), function2(LIB + F1.replace(b"f1", b"f2"))], False),
    "no shebang": ([function2(F1)], False),
    "no name": ([function2(b"#!lua\n" + F1)], False),
    "unknown engine": ([function2(b"#!js name=lib1\n" + F1)], False),
    "unclosed quote in metadata": ([function2(b'#!lua name="lib1\n' + F1)], False),
    "pre-GA record registering nothing": ([pre_ga(b"old", b"local x = 1\n")], False),
}


@pytest.mark.parametrize("name", CASES)
def test_rbkit_agrees_with_redis(name: str) -> None:
    records, loads = CASES[name]
    data = rdb(*records)
    said = {b.version_text: refusal(b, data) for b in servers_reading(10)}
    assert len(said) == 2
    assert all((reason is None) == loads for reason in said.values()), said
    result = check_rdb(data)
    bad = [p for p in result.problems if p.code == "bad_function"]
    if loads:
        assert result.verdict == "valid" and not bad, result.problems
    else:
        assert result.verdict == "invalid"
        assert len(bad) == 1 and bad[0].severity == "error"
        offsets = [data.index(r) for r in records]
        assert bad[0].offset in offsets
        assert "Redis refuses the file" in bad[0].message


def test_code_that_never_ends_is_stopped() -> None:
    result = check_rdb(rdb(function2(LIB + b"while true do end\n")))
    assert result.verdict == "invalid"
    [problem] = result.problems
    assert problem.code == "bad_function" and "no time limit" in problem.message
    assert "did not finish within 20000000 Lua instructions" in problem.message


def test_a_hanging_pattern_match_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pattern match runs inside one Lua instruction, out of reach of the instruction limit:
    the child process is killed after TIMEOUT, and the library after it is not run."""
    monkeypatch.setattr(function_check, "TIMEOUT", 2.0)
    bomb = LIB + b"local s = ('a'):rep(40)\nlocal p = ('a*'):rep(30) .. 'b'\ns:find(p)\n" + F1
    data = rdb(function2(bomb), function2(b"#!lua name=lib2\nlocal never_judged = 1\n"))
    result = check_rdb(data)
    [problem] = result.problems  # nothing about lib2, which registers nothing
    assert problem.offset == data.index(function2(bomb))
    assert "did not finish within 2 s" in problem.message


def test_memory_is_bounded() -> None:
    result = check_rdb(rdb(function2(LIB + b"local s = ('x'):rep(2 ^ 30)\n" + F1)))
    [problem] = result.problems
    assert "needed more than 64 MB" in problem.message


def test_the_code_cannot_reach_files(tmp_path: Path) -> None:
    target = tmp_path / "written"
    code = b"io.open('%s', 'w'):write('x')\nos.execute('touch %s')\n" % (
        str(target).encode(),
        str(target).encode(),
    )
    result = check_rdb(rdb(function2(LIB + code + F1)))
    assert result.verdict == "invalid"
    assert "nonexistent global variable 'io'" in result.problems[0].message
    assert not target.exists()


def test_names_from_the_file_are_escaped() -> None:
    result = check_rdb(rdb(function2(b"#!lua name=li\x1b[2Jb\n" + F1)))
    [problem] = result.problems
    assert "\x1b" not in problem.message and "li\\x1b[2Jb" in problem.message


def test_a_sandbox_that_cannot_start_is_a_warning_not_a_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(function_check.sys, "executable", "/nonexistent/python")
    result = check_rdb(rdb(function2(LIB + b"-- not seen before\n" + F1)))
    assert [p.code for p in result.problems] == ["functions_unchecked"]
    assert result.problems[0].severity == "warning"


def test_split_args_reads_the_shebang_as_sdssplitargs() -> None:
    """The cases of Redis's own sds.c tests for sdssplitargs, and its failures."""
    assert split_args(b"#!lua name=lib") == [b"#!lua", b"name=lib"]
    assert split_args(b"  \"a b\" 'c\\'d'  e") == [b"a b", b"c'd", b"e"]
    assert split_args(b'"\\x41\\x4a\\n"') == [b"AJ\n"]
    assert split_args(b'"unterminated') is None
    assert split_args(b'"closed"glued') is None
    assert split_args(b"   ") == []
    assert split_args(b"a\0b c") == [b"a"]
