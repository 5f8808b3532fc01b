"""``--tmpdir DIR`` holds every scratch file of a command, not only a decompressed backup: the
drill's scratch server folder (and, where it runs, its snapshot), with real redis-servers; a
DIR too small is said before anything is copied; a DIR that does not exist is one line; and
the process's own temporary directory is as it was after the command."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from conftest import fixture_file, invoke_cli
from fault_support import tmpfs

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
