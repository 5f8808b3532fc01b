"""Selective network restores (``rbkit restore BACKUP --to URL`` with --match, --db, --type,
--keys-from, --on-conflict, --ttl) with real redis-server processes.

Every expectation is read from the servers themselves: the source server's SCAN MATCH, TYPE,
DUMP, PEXPIRETIME and TIME, and the target's, with plain redis-py commands; DEBUG DIGEST and
DUMP of every key show that a refused restore wrote nothing. The glob is checked against the
server's own SCAN MATCH on the same names (the server is the spec).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import DEBUG_CONFIG, binary, invoke_cli, keep_expired_keys, server_ms, wait_past
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plain_view import key_view

from toolkit.server.glob import glob_matcher, stringmatch
from toolkit.server.process import RedisServer, running_server

# -- helpers -----------------------------------------------------------------------------------


@contextlib.contextmanager
def server(version: str = "7.0", directory: Path | None = None) -> Iterator[RedisServer]:
    config = dict(DEBUG_CONFIG) if version != "6.2" else {}
    with running_server(binary(version), directory=directory, config=config) as s:
        yield s


def url(s: RedisServer) -> str:
    return f"redis://127.0.0.1:{s.port}"


def backup_of(s: RedisServer, tmp_path: Path, name: str = "backup.rdb") -> Path:
    """SAVE, and a copy of the file the server wrote (later saves do not touch it)."""
    s.client().save()
    copy = tmp_path / name
    shutil.copyfile(s.directory / "dump.rdb", copy)
    return copy


def restore(backup: Path, target: RedisServer, *args: str | Path) -> tuple[int, dict[str, Any]]:
    run = invoke_cli("restore", backup, "--to", url(target), "--yes", "--json", *args)
    assert "Traceback" not in run.stdout + run.stderr
    return run.exit_code, json.loads(run.stdout)


def keys(s: RedisServer, db: int = 0) -> set[bytes]:
    return set(s.client(db).scan_iter(count=1000))


def dumps(s: RedisServer, db: int = 0) -> dict[bytes, bytes]:
    c = s.client(db)
    return {k: c.dump(k) for k in c.scan_iter(count=1000)}


def state(s: RedisServer) -> tuple[int, bytes, dict[bytes, bytes]]:
    """DBSIZE, DEBUG DIGEST and every key's DUMP of db 0: what 'wrote nothing' compares."""
    c = s.client()
    return c.dbsize(), c.execute_command("DEBUG", "DIGEST"), dumps(s)


def fill(c: redis.Redis) -> None:
    """Keys of every plain type under a few families."""
    for i in range(12):
        c.set(f"user:{i}", f"name {i}")
    c.set("user:", "empty suffix")
    c.rpush("queue:a", *range(30))
    c.sadd("set:a", *range(10))
    c.zadd("zset:a", {"x": 1, "y": 2.5})
    c.hset("user:7:profile", mapping={"mail": "u7@example", "age": "7"})
    c.hset("session:1", mapping={"t": "x"})
    c.xadd("events", {"k": "v"}, id="1-1")


# -- the glob ----------------------------------------------------------------------------------

GLOB_NAMES = [
    b"",
    b"a",
    b"ab",
    b"abc",
    b"b",
    b"a*c",
    b"a?c",
    b"a[c",
    b"a]c",
    b"a\\c",
    b"a-c",
    b"^",
    b"-",
    b"]",
    b"\x00",
    b"a\x00c",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"a\xff",
    b"\xffa",
    b"Z",
    b"z",
    b"user:1",
    b"user:10",
    b"user:",
    b"a\nb",
]
GLOB_EDGES = [
    b"*",
    b"**",
    b"",
    b"?",
    b"??",
    b"a*",
    b"*c",
    b"a*c",
    b"a**c",
    b"a\\*c",
    b"a\\?c",
    b"a\\",
    b"\\",
    b"a\\c",
    b"a\\\\c",
    b"[a-c]",
    b"[c-a]",
    b"[^a-c]",
    b"[a-]",
    b"[-a]",
    b"[]",
    b"[^]",
    b"[",
    b"a[",
    b"a[c",
    b"[]]",
    b"[]a]",
    b"[\\]]",
    b"a[\\]]c",
    b"[\\",
    b"[a-\\]]",
    b"[a-\xff]",
    b"[\xff-a]",
    b"[\x80-\xff]",
    b"[^\x80-\xff]",
    b"[\x00-\x7f]",
    b"?\xff",
    b"*\x00*",
    b"user:?",
    b"user:*",
    b"user:[0-9]",
    b"user:[^0-9]*",
    b"a?b",
    b"a\nb",
    b"*[",
    b"[a-c",
    b"[^a",
]
_ALPHABET = [b"a", b"b", b"c", b"*", b"?", b"[", b"]", b"^", b"-", b"\\", b"\xff", b"\x00", b"\x80"]


@pytest.fixture(scope="module")
def glob_servers() -> Iterator[list[redis.Redis]]:
    """Servers of 6.2, 7.0 and 8.2 holding GLOB_NAMES."""
    with contextlib.ExitStack() as stack:
        clients = []
        for version in ("6.2", "7.0", "8.2"):
            s = stack.enter_context(running_server(binary(version)))
            c = s.client()
            for name in GLOB_NAMES:
                c.set(name, 1)
            clients.append(c)
        yield clients


def _agree(clients: list[redis.Redis], pattern: bytes) -> None:
    ours = {n for n in GLOB_NAMES if glob_matcher(pattern)(n)}
    port = {n for n in GLOB_NAMES if pattern == b"*" or stringmatch(pattern, n)}
    assert ours == port, pattern
    for c in clients:
        assert set(c.scan_iter(match=pattern, count=1000)) == ours, (pattern, c)


@pytest.mark.parametrize("pattern", GLOB_EDGES, ids=repr)
def test_glob_edges_agree_with_scan_match(glob_servers: list[redis.Redis], pattern: bytes) -> None:
    _agree(glob_servers, pattern)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_ALPHABET), max_size=7).map(b"".join))
def test_glob_agrees_with_scan_match(glob_servers: list[redis.Redis], pattern: bytes) -> None:
    _agree(glob_servers, pattern)


def test_signed_char_ranges_as_the_server_reads_them(glob_servers: list[redis.Redis]) -> None:
    """[a-\\xff] is a range from -1 to 97 in C's signed char: 0x00-0x61 and 0xff, not 0x80."""
    m = glob_matcher(b"[a-\xff]")
    assert m(b"\x00") and m(b"a") and m(b"\xff") and not m(b"\x80") and not m(b"b")
    _agree(glob_servers, b"[a-\xff]")


def test_a_pattern_nested_too_deep_matches_nothing() -> None:
    """More than 1000 nested * give no match (Redis >= 7.2.6), even where it would match."""
    deep = b"a*" * 1001 + b"a"
    name = b"a" * 1002
    assert not stringmatch(deep, name) and not glob_matcher(deep)(name)
    shallow = b"a*" * 999 + b"a"
    assert stringmatch(shallow, name) and glob_matcher(shallow)(name)


# -- --match, --db, --type ---------------------------------------------------------------------


def test_match_restores_what_scan_match_selects(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        c = src.client()
        fill(c)
        c.set(b"user:\xff\x00", "binary")
        backup = backup_of(src, tmp_path)
        patterns = [b"user:[0-9]", b"*:a", b"user:\\xff*"]
        expected = set()
        for p in patterns:
            expected |= set(c.scan_iter(match=p, count=1000))
        args = [x for p in patterns for x in ("--match", os.fsdecode(p))]
        code, report = restore(backup, dst, *args)
        assert code == 0, report["reasons"]
        assert keys(dst) == expected and len(expected) == 13  # 10 users, 3 *:a
        source = dumps(src)
        for k, payload in dumps(dst).items():
            assert payload == source[k], k
        selection = report["selection"]
        assert selection["to_write"]["keys"] == len(expected)
        assert selection["skipped"]["not_selected"] == c.dbsize() - len(expected)
        by_type: dict[str, int] = {}
        for k in expected:
            t = c.type(k).decode()
            by_type[t] = by_type.get(t, 0) + 1
        assert selection["to_write"]["by_type"] == by_type
        assert report["verification"]["mode"] == "keys"
        assert report["verification"]["checked"] == len(expected)


def test_db_and_type_select_together(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        for db in (0, 1, 2):
            fill(src.client(db))
        backup = backup_of(src, tmp_path)
        code, report = restore(backup, dst, "--db", "1", "--db", "2", "--type", "hash",
                               "--type", "list")  # fmt: skip
        assert code == 0, report["reasons"]
        assert keys(dst, 0) == set()
        for db in (1, 2):
            c = src.client(db)
            want = {k for k in c.scan_iter() if c.type(k) in (b"hash", b"list")}
            assert keys(dst, db) == want and len(want) == 3
            theirs = dumps(src, db)
            assert all(theirs[k] == v for k, v in dumps(dst, db).items())


def test_an_absent_db_or_type_is_said(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        fill(src.client())
        backup = backup_of(src, tmp_path)
        code, report = restore(backup, dst, "--db", "5", "--type", "strng", "--dry-run")
        assert code == 0 and report["selection"]["to_write"]["keys"] == 0
        notes = " ".join(report["selection"]["notes"])
        assert "the backup has no db 5" in notes and "no key of type strng" in notes


def test_command_path_restores_the_selection(tmp_path: Path) -> None:
    """RDB 10 (7.0) into 6.2, which cannot read its payloads: plain commands, same values."""
    with server("7.0") as src, server("6.2") as dst:
        c = src.client()
        fill(c)
        c.set("user:ttl", "x", px=3_600_000)
        backup = backup_of(src, tmp_path)
        code, report = restore(backup, dst, "--match", "user:*", "--ttl", "none")
        assert code == 0, report["reasons"]
        assert report["path"] == "commands"
        want = set(c.scan_iter(match="user:*"))
        assert keys(dst) == want
        d = dst.client()
        for k in want:
            assert key_view(d, k, (6, 2), {}) == key_view(c, k, (6, 2), {}), k
            assert d.pttl(k) == -1


# -- --keys-from -------------------------------------------------------------------------------

BINARY_NAMES = {
    b"\x00": '"\\x00"',
    b"\xff\xfe": '"\\xff\\xfe"',
    b"a\nb": '"a\\nb"',
    b"\x1b[2J": '"\\x1b[2J"',
    b'"quoted': '"\\"quoted"',
    b"back\\slash": '"back\\\\slash"',
    b"trail\r": '"trail\\r"',
    b"": '""',
    b" lead space": " lead space",
    "ключ".encode(): "ключ",
    b"tab\there": '"tab\\there"',
}
OTHER_NAMES = [b"\x00x", b"a\\nb", b"trail", b"quoted", b"lead space", b"back\\\\slash"]


def test_binary_names_from_a_key_list_round_trip(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        c = src.client()
        for name in [*BINARY_NAMES, *OTHER_NAMES]:
            c.set(name, b"v:" + name)
        backup = backup_of(src, tmp_path)
        listing = tmp_path / "keys.txt"
        lines = "\r\n".join(BINARY_NAMES.values()) + "\n\n"  # CRLF, an empty line
        listing.write_bytes(lines.encode("utf-8"))
        code, report = restore(backup, dst, "--keys-from", listing)
        assert code == 0, report["reasons"]
        assert keys(dst) == set(BINARY_NAMES)
        d = dst.client()
        for name in BINARY_NAMES:
            assert d.dump(name) == c.dump(name) and d.get(name) == b"v:" + name
        kf = report["selection"]["keys_from"]
        assert kf["kind"] == "list" and kf["names"] == kf["found"] == len(BINARY_NAMES)


def test_a_bad_key_list_line_is_named(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        src.client().set("a", 1)
        backup = backup_of(src, tmp_path)
        listing = tmp_path / "keys.txt"
        listing.write_bytes(b'a\n"open\n')
        run = invoke_cli("restore", backup, "--to", url(dst), "--yes", "--keys-from", listing)
        assert run.exit_code == 2
        assert f"{listing}: byte offset 2: expected one name in double quotes" in run.stderr
        assert keys(dst) == set()
        run = invoke_cli("restore", backup, "--to", url(dst), "--yes", "--keys-from", listing,
                         "--only", "removed")  # fmt: skip
        assert run.exit_code == 2 and "not a diff report" in run.stderr


# -- the diff-driven restore -------------------------------------------------------------------


def test_diff_driven_restore_brings_back_exactly_what_was_removed(tmp_path: Path) -> None:
    with server() as a:
        c = a.client()
        fill(c)
        for i in range(60):  # more than diff's --limit (50): JSON lists them all
            c.set(f"bulk:{i}", i)
        for name in BINARY_NAMES:
            c.set(name, b"v:" + name)
        backup = backup_of(a, tmp_path)
        before = dumps(a)
        removed = {f"bulk:{i}".encode() for i in range(60)} | set(BINARY_NAMES)
        removed |= {b"queue:a", b"user:3"}
        for k in removed:
            c.delete(k)
        c.set("user:4", "changed since")
        c.delete("set:a")
        c.set("set:a", "now a string")  # type changed
        c.pexpire("user:5", 3_600_000)  # TTL gained
        c.set("added:1", "new")
        changed = {b"user:4", b"set:a", b"user:5"}
        now = dumps(a)
        run = invoke_cli("diff", backup, url(a), "--json", "--limit", "1")
        assert run.exit_code == 1
        diff = tmp_path / "d.json"
        diff.write_text(run.stdout)
        listed = json.loads(run.stdout)["keys"]
        assert len(listed) == len(removed) + len(changed) + 1  # every one, despite --limit

        code, report = restore(backup, a, "--keys-from", diff, "--only", "removed")
        assert code == 0, report["reasons"]
        assert keys(a) == set(before) | {b"added:1"}
        after = dumps(a)
        for k in removed:
            assert after[k] == before[k], k
        for k in set(now):
            assert after[k] == now[k], k  # changed and added keys as they are now
        assert a.client().pttl("user:5") > 0
        assert report["selection"]["to_write"]["keys"] == len(removed)

        # the changed keys: refused by default (they exist), replaced on request
        snapshot = state(a)
        code, report = restore(backup, a, "--keys-from", diff, "--only", "changed")
        assert code == 1 and report["outcome"] == "refused"
        assert "3 selected keys are on the target already" in report["reason"]
        assert state(a) == snapshot
        code, report = restore(backup, a, "--keys-from", diff, "--only", "changed",
                               "--on-conflict", "replace")  # fmt: skip
        assert code == 0, report["reasons"]
        assert dumps(a) == {**before, b"added:1": now[b"added:1"]}
        assert a.client().pttl("user:5") == -1


# -- --on-conflict -----------------------------------------------------------------------------


def test_on_conflict_fail_writes_nothing(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        fill(src.client())
        backup = backup_of(src, tmp_path)
        d = dst.client()
        d.set("user:1", "theirs")
        d.set("user:9", "theirs")
        d.set("unrelated", "x")
        snapshot = state(dst)
        code, report = restore(backup, dst, "--match", "user:*", "--on-conflict", "fail")
        assert code == 1 and report["outcome"] == "refused"
        assert "db 0: 'user:1'" in report["reason"] and "db 0: 'user:9'" in report["reason"]
        assert report["selection"]["existing"] == 2
        assert state(dst) == snapshot
        # without --on-conflict, a selection fails the same way; keys elsewhere do not count
        code, report = restore(backup, dst, "--match", "user:*")
        assert code == 1 and state(dst) == snapshot
        code, report = restore(backup, dst, "--match", "queue:*")
        assert code == 0 and d.dbsize() == 4


def test_on_conflict_skip_and_replace(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        c = src.client()
        fill(c)
        backup = backup_of(src, tmp_path)
        d = dst.client()
        d.set("user:1", "theirs")
        d.rpush("queue:a", "theirs")
        code, report = restore(backup, dst, "--on-conflict", "skip")
        assert code == 0, report["reasons"]
        assert d.get("user:1") == b"theirs" and d.lrange("queue:a", 0, -1) == [b"theirs"]
        assert keys(dst) == keys(src)
        source = dumps(src)
        assert all(
            v == source[k] for k, v in dumps(dst).items() if k not in (b"user:1", b"queue:a")
        )
        assert report["selection"]["skipped"]["conflict"] == 2
        assert report["restored"]["skipped"]["conflict"] == 2
        assert report["restored"]["keys"] == c.dbsize() - 2
        code, report = restore(backup, dst, "--match", "user:1", "--replace")  # the alias
        assert code == 0 and d.get("user:1") == c.get("user:1")
        code, report = restore(backup, dst, "--on-conflict", "replace")
        assert code == 0 and dumps(dst) == source


def test_dry_run_counts_without_writing(tmp_path: Path) -> None:
    with server() as src, server() as dst:
        c = src.client()
        fill(c)
        backup = backup_of(src, tmp_path)
        dst.client().set("user:2", "theirs")
        snapshot = state(dst)
        code, report = restore(backup, dst, "--match", "user:*", "--on-conflict", "skip",
                               "--dry-run")  # fmt: skip
        assert code == 0 and report["outcome"] == "planned"
        assert state(dst) == snapshot
        matched = set(c.scan_iter(match="user:*"))
        sel = report["selection"]
        assert sel["skipped"]["not_selected"] == c.dbsize() - len(matched)
        assert sel["skipped"]["conflict"] == 1 and sel["existing"] == 1
        assert sel["to_write"]["keys"] == len(matched) - 1
        assert sel["to_write"]["by_type"] == {"string": len(matched) - 2, "hash": 1}
        assert report["plan"]["keys_to_restore"] == len(matched) - 1
        text = invoke_cli("restore", backup, "--to", url(dst), "--match", "user:*",
                          "--on-conflict", "skip", "--dry-run").stdout  # fmt: skip
        assert f"to write: {len(matched) - 1} keys (1 hash, {len(matched) - 2} string)" in text
        assert f"skipped: {c.dbsize() - len(matched)} not selected, 1 already on the target" in (
            text
        )


# -- --ttl -------------------------------------------------------------------------------------


def _ttl_backup(src: RedisServer, tmp_path: Path) -> tuple[Path, dict[str, int], int, int]:
    """Keys with TTLs: t:long (an hour), t:soon (gone by the restore, alive at the save),
    t:gone (expired before the save, still in the file), t:none. Returns the backup, the
    absolute expiries (PEXPIRETIME), and the server's time just before and after SAVE."""
    c = src.client()
    keep_expired_keys(c)
    c.set("t:gone", "x", px=1)
    wait_past(c, server_ms(c) + 5)
    now = server_ms(c)
    c.set("t:long", "x", pxat=now + 3_600_000)
    c.set("t:soon", "x", pxat=now + 4_000)
    c.set("t:none", "x")
    expiries = {k: int(c.execute_command("PEXPIRETIME", k)) for k in ("t:long", "t:soon")}
    s0 = server_ms(c)
    backup = backup_of(src, tmp_path)
    s1 = server_ms(c)
    assert s1 < expiries["t:soon"]  # t:soon was alive in the backup
    wait_past(c, max(expiries["t:soon"], s1 + 1_500))
    return backup, expiries, s0, s1


def test_ttl_keep_none_shift(tmp_path: Path) -> None:
    with server() as src:
        backup, expiries, s0, s1 = _ttl_backup(src, tmp_path)
        with server() as dst:
            code, report = restore(backup, dst, "--ttl", "keep", "--match", "t:*")
            assert code == 0, report["reasons"]
            d = dst.client()
            assert keys(dst) == {b"t:long", b"t:none"}  # t:soon and t:gone expired
            assert int(d.execute_command("PEXPIRETIME", "t:long")) == expiries["t:long"]
            assert d.pttl("t:none") == -1
            assert report["restored"]["expired_skipped"] == 2
        with server() as dst:
            code, report = restore(backup, dst, "--ttl", "none", "--match", "t:*")
            assert code == 0, report["reasons"]
            d = dst.client()
            assert keys(dst) == {b"t:long", b"t:soon", b"t:none"}  # t:gone: dead in the backup
            assert all(d.pttl(k) == -1 for k in keys(dst))
            assert report["restored"]["expired_skipped"] == 1
        with server() as dst:
            d = dst.client()
            t0 = server_ms(d)
            code, report = restore(backup, dst, "--ttl", "shift", "--match", "t:*")
            t1 = server_ms(d)
            assert code == 0, report["reasons"]
            assert keys(dst) == {b"t:long", b"t:soon", b"t:none"}
            assert d.pttl("t:none") == -1
            # the backup's time: the end of the second of the save (ctime), in [s0, s1]
            c_lo, c_hi = s0 // 1000 * 1000 + 999, s1 // 1000 * 1000 + 999
            for k, expire in expiries.items():
                at = int(d.execute_command("PEXPIRETIME", k))
                assert t0 + expire - c_hi <= at <= t1 + expire - c_lo, k
                assert at > expire  # later than the backup's own expiry: shifted
            sel = report["selection"]
            assert sel["ttl"] == "shift"
            assert sel["backup_time_source"] == "aux ctime of the backup, end of its second"
            assert c_lo <= sel["backup_time_ms"] <= c_hi


# -- refused where Redis loads whole files ------------------------------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--match", "a*"],
        ["--db", "1"],
        ["--type", "hash"],
        ["--keys-from", "k.txt"],
        ["--on-conflict", "skip"],
        ["--ttl", "shift"],
    ],
    ids=lambda o: o[0],
)
def test_a_selection_is_refused_in_file_mode_and_drills(tmp_path: Path, option: list[str]) -> None:
    with server() as src:
        src.client().set("a", 1)
        backup = backup_of(src, tmp_path)
        conf = tmp_path / "redis.conf"
        conf.write_text(f"dir {src.directory}\n")
        snapshot = state(src)
        run = invoke_cli("restore", backup, "--config", conf, "--yes", *option)
        assert run.exit_code == 2
        assert f"{option[0]} cannot be used with a file restore" in run.stderr
        assert "Redis loads whole files" in run.stderr
        run = invoke_cli("restore", backup, "--stage-only", *option)
        assert run.exit_code == 2
        assert f"{option[0]} cannot be used with --stage-only" in run.stderr
        assert "Redis loads whole files" in run.stderr
        assert state(src) == snapshot


def test_on_conflict_fail_without_a_selection_checks_key_by_key(tmp_path: Path) -> None:
    """--on-conflict fail with no selection: other keys on the target do not refuse it."""
    with server() as src, server() as dst:
        fill(src.client())
        backup = backup_of(src, tmp_path)
        dst.client().set("unrelated", "x")
        code, report = restore(backup, dst)
        assert code == 1 and report["reasons"][0].startswith("target db 0 holds 1 key")
        code, report = restore(backup, dst, "--on-conflict", "fail")
        assert code == 0, report["reasons"]
        assert keys(dst) == keys(src) | {b"unrelated"}
        assert report["verification"]["mode"] == "keys"


# -- a cluster, an AOF -------------------------------------------------------------------------


def test_selection_into_a_cluster(tmp_path: Path) -> None:
    from test_network_restore import cluster

    with server() as src, cluster() as nodes:
        c = src.client()
        fill(c)
        backup = backup_of(src, tmp_path)
        rc = redis.RedisCluster(host="127.0.0.1", port=nodes[0].port)
        try:
            rc.set("user:1", "theirs")
            before = sum(n.client().dbsize() for n in nodes)
            code, report = restore(backup, nodes[0], "--cluster", "--match", "user:*")
            assert code == 1 and "db 0: 'user:1'" in report["reason"]
            assert sum(n.client().dbsize() for n in nodes) == before
            code, report = restore(backup, nodes[0], "--cluster", "--match", "user:*",
                                   "--on-conflict", "skip")  # fmt: skip
            assert code == 0, report["reasons"]
            want = set(c.scan_iter(match="user:*"))
            held = {k for n in nodes for k in n.client().scan_iter(count=1000)}
            assert held == want
            assert rc.get("user:1") == b"theirs"
            for k in want - {b"user:1"}:
                assert rc.dump(k) == c.dump(k), k
            assert report["selection"]["skipped"]["conflict"] == 1
        finally:
            rc.close()


def test_an_aof_backup_shifts_from_the_drills_save(tmp_path: Path) -> None:
    with server() as src:
        c = src.client()
        # always: a write is in the file before its reply (everysec may postpone it 2 s)
        c.config_set("appendfsync", "always")
        c.config_set("appendonly", "yes")
        wait_past(c, server_ms(c) + 10)
        while c.info("persistence")["aof_rewrite_in_progress"]:
            wait_past(c, server_ms(c) + 10)
        expire = server_ms(c) + 3_600_000
        c.set("t:long", "x", pxat=expire)
        c.set("t:none", "x")
        backup = tmp_path / "appendonlydir"
        shutil.copytree(src.directory / "appendonlydir", backup)
        with server() as dst:
            d = dst.client()
            t0 = server_ms(d)
            code, report = restore(backup, dst, "--ttl", "shift", "--type", "string")
            t1 = server_ms(d)
            assert code == 0, report["reasons"]
            sel = report["selection"]
            assert sel["backup_time_source"].startswith("aux ctime of the RDB the restore drill")
            # the drill saved during the restore: the TTL left then, from the load's start
            assert t0 // 1000 * 1000 <= sel["backup_time_ms"] <= t1 // 1000 * 1000 + 999
            at = int(d.execute_command("PEXPIRETIME", "t:long"))
            assert expire - (t1 - t0) - 1000 <= at <= expire + (t1 - t0)
            assert d.pttl("t:none") == -1
