"""The restore's journal, lock and file moves, where end-to-end runs cannot easily reach: a
journal cut off mid-line, a rollback run twice or cut off halfway, ``rejected-N`` folders,
flock-held and stale locks. No server: the target is "not running" (a closed port).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolkit.errors import JournalError
from toolkit.restore import files
from toolkit.restore.journal import (
    JOURNAL,
    LOCK,
    Journal,
    LockHeld,
    lock_holder,
    locked,
    rollback_folder,
)
from toolkit.restore.options import Options
from toolkit.restore.rollback import rollback
from toolkit.restore.target import Target
from toolkit.server.config import RedisConfig
from toolkit.server.process import free_port

NAMES = ["dump.rdb", "appendonlydir", "appendonly.aof"]


def down_target(d: Path) -> Target:
    """A target with nothing listening at its address."""
    return Target(RedisConfig(None, {"dir": os.fspath(d)}), f"redis://127.0.0.1:{free_port()}")


def cut_off_restore(d: Path, *, was_running: bool, start_cmd: str | None = None) -> Journal:
    """A data dir as a restore killed right after `install` leaves it: dump.rdb ("old") and
    appendonlydir/ kept in the rollback folder, a new dump.rdb installed."""
    (d / "dump.rdb").write_text("old")
    (d / "appendonlydir").mkdir()
    (d / "appendonlydir" / "appendonly.aof.1.base.rdb").write_text("old base")
    folder = rollback_folder(d)
    journal = Journal.create(
        d,
        {
            "data_dir": os.fspath(d),
            "rollback_dir": os.fspath(folder),
            "names": NAMES,
            "settings": {"dir": os.fspath(d), "dbfilename": "dump.rdb", "appendonly": "no"},
            "was_running": was_running,
            "start_cmd": start_cmd,
        },
    )
    for step in ("stop", "keep", "install"):
        journal.write(step, "begin")
        if step == "keep":
            assert files.move_all(NAMES, d, folder) == ["dump.rdb", "appendonlydir"]
        if step == "install":
            (d / "new.rdb").write_text("new")
            files.install(files.Item("dump.rdb", source=d / "new.rdb"), d, files.Owner.of(d))
            (d / "new.rdb").unlink()
        journal.write(step, "done")
    return journal


# -- the journal -----------------------------------------------------------------------------


def test_journal_cut_off_mid_line_is_read_up_to_the_last_whole_line(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, {"names": NAMES})
    journal.write("stop", "begin")
    journal.write("stop", "done")
    with open(tmp_path / JOURNAL, "a", encoding="utf-8") as f:
        f.write('{"step": "keep", "sta')  # the process died while writing this line
    read = Journal.read(tmp_path)
    assert read is not None
    assert read.plan == {"names": NAMES}
    assert [(e["step"], e["status"]) for e in read.entries] == [("stop", "begin"), ("stop", "done")]
    assert read.last == "stop (done)"
    assert not read.began("keep")


def test_journal_damaged_in_the_middle_is_an_error(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path, {"names": NAMES})
    journal.write("stop", "begin")
    lines = (tmp_path / JOURNAL).read_text().splitlines()
    (tmp_path / JOURNAL).write_text("\n".join([lines[0], "garbage", lines[1]]) + "\n")
    with pytest.raises(JournalError, match=r"rbkit-restore.journal:2: not a JSON line"):
        Journal.read(tmp_path)
    (tmp_path / JOURNAL).write_text(json.dumps({"step": "stop", "status": "begin"}) + "\n")
    with pytest.raises(JournalError, match="no plan line"):
        Journal.read(tmp_path)
    (tmp_path / JOURNAL).unlink()
    assert Journal.read(tmp_path) is None


# -- rollback --------------------------------------------------------------------------------


def test_rollback_puts_back_and_rejects(tmp_path: Path) -> None:
    journal = cut_off_restore(tmp_path, was_running=False)
    folder = Path(journal.plan["rollback_dir"])
    out = rollback(journal, down_target(tmp_path), Options(tmp_path), lambda _t: None)
    assert out.verified, out.reason
    assert (tmp_path / "dump.rdb").read_text() == "old"
    assert (tmp_path / "appendonlydir" / "appendonly.aof.1.base.rdb").read_text() == "old base"
    assert (folder / "rejected" / "dump.rdb").read_text() == "new"
    assert not (tmp_path / JOURNAL).exists() and (folder / JOURNAL).exists()
    entries = [json.loads(line) for line in (folder / JOURNAL).read_text().splitlines()[1:]]
    assert [(e["step"], e["status"]) for e in entries][-3:] == [
        ("put back", "begin"), ("put back", "done"), ("rolled-back", "done"),
    ]  # fmt: skip


def test_rollback_run_twice_never_rejects_what_it_put_back(tmp_path: Path) -> None:
    """The first rollback puts the files back, then cannot start the target (the journal
    stays); the second must not take the old dump.rdb for an installed one."""
    journal = cut_off_restore(tmp_path, was_running=True, start_cmd="echo no way >&2; exit 3")
    folder = Path(journal.plan["rollback_dir"])
    first = rollback(journal, down_target(tmp_path), Options(tmp_path), lambda _t: None)
    assert not first.verified
    assert first.reason is not None and first.reason.startswith("rollback failed: --start-cmd ")
    assert first.reason.endswith("(no way)")
    assert (tmp_path / "dump.rdb").read_text() == "old"
    again = Journal.read(tmp_path)
    assert again is not None and again.last.startswith("rollback (failed)")
    second = rollback(again, down_target(tmp_path), Options(tmp_path), lambda _t: None)
    assert not second.verified
    assert [s.detail for s in second.steps if s.name == "put back"] == [
        "already done by an earlier rollback"
    ]
    assert (tmp_path / "dump.rdb").read_text() == "old"
    assert (tmp_path / "appendonlydir" / "appendonly.aof.1.base.rdb").read_text() == "old base"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("rejected")) == ["rejected"]
    assert (folder / "rejected" / "dump.rdb").read_text() == "new"


def test_rollback_cut_off_while_putting_back_finishes(tmp_path: Path) -> None:
    """A rollback died after rejecting the installed dump.rdb and putting the old one back,
    before appendonlydir/ went back: the next one moves only what is still missing."""
    journal = cut_off_restore(tmp_path, was_running=False)
    folder = Path(journal.plan["rollback_dir"])
    journal.write("put back", "begin", kept=["dump.rdb", "appendonlydir"])
    files.move_all(["dump.rdb"], tmp_path, folder / "rejected")
    files.move_all(["dump.rdb"], folder, tmp_path)
    # ... and the restarted server had meanwhile written a file of its own under a name that
    # was not kept: that one is the restore's to reject.
    (tmp_path / "appendonly.aof").write_text("written after the restore")
    again = Journal.read(tmp_path)
    assert again is not None
    out = rollback(again, down_target(tmp_path), Options(tmp_path), lambda _t: None)
    assert out.verified, out.reason
    assert (tmp_path / "dump.rdb").read_text() == "old"
    assert (tmp_path / "appendonlydir" / "appendonly.aof.1.base.rdb").read_text() == "old base"
    assert (folder / "rejected" / "dump.rdb").read_text() == "new"
    assert (folder / "rejected-2" / "appendonly.aof").read_text() == "written after the restore"
    put_back = next(s for s in out.steps if s.name == "put back")
    assert put_back.detail.endswith("; the installed appendonly.aof -> rejected-2/")


def test_rollback_before_the_stop_closes_the_journal(tmp_path: Path) -> None:
    folder = rollback_folder(tmp_path)
    journal = Journal.create(
        tmp_path,
        {"data_dir": os.fspath(tmp_path), "rollback_dir": os.fspath(folder), "names": NAMES},
    )
    journal.write("save", "begin")
    journal.write("save", "done")
    out = rollback(journal, down_target(tmp_path), Options(tmp_path), lambda _t: None)
    assert out.verified and out.reason is not None and "not touched" in out.reason
    # Nothing was moved: no rollback folder is made, and the finished journal goes with it.
    assert not (tmp_path / JOURNAL).exists() and not folder.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- files -----------------------------------------------------------------------------------


def test_rejected_folders_are_numbered(tmp_path: Path) -> None:
    assert files.rejected_dir(tmp_path) == tmp_path / "rejected"
    (tmp_path / "rejected").mkdir()
    assert files.rejected_dir(tmp_path) == tmp_path / "rejected-2"
    (tmp_path / "rejected-2").mkdir()
    assert files.rejected_dir(tmp_path) == tmp_path / "rejected-3"


def test_moves_never_overwrite(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "dump.rdb").write_text("a")
    (dest / "dump.rdb").write_text("b")
    with pytest.raises(FileExistsError):
        files.move_all(["dump.rdb"], src, dest)
    assert (src / "dump.rdb").read_text() == "a" and (dest / "dump.rdb").read_text() == "b"
    with pytest.raises(FileExistsError, match="is in the way"):
        files.install(files.Item("dump.rdb", source=src / "dump.rdb"), dest, files.Owner.of(dest))
    assert (dest / "dump.rdb").read_text() == "b"


def test_install_replaces_a_half_written_temporary(tmp_path: Path) -> None:
    (tmp_path / f"{files.TMP_PREFIX}dump.rdb").write_text("half")
    (tmp_path / "backup.rdb").write_text("whole")
    owner = files.Owner(os.getuid(), os.getgid(), 0o600)
    files.install(files.Item("dump.rdb", source=tmp_path / "backup.rdb"), tmp_path, owner)
    assert (tmp_path / "dump.rdb").read_text() == "whole"
    assert (tmp_path / "dump.rdb").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / f"{files.TMP_PREFIX}dump.rdb").exists()


def test_directory_mode_follows_the_file_mode(tmp_path: Path) -> None:
    (tmp_path / "base.rdb").write_text("x")
    item = files.Item(
        "appendonlydir",
        files=[(tmp_path / "base.rdb", "a.1.base.rdb")],
        text={"a.manifest": "file a.1.base.rdb seq 1 type b\n"},
    )
    files.install(item, tmp_path, files.Owner(os.getuid(), os.getgid(), 0o640))
    assert (tmp_path / "appendonlydir").stat().st_mode & 0o777 == 0o750
    assert (tmp_path / "appendonlydir" / "a.manifest").stat().st_mode & 0o777 == 0o640


# -- the lock --------------------------------------------------------------------------------


def test_stale_lock_is_taken_over(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / LOCK).write_text(f"{gone.pid} 0\n")
    assert lock_holder(tmp_path) is None
    with locked(tmp_path) as notes:
        assert notes == [f"a stale lock of pid {gone.pid} (no longer running) was taken over"]
        assert (tmp_path / LOCK).read_text().split()[0] == str(os.getpid())
    assert not (tmp_path / LOCK).exists()


def test_lock_held_by_a_live_process(tmp_path: Path) -> None:
    # A process that holds the lock's flock (and has not written its pid yet).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({os.fspath(tmp_path / LOCK)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        held = lock_holder(tmp_path)
        assert held == f"{tmp_path / LOCK}: another restore (pid ?) is running in {tmp_path}"
        with pytest.raises(LockHeld), locked(tmp_path):
            pass
        assert (tmp_path / LOCK).exists()  # not taken from its holder
    finally:
        holder.kill()
        holder.wait()
    with locked(tmp_path) as notes:  # its holder is gone
        assert notes == []


@pytest.mark.parametrize("size", [0, 1, files.CHUNK + 12345])
def test_the_private_copy_is_the_backup_byte_for_byte(tmp_path: Path, size: int) -> None:
    """The kernel's copy (copy_file_range), fsynced; its SHA-256 is the source's, as hashlib
    takes it from the source file."""
    src = tmp_path / "backup.rdb"
    src.write_bytes(os.urandom(size))
    dest = tmp_path / "copy.rdb"
    digest = files._copy_hashed(src, dest)
    assert dest.read_bytes() == src.read_bytes()
    assert digest == hashlib.sha256(src.read_bytes()).hexdigest()


def test_what_the_kernel_does_not_copy_is_read_and_written(tmp_path: Path) -> None:
    """A source with no size to copy_file_range (a pipe) is copied by read and write."""
    data = os.urandom(50_000)
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    dest = tmp_path / "copy"
    try:
        with open(dest, "xb", buffering=0) as out:
            files._copy_in_kernel(r, out.fileno())
    finally:
        os.close(r)
    assert dest.read_bytes() == data
