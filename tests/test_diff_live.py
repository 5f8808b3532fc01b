"""A live server as a side of ``rbkit diff``: connecting, authenticating, reading without
KEYS, re-reading a differing key, and Redis-style --match, all against real servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import binary
from diff_support import (
    apply_changes,
    expected_kinds,
    found_kinds,
    save_copy,
    snapshot,
    url_of,
    write_dataset,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.diff.compute import DiffError, compute_diff
from toolkit.diff.live import LiveServer
from toolkit.server.connect import safe_url
from toolkit.server.glob import glob_matcher
from toolkit.server.process import RedisServer, free_port, running_server

PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisServer, Path]]:
    """A server with a password and an ACL user, holding the dataset; its dump saved."""
    tmp = tmp_path_factory.mktemp("live")
    with running_server(binary("7.0")) as server:
        # The password is set once the server runs (its readiness probe has none); the
        # server's client() then sends it, for the test's writes and for the shutdown.
        admin = server.client()
        admin.execute_command("ACL", "SETUSER", "differ", "on", f">{PASSWORD}2", "~*", "+@all")
        admin.config_set("requirepass", PASSWORD)
        admin.close()
        server.client = _with_password(server.client)  # type: ignore[method-assign]
        write_dataset(server)
        dump = save_copy(server, tmp / "dump.rdb")
        yield server, dump


def _with_password(make):  # type: ignore[no-untyped-def]
    def client(db: int = 0, **kwargs: object) -> redis.Redis:
        kwargs.setdefault("password", PASSWORD)
        return make(db, **kwargs)

    return client


def test_password_from_url_and_env(
    locked: tuple[RedisServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, dump = locked
    port = server.port
    monkeypatch.delenv("REDISCLI_AUTH", raising=False)
    for url in (
        f"redis://:{PASSWORD}@127.0.0.1:{port}",
        f"redis://differ:{PASSWORD}2@127.0.0.1:{port}/0",
    ):
        report = compute_diff(str(dump), url, values=True)
        assert report.same
        assert PASSWORD not in report.b.name and PASSWORD not in " ".join(report.notes)
    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    report = compute_diff(f"redis://127.0.0.1:{port}", str(dump))
    assert report.same and report.a.name == f"redis://127.0.0.1:{port}"


def test_auth_and_connection_errors_name_the_url_not_the_password(
    locked: tuple[RedisServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, dump = locked
    monkeypatch.delenv("REDISCLI_AUTH", raising=False)
    port = server.port
    bad = [
        (f"redis://:wrong{PASSWORD}@127.0.0.1:{port}", rf"redis://127\.0\.0\.1:{port}: "),
        (f"redis://127.0.0.1:{port}", rf"redis://127\.0\.0\.1:{port}: "),
        (f"redis://nobody:{PASSWORD}@127.0.0.1:{port}", rf"redis://nobody@127\.0\.0\.1:{port}: "),
    ]
    free = free_port()  # nothing listens there
    bad.append((f"redis://:{PASSWORD}@127.0.0.1:{free}", rf"127\.0\.0\.1:{free}: cannot"))
    for url, pattern in bad:
        with pytest.raises(DiffError, match=pattern) as info:
            compute_diff(str(dump), url)
        text = str(info.value)
        assert PASSWORD not in text and "\n" not in text


def test_safe_url() -> None:
    assert safe_url("redis://u:p@h:1/2") == "redis://u@h:1/2"
    assert safe_url("rediss://:p@h:1") == "rediss://h:1"
    assert safe_url("unix:///tmp/r.sock?db=1&password=p") == "unix:///tmp/r.sock?db=1"
    assert safe_url("redis://h") == "redis://h"


def test_unix_socket_and_dbs(tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    config = {"unixsocket": str(sock), "unixsocketperm": "700", "databases": "20"}
    with running_server(binary("7.0"), config=config) as server:
        write_dataset(server)
        server.client(17).set("far", "away")
        dump = save_copy(server, tmp_path / "a.rdb")
        url = f"unix://{sock}"
        report = compute_diff(str(dump), url, values=True)
        assert report.same and set(report.databases) == {0, 3, 17}
        server.client(17).set("far", "changed")
        server.client(0).set("str:plain", "changed too")
        report = compute_diff(str(dump), url, values=True, dbs=[17])
        assert found_kinds(report) == {(17, b"far"): ("size", "value")}
        assert set(report.databases) == {17}
        report = compute_diff(str(dump), f"{url}?db=3", values=True, dbs=[3])
        assert report.same


def test_differing_key_is_read_again(tmp_path: Path) -> None:
    """A key that differs is re-read once; if the server has meanwhile caught up, it is no
    difference. The progress callback changes the server between the read and the compare."""
    with running_server(binary("7.0")) as server:
        write_dataset(server)
        dump = save_copy(server, tmp_path / "a.rdb")
        c = server.client()
        c.set("str:plain", "in flight")
        c.hset("hash:big", "field1", "in flight")

        def progress(line: str, _unit: str = "bytes") -> None:
            if line == "comparing":
                c.set("str:plain", "hello")  # back to what the dump holds

        report = compute_diff(str(dump), url_of(server), values=True, progress=progress, via="scan")
        assert found_kinds(report) == {(0, b"hash:big"): ("value",)}
        assert report.values_reread == 2
        # Both sides live: the same server twice, read once each, then re-read.
        report = compute_diff(url_of(server), url_of(server), values=True, via="scan")
        assert report.same and report.values_reread == 0


def test_expected_changes_against_8_2(tmp_path: Path) -> None:
    """The whole change set against a Redis 8.2 server (RDB 12 file, 8.2 DUMP payloads)."""
    with running_server(binary("8.2")) as server:
        write_dataset(server)
        before = snapshot(server)
        a = save_copy(server, tmp_path / "a.rdb")
        apply_changes(server)
        after = snapshot(server)
        c = server.client()
        c.hset("hf", mapping={"a": "1", "b": "2"})
        report_before = compute_diff(str(a), url_of(server), values=True, limit=1000)
        expected = expected_kinds(before, after, values=True)
        expected[(0, b"hf")] = ("added",)
        assert found_kinds(report_before) == expected
        # Hash field TTLs (Redis 7.4+): a field TTL is part of the value.
        b = save_copy(server, tmp_path / "b.rdb")
        c.execute_command("HPEXPIREAT", "hf", 4_102_444_800_000, "FIELDS", 1, "a")
        report = compute_diff(str(b), url_of(server), values=True)
        assert found_kinds(report) == {(0, b"hf"): ("value",)}


def test_no_keys_or_monitor(tmp_path: Path) -> None:
    """The live reads are SCAN and per-key commands: KEYS renamed away does not matter."""
    with running_server(binary("7.0")) as server:
        write_dataset(server)
        c = server.client()
        c.config_resetstat()
        dump = save_copy(server, tmp_path / "a.rdb")
        assert compute_diff(str(dump), url_of(server), values=True, via="scan").same
        stats = c.info("commandstats")
        assert "cmdstat_keys" not in stats and "cmdstat_monitor" not in stats
        assert stats["cmdstat_scan"]["calls"] >= 2
        assert stats["cmdstat_dump"]["calls"] == sum(c2.dbsize() for c2 in (c, server.client(3)))


def test_live_server_changing_while_read_is_said(tmp_path: Path) -> None:
    with running_server(binary("7.0")) as server:
        c = server.client()
        for i in range(3000):
            c.set(f"k{i}", i)
        dump = save_copy(server, tmp_path / "a.rdb")
        writer = server.client()
        seen: list[str] = []

        class Batch:  # called after each batch read from the server
            def __init__(self, line: str) -> None:
                self.line = line

            def __call__(self, done: int, total: int | None = None) -> None:
                if len(seen) < 2:
                    seen.append(self.line)
                    writer.set(f"new{len(seen)}", 1)

            def close(self) -> None:
                pass

        def progress(line: str, _unit: str = "bytes") -> Batch | None:
            return Batch(line) if line.startswith("reading redis://") else None

        report = compute_diff(str(dump), url_of(server), progress=progress, via="scan")
        assert any("changed while it was read" in n for n in report.b.notes)
        # The 3000 keys, and each key added meanwhile that the SCAN happened to pass.
        assert report.b.seconds > 0 and 3000 <= report.b.keys_read <= 3000 + len(seen)
        assert {k.key for k in report.keys} <= {b"new1", b"new2"}


# -- --match: the same language as SCAN MATCH ------------------------------------------------

NAMES = [
    b"a",
    b"ab",
    b"abc",
    b"b",
    b"a*c",
    b"a?c",
    b"a[c",
    b"a]c",
    b"a-c",
    b"a\\c",
    b"",
    b"x:1:y",
    b"user:42",
    b"user:",
    b"A",
    b"a\nb",
    b"\xff\xfe",
    b"aac",
    b"abbc",
    b"^a",
]
PATTERN_ALPHABET = ["a", "b", "c", "*", "?", "[", "]", "^", "-", "\\", ":", "x"]


@pytest.fixture(scope="module")
def names_server() -> Iterator[redis.Redis]:
    with running_server(binary("7.0")) as server:
        c = server.client()
        for name in NAMES:
            c.set(name, 1)
        yield c


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(PATTERN_ALPHABET), max_size=6).map("".join))
def test_match_agrees_with_scan_match(names_server: redis.Redis, pattern: str) -> None:
    server_side = set(names_server.scan_iter(match=pattern, count=1000))
    ours = {n for n in NAMES if glob_matcher(pattern)(n)}
    assert ours == server_side, pattern


def test_live_server_object_reads_every_type() -> None:
    with running_server(binary("7.0")) as server:
        write_dataset(server)
        live = LiveServer(url_of(server))
        try:
            keys = [k for batch in live.scan(0) for k in batch]
            rows = {r.key: r for r in live.read_keys(0, keys, values=False) if r is not None}
            plain = {r.key: r for r in live.read_keys(0, keys, values=True) if r is not None}
        finally:
            live.close()
        assert {r.type for r in rows.values()} == {
            "string",
            "list",
            "set",
            "zset",
            "hash",
            "stream",
        }
        for key, r in rows.items():  # sizes from the size commands = sizes from DUMP
            assert plain[key].size == r.size and plain[key].type == r.type
            assert r.digest is None and plain[key].digest is not None
        assert rows[b"str:ttl"].expire_ms is not None and rows[b"str:plain"].expire_ms is None
