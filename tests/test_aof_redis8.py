"""Redis 8.x AOF details: the manifest's startoffset/endoffset (the replication offsets an
incr file covers), and what Redis 8.4's ``aof-load-corrupt-tail-max-size`` would forgive.

The corrupt tail: aof.c (PR #14058, reworked in #14349) truncates the last file at the end of
its last whole command (``valid_up_to``; before an open MULTI, ``valid_before_multi``) and
loads it when the bytes from there to the end are fewer than the setting. No Redis 8.4 server
is installed here, so the size rbkit names is compared with what redis-check-aof (which reads
the file with the same loop) prints as ``diff`` (size - ok_up_to).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import binary, invoke_cli

from parsers.aof.manifest import parse_manifest
from toolkit.check.backup import check_backup

AOF = Path(__file__).resolve().parent.parent / "fixtures" / "aof"
CHECK_AOF = Path("/usr/bin/redis-check-aof")


def test_offsets_of_a_real_redis_8_2_manifest_are_reported() -> None:
    directory = AOF / "redis-8.2-rdb-base" / "appendonlydir"
    text = (directory / "appendonly.aof.manifest").read_text()
    expected = {}
    for line in text.splitlines():
        words = line.split()
        fields = dict(zip(words[::2], words[1::2], strict=True))
        start, end = fields.get("startoffset"), fields.get("endoffset")
        expected[fields["file"]] = (
            None if start is None else int(start),
            None if end is None else int(end),
        )
    assert any(v != (None, None) for v in expected.values())  # Redis 8.2 writes them
    run = invoke_cli("check", directory, "--json", "--module", "graph")
    files = json.loads(run.stdout)["aof"]["files"]
    assert {f["name"]: (f["start_offset"], f["end_offset"]) for f in files} == expected


@pytest.mark.parametrize(
    ("lines", "warning"),
    [
        (
            ["file a.1.incr.aof seq 1 type i startoffset 10 endoffset 20",
             "file a.2.incr.aof seq 2 type i startoffset 25 endoffset 30"],
            "line 2: startoffset 25 is not the endoffset 20 of the incr file before it (a gap",
        ),
        (
            ["file a.1.incr.aof seq 1 type i startoffset 10 endoffset 20",
             "file a.2.incr.aof seq 2 type i startoffset 15"],
            "(an overlap in the replication offsets)",
        ),
        (["file a.1.incr.aof seq 1 type i startoffset 30 endoffset 20"],
         "line 1: endoffset 20 is below startoffset 30"),
        (["file a.1.incr.aof seq 1 type i startoffset x1"], "startoffset 'x1' is no number"),
    ],
    ids=["gap", "overlap", "inverted", "not-a-number"],
)  # fmt: skip
def test_offsets_that_do_not_follow_on_are_warned_about(lines: list[str], warning: str) -> None:
    manifest = parse_manifest(("\n".join(lines) + "\n").encode())
    assert any(warning in w for w in manifest.warnings), manifest.warnings


def test_offsets_that_follow_on_are_quiet() -> None:
    text = (
        b"file a.1.base.rdb seq 1 type b\n"
        b"file a.1.incr.aof seq 1 type i startoffset 10 endoffset 20\n"
        b"file a.2.incr.aof seq 2 type i startoffset 20 endoffset 35\n"
    )
    manifest = parse_manifest(text)
    assert manifest.warnings == ()
    assert [(e.start_offset, e.end_offset) for e in manifest.entries] == [
        (None, None), (10, 20), (20, 35)
    ]  # fmt: skip


def check_aof_diff(path: Path) -> int:
    """redis-check-aof's ``diff`` (bytes from the last whole command to the end)."""
    done = subprocess.run([CHECK_AOF, path], capture_output=True, timeout=60)
    match = re.search(rb"diff=(\d+)", done.stdout)
    assert match, done.stdout[-400:]
    return int(match.group(1))


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d + b"*2\r\n$3\r\nSET\r\nXX",  # a broken frame at the very end
        lambda d: d + b"\x00\x00garbage",
        lambda d: d + b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n!!",
    ],
    ids=["broken-frame", "garbage", "inside-multi"],
)
def test_the_corrupt_tail_size_is_what_the_loader_would_cut(damage, tmp_path: Path) -> None:
    binary("7.0")  # Debian's redis-check-aof comes with it
    source = (AOF / "redis-6.2-plain.aof").read_bytes()
    path = tmp_path / "appendonly.aof"
    path.write_bytes(damage(source))
    result = check_backup(path)
    [error] = [p for p in result.problems if p.severity == "error"]
    match = re.search(
        r"aof-load-corrupt-tail-max-size above (\d+) would cut the last (\d+)", error.message
    )
    assert match, error.message
    assert int(match.group(1)) == int(match.group(2)) == check_aof_diff(path)


def test_damage_before_the_last_file_is_not_forgiven(tmp_path: Path) -> None:
    directory = tmp_path / "appendonlydir"
    shutil.copytree(AOF / "redis-7.0-rdb-base" / "appendonlydir", directory)
    first_incr = directory / "appendonly.aof.2.incr.aof"
    first_incr.write_bytes(first_incr.read_bytes() + b"\x00garbage")
    result = check_backup(directory)
    errors = [p for p in result.problems if p.severity == "error"]
    assert errors and not any("corrupt-tail" in p.message for p in errors)
