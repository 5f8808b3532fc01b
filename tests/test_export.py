"""rbkit export against live servers: every fixture loaded by a real server of its version is
the reference. The Parquet rows must say what the server says of each key (TYPE, OBJECT
ENCODING, the size commands, PEXPIRETIME or PTTL, the key names); the RESP output piped into
a fresh server with redis-cli --pipe must give it the same keys and values as the server
that loaded the file (plain commands, and DEBUG DIGEST-VALUE per key)."""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import (
    DEBUG_CONFIG,
    RDB_FILES,
    binary,
    falkordb,
    invoke_cli,
    server_ms,
    stack_module_paths,
)
from plain_view import TTL_SLACK_MS, dbs_of, expire_at, key_view, reference

from toolkit.export.keytext import escape_key, unescape_key
from toolkit.server.process import RedisServer, running_server

RBKIT = Path(sys.executable).with_name("rbkit")
SIZE = {"list": "LLEN", "set": "SCARD", "zset": "ZCARD", "hash": "HLEN", "stream": "XLEN"}
FIELD_TTL_TYPES = {24, 25}  # hashes with field expiries: their count may include gone fields
# Encodings the file and a server of the version that wrote it name alike.
COMPARABLE = {
    "listpack", "listpackex", "quicklist", "intset", "hashtable", "skiplist", "ziplist", "stream"
}  # fmt: skip


def version_of(path: Path) -> str:
    """The server version that wrote a fixture ("redis-7.0-all-types.rdb" -> "7.0")."""
    return path.name.split("-")[1]


def export_parquet(path: Path, out: Path, *args: str) -> list[dict[str, Any]]:
    run = invoke_cli("export", path, "-o", out, *args)
    assert run.exit_code == 0, run.stderr
    return pq.read_table(out).to_pylist()


@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_parquet_rows_match_the_live_server(path: Path, tmp_path: Path) -> None:
    rows = export_parquet(path, tmp_path / "keys.parquet")
    version = version_of(path)
    with reference(path, version) as server:
        v = server.binary.version
        now = server_ms(server.client())
        alive: dict[tuple[int, bytes], dict[str, Any]] = {}
        for row in rows:
            c = server.client(row["db"])
            if row["expire_ms"] is not None and row["expire_ms"] <= now:
                assert c.exists(row["key"]) == 0, row  # expired: the load dropped it
                continue
            alive[(row["db"], row["key"])] = row
        on_server = {(db, k) for db in dbs_of(server) for k in server.client(db).scan_iter()}
        assert set(alive) == on_server
        for (db, key), row in alive.items():
            c = server.client(db)
            assert c.type(key).decode() == row["type"], row
            assert expire_at(c, key, v) == row["expire_ms"] or (
                v < (7, 0) and abs(expire_at(c, key, v) - row["expire_ms"]) < 5000  # type: ignore[operator]
            ), row
            if row["type"] in SIZE and row["rdb_type"] not in FIELD_TTL_TYPES:
                assert c.execute_command(SIZE[row["type"]], key) == row["elements"], row
            # From 7.2 on a server loads a one-node quicklist as a listpack list.
            one_node = row["encoding"] == "quicklist" and v >= (7, 2)
            if row["encoding"] in COMPARABLE and not one_node:
                assert c.object("encoding", key).decode() == row["encoding"], row


def test_parquet_reads_back_in_duckdb(tmp_path: Path) -> None:
    path = RDB_FILES[0].parent / "redis-7.0-databases-32.rdb"
    out = tmp_path / "keys.parquet"
    invoke_cli("export", path, "-o", out)
    with reference(path, "7.0") as server:
        want = sorted(
            (db, k, server.client(db).type(k).decode())
            for db in dbs_of(server)
            for k in server.client(db).scan_iter()
        )
    got = duckdb.sql(f"SELECT db, key, type FROM '{out}' ORDER BY ALL").fetchall()
    assert sorted(got) == want


def test_filters_keep_what_the_server_would_list(tmp_path: Path) -> None:
    path = RDB_FILES[0].parent / "redis-7.0-all-types.rdb"
    rows = export_parquet(
        path, tmp_path / "f.parquet", "--match", "hash:*", "--type", "hash", "--min-bytes", "100"
    )
    with reference(path, "7.0") as server:
        c = server.client(0)
        want = {
            k
            for k in c.scan_iter(match="hash:*", _type="hash")
            if len(c.dump(k)) - 11 >= 100  # DUMP: type byte, value, 10-byte footer
        }
    assert {r["key"] for r in rows} == want and want


@contextlib.contextmanager
def loaded(path: Path | None, version: str) -> Iterator[RedisServer]:
    """A server of ``version`` that takes DEBUG, with ``path`` as its dump.rdb (or empty);
    FalkorDB loaded into 8.2, for graph values; Redis Stack's modules into 7.4."""
    with tempfile.TemporaryDirectory(prefix="rbkit-export-") as tmp:
        directory = Path(tmp)
        if path is not None:
            shutil.copyfile(path, directory / "dump.rdb")
        modules = {"8.2": [falkordb()], "7.4": stack_module_paths()}.get(version, [])
        config = {"dbfilename": "dump.rdb", "databases": "64"}
        if version != "6.2":  # 6.2 takes DEBUG without being told
            config.update(DEBUG_CONFIG)
        with running_server(
            binary(version), directory=directory, config=config, modules=modules
        ) as server:
            yield server


@pytest.mark.parametrize("path", RDB_FILES, ids=lambda p: p.name)
def test_resp_piped_into_a_server_gives_the_same_keyspace(path: Path) -> None:
    version = version_of(path)
    cli = shutil.which("redis-cli")
    assert cli is not None, "redis-cli is needed (make install)"
    with loaded(path, version) as ref, loaded(None, version) as target:
        export = subprocess.Popen(
            [RBKIT, "export", path, "--format", "resp"], stdout=subprocess.PIPE
        )
        piped = subprocess.run(
            [cli, "-p", str(target.port), "--pipe"], stdin=export.stdout, capture_output=True
        )
        assert export.wait() == 0
        assert piped.returncode == 0, piped.stdout + piped.stderr
        assert b"errors: 0" in piped.stdout, piped.stdout
        # KEYS, not SCAN: a server rehashing after its load may return a key twice to SCAN.
        v = ref.binary.version
        for db in sorted(set(dbs_of(ref)) | set(dbs_of(target))):
            r, t = ref.client(db), target.client(db)
            keys = set(r.keys("*"))
            assert set(t.keys("*")) == keys, db
            for key in keys:
                assert key_view(t, key, v, {}) == key_view(r, key, v, {}), (db, key)
                got_at, want_at = expire_at(t, key, v), expire_at(r, key, v)
                if v < (7, 0) and None not in (got_at, want_at):  # PTTL against each clock
                    assert abs(got_at - want_at) < TTL_SLACK_MS, (db, key)  # type: ignore[operator]
                else:
                    assert got_at == want_at, (db, key)
                assert t.object("encoding", key) == r.object("encoding", key), (db, key)
                digest = ("DEBUG", "DIGEST-VALUE", key)
                assert t.execute_command(*digest) == r.execute_command(*digest), (db, key)
        if version != "6.2":
            assert _functions(target) == _functions(ref)


def _functions(server: Any) -> list[Any]:
    """The server's function libraries with their code (FUNCTION LIST WITHCODE), by name: its
    FUNCTION DUMP and the lists are not in a set order."""
    libraries = server.client().execute_command("FUNCTION", "LIST", "WITHCODE")
    for library in libraries:
        library[b"functions"] = sorted(library[b"functions"], key=repr)
    return sorted(libraries, key=repr)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_formats_round_trip_key_names(fmt: str, tmp_path: Path) -> None:
    path = RDB_FILES[0].parent / "redis-8.2-all-types.rdb"
    rows = export_parquet(path, tmp_path / "keys.parquet")
    out = tmp_path / f"keys.{fmt}"
    assert invoke_cli("export", path, "--format", fmt, "-o", out).exit_code == 0
    text = out.read_text(encoding="ascii")
    if fmt == "csv":
        got = list(csv.DictReader(text.splitlines()))
    else:
        got = [json.loads(line) for line in text.splitlines()]
    assert [unescape_key(g["key"]) for g in got] == [r["key"] for r in rows]
    assert [int(g["value_hash"], 16) for g in got] == [r["value_hash"] for r in rows]


@pytest.mark.parametrize(
    "key", [b"", b"plain:key", b"back\\slash", b"\x00\x1b[31m\xff\xfe", "é☃".encode(), b'"q,\n']
)
def test_key_escape_is_exact_and_ascii(key: bytes) -> None:
    text = escape_key(key)
    assert text.isascii() and text.isprintable()
    assert unescape_key(text) == key


def test_damaged_file_leaves_no_output(tmp_path: Path) -> None:
    data = bytearray((RDB_FILES[0].parent / "redis-7.0-all-types.rdb").read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.parquet"
    run = invoke_cli("export", bad, "-o", out)
    assert run.exit_code == 2
    assert "bad.rdb" in run.stderr and "offset" in run.stderr
    assert list(tmp_path.iterdir()) == [bad]


def test_an_aof_is_refused(tmp_path: Path) -> None:
    aof = tmp_path / "appendonly.aof"
    aof.write_bytes(b"*1\r\n$4\r\nPING\r\n")
    run = invoke_cli("export", aof, "-o", tmp_path / "x.parquet")
    assert run.exit_code == 2 and "RDB" in run.stderr
