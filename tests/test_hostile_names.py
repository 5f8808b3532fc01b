"""Hostile names are inert: keys written by a real server with ESC sequences, CR, LF, the
one-byte CSI (0x9b), C1 codes, bidi controls, backslashes and invalid UTF-8 reach no output
raw (check text and JSON, diff table, Markdown and JSON), and two different names never show
alike: the text ``lit\\xff`` and the bytes ``lit`` + 0xFF print differently.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from aof_support import resp
from conftest import binary, invoke_cli

from parsers.printable import printable
from toolkit.check.render import render_check
from toolkit.check.result import CheckResult
from toolkit.server.process import running_server

HOSTILE = [
    b"\x1b[2J\x1b[Hfake.rdb: VALID",  # clear the screen, home, print a verdict
    b"cr\rfake: VALID",
    b"nl\nfake.rdb: VALID",
    b"csi\x9b31mred",  # the one-byte CSI
    b"c1-as-utf8-\xc2\x9b31m",  # U+009B, a C1 control in UTF-8
    b"bidi-\xe2\x80\xaeevil",  # RIGHT-TO-LEFT OVERRIDE
    b"bell\x07tab\tdel\x7f",
    b"back\\slash",
    b"lit\\xff",  # the text: backslash, x, f, f
    b"lit\xff",  # the byte 0xFF
    b"osc\x1b]0;title\x07",
]


def raw_control(text: str) -> list[str]:
    """Characters in ``text`` a terminal could act on (a line break is allowed)."""
    return [
        c
        for c in text
        if (ord(c) < 0x20 and c != "\n")
        or 0x7F <= ord(c) <= 0x9F
        or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        or "\ud800" <= c <= "\udfff"
    ]


def test_printable_escapes_as_redis_cli_and_keeps_names_apart() -> None:
    assert printable(b"lit\\xff") == "lit\\\\xff"
    assert printable(b"lit\xff") == "lit\\xff"
    assert printable(b"\x1b[2J\r\n\t") == "\\x1b[2J\\r\\n\\t"
    assert printable(b"csi\x9b") == "csi\\x9b"
    assert printable("caf\u00e9 \u65e5") == "caf\u00e9 \u65e5"
    assert printable("a\u009bb") == "a\\xc2\\x9bb"
    assert printable("x\u202ey") == "x\\xe2\\x80\\xaey"
    assert printable("a\\b\nc\x1b", composed=True, lines=True) == "a\\b\nc\\x1b"
    assert len({printable(k) for k in HOSTILE}) == len(HOSTILE)


@pytest.fixture(scope="module")
def hostile_rdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An RDB saved by Redis 7.0 with every hostile key (and a plain one), SAVEd."""
    directory = tmp_path_factory.mktemp("hostile")
    with running_server(binary("7.0"), directory=directory) as server:
        client = server.client()
        for i, key in enumerate(HOSTILE):
            client.set(key, b"v" * (100 + i))
        client.rpush(b"list\x1b[31m", b"a", b"b")
        client.set(b"plain", b"x")
        client.save()
    return directory / "dump.rdb"


@pytest.fixture(scope="module")
def empty_rdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("empty")
    with running_server(binary("7.0"), directory=directory) as server:
        server.client().save()
    return directory / "dump.rdb"


def key_bytes(entry: dict[str, str]) -> bytes:
    """A JSON key entry's exact bytes: ``key_b64`` if there is one, else ``key`` as UTF-8."""
    if "key_b64" in entry:
        return base64.b64decode(entry["key_b64"])
    return entry["key"].encode("utf-8")


def assert_inert(text: str) -> None:
    assert not raw_control(text), sorted(set(raw_control(text)))
    assert "fake.rdb: VALID" not in text.splitlines()
    assert not any(line.startswith("fake") for line in text.splitlines())


def test_check_text_shows_every_hostile_key_escaped(hostile_rdb: Path) -> None:
    out = invoke_cli("check", hostile_rdb, "--top", "50")
    assert out.exit_code == 0, out.stdout
    assert_inert(out.stdout)
    for key in HOSTILE:
        assert printable(key) in out.stdout, printable(key)
    assert "lit\\\\xff" in out.stdout and "lit\\xff " in out.stdout


def test_check_json_keys_not_utf8_carry_their_bytes(hostile_rdb: Path) -> None:
    out = invoke_cli("check", hostile_rdb, "--top", "50", "--json")
    assert out.exit_code == 0
    assert_inert(out.stdout)
    report = json.loads(out.stdout)
    by_bytes = {key_bytes(entry): entry for entry in report["biggest"]}
    assert set(HOSTILE) <= set(by_bytes)
    assert "key_b64" in by_bytes[b"lit\xff"] and "key_b64" in by_bytes[b"csi\x9b31mred"]
    assert "key_b64" not in by_bytes[b"lit\\xff"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_diff_outputs_show_every_hostile_key_escaped(
    fmt: str, hostile_rdb: Path, empty_rdb: Path
) -> None:
    out = invoke_cli("diff", hostile_rdb, empty_rdb, "--keys", "--format", fmt)
    assert out.exit_code == 1, out.stdout + out.stderr
    assert_inert(out.stdout)
    if fmt == "json":
        keys = json.loads(out.stdout)["keys"]
        listed = {key_bytes(k) for k in keys}
        assert set(HOSTILE) <= listed
    else:
        for key in HOSTILE:
            assert printable(key) in out.stdout, (fmt, printable(key))


def test_check_and_diff_of_an_aof_with_hostile_keys_and_command_names(
    tmp_path: Path, empty_rdb: Path
) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    with running_server(binary("7.0"), directory=directory, config={"appendonly": "yes"}) as server:
        client = server.client()
        for key in HOSTILE:
            client.rpush(key, b"x")
    aof_dir = directory / "appendonlydir"
    out = invoke_cli("check", aof_dir, "--top", "50")
    assert out.exit_code == 0, out.stdout
    assert_inert(out.stdout)
    out = invoke_cli("diff", aof_dir, empty_rdb, "--keys")
    assert out.exit_code == 1, out.stdout + out.stderr
    assert_inert(out.stdout)
    for key in HOSTILE:
        assert printable(key) in out.stdout
    # A command name that clears the screen: an unknown command, named escaped.
    damaged = tmp_path / "damaged"
    shutil.copytree(aof_dir, damaged)
    incr = next(damaged.glob("*.incr.aof"))
    incr.write_bytes(incr.read_bytes() + resp(b"\x1b[2J\x9bVALID", b"k"))
    out = invoke_cli("check", damaged)
    assert out.exit_code == 1
    assert_inert(out.stdout)
    assert "\\x1b[2J\\x9bVALID" in out.stdout


def test_aux_functions_and_module_names_are_escaped_in_the_check_text() -> None:
    from toolkit.check.inventory import Inventory

    result = CheckResult("x.rdb", "rdb", 10, 0)
    result.aux = {"redis-ver": "7.0.15\x1b[2J\nfake.rdb: VALID", "ctime": "1\r2"}
    result.inventory = Inventory()
    result.inventory.functions = ["lib\x1b]0;t\x07"]
    result.inventory.modules = ["mod\x9b"]
    result.notes.append("a note\nfake.rdb: VALID")
    text = render_check(result)
    assert_inert(text)
    assert "redis-ver=7.0.15\\x1b[2J\\nfake.rdb: VALID" in text
    assert "lib\\x1b]0;t\\a" in text and "mod\\xc2\\x9b" in text


def test_restore_drill_report_is_inert(hostile_rdb: Path) -> None:
    out = invoke_cli("restore", hostile_rdb, "--stage-only")
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "VERIFIED" in out.stdout or "verified" in out.stdout
    assert_inert(out.stdout)
    assert_inert(out.stderr)
