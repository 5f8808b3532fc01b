"""What ``rbkit restore`` refuses, and that a refusal (or a dry run) changes nothing.

"Nothing changed" is measured, not assumed: the target's DEBUG DIGEST (key names, values,
expiries) with its per-db counts, the listing of its data dir (mode, owner, size, SHA-256 of
every file) and its pid are the same before and after. Also: restores across the versions
here (6.2, 7.0, 8.2 targets x 6.2/7.0/8.2 backups), --dry-run, --yes, --json, and the lock.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import binary
from restore_support import (
    AOF,
    LOCK,
    RDB,
    Target,
    alive_counts,
    copy_backup,
    make_target,
    rbkit,
    scratch_servers,
)

__all__ = ["make_target"]  # the fixture


class Snapshot:
    """What must not change: digest and counts, data dir listing, pid."""

    def __init__(self, t: Target) -> None:
        self.target = t
        self.digest = t.digest()
        self.listing = t.listing()
        self.pid = t.pid()

    def assert_unchanged(self) -> None:
        t = self.target
        assert t.up() and t.pid() == self.pid, "the server must still be running"
        assert t.digest() == self.digest
        assert t.listing() == self.listing


def refused(t: Target, backup: Path, *extra: str) -> dict:
    run = rbkit("restore", backup, "--config", t.conf, "--yes", "--json", *extra)
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "refused" and report["ok"] is False
    assert report["steps"][-1]["status"] == "refused"
    assert report["rollback_dir"] is None and report["journal"] is None
    return report


# -- damaged backups -------------------------------------------------------------------------


def truncated(src: Path, dest: Path) -> Path:
    path = copy_backup(src, dest)
    path.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    return path


def flipped(src: Path, dest: Path) -> Path:
    path = copy_backup(src, dest)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("damage", "appendonly", "src", "says"),
    [
        (truncated, False, RDB / "redis-7.0-all-types.rdb", "the backup is invalid: "),
        (flipped, False, RDB / "redis-7.0-all-types.rdb", "checksum"),
        (None, True, AOF / "damaged" / "garbage-inserted.aof", "the backup is invalid: "),
        (None, True, AOF / "damaged" / "lf-payload-line.aof", "the backup is invalid: "),
    ],
    ids=["rdb-truncated", "rdb-byte-flipped", "aof-garbage-inserted", "aof-lf-payload-line"],
)
def test_damaged_backup_is_refused_and_nothing_changes(
    make_target, tmp_path: Path, damage, appendonly: bool, src: Path, says: str
) -> None:
    t = make_target("7.0", fill=True, appendonly=appendonly)
    t.save_now()  # data files on disk to compare
    before = Snapshot(t)
    stages_before = set(Path("/tmp").glob("rbkit-stage-*"))
    backup = damage(src, tmp_path / "backup") if damage else src
    report = refused(t, backup)
    assert report["valid"] is False
    assert report["reason"].startswith("the backup is invalid: ") and says in report["reason"]
    assert [s["name"] for s in report["steps"]] == ["preflight", "copy", "gate"]
    before.assert_unchanged()
    # An RDB's scratch server, started beside the gate, went with the refusal.
    assert not set(Path("/tmp").glob("rbkit-stage-*")) - stages_before
    assert not scratch_servers()


# -- across versions -------------------------------------------------------------------------

VERSIONS = ("6.2", "7.0", "8.2")
RELEASES = {"6.2": "6.2.14", "7.0": "7.0.15", "8.2": "8.2.3"}


@pytest.fixture(scope="module")
def matrix_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Target]]:
    """One running target per version, shared: each restore replaces what the last left."""
    root = tmp_path_factory.mktemp("matrix")
    targets = {v: Target(root / v, binary(v)) for v in VERSIONS}
    try:
        for t in targets.values():
            t.start()
            t.fill_old()
        yield targets
    finally:
        for t in targets.values():
            t.cleanup()


def rdb_version_of(version: str) -> int:
    return {"6.2": 9, "7.0": 10, "8.2": 12}[version]


MATRIX = [(target, backup) for target in VERSIONS for backup in VERSIONS]


@pytest.mark.parametrize(("target", "written_by"), MATRIX, ids=[f"{b}-into-{t}" for t, b in MATRIX])
def test_rdb_across_versions(
    matrix_targets: dict[str, Target], target: str, written_by: str
) -> None:
    t = matrix_targets[target]
    assert binary(target).version_text == RELEASES[target]
    backup = RDB / f"redis-{written_by}-strings-only.rdb"
    v = rdb_version_of(written_by)
    need = {9: "5.0", 10: "7.0", 12: "7.4"}[v]
    if tuple(map(int, RELEASES[target].split("."))) >= tuple(map(int, need.split("."))):
        run = rbkit("restore", backup, "--config", t.conf, "--yes", "--json")
        assert run.code == 0, run.text
        assert run.json()["outcome"] == "restored"
        assert t.counts() == alive_counts(backup)
        assert not t.keys(0, "old:*")
    else:
        before = Snapshot(t)
        report = refused(t, backup)
        assert report["reasons"] == [
            f"RDB {v} needs Redis >= {need}; the target runs {RELEASES[target]}"
        ]
        assert report["rdb_version"] == v
        before.assert_unchanged()


def test_newer_file_with_modules_gives_every_reason(make_target) -> None:
    """An 8.2 RDB with module values into 7.0: the version and each module type are named."""
    t = make_target("7.0", fill=True)
    before = Snapshot(t)
    report = refused(t, RDB / "redis-8.2-all-types.rdb")
    reasons = report["reasons"]
    assert reasons[0] == "RDB 12 needs Redis >= 7.4; the target runs 7.0.15"
    assert any("module type graphdata" in r for r in reasons)
    assert any("module type vectorset" in r for r in reasons)
    assert [s["name"] for s in report["steps"]] == ["preflight", "copy", "gate", "fit"]
    before.assert_unchanged()


@pytest.mark.parametrize(
    ("backup", "reasons"),
    [
        (
            AOF / "redis-7.0-rdb-base" / "appendonlydir",
            [
                "RDB 10 (the AOF's RDB part) needs Redis >= 7.0; the target runs 6.2.14",
                "a multi-part AOF (appendonlydir with a manifest) needs Redis >= 7.0; "
                "the target runs 6.2.14",
                "the AOF uses FUNCTION, which needs Redis >= 7.0; the target runs 6.2.14",
            ],
        ),
        (
            RDB / "redis-7.0-databases-32.rdb",
            [
                "RDB 10 needs Redis >= 7.0; the target runs 6.2.14",
                "the backup uses db 31, but the target has databases 16 (set databases 32 "
                "in its config)",
            ],
        ),
    ],
    ids=["multipart-aof-into-6.2", "databases-32-into-6.2"],
)
def test_aof_and_databases_refused_by_6_2(
    matrix_targets: dict[str, Target], backup: Path, reasons: list[str]
) -> None:
    t = matrix_targets["6.2"]
    before = Snapshot(t)
    assert refused(t, backup)["reasons"] == reasons
    before.assert_unchanged()


def test_databases_setting_must_cover_the_file(make_target) -> None:
    t = make_target("7.0", fill=True)
    before = Snapshot(t)
    report = refused(t, RDB / "redis-7.0-databases-32.rdb")
    assert report["reasons"] == [
        "the backup uses db 31, but the target has databases 16 (set databases 32 in its config)"
    ]
    before.assert_unchanged()


# -- dry run, confirmation, JSON, lock -------------------------------------------------------


def test_dry_run_touches_nothing_and_prints_the_plan(make_target) -> None:
    t = make_target("7.0", fill=True)
    t.save_now()
    before = Snapshot(t)
    run = rbkit("restore", RDB / "redis-7.0-all-types.rdb", "--config", t.conf, "--dry-run")
    assert run.code == 0, run.text
    assert "PLAN (--dry-run): nothing was changed" in run.out
    for step in ("preflight", "gate", "stage", "save", "stop", "keep", "install", "start",
                 "verify", "rollback"):  # fmt: skip
        assert f"\n{step} " in run.out, step
    assert "BGSAVE" in run.out and "move dump.rdb into rbkit-rollback-" in run.out
    assert f"data dir {t.data}" in run.out
    before.assert_unchanged()
    assert not t.rollback_dirs()

    report = rbkit("restore", RDB / "redis-7.0-all-types.rdb", "--config", t.conf, "--dry-run",
                   "--json").json()  # fmt: skip
    assert report["outcome"] == "planned" and report["ok"] is True
    assert [p["step"] for p in report["plan"]][-1] == "rollback"
    before.assert_unchanged()


def test_without_yes_and_no_terminal_it_stops(make_target) -> None:
    t = make_target("7.0", fill=True)
    before = Snapshot(t)
    run = rbkit("restore", RDB / "redis-7.0-all-types.rdb", "--config", t.conf)
    assert run.code == 2
    assert run.err.strip() == (
        "error: the restore replaces the target's data: pass --yes (stdin is not a terminal)"
    )
    assert run.out == ""
    before.assert_unchanged()


def test_json_report(make_target) -> None:
    t = make_target("7.0", fill=True)
    backup = RDB / "redis-7.0-strings-only.rdb"
    run = rbkit("restore", backup, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    report = run.json()
    assert report["schema"] == "rbkit.restore/1" and report["mode"] == "file"
    assert report["outcome"] == "restored" and report["ok"] is True
    assert report["format"] == "rdb" and report["rdb_version"] == 10 and report["valid"] is True
    target = report["target"]
    assert target["address"] == t.url and target["running"] is True
    assert target["version"] == "7.0.15" and target["config_file"] == str(t.conf)
    assert target["data_dir"] == str(t.data) and target["appendonly"] is False
    assert target["sources"]["dir"] == "CONFIG GET"
    assert report["kept"] == ["dump.rdb"] and report["installed"] == ["dump.rdb"]
    assert report["verification"]["verified"] and report["verification"]["keys"] == 14
    assert report["stage"]["outcome"] == "verified"
    assert Path(report["journal"]).parent == Path(report["rollback_dir"])
    assert all(s["status"] == "ok" for s in report["steps"])


def test_lock_of_a_live_process_refuses(make_target) -> None:
    t = make_target("7.0", fill=True)
    holder = subprocess.Popen(["sleep", "60"])
    try:
        (t.data / LOCK).write_text(f"{holder.pid} 0\n")
        before = Snapshot(t)
        report = refused(t, RDB / "redis-7.0-strings-only.rdb")
        assert report["reasons"] == [
            f"{t.data / LOCK}: another restore (pid {holder.pid}) is running in {t.data}"
        ]
        before.assert_unchanged()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_taken_over(make_target) -> None:
    t = make_target("7.0", fill=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    (t.data / LOCK).write_text(f"{gone.pid} 0\n")
    backup = RDB / "redis-7.0-strings-only.rdb"
    run = rbkit("restore", backup, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    report = run.json()
    assert f"a stale lock of pid {gone.pid} (no longer running) was taken over" in report["notes"]
    assert not (t.data / LOCK).exists()
    assert t.counts() == alive_counts(backup)


def test_missing_backup_is_a_usage_error(make_target, tmp_path: Path) -> None:
    t = make_target("7.0", fill=True)
    before = Snapshot(t)
    run = rbkit("restore", tmp_path / "nope.rdb", "--config", t.conf, "--yes")
    assert run.code == 2
    assert run.err.splitlines()[-1] == f"error: {tmp_path / 'nope.rdb'}: no such file or directory"
    before.assert_unchanged()


# -- a cut-off AOF tail ------------------------------------------------------------------------

CUT_TAIL = AOF / "damaged" / "truncated-last-command.aof"


def test_cut_off_aof_refused_by_aof_load_truncated_no(make_target) -> None:
    """The check passes a cut-off tail with a warning; a target that would refuse to start
    with it (aof-load-truncated no) is refused before anything changes."""
    t = make_target("7.0", fill=True, appendonly=True, extra={"aof-load-truncated": "no"})
    before = Snapshot(t)
    report = refused(t, CUT_TAIL)
    assert report["reasons"][-1].startswith("the AOF ends cut off (")
    assert report["reasons"][-1].endswith(
        "and the target has aof-load-truncated no: it would refuse to start with it (set it "
        "to yes, Redis's default, to drop the cut-off tail)"
    )
    before.assert_unchanged()


def test_cut_off_aof_restored_with_aof_load_truncated_yes(make_target) -> None:
    t = make_target("7.0", fill=True, appendonly=True)
    run = rbkit("restore", CUT_TAIL, "--config", t.conf, "--yes", "--json")
    assert run.code == 0, run.text
    assert run.json()["outcome"] == "restored"
    assert not t.keys(0, "old:*")
