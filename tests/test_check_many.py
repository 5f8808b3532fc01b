"""``rbkit check A B C ...``: several backups in parallel (--jobs), one table or JSON Lines in
argument order, the worst exit code; the same tasks on a real Dask LocalCluster (scheduler
and worker processes) give the same report as the local pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import invoke_cli
from sources_support import COMPRESS, ROOT, compressed, content, dask_scheduler, rbkit_text

RDB = ROOT / "fixtures/rdb"
GOOD = [
    RDB / "redis-6.2-all-types.rdb",
    RDB / "redis-7.0-strings-only.rdb",
    RDB / "redis-8.2-all-types.rdb",
]


rbkit = rbkit_text


@pytest.fixture
def mixed(tmp_path: Path) -> list[str]:
    """A valid RDB, a gzip copy, a damaged copy (cut in half), a missing file, an AOF."""
    cut = tmp_path / "cut.rdb"
    data = GOOD[0].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return [
        str(GOOD[0]),
        str(compressed(GOOD[1], "gzip", tmp_path)),
        str(cut),
        str(tmp_path / "missing.rdb"),
        str(ROOT / "fixtures/aof/redis-6.2-plain.aof"),
    ]


def one_by_one(specs: list[str]) -> list[tuple[int, dict | None]]:
    out = []
    for s in specs:
        run = invoke_cli("check", s, "--json")
        out.append((run.exit_code, json.loads(run.stdout) if run.exit_code < 2 else None))
    return out


def test_jsonl_in_argument_order_worst_exit(mixed: list[str]) -> None:
    done = rbkit("check", *mixed, "--jobs", "2", "--json")
    assert done.returncode == 2  # the missing file is the worst
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["path"] for line in lines] == mixed
    singles = one_by_one(mixed)
    for line, (code, single) in zip(lines, singles, strict=True):
        if single is None:
            assert line["schema"] == "rbkit.error/1" and line["exit_code"] == 2
            assert "no such file" in line["error"]
        else:
            assert content(line) == content(single)
            assert line["valid"] == (code == 0)


def test_table(mixed: list[str]) -> None:
    done = rbkit("check", *mixed[:3], "--jobs", "2")
    assert done.returncode == 1
    rows = done.stdout.splitlines()
    assert rows[0].split() == ["file", "verdict", "format", "keys", "size", "first", "problem"]
    body = rows[2:5]
    assert [r.split()[0] for r in body] == mixed[:3]
    assert [r.split()[1] for r in body] == ["VALID", "VALID", "INVALID"]
    assert "truncated" in body[2]
    assert rows[5] == "3 backups: 2 valid, 1 invalid, 0 not read"


def test_single_argument_keeps_its_report() -> None:
    single = invoke_cli("check", GOOD[0])
    assert single.stdout.startswith(f"{GOOD[0]}: VALID")


def test_all_valid_exits_0() -> None:
    done = rbkit("check", *GOOD, "--jobs", "2", "--json")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(GOOD)


def test_stdin_among_several_is_refused() -> None:
    run = invoke_cli("check", GOOD[0], "-")
    assert run.exit_code == 2 and "stdin can be one backup only" in run.stderr


def test_dask_local_cluster_gives_the_local_report(mixed: list[str]) -> None:
    with dask_scheduler() as executor:
        on_dask = rbkit("check", *mixed, "--executor", executor, "--json")
    local = rbkit("check", *mixed, "--jobs", "2", "--json")
    assert on_dask.returncode == local.returncode == 2, on_dask.stderr
    dask_lines = [json.loads(x) for x in on_dask.stdout.splitlines()]
    local_lines = [json.loads(x) for x in local.stdout.splitlines()]
    assert len(dask_lines) == len(mixed)
    for d, loc in zip(dask_lines, local_lines, strict=True):
        d.pop("checked_at_ms", None)
        loc.pop("checked_at_ms", None)
        assert d == loc


def test_dask_unreachable_scheduler() -> None:
    from toolkit.server.process import free_port

    done = rbkit("check", *GOOD[:2], "--executor", f"dask://127.0.0.1:{free_port()}")
    assert done.returncode == 2 and "no Dask scheduler answers" in done.stderr


def test_sigterm_ends_the_pool_and_its_copies(tmp_path: Path) -> None:
    """Two named pipes whose writers stall after a first piece: both workers are reading
    into their temporary dirs when rbkit gets SIGTERM. It ends (not waiting for the stalled
    reads), and the dirs go with the workers."""
    piece = COMPRESS["gzip"](os.urandom(1 << 20))[:200_000]
    fifos = [tmp_path / "a.rdb.gz", tmp_path / "b.rdb.gz"]
    release = threading.Event()

    def writer(fifo: Path) -> None:
        with open(fifo, "wb") as f:  # blocks until rbkit opens it
            f.write(piece)
            f.flush()
            release.wait(120)

    for fifo in fifos:
        os.mkfifo(fifo)
    threads = [threading.Thread(target=writer, args=(f,), daemon=True) for f in fifos]
    for t in threads:
        t.start()
    scratch = tmp_path / "t"
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "check", *map(str, fifos), "--jobs", "2",
         "--tmpdir", str(scratch)],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(list(scratch.glob("rbkit-src-*"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM
        while list(scratch.iterdir()):  # the workers' lifeline watchers remove them
            assert time.monotonic() < deadline, list(scratch.iterdir())
            time.sleep(0.05)
    finally:
        release.set()
        proc.kill()
        proc.wait()


def test_a_shell_pipe_among_several_is_refused() -> None:
    run = invoke_cli("check", "/dev/fd/63", GOOD[0])
    assert run.exit_code == 2 and "can be one backup only; use mkfifo" in run.stderr
