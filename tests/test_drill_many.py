"""``rbkit restore A B ... --stage-only``: a drill of each backup, each with its own scratch
server, in a local pool (--jobs) or on a real Dask LocalCluster; JSON Lines in argument
order, the worst exit code. What each drill's server loaded is held against the fixture's
inventory read from the live server that wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke_cli, load_expected
from sources_support import ROOT, compressed, dask_scheduler, rbkit_text

RDB = ROOT / "fixtures/rdb"
GOOD = [RDB / "redis-7.0-all-types.rdb", RDB / "redis-6.2-strings-only.rdb"]


rbkit = rbkit_text


@pytest.fixture
def backups(tmp_path: Path) -> list[str]:
    """Two fixtures (one as zstd), a gzip cut short, a missing file."""
    cut = compressed(GOOD[0], "gzip", tmp_path, name="cut.rdb.gz")
    cut.write_bytes(cut.read_bytes()[:-4])
    return [
        str(GOOD[0]),
        str(compressed(GOOD[1], "zstd", tmp_path)),
        str(cut),
        str(tmp_path / "missing.rdb"),
    ]


def loaded_keys(report: dict) -> int:
    return report["loaded"]["keys_loaded"] + report["loaded"]["keys_expired"]


def stored_keys(rdb: Path) -> int:
    """Keys the server that wrote the fixture held when it saved (its own DBSIZE per db)."""
    return sum(len(keys) for keys in load_expected(rdb)["keys"].values())


def check_lines(lines: list[dict], backups: list[str]) -> None:
    assert [line.get("backup", line.get("path")) for line in lines] == backups
    assert [line.get("outcome") for line in lines] == ["verified", "verified", "refused", None]
    for line, rdb in zip(lines[:2], GOOD, strict=True):
        assert loaded_keys(line) == stored_keys(rdb)
    assert "gzip stream ends at compressed byte" in lines[2]["reason"]
    assert lines[3]["schema"] == "rbkit.error/1" and "no such file" in lines[3]["error"]


def test_drills_in_a_local_pool(backups: list[str]) -> None:
    done = rbkit("restore", *backups, "--stage-only", "--jobs", "2", "--json")
    assert done.returncode == 2, done.stderr
    check_lines([json.loads(x) for x in done.stdout.splitlines()], backups)


def test_drills_on_a_dask_local_cluster(backups: list[str]) -> None:
    with dask_scheduler() as executor:
        done = rbkit("restore", *backups, "--stage-only", "--executor", executor, "--json")
    assert done.returncode == 2, done.stderr
    check_lines([json.loads(x) for x in done.stdout.splitlines()], backups)


def test_several_backups_only_for_drills() -> None:
    run = invoke_cli("restore", GOOD[0], GOOD[1], "--to", "redis://127.0.0.1:1", "--yes")
    assert run.exit_code == 2
    assert "only a drill" in run.stderr
