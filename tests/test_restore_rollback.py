"""Rollback: a verification mismatch rolls back by itself, a failed rollback can be finished
later, and a restore killed after any step is undone (``rbkit restore --rollback DIR``) or
finished (the same restore run again).

The target's state is compared by DEBUG DIGEST (key names, values, expiries) and per-db counts:
after each recovery it is exactly the old state or exactly the backup's as a server loading the
backup directly holds it: never a mix, never empty. No file is ever lost: the old data is in
the data dir or in a rollback folder, the installed file in ``rejected/``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import binary
from restore_support import (
    JOURNAL,
    LOCK,
    OLD_KEYS,
    RDB,
    STEPS,
    Target,
    file_keys,
    make_target,
    rbkit,
)

__all__ = ["make_target"]  # the fixture

BACKUP = RDB / "redis-7.0-all-types.rdb"


@pytest.fixture(scope="module")
def new_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[int, int]]]:
    """The digest and counts of a 7.0 server that loaded BACKUP as its dump.rdb."""
    ref = Target(tmp_path_factory.mktemp("reference"), binary("7.0"))
    (ref.data / "dump.rdb").write_bytes(BACKUP.read_bytes())
    try:
        ref.start()
        yield ref.digest()
    finally:
        ref.cleanup()


def old_target(make_target, **kw) -> tuple[Target, tuple[str, dict[int, int]]]:
    t = make_target("7.0", fill=True, **kw)
    t.save_now()
    return t, t.digest()


def assert_clean(t: Target) -> None:
    """No journal, lock or temporary left in the data dir."""
    assert not (t.data / JOURNAL).exists() and not (t.data / LOCK).exists()
    assert not list(t.data.glob(".rbkit-install-*"))


def old_files(t: Target) -> list[Path]:
    """Every dump.rdb under the data dir (rollback folders too) that holds the old data."""
    return [p for p in t.data.rglob("dump.rdb") if file_keys(p) == OLD_KEYS + 1]


# -- a verification mismatch -----------------------------------------------------------------


def test_mismatch_rolls_back_to_the_old_data(make_target) -> None:
    """--start-cmd starts the server from another config (dbfilename other.rdb, a copy of the
    old data): it comes up without the restored keys, the restore rolls back by itself."""
    t, old = old_target(make_target)
    (t.data / "other.rdb").write_bytes((t.data / "dump.rdb").read_bytes())
    other = t.write_config(t.root / "other.conf", dbfilename="other.rdb")
    start = shlex.join(t.start_command(other))
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", "--start-cmd", start)
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "rolled-back" and report["ok"] is False
    assert report["reason"].startswith("the restored server differs from the backup: ")
    assert report["steps"][-1]["name"] == "verify"
    assert report["steps"][-1]["status"] == "mismatch"
    assert report["rollback"]["verified"] is True
    assert [s["name"] for s in report["rollback"]["steps"]] == [
        "stop", "put back", "start", "verify",
    ]  # fmt: skip
    assert t.digest() == old  # the target runs its old data again
    folder = Path(report["rollback_dir"])
    assert (folder / "rejected" / "dump.rdb").read_bytes() == BACKUP.read_bytes()
    assert file_keys(t.data / "dump.rdb") == OLD_KEYS + 1
    assert (folder / JOURNAL).is_file()
    assert_clean(t)
    # It now runs from other.conf: a restore with --config redis.conf says they disagree.
    again = rbkit("restore", BACKUP, "--config", t.conf, "--yes")
    assert again.code == 1
    assert f"reason: the running server has dbfilename 'other.rdb' but {t.conf} says " in again.out
    assert t.digest() == old


def test_failed_rollback_is_finished_by_rollback_dir(make_target) -> None:
    """The start command brings up an empty server: the restore and its rollback both fail
    to verify (outcome failed). `--rollback DIR` with the right start command finishes it,
    and never mistakes the old files it already put back for installed ones."""
    t, old = old_target(make_target)
    empty = t.write_config(t.root / "empty.conf", dbfilename="nothing-here.rdb")
    bad = shlex.join(t.start_command(empty))
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", "--start-cmd", bad)
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "failed"
    assert report["rollback"]["verified"] is False
    assert report["rollback"]["reason"].startswith(
        "the rolled-back server differs from the kept files: "
    )
    assert (t.data / JOURNAL).is_file() and not (t.data / LOCK).exists()
    assert file_keys(t.data / "dump.rdb") == OLD_KEYS + 1  # the files are back already
    good = shlex.join(t.start_command())
    run = rbkit("restore", "--rollback", t.data, "--start-cmd", good)
    assert run.code == 0, run.text
    assert run.out.startswith("rollback: done, verified")
    assert "already done by an earlier rollback" in run.out
    assert t.digest() == old
    assert file_keys(t.data / "dump.rdb") == OLD_KEYS + 1
    folder = Path(report["rollback_dir"])
    assert [p.name for p in folder.iterdir() if p.name.startswith("rejected")] == ["rejected"]
    assert (folder / "rejected" / "dump.rdb").read_bytes() == BACKUP.read_bytes()
    assert_clean(t)


# -- killed between steps --------------------------------------------------------------------

KILLS = [(step, how) for step in STEPS for how in ("rollback", "rerun")]


@pytest.mark.parametrize(("step", "how"), KILLS, ids=[f"{s}-{h}" for s, h in KILLS])
def test_killed_after_each_step(make_target, new_state, step: str, how: str) -> None:
    t, old = old_target(make_target)
    killed = rbkit("restore", BACKUP, "--config", t.conf, "--yes", kill_after=step)
    assert killed.code == -9, killed.text  # SIGKILL, right after the step was journaled
    journal = (t.data / JOURNAL).read_text()
    assert f'"step": "{step}", "status": "done"' in journal.splitlines()[-1]
    assert (t.data / LOCK).exists()  # left behind by the killed process
    if how == "rollback":
        run = rbkit("restore", "--rollback", t.data)
        assert run.code == 0, run.text
        assert run.out.startswith("rollback: done, verified")
        assert t.digest() == old
        assert file_keys(t.data / "dump.rdb") == OLD_KEYS + 1
    else:
        if step == "keep":  # the plan says so
            dry = rbkit("restore", BACKUP, "--config", t.conf, "--dry-run")
            assert dry.code == 0, dry.text
            assert "first roll back the earlier restore cut off at keep (done)" in dry.out
        run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json")
        assert run.code == 0, run.text
        report = run.json()
        assert report["outcome"] == "restored" and report["verification"]["verified"]
        notes = report["notes"]
        assert any(n.startswith(f"an earlier restore was cut off at {step} (done)") for n in notes)
        assert t.digest() == new_state
        assert old_files(t), "the old data must be kept in a rollback folder"
    if step in ("install", "start", "verify"):  # the installed file, moved aside, not deleted
        rejected = list(t.data.glob("rbkit-rollback-*/rejected/dump.rdb"))
        assert [p.read_bytes() for p in rejected] == [BACKUP.read_bytes()]
    assert_clean(t)


@pytest.mark.parametrize(("step", "how"), [("install", "rollback"), ("start", "rerun")])
def test_killed_with_appendonly_yes(make_target, step: str, how: str) -> None:
    t, old = old_target(make_target, appendonly=True)
    killed = rbkit("restore", BACKUP, "--config", t.conf, "--yes", kill_after=step)
    assert killed.code == -9, killed.text
    if how == "rollback":
        run = rbkit("restore", "--rollback", t.data)
        assert run.code == 0, run.text
        assert t.digest() == old
    else:
        run = rbkit("restore", BACKUP, "--config", t.conf, "--yes")
        assert run.code == 0, run.text
        assert t.digest()[1] == {0: 42, 1: 4, 5: 3, 15: 1}
        assert not t.keys(0, "old:*")
    t.restart()  # and it stays so
    if how == "rollback":
        assert t.digest() == old
    else:
        assert t.digest()[1] == {0: 42, 1: 4, 5: 3, 15: 1}
    assert_clean(t)


@pytest.mark.parametrize("step", ["stop", "install", "start"])
def test_terminated_rolls_back_by_itself(make_target, step: str) -> None:
    """A SIGTERM (an operator's kill, Ctrl-C) mid-restore: no journal is left for later, the
    restore rolls back at once and says so (exit 1)."""
    t, old = old_target(make_target)
    run = rbkit(
        "restore",
        BACKUP,
        "--config",
        t.conf,
        "--yes",
        "--json",
        kill_after=f"{step}:TERM",
    )
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "rolled-back"
    assert report["reason"] == "terminated"
    assert report["rollback"]["verified"] is True
    assert t.digest() == old
    assert file_keys(t.data / "dump.rdb") == OLD_KEYS + 1
    assert_clean(t)
