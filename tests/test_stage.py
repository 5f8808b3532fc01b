"""The restore drill (``rbkit restore --stage-only``) with real redis-server processes.

Every fixture is loaded into a scratch server of the version that wrote it and must verify,
with the keys that expired since (``ttl:soon:*``, ``db15:soon``) allowed for and counted; what
cannot load is refused before any server starts; a damaged backup is refused by the gate, and
forced through it fails with the server's own log line; a difference is found and named.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    DEBUG_CONFIG,
    FIXTURES,
    RDB_FILES,
    binary,
    falkordb,
    invoke_cli,
    keep_expired_keys,
    load_expected,
    server_ms,
    stack_module_paths,
    wait_past,
)

from toolkit.check.backup import check_backup
from toolkit.check.inventory import DbStats
from toolkit.server.process import find_binaries, running_server
from toolkit.server.read import TYPES, digest_of, key_hash, read_live, scan_db
from toolkit.stage.compare import BackupKeys, backup_keys, compare
from toolkit.stage.compat import choose_binary, refusals
from toolkit.stage.drill import stage

AOF = FIXTURES.parent / "aof"
AOF_FIXTURES = [
    ("redis-6.2-plain.aof", "6.2"),
    ("redis-6.2-preamble.aof", "6.2"),
    ("redis-7.0-rdb-base/appendonlydir", "7.0"),
    ("redis-7.0-aof-base/appendonlydir", "7.0"),
    ("redis-8.2-rdb-base/appendonlydir", "8.2"),
    ("redis-8.2-aof-base/appendonlydir", "8.2"),
]


def redis7() -> str:
    """The path of the 7.0 redis-server (Debian's), for --redis-server."""
    return str(binary("7.0").path)


def rdb12_sentence() -> str:
    return f"RDB 12 needs Redis >= 7.4; this redis-server is {binary('7.0').version_text}"


def modules_for(version: str) -> list[Path]:
    """FalkorDB for the 8.2 fixtures (graph values), Redis Stack's modules for its 7.4
    fixtures, nothing otherwise."""
    if version == "7.4":
        return stack_module_paths()
    if version != "8.2":
        return []
    return [falkordb()]


def live_keys_expected(expected: dict[str, Any], now_ms: int) -> dict[int, int]:
    """Per db, the keys of a fixture's expected JSON that have not expired by ``now_ms``."""
    out = {}
    for db, keys in expected["keys"].items():
        alive = [k for k in keys if k["expire_ms"] is None or k["expire_ms"] > now_ms]
        if alive:
            out[int(db)] = len(alive)
    return out


def expired_in(expected: dict[str, Any], now_ms: int) -> int:
    return sum(
        1
        for keys in expected["keys"].values()
        for k in keys
        if k["expire_ms"] is not None and k["expire_ms"] <= now_ms
    )


def allowed(report: Any, kind: str) -> int:
    assert report.comparison is not None
    return sum(a.keys for a in report.comparison.allowances if a.kind == kind and a.db is not None)


def stage_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = invoke_cli("restore", "--stage-only", "--json", *args)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, json.loads(result.stdout)


# -- every fixture verifies ------------------------------------------------------------------


@pytest.mark.parametrize("rdb", RDB_FILES, ids=lambda p: p.name)
def test_rdb_fixture_stages_and_verifies(rdb: Path) -> None:
    version = rdb.name.split("-")[1]
    report = stage(rdb, binary=binary(version), modules=modules_for(version))
    now_ms = int(time.time() * 1000)
    assert report.verified, (report.reason, report.log)
    assert [s.name for s in report.steps] == [
        "gate", "preflight", "copy", "load", "key-names", "read", "compare", "stop",
    ]  # fmt: skip
    assert all(s.status == "ok" for s in report.steps)
    assert report.comparison is not None and report.comparison.digest_compared
    assert report.live is not None and report.live.version.startswith(version)
    expected = load_expected(rdb)
    # What the server holds is what the generator saw, less the keys that expired since.
    assert {db: d.scanned for db, d in report.live.databases.items()} == live_keys_expected(
        expected, now_ms
    )
    gone = expired_in(expected, now_ms)
    assert allowed(report, "expired_before_load") == gone
    if gone:  # the server agrees (INFO on 7.0+, its load log line on 6.2)
        assert report.live.keys_expired == gone
        assert any(a.kind == "server_expired" for a in report.comparison.allowances)
    assert sorted(report.live.functions or []) == sorted(expected["functions"])


@pytest.mark.parametrize(("name", "version"), AOF_FIXTURES, ids=[n for n, _ in AOF_FIXTURES])
def test_aof_fixture_stages_and_verifies(name: str, version: str) -> None:
    report = stage(AOF / name, binary=binary(version), modules=modules_for(version))
    now_ms = int(time.time() * 1000)
    assert report.verified, (report.reason, report.log)
    assert report.settings["appendonly"] == "yes"
    assert report.settings["aof-load-truncated"] == "no"
    stem = name.split("/")[0].removesuffix(".aof")
    expected = json.loads((AOF / f"{stem}.expected.json").read_text(encoding="utf-8"))
    assert report.live is not None
    assert {db: d.scanned for db, d in report.live.databases.items()} == live_keys_expected(
        expected, now_ms
    )
    assert allowed(report, "expired_before_load") == expired_in(expected, now_ms) > 0


def test_single_aof_on_7_is_upgraded_and_verifies() -> None:
    """Redis 7 loads a lone appendonly.aof (no appendonlydir) by upgrading it."""
    report = stage(AOF / "redis-6.2-preamble.aof", binary=binary("7.0"))
    assert report.verified, (report.reason, report.log)
    assert any("upgrades it" in note for note in report.notes)


def test_8_2_aof_base_takes_module_commands_as_the_server_has_them() -> None:
    report = stage(
        AOF / "redis-8.2-aof-base/appendonlydir", binary=binary("8.2"), modules=modules_for("8.2")
    )
    assert report.verified and report.live is not None
    assert report.live.databases[0].by_type.get("graphdata") == 1
    assert allowed(report, "undecided") == 2  # g (GRAPH.QUERY) and vset:items (VADD)


@pytest.mark.parametrize("version", ["7.0", "6.2"])
def test_keys_expiring_during_the_drill_are_accounted_for_exactly(
    tmp_path: Path, version: str
) -> None:
    """3000 keys whose TTLs run out over about a second around the load: each is either
    gone by its TTL before the load, gone during the drill, or there; the server's own
    count of keys it dropped while loading agrees. Redis 7.0 is read as its snapshot, cut at
    its clock (no key watched); 6.2 by SCAN, judged by the keys it counted (none watched by
    name either)."""
    server_binary = binary(version)
    data = tmp_path / "gen"
    data.mkdir()
    config = DEBUG_CONFIG if version == "7.0" else {}  # (6.2 allows DEBUG without it)
    with running_server(server_binary, directory=data, config=config) as server:
        client = server.client()
        keep_expired_keys(client)  # the SAVE holds all 3500 keys however long it takes
        pipe = client.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"soon:{i}", "v", px=100 + i // 3)
        for i in range(500):
            pipe.set(f"stays:{i}", "v")
        pipe.execute()
        client.save()
    time.sleep(0.5)
    report = stage(data / "dump.rdb", binary=server_binary)
    assert report.verified, (report.reason, report.comparison)
    assert report.live is not None and report.comparison is not None
    if version == "7.0":
        assert report.live.via == "snapshot" and report.live.cut_ms == report.live.time_ms
        assert report.live.databases[0].watched == {}
    else:
        assert report.live.via == "scan" and report.live.cut_ms is None
        db0 = report.live.databases[0]
        assert db0.watched == {} and db0.met is not None
        assert len(db0.met.sets[0]) >= db0.scanned
    before = allowed(report, "expired_before_load")
    during = allowed(report, "expired_during_drill")
    assert before > 0
    assert before + during + report.live.databases[0].scanned == 3500
    if report.live.keys_expired is not None:  # (6.2's INFO has no rdb_last_load_keys_*)
        assert before <= report.live.keys_expired <= before + during


def test_data_dir_with_config_stages_the_file_redis_would_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "backup.rdb").write_bytes((FIXTURES / "redis-7.0-strings-only.rdb").read_bytes())
    conf = tmp_path / "redis.conf"
    conf.write_text(f"dir {data}\ndbfilename backup.rdb\nappendonly no\n")
    code, report = stage_json(data, "--config", conf, "--redis-server", redis7())
    assert code == 0, report["reasons"]
    assert report["backup"].endswith("backup.rdb")


# -- refused before any server starts --------------------------------------------------------


def test_rdb12_on_7_0_is_refused_without_a_server() -> None:
    code, report = stage_json(FIXTURES / "redis-8.2-strings-only.rdb", "--redis-server", redis7())
    assert code == 1
    assert report["outcome"] == "refused"
    assert rdb12_sentence() in report["reasons"]
    assert report["server"]["port"] is None
    assert [s["name"] for s in report["steps"]] == ["gate", "preflight"]


def test_rdb12_refusal_table() -> None:
    result = invoke_cli(
        "restore", "--stage-only", FIXTURES / "redis-8.2-strings-only.rdb",
        "--redis-server", redis7(),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "REFUSED" in result.stdout and rdb12_sentence() in result.stdout


def test_module_fixture_without_module_is_refused_naming_it() -> None:
    binary("8.2")
    code, report = stage_json(FIXTURES / "redis-8.2-modules.rdb")
    assert code == 1 and report["outcome"] == "refused"
    assert report["server"]["version"] == binary("8.2").version_text  # reads RDB 12
    assert any("module type graphdata" in r and "--module" in r for r in report["reasons"])
    assert not any("vectorset" in r for r in report["reasons"])  # built into Redis 8


def test_multipart_aof_on_6_2_is_refused() -> None:
    result = check_backup(AOF / "redis-7.0-aof-base/appendonlydir")
    reasons = refusals(result, binary("6.2"))
    assert any("multi-part AOF" in r and "needs Redis >= 7.0" in r for r in reasons)
    assert any("FUNCTION" in r for r in reasons)


def test_default_binary_is_one_that_reads_the_backup() -> None:
    debian = binary("7.0")
    chosen = choose_binary(check_backup(FIXTURES / "redis-6.2-all-types.rdb"))
    assert chosen.source == "system" and chosen == debian  # Debian's is preferred when it can
    binary("8.2")
    chosen = choose_binary(check_backup(FIXTURES / "redis-8.2-strings-only.rdb"))
    # RDB 12 needs Redis >= 7.4: the oldest server here that is one (8.2 on a test machine).
    assert chosen == min(
        (b for b in find_binaries() if b.version >= (7, 4)), key=lambda b: b.version
    )


# -- damaged backups ---------------------------------------------------------------------------


def test_damaged_backup_refused_then_forced_fails_with_server_log(tmp_path: Path) -> None:
    data = (FIXTURES / "redis-7.0-all-types.rdb").read_bytes()
    cut = tmp_path / "cut.rdb"
    cut.write_bytes(data[: len(data) * 2 // 3])
    code, report = stage_json(cut, "--redis-server", redis7())
    assert code == 1 and report["outcome"] == "refused"
    assert report["reason"].startswith("the backup is invalid: truncated")
    assert [s["name"] for s in report["steps"]] == ["gate"]

    code, report = stage_json(cut, "--redis-server", redis7(), "--force")
    assert code == 1 and report["outcome"] == "failed"
    assert any("Short read" in line for line in report["log"]), report["log"]
    assert "Unexpected EOF reading RDB file" in report["reason"]
    steps = {s["name"]: s["status"] for s in report["steps"]}
    assert steps["load"] == "failed" and steps["stop"] == "ok"


def test_cut_off_aof_tail_stages_with_aof_load_truncated_yes() -> None:
    """The check forgives a cut in the last command; the drill sets aof-load-truncated yes,
    says so, and the server (dropping that command) holds what the check counted."""
    report = stage(AOF / "damaged/truncated-last-command.aof", binary=binary("6.2"))
    assert report.verified, (report.reason, report.log)
    assert report.settings["aof-load-truncated"] == "yes"
    assert any(n.startswith("aof-load-truncated yes: the backup ends in") for n in report.notes)


def test_damaged_manifest_forced_fails_with_the_servers_reason() -> None:
    report = stage(
        AOF / "damaged/manifest-missing-file/appendonlydir", binary=binary("7.0"), force=True
    )
    assert report.outcome == "failed"
    assert report.reason is not None and "appendonly.aof.2.incr.aof" in report.reason


# -- databases ----------------------------------------------------------------------------------


def test_databases_32_fixture_gets_a_server_with_32_databases() -> None:
    report = stage(FIXTURES / "redis-7.0-databases-32.rdb", binary=binary("7.0"))
    assert report.verified, (report.reason, report.log)
    assert report.settings["databases"] == "32"
    assert report.live is not None and set(report.live.databases) == {0, 20, 31}


# -- mismatches are found --------------------------------------------------------------------


def test_doctored_inventory_is_a_mismatch() -> None:
    """One string key fewer in the expected counts than the file (and the server) holds."""
    rdb = FIXTURES / "redis-7.0-all-types.rdb"
    checked = check_backup(rdb)
    assert checked.inventory is not None
    db0 = checked.inventory.databases[0]
    db0.keys -= 1
    db0.by_type["string"] -= 1
    report = stage(rdb, binary=binary("7.0"), checked=checked)
    assert report.outcome == "mismatch"
    assert report.comparison is not None
    found = {(m.db, m.what): (m.expected, m.found) for m in report.comparison.mismatches}
    assert found == {(0, "keys"): (41, 42), (0, "type string"): (17, 18)}
    assert report.reason == (
        "the loaded keyspace differs from the backup: db 0: 42 keys, expected 41 (and 1 more)"
    )


def _resp(*args: str) -> bytes:
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode())
    return out


def test_script_writing_an_undeclared_key_is_a_real_mismatch(tmp_path: Path) -> None:
    """A hand-written AOF whose EVAL writes a key it does not declare: the model cannot
    apply it (the check says the inventory is approximate); the server does."""
    aof = tmp_path / "eval.aof"
    aof.write_bytes(
        _resp("SELECT", "0")
        + _resp("SET", "a", "1")
        + _resp("EVAL", "redis.call('set', 'hidden', 'x')", "0")
    )
    code, report = stage_json(aof, "--redis-server", redis7())
    assert code == 1 and report["outcome"] == "mismatch"
    whats = {(m["db"], m["what"]) for m in report["mismatches"]}
    assert {(0, "keys"), (0, "type string"), (0, "key names")} <= whats
    assert any("approximate" in note for note in report["notes"])


def test_expired_keys_a_write_pause_keeps_are_allowed_for(tmp_path: Path) -> None:
    """While writes are paused (CLIENT PAUSE WRITE, as during a restore's verify) a server
    expires nothing: SCAN skips a key past its TTL, but INFO keyspace still counts its TTL. An
    AOF (whose load keeps expired keys) compared with such a server is still verified."""
    config = {"appendonly": "yes", "aof-use-rdb-preamble": "no", **DEBUG_CONFIG}
    with running_server(binary("7.0"), directory=tmp_path, config=config) as server:
        c = server.client()
        keep_expired_keys(c)  # nothing expires "gone" before the pause below
        c.set("stays", "1")
        c.set("later", "1", px=3_600_000)
        gone = server_ms(c) + 100
        c.set("gone", "1", pxat=gone)
        wait_past(c, gone)
        result = check_backup(tmp_path / "appendonlydir")
        keys = backup_keys(result)
        c.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
        try:
            live = read_live(c)
        finally:
            c.execute_command("CLIENT", "UNPAUSE")
    db0 = live.databases[0]
    assert (db0.scanned, db0.keys, db0.expires) == (2, 3, 2)  # "gone": not scanned, counted
    comparison = compare(result, live, keys=keys, since_ms=live.time_ms, loaded_rdb=False)
    assert comparison.mismatches == []
    assert [(a.db, a.kind, a.keys) for a in comparison.allowances] == [
        (0, "expired_before_load", 1)
    ]


def test_same_counts_other_names_is_caught_by_the_digest() -> None:
    """One string key in the backup, one on the server, with another name."""
    result = check_backup(FIXTURES / "redis-7.0-empty.rdb")
    assert result.inventory is not None
    result.inventory.databases = {0: DbStats(keys=1, by_type={"string": 1})}
    keys = BackupKeys()
    keys.db(0).add(b"only-in-backup", "string", None)
    with running_server(binary("7.0")) as server:
        client = server.client()
        client.set("only-on-server", "1")
        live = read_live(client)
    assert live.databases[0].scanned == 1
    comparison = compare(result, live, keys=keys, since_ms=0, watched_until_ms=0)
    assert [(m.db, m.what) for m in comparison.mismatches] == [(0, "key names")]
    assert "same counts, other key names" in comparison.mismatches[0].sentence


@pytest.mark.parametrize("compact", ["1", "0"], ids=["c-hashset", "python-set"])
def test_live_counts_agree_by_typed_scan_and_by_type_per_key(
    compact: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SCAN ... TYPE per type, the plain SCAN + TYPE fallback, and a mix of both (a type
    left out is found by the fallback) count the keys written, with their names' digest,
    whether the keys met are kept in the C hash set or a Python set."""
    monkeypatch.setenv("RBKIT_HASHSET", compact)
    written = [f"s:{i}" for i in range(3000)] + [
        f"{t}:{i}" for t in ("l", "set", "z", "h", "x") for i in range(200)
    ]
    with running_server(binary("7.0")) as server:
        client = server.client()
        pipe = client.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"s:{i}", "v")
        for i in range(200):
            pipe.rpush(f"l:{i}", "a")
            pipe.sadd(f"set:{i}", "a")
            pipe.zadd(f"z:{i}", {"a": 1})
            pipe.hset(f"h:{i}", "f", "v")
            pipe.xadd(f"x:{i}", {"f": "v"})
        pipe.execute()
        watch = {key_hash(b"l:7"), key_hash(b"absent")}
        counted = [
            scan_db(client, watch, types=TYPES),
            scan_db(client, watch),
            scan_db(client, watch, types=("string", "list")),
        ]
    for live in counted:
        assert live.by_type == {
            "hash": 200, "list": 200, "set": 200, "stream": 200, "string": 3000, "zset": 200,
        }  # fmt: skip
        assert live.scanned == 4000
        assert live.digest == digest_of(k.encode() for k in written)
        assert live.watched == {key_hash(b"l:7"): "list"}


def test_compare_by_inventory_alone_uses_expired_at_check_and_the_server() -> None:
    """Without the key names: the inventory's expired_at_check, cross-checked with the
    server's own rdb_last_load_keys_expired."""
    rdb = FIXTURES / "redis-7.0-all-types.rdb"
    report = stage(rdb, binary=binary("7.0"))
    assert report.verified and report.result is not None and report.live is not None
    comparison = compare(report.result, report.live)
    assert comparison.verified, comparison.mismatches
    kinds = {a.kind for a in comparison.allowances}
    assert {"expired_at_check", "server_expired"} <= kinds
    assert not comparison.digest_compared


# -- the command line ----------------------------------------------------------------------


def test_cli_verified_json_and_exit_0() -> None:
    binary("7.0")
    code, report = stage_json(FIXTURES / "redis-7.0-all-types.rdb")
    assert code == 0
    assert report["schema"] == "rbkit.restore/1" and report["mode"] == "stage-only"
    assert report["outcome"] == "verified" and report["verified"] is True
    assert report["server"]["source"] == "system"
    assert report["loaded"]["totals"]["keys"] == 50
    assert report["loaded"]["keys_expired"] == 4
    assert report["key_names_compared"] is True
    assert sum(a["keys"] for a in report["allowances"] if a["kind"] == "expired_before_load") == 4
    assert report["mismatches"] == []
    for step in report["steps"]:
        assert set(step) == {"name", "status", "seconds", "detail"}


def test_cli_table() -> None:
    binary("7.0")
    result = invoke_cli("restore", "--stage-only", FIXTURES / "redis-7.0-all-types.rdb")
    assert result.exit_code == 0
    assert "VERIFIED" in result.stdout
    assert "3 keys had expired before the load began" in result.stdout
    assert "step" in result.stdout and "compare" in result.stdout


def test_cli_without_stage_only_is_a_usage_error() -> None:
    """Without --stage-only the restore needs a target (tests/test_restore_*.py)."""
    result = invoke_cli("restore", FIXTURES / "redis-7.0-all-types.rdb")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: say which server to restore into: --config redis.conf or --url URL "
        "(or --stage-only for a restore drill)"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("nonexistent.rdb",),
        (FIXTURES / "redis-7.0-all-types.rdb", "--redis-server", "/bin/true"),
        (FIXTURES / "redis-7.0-all-types.rdb", "--module", "/nonexistent.so"),
    ],
    ids=["missing-backup", "not-a-redis-server", "missing-module"],
)
def test_cli_io_and_usage_errors_exit_2(args: tuple[str | Path, ...]) -> None:
    result = invoke_cli("restore", "--stage-only", *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
