"""The same server comes back (issue 9): the binary the target ran, checked against the
version it reported, never a ``redis-server`` that PATH happens to find; a stopped target is
started only with a binary the operator names; and a restore stuck waiting on a start command
is interrupted at once by Ctrl-C and rolls back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import binary, interruptible
from restore_support import (
    JOURNAL,
    OLD_KEYS,
    RDB,
    ROOT,
    ServerBinary,
    alive_counts,
    file_keys,
    make_target,
    rbkit,
)

__all__ = ["make_target"]  # the fixture

BACKUP = RDB / "redis-7.0-all-types.rdb"
DEBIAN = Path("/usr/bin/redis-server")


def exe_of(pid: int) -> str:
    return os.path.realpath(f"/proc/{pid}/exe")


def test_a_redis_server_first_on_path_does_not_replace_the_target(
    make_target, tmp_path: Path
) -> None:
    """The target runs Debian's 7.0, started by its bare name; rbkit runs with another
    redis-server (6.2) first on PATH, as an activated venv once had. It comes back as 7.0."""
    t = make_target("7.0", start=False)
    (t.data / "dump.rdb").unlink(missing_ok=True)
    server = subprocess.Popen(
        ["redis-server", os.fspath(t.conf)],
        cwd=t.root,
        env={"PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while not t.ready():
        assert server.poll() is None, t.log_tail()
        time.sleep(0.02)
    t.fill_old()
    running = exe_of(t.pid())
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "redis-server").symlink_to(binary("6.2").path)
    path = f"{shadow}:{os.environ['PATH']}"
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", env={"PATH": path})
    assert run.code == 0, run.text
    report = run.json()
    assert report["outcome"] == "restored"
    assert report["target"]["executable"] == os.fspath(DEBIAN)
    assert t.info("server")["redis_version"] == "7.0.15"
    assert exe_of(t.pid()) == running
    assert t.counts() == alive_counts(BACKUP)


def test_a_binary_replaced_on_disk_is_refused(make_target, tmp_path: Path) -> None:
    """The target's binary was replaced on disk since it started (an upgrade): rbkit cannot
    start the same server again by that path, refuses, and says how to go on."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    copy = bindir / "redis-server"
    shutil.copyfile(os.path.realpath(DEBIAN), copy)
    copy.chmod(0o755)
    t = make_target("7.0", start=False)
    t.binary = ServerBinary(copy, (7, 0, 15), "copy")
    t.start()
    t.fill_old()
    t.save_now()
    before = t.digest()
    newer = bindir / "redis-server.new"
    shutil.copyfile(binary("6.2").path, newer)
    newer.chmod(0o755)
    os.replace(newer, copy)
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json")
    assert run.code == 1, run.text
    report = run.json()
    assert report["outcome"] == "refused"
    assert "was replaced on disk since it started" in report["reason"]
    assert "--redis-server" in report["reason"]
    assert t.digest() == before
    # A binary of the same version, named by the operator, is accepted; one of another
    # version is not.
    other = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", "--redis-server", copy)
    assert other.code == 1 and "the target runs 7.0.15, but" in other.json()["reason"]
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", "--redis-server", DEBIAN)
    assert run.code == 0, run.text
    assert t.info("server")["redis_version"] == "7.0.15"
    assert t.counts() == alive_counts(BACKUP)


def test_a_stopped_target_needs_its_binary_named(make_target) -> None:
    t = make_target("7.0", fill=True)
    t.save_now()
    t.stop()
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json")
    assert run.code == 1, run.text
    assert "pass --redis-server PATH" in run.json()["reason"]
    assert not t.up() and file_keys(t.data / "dump.rdb") == OLD_KEYS + 1
    run = rbkit("restore", BACKUP, "--config", t.conf, "--yes", "--json", "--redis-server", DEBIAN)
    assert run.code == 0, run.text
    assert run.json()["target"]["running"] is False
    assert t.counts() == alive_counts(BACKUP)


def test_ctrl_c_while_a_start_command_hangs(make_target) -> None:
    """The start command never brings the server up; Ctrl-C ends the wait at once, its
    process group is killed, and the rollback (whose own start with that command cannot work
    either) brings the old data back by starting the server directly."""
    t = make_target("7.0", fill=True)
    t.save_now()
    before = t.digest()
    marker = f"sleep {100000 + os.getpid()}"
    args = ["restore", BACKUP, "--config", t.conf, "--yes", "--json", "--timeout", "10"]
    process = subprocess.Popen(
        [sys.executable, "-m", "toolkit", *args, "--start-cmd", marker],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=interruptible,
    )
    journal = t.data / JOURNAL
    deadline = time.monotonic() + 60
    while not (journal.is_file() and '"step": "start", "status": "begin"' in journal.read_text()):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)  # hang guard: --timeout 10, twice at most
    assert process.returncode == 1, err.decode()
    report = json.loads(out)
    assert report["outcome"] == "rolled-back" and report["reason"] == "interrupted (Ctrl-C)"
    assert report["rollback"]["verified"] is True
    start = next(s for s in report["rollback"]["steps"] if s["name"] == "start")
    assert start["detail"].startswith("--start-cmd failed")
    assert t.digest() == before
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True).stdout
    assert not left, f"the start command is still running: {left!r}"
