"""``--tmpdir DIR`` holds every scratch file of a command, not only a decompressed backup: the
drill's scratch server folder (and, where it runs, its snapshot), with real redis-servers; a
DIR too small is said before anything is copied; a DIR that does not exist is one line; and
the process's own temporary directory is as it was after the command."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import fixture_file, invoke_cli
from fault_support import tmpfs

from toolkit.server.process import find_binary
from toolkit.stage.scratch import EarlyLoad

NAME = "redis-7.0-all-types"


def _detail(report: dict, step: str) -> str:
    return next(s["detail"] for s in report["steps"] if s["name"] == step)


def test_the_drill_works_under_tmpdir(tmp_path: Path) -> None:
    before = tempfile.gettempdir()
    run = invoke_cli("restore", fixture_file(NAME), "--stage-only", "--json", "--tmpdir", tmp_path)
    assert run.exit_code == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["verified"] is True
    assert f"into {tmp_path}/rbkit-stage-" in _detail(report, "copy")
    assert os.listdir(tmp_path) == []  # removed after
    assert tempfile.gettempdir() == before


def test_drills_in_worker_processes_work_under_tmpdir(tmp_path: Path) -> None:
    """Several backups: each drill runs in a spawned worker, which is told the DIR too."""
    backup = fixture_file(NAME)
    run = invoke_cli(
        "restore", backup, backup, "--stage-only", "--json", "--jobs", "2", "--tmpdir", tmp_path
    )
    assert run.exit_code == 0, run.stderr
    reports = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(reports) == 2
    for report in reports:
        assert f"into {tmp_path}/rbkit-stage-" in _detail(report, "copy")
    assert os.listdir(tmp_path) == []


def test_a_tmpdir_too_small_refuses_the_drill_before_copying(tmp_path: Path) -> None:
    backup = fixture_file(NAME)  # about 420 KB, on a 64 KiB tmpfs
    with tmpfs(tmp_path / "small", 64 * 1024) as small:
        run = invoke_cli("restore", backup, "--stage-only", "--json", "--tmpdir", small)
        assert run.exit_code == 1, run.output
        report = json.loads(run.stdout)
        assert report["verified"] is False
        reason = _detail(report, "preflight")
        assert f"not enough room in {small} for the scratch copy" in reason, reason
        assert os.listdir(small) == []


def test_a_tmpdir_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    before = tempfile.gettempdir()
    for command in (["check"], ["restore", "--stage-only"]):
        run = invoke_cli(*command, fixture_file(NAME), "--tmpdir", tmp_path / "nowhere")
        assert run.exit_code == 2, run.output
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "nowhere: the temporary directory does not exist" in lines[0]
    assert tempfile.gettempdir() == before


def test_the_restores_early_load_links_its_private_copy_and_leaves_it_whole(
    tmp_path: Path,
) -> None:
    """The scratch server that loads a restore's private copy while the gate checks it gets
    the file as a hard link on the same file system (no second copy), a real copy on another
    one, and a refusal where that copy does not fit; the server's load leaves the private
    copy byte for byte as it was, and closing it leaves the copy in place."""
    rdb = tmp_path / "private" / "dump.rdb"
    rdb.parent.mkdir()
    shutil.copyfile(fixture_file(NAME), rdb)
    digest = hashlib.sha256(rdb.read_bytes()).hexdigest()
    binary = find_binary("7.0")
    early = EarlyLoad(rdb, binary, 16, workdir=tmp_path)
    try:
        assert (early.directory / "dump.rdb").stat().st_ino == rdb.stat().st_ino
        server = early.take()
        server.wait_ready()
        info = server.client().info("keyspace")
        assert sum(db["keys"] for db in info.values()) > 0, info
        server.stop()
    finally:
        early.close()
        shutil.rmtree(early.directory, ignore_errors=True)
    assert hashlib.sha256(rdb.read_bytes()).hexdigest() == digest
    with tmpfs(tmp_path / "other", 4 * 1024 * 1024) as other:  # another file system
        early = EarlyLoad(rdb, binary, 16, workdir=other)
        try:
            copied = early.directory / "dump.rdb"
            assert copied.stat().st_ino != rdb.stat().st_ino
            assert copied.read_bytes() == rdb.read_bytes()
        finally:
            early.close()
        assert os.listdir(other) == []
    with tmpfs(tmp_path / "small", 64 * 1024) as small:  # the copy does not fit
        with pytest.raises(OSError) as refused:
            EarlyLoad(rdb, binary, 16, workdir=small)
        assert refused.value.errno == errno.ENOSPC
        assert os.listdir(small) == []
    assert hashlib.sha256(rdb.read_bytes()).hexdigest() == digest
