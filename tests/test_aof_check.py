"""rbkit check on AOF backups written by real servers, and on damaged copies of them.

The good fixtures' inventories come from the live server that wrote them. The damaged ones
are compared with redis-check-aof (run here, live) and with what Redis 6.2/7.0 servers did when
asked to load them (recorded by fixtures/generate_aof.py): the table below says where rbkit's
verdict differs from either, and why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from toolkit.check.backup import check_backup
from toolkit.check.result import CheckResult

AOF = Path(__file__).parent.parent / "fixtures" / "aof"
GOOD = sorted(AOF.glob("*.expected.json"))
DAMAGED = sorted((AOF / "damaged").glob("*.json"))
REDIS_CHECK_AOF = shutil.which("redis-check-aof") or "/usr/bin/redis-check-aof"


def target_of(expected: Path) -> Path:
    """The path a user would pass: the .aof file, or the set's appendonlydir/."""
    stem = expected.name.removesuffix(".expected.json")
    single = AOF / f"{stem}.aof"
    return single if single.exists() else AOF / stem / "appendonlydir"


def counts(result: CheckResult) -> dict[str, Any]:
    assert result.inventory is not None
    return {
        str(db): {"keys": s.keys, "expires": s.expires, "by_type": s.by_type}
        for db, s in result.inventory.databases.items()
    }


def expected_counts(expected: dict[str, Any], *, without: set[str] = frozenset()) -> dict:
    out = {}
    for db, s in expected["databases"].items():
        by_type = {t: n for t, n in s["by_type"].items() if t not in without}
        out[db] = {"keys": sum(by_type.values()), "expires": s["expires"], "by_type": by_type}
    return out


# The modules of Redis Stack that its aof-base fixture uses (RediSearch refuses an AOF
# without a preamble), by the names MODULE LIST gives them, and the commands of theirs it holds.
STACK_AOF_MODULES = ("ReJSON", "bf", "timeseries")
STACK_COMMANDS = {
    "JSON.SET", "BF.RESERVE", "BF.MADD", "CF.RESERVE", "CF.ADD", "TOPK.RESERVE", "TOPK.ADD",
    "CMS.INITBYDIM", "CMS.INCRBY", "TDIGEST.CREATE", "TDIGEST.ADD", "TS.CREATE",
    "TS.CREATERULE", "TS.ADD",
}  # fmt: skip


@pytest.mark.parametrize("expected_path", GOOD, ids=[p.name for p in GOOD])
def test_aof_fixture_inventory_equals_the_live_servers(expected_path: Path) -> None:
    expected = json.loads(expected_path.read_text())
    # The 8.2 fixtures were written with FalkorDB loaded, the Stack ones with RedisJSON,
    # RedisBloom and RedisTimeSeries: their modules are declared, as a user restoring them into
    # a server with the modules would.
    modules: tuple[str, ...] = ("graph",) if "graphdata" in expected["modules"] else ()
    if expected_path.name.startswith("stack-"):
        modules = STACK_AOF_MODULES
    result = check_backup(target_of(expected_path), now_ms=expected["saved_at_ms"], modules=modules)
    assert result.valid, result.problems
    assert result.format == "aof"
    assert sorted(result.inventory.functions) == sorted(expected["functions"])
    assert result.aof is not None
    if result.aof.approximate:
        # Module values reach an AOF as module commands (GRAPH.QUERY, VADD, JSON.SET, BF.ADD,
        # TS.ADD...): the model cannot know their keys, says so, and is exact for the rest.
        unknown = set(result.aof.unknown_commands)
        assert unknown <= {"GRAPH.QUERY", "VADD"} | STACK_COMMANDS, result.aof
        assert any(p.code == "approximate" for p in result.problems)
        modules = set(expected["modules"]) | {"graphdata", "vectorset"}
        assert counts(result) == expected_counts(expected, without=modules)
    else:
        assert counts(result) == expected_counts(expected)


@pytest.mark.parametrize("expected_path", GOOD, ids=[p.name for p in GOOD])
def test_aof_fixture_files_and_commands_are_reported(expected_path: Path) -> None:
    expected = json.loads(expected_path.read_text())
    result = check_backup(target_of(expected_path), now_ms=expected["saved_at_ms"])
    assert result.aof is not None
    listed = [f for f in expected["aof"]["files"] if f["kind"] != "manifest"]
    assert [f.name for f in result.aof.files] == [Path(f["name"]).name for f in listed]
    assert [f.size for f in result.aof.files] == [f["bytes"] for f in listed]
    total = sum(f.commands for f in result.aof.files)
    assert total == sum(result.aof.commands.values()) > 0
    if expected["aof"]["preamble"]:
        assert result.rdb_version is not None and result.checksum.status == "ok"


# What rbkit must say for each damaged fixture, and why where it differs from redis-check-aof
# (which knows nothing of aof-load-truncated) or from the servers' own load.
VERDICTS = {
    "garbage-inserted": ("error", "bad_frame", "all agree: refused"),
    "incr-out-of-order": ("error", "bad_manifest", "all agree: refused"),
    "lf-header-line": (
        "error",
        "bad_frame",
        "agrees with redis-check-aof; the servers load it, because their line reader takes a "
        "lone LF after '*N' — rbkit holds the file to the format, as the checker does",
    ),
    "lf-payload-line": ("error", "bad_frame", "all agree: refused"),
    "manifest-dotdot": ("error", "bad_manifest", "all agree: a name may not be a path"),
    "manifest-missing-file": ("error", "missing_file", "all agree: refused"),
    "manifest-two-bases": ("error", "bad_manifest", "all agree: refused"),
    "multi-across-incr-files": (
        "error",
        "unterminated_multi",
        "all agree: a MULTI left open in a file that is not the last is never forgiven",
    ),
    "single-ends-in-multi": (
        "warning",
        "unterminated_multi",
        "rbkit says more than redis-check-aof: the server loads it with aof-load-truncated "
        "yes (dropping the transaction) and refuses with no, and the warning says so",
    ),
    "truncated-last-command": (
        "warning",
        "truncated_tail",
        "rbkit says more than redis-check-aof: the server loads it with aof-load-truncated "
        "yes (dropping the cut command) and refuses with no, and the warning says so",
    ),
}


@pytest.mark.parametrize("damaged", DAMAGED, ids=[p.stem for p in DAMAGED])
def test_damaged_aof_verdict_against_redis_check_aof_and_the_servers(damaged: Path) -> None:
    info = json.loads(damaged.read_text())
    severity, code, _why = VERDICTS[damaged.stem]
    path = AOF / info["file"]
    result = check_backup(path)
    found = [(p.severity, p.code) for p in result.problems if p.code not in ("approximate",)]
    assert (severity, code) in found, result.problems
    assert result.valid == (severity == "warning")
    offsets = [p.offset for p in result.problems if p.code == code and p.offset is not None]
    if offsets and info.get("offset") is not None and info["layout"] == "single":
        assert abs(offsets[0] - info["offset"]) < 64, (offsets, info["offset"])
    # redis-check-aof, live: it calls every one of these invalid.
    checker = subprocess.run(
        [REDIS_CHECK_AOF, str(path)], capture_output=True, text=True, timeout=60, cwd=AOF
    )
    assert checker.returncode != 0, checker.stdout
    # The servers: where rbkit only warns, Redis loads the file with aof-load-truncated yes
    # and refuses it with no; where rbkit says invalid, no server setting loads it — except
    # lf-header-line (see VERDICTS).
    for outcomes in info["server_load"].values():
        yes = outcomes["aof-load-truncated yes"]["result"]
        no = outcomes["aof-load-truncated no"]["result"]
        if severity == "warning":
            assert (yes, no) == ("loads", "refuses")
        elif damaged.stem == "lf-header-line":
            assert (yes, no) == ("loads", "loads")
        else:
            assert (yes, no) == ("refuses", "refuses")


def test_truncated_tail_warning_names_the_command_and_the_bytes() -> None:
    result = check_backup(AOF / "damaged" / "truncated-last-command.aof")
    (warning,) = [p for p in result.problems if p.code == "truncated_tail"]
    assert "PEXPIREAT command" in warning.message
    assert "aof-load-truncated yes" in warning.message and "refuses to start" in warning.message
    size = (AOF / "damaged" / "truncated-last-command.aof").stat().st_size
    assert f"the last {size - warning.offset} bytes" in warning.message


def copy_set(tmp_path: Path, name: str) -> Path:
    target = tmp_path / "data" / "appendonlydir"
    shutil.copytree(AOF / name / "appendonlydir", target)
    return target


def test_history_files_are_listed_not_read(tmp_path: Path) -> None:
    folder = copy_set(tmp_path, "redis-7.0-rdb-base")
    (folder / "appendonly.aof.1.base.rdb").write_bytes(b"not even an RDB")
    manifest = folder / "appendonly.aof.manifest"
    manifest.write_bytes(b"file appendonly.aof.1.base.rdb seq 1 type h\n" + manifest.read_bytes())
    result = check_backup(folder)
    assert result.valid, result.problems
    assert result.aof is not None
    history = [f for f in result.aof.files if f.role == "history"]
    assert [(f.name, f.checked) for f in history] == [("appendonly.aof.1.base.rdb", False)]
    assert any("appendonly.aof.1.base.rdb" in n and "not read" in n for n in result.notes)


def test_data_dir_with_appendonly_yes_checks_the_aof_and_ignores_the_dump(
    tmp_path: Path,
) -> None:
    folder = copy_set(tmp_path, "redis-7.0-rdb-base")
    data = folder.parent
    shutil.copy(AOF.parent / "rdb" / "redis-7.0-strings-only.rdb", data / "dump.rdb")
    config = tmp_path / "redis.conf"
    config.write_text(f'dir "{data}"\nappendonly yes\nappendfilename "appendonly.aof"\n')
    expected = json.loads((AOF / "redis-7.0-rdb-base.expected.json").read_text())
    result = check_backup(data, config_path=config, now_ms=expected["saved_at_ms"])
    assert result.format == "aof" and result.valid
    assert counts(result) == expected_counts(expected)
    assert any("Redis ignores it" in n and "dump.rdb" in n for n in result.notes)


def test_a_manifest_naming_a_path_never_opens_it(tmp_path: Path) -> None:
    folder = copy_set(tmp_path, "redis-7.0-rdb-base")
    secret = tmp_path / "outside.aof"
    secret.write_bytes(b"*1\r\n$4\r\nPING\r\n")
    manifest = folder / "appendonly.aof.manifest"
    manifest.write_bytes(b"file ../../outside.aof seq 9 type i\n")
    result = check_backup(folder)
    assert not result.valid
    assert [p.code for p in result.problems] == ["bad_manifest"]
    assert result.aof is not None and result.aof.files == []
