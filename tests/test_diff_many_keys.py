"""A diff that lists thousands of keys (toolkit/diff/keylist.py, the JSON written in pieces):
the same JSON as ``json.dumps`` of the key list a plain walk of the two servers gives.

Two dbs of 3,500 strings each; the changes remove, resize, retype, add and move TTLs of
about 4,400 keys: more than one piece of the JSON writer (cli/jsontext.py COMPACT) and more
than the 4,096 keys a limited list keeps before it is cut.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from conftest import binary, invoke_cli

from toolkit.cli.jsontext import dumps_indented, write_indented
from toolkit.diff import render
from toolkit.diff.compute import compute_diff
from toolkit.diff.model import ADDED, REMOVED, SIZE, TTL_CHANGED, TTL_GAINED, TTL_LOST, TYPE
from toolkit.diff.render import diff_json
from toolkit.server.process import RedisServer, running_server

FAR = 4_102_444_800_000  # 2100-01-01 in ms
N = 3500
DBS = (0, 2)

# Names JSON must escape: not UTF-8 (then also as key_b64), quotes and control bytes, non-ASCII.
ODD_KEYS = [b"bin:\xff\xfe\x00", b'q:"\\\n\t\x1b[31m', "u:ключ".encode()]
# (db, key) -> (type, expire_ms or None, size)
Walk = dict[tuple[int, bytes], tuple[str, int | None, int]]


def _fill(server: RedisServer) -> None:
    for db in DBS:
        c = server.client(db)
        p = c.pipeline(transaction=False)
        for i in range(N):
            key = f"k:{i:05d}"
            p.set(key, "v" * (i % 7 + 1))
            if i % 3 == 0:
                p.pexpireat(key, FAR + i)
        for key in ODD_KEYS:
            p.set(key, "odd")
        p.execute()
        c.close()


def _change(server: RedisServer) -> None:
    for db in DBS:
        c = server.client(db)
        p = c.pipeline(transaction=False)
        for i in range(N):
            key = f"k:{i:05d}"
            step = i % 10
            if step == 0:
                p.delete(key)
            elif step == 1:
                p.append(key, "x")
            elif step == 2:
                p.persist(key) if i % 3 == 0 else p.pexpireat(key, FAR + i)
            elif step == 3:
                p.delete(key)
                p.hset(key, mapping={"f": "1", "g": "2"})
            elif step == 4 and i % 3 == 0:
                p.pexpireat(key, FAR + i + 60_000)
            if i % 5 == 0:
                p.set(f"n:{i:05d}", "new")
        p.delete(ODD_KEYS[0])
        p.append(ODD_KEYS[1], "!")
        p.pexpireat(ODD_KEYS[2], FAR)
        p.execute()
        c.close()


def _walk(server: RedisServer) -> Walk:
    """Every key as plain commands give it: TYPE, PEXPIRETIME, STRLEN or HLEN."""
    out: Walk = {}
    for db in DBS:
        c = server.client(db)
        keys = sorted(c.scan_iter(count=1000))
        p = c.pipeline(transaction=False)
        for k in keys:
            p.type(k)
            p.execute_command("PEXPIRETIME", k)
        got = p.execute()
        p = c.pipeline(transaction=False)
        for k, t in zip(keys, got[0::2], strict=True):
            p.strlen(k) if t == b"string" else p.hlen(k)
        sizes = p.execute()
        for k, t, exp, size in zip(keys, got[0::2], got[1::2], sizes, strict=True):
            out[(db, k)] = (t.decode(), None if exp < 0 else exp, size)
        c.close()
    return out


def _save(server: RedisServer, target: Path) -> Path:
    c = server.client()
    c.save()
    c.close()
    shutil.copyfile(server.directory / "dump.rdb", target)
    return target


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Walk, Walk]:
    directory = tmp_path_factory.mktemp("diff-many")
    with running_server(binary("7.0"), directory=tmp_path_factory.mktemp("server")) as server:
        _fill(server)
        before = _walk(server)
        a = _save(server, directory / "before.rdb")
        _change(server)
        after = _walk(server)
        b = _save(server, directory / "after.rdb")
    return a, b, before, after


def _kinds(a: tuple[str, int | None, int] | None, b: tuple[str, int | None, int] | None) -> list:
    if b is None:
        return [REMOVED]
    if a is None:
        return [ADDED]
    kinds = [TYPE] if a[0] != b[0] else [SIZE] if a[2] != b[2] else []
    if a[1] is None and b[1] is not None:
        kinds.append(TTL_GAINED)
    elif a[1] is not None and b[1] is None:
        kinds.append(TTL_LOST)
    elif a[1] is not None and b[1] is not None and abs(a[1] - b[1]) > 1000:
        kinds.append(TTL_CHANGED)
    return kinds


def _state(s: tuple[str, int | None, int] | None, time_ms: int) -> dict | None:
    if s is None:
        return None
    return {
        "type": s[0],
        "expire_ms": s[1],
        "ttl_ms": None if s[1] is None else s[1] - time_ms,
        "size": s[2],
    }


def _name(key: bytes) -> dict[str, str]:
    """A key's name fields as docs/diff.md gives them: the UTF-8 text, or for other bytes the
    text with \\xNN escapes and the exact bytes in base64."""
    try:
        return {"key": key.decode()}
    except UnicodeDecodeError:
        return {
            "key": key.decode("utf-8", "backslashreplace"),
            "key_b64": base64.b64encode(key).decode(),
        }


def _expected_keys(before: Walk, after: Walk, a_time: int, b_time: int) -> list[dict]:
    """The "keys" list of diff --json, from the two walks, in (db, key) order."""
    out = []
    for db, key in sorted(before.keys() | after.keys()):
        a, b = before.get((db, key)), after.get((db, key))
        kinds = _kinds(a, b)
        if kinds:
            out.append(
                {
                    "db": db,
                    **_name(key),
                    "kinds": kinds,
                    "a": _state(a, a_time),
                    "b": _state(b, b_time),
                }
            )
    return out


def test_json_lists_every_key_as_json_dumps_writes_it(
    made: tuple[Path, Path, Walk, Walk],
) -> None:
    a, b, before, after = made
    run = invoke_cli("diff", "--json", a, b)
    assert run.exit_code == 1 and run.stderr == ""
    data = json.loads(run.stdout)
    assert run.stdout == json.dumps(data, indent=1) + "\n"  # json.dumps's text, byte for byte
    expected = _expected_keys(before, after, data["a"]["time_ms"], data["b"]["time_ms"])
    assert len(expected) > 4096
    assert data["keys"] == expected
    assert data["keys_differing"] == len(expected)


@pytest.mark.parametrize("rows", [1, 7, render.TEXT_ROWS])
def test_streamed_json_is_the_text_of_the_listed_json(
    made: tuple[Path, Path, Walk, Walk], rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listed keys' text, made with Arrow a chunk of ``rows`` keys at a time (names JSON
    must escape by the per-key writer), is json.dumps's."""
    monkeypatch.setattr(render, "TEXT_ROWS", rows)
    a, b, _, _ = made
    report = compute_diff(str(a), str(b), limit=None)
    text = json.dumps(diff_json(report), indent=1)
    assert dumps_indented(diff_json(report, stream=True)) == text
    pieces: list[str] = []
    write_indented(diff_json(report, stream=True), pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == text


def test_a_limit_keeps_the_first_keys_in_order(made: tuple[Path, Path, Walk, Walk]) -> None:
    a, b, before, after = made
    report = compute_diff(str(a), str(b), limit=10)
    expected = [
        (db, key)
        for db, key in sorted(before.keys() | after.keys())
        if _kinds(before.get((db, key)), after.get((db, key)))
    ]
    assert [(k.db, k.key) for k in report.keys] == expected[:10]
    assert report.keys_differing == len(expected)
