"""Compressed backups, told by their magic bytes: every fixture (RDB of each server version,
single-file AOFs plain and with an RDB preamble) compressed with each format gives the same
report as the plain file (whose inventory tests/test_fixture_expectations.py holds against the
live server's); a stream cut short or corrupt is INVALID with its place in both streams; the
temporary copy goes where --tmpdir says and is gone afterwards, on Ctrl-C too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import RDB_FILES, interruptible, invoke_cli
from sources_support import COMPRESS, ROOT, compressed, content, run_rbkit

from toolkit.text import size

AOF_FILES = [
    ROOT / "fixtures/aof/redis-6.2-plain.aof",
    ROOT / "fixtures/aof/redis-6.2-preamble.aof",
]
BACKUPS = [*RDB_FILES, *AOF_FILES]
ALL_TYPES = ROOT / "fixtures/rdb/redis-8.2-all-types.rdb"


def report_of(*args: str | Path) -> tuple[int, dict]:
    run = invoke_cli("check", *args, "--json")
    return run.exit_code, json.loads(run.stdout)


@pytest.mark.parametrize("codec", sorted(COMPRESS))
@pytest.mark.parametrize("backup", BACKUPS, ids=lambda p: p.name)
def test_compressed_gives_the_plain_report(backup: Path, codec: str, tmp_path: Path) -> None:
    code, plain = report_of(backup)
    packed = compressed(backup, codec, tmp_path)
    assert packed.read_bytes()[:2] != backup.read_bytes()[:2]
    code_z, report = report_of(packed)
    assert code_z == code
    assert content(report) == content(plain)
    assert report["path"] == str(packed)
    stored, plain_size = size(packed.stat().st_size), size(backup.stat().st_size)
    assert report["notes"][0].startswith(
        f"{codec}-compressed ({stored}): decompressed to {plain_size} in a temporary file in "
    )


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_told_by_bytes_not_name(codec: str, tmp_path: Path) -> None:
    """A zstd file named .rdb, an AOF with an RDB preamble named 'blob': read as what they
    are."""
    _, plain = report_of(ALL_TYPES)
    lying = compressed(ALL_TYPES, codec, tmp_path, name="dump.rdb")
    assert content(report_of(lying)[1]) == content(plain)
    preamble = AOF_FILES[1]
    _, plain_aof = report_of(preamble)
    blob = compressed(preamble, codec, tmp_path, name="blob")
    _, report = report_of(blob)
    assert report["format"] == "aof"
    assert report["aof"]["files"][0]["name"] == "blob.aof"  # the copy's name: read as an AOF
    for r in (report, plain_aof):
        r["aof"]["files"][0]["name"] = "-"
    assert content(report) == content(plain_aof)


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    """pigz and `cat a.gz b.gz` write several members: one stream, read to its end."""
    raw = ALL_TYPES.read_bytes()
    half = len(raw) // 2
    both = tmp_path / "dump.rdb.gz"
    both.write_bytes(COMPRESS["gzip"](raw[:half]) + COMPRESS["gzip"](raw[half:]))
    assert content(report_of(both)[1]) == content(report_of(ALL_TYPES)[1])


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_cut_short_is_invalid_with_both_offsets(codec: str, tmp_path: Path) -> None:
    packed = compressed(ALL_TYPES, codec, tmp_path)
    data = packed.read_bytes()
    cut = len(data) * 2 // 3
    packed.write_bytes(data[:cut])
    code, report = report_of(packed)
    assert code == 1 and report["valid"] is False
    first = report["problems"][0]
    assert first["code"] == "truncated"
    assert (
        f"the {codec} stream ends at compressed byte {cut} before its end marker"
        in (first["message"])
    )
    assert 0 <= first["offset"] < ALL_TYPES.stat().st_size
    assert f"after {first['offset']} decompressed bytes" in first["message"]


def test_cut_only_in_the_gzip_trailer_is_invalid(tmp_path: Path) -> None:
    """All of the RDB decompresses (its own checksum holds), but the gzip CRC and size are
    missing: the file is still damaged."""
    packed = compressed(ALL_TYPES, "gzip", tmp_path)
    data = packed.read_bytes()
    packed.write_bytes(data[:-4])
    code, report = report_of(packed)
    assert code == 1
    assert [p["code"] for p in report["problems"] if p["severity"] == "error"] == ["truncated"]
    assert report["problems"][0]["offset"] == ALL_TYPES.stat().st_size


@pytest.mark.parametrize("codec", sorted(COMPRESS))
def test_corrupt_stream_is_invalid(codec: str, tmp_path: Path) -> None:
    packed = compressed(ALL_TYPES, codec, tmp_path)
    data = bytearray(packed.read_bytes())
    at = len(data) // 2
    data[at] ^= 0x55
    data[at + 1] ^= 0x55
    packed.write_bytes(bytes(data))
    code, report = report_of(packed)
    assert code == 1 and report["valid"] is False
    first = report["problems"][0]
    assert first["code"] == "corrupt"
    assert f"corrupt {codec} data in compressed bytes" in first["message"]


@pytest.mark.parametrize("codec", [None, "zstd"])
@pytest.mark.parametrize("backup", [ALL_TYPES, *AOF_FILES], ids=lambda p: p.name)
def test_stdin(backup: Path, codec: str | None, tmp_path: Path) -> None:
    raw = backup.read_bytes()
    done = run_rbkit(
        "check", "-", "--json", "--tmpdir", tmp_path, stdin=COMPRESS[codec](raw) if codec else raw
    )
    report = json.loads(done.stdout)
    _, plain = report_of(backup)
    assert done.returncode == 0, done.stderr
    assert report["path"] == "-"
    if backup in AOF_FILES:  # the AOF's file list names the copy read (stdin.aof)
        assert report["aof"]["files"][0]["name"] == "stdin.aof" or backup == AOF_FILES[0]
        for r in (report, plain):
            r["aof"]["files"][0]["name"] = "-"
    assert content(report) == content(plain)
    assert list(tmp_path.iterdir()) == []  # the copy is gone


def test_tmpdir_is_used_and_emptied(tmp_path: Path) -> None:
    packed = compressed(ALL_TYPES, "xz", tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code, report = report_of(packed, "--tmpdir", scratch)
    assert code == 0
    assert any(f"temporary file in {scratch}" in n for n in report["notes"])
    assert list(scratch.iterdir()) == []


def test_no_room_for_a_stated_size_is_refused(tmp_path: Path) -> None:
    """A zstd frame that states its content size (2**62 bytes): refused before writing."""
    frame = b"\x28\xb5\x2f\xfd" + b"\xe0" + (1 << 62).to_bytes(8, "little") + b"\x01\x00\x00"
    big = tmp_path / "huge.rdb.zst"
    big.write_bytes(frame)
    run = invoke_cli("check", big)
    assert run.exit_code == 2
    assert f"needs {1 << 62} bytes" in run.stderr and "--tmpdir" in run.stderr


def test_ctrl_c_removes_the_copy(tmp_path: Path) -> None:
    """rbkit reading a pipe that stays open: Ctrl-C ends it and its temporary dir goes."""
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pyc")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolkit", "check", "-", "--tmpdir", str(tmp_path / "t")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
        preexec_fn=interruptible,
    )
    (tmp_path / "t").mkdir()
    assert proc.stdin is not None
    proc.stdin.write(COMPRESS["gzip"](ALL_TYPES.read_bytes())[:1000])
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    while not list((tmp_path / "t").glob("rbkit-src-*")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert list((tmp_path / "t").iterdir()) == []


MEASURE_RSS = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-m", "toolkit", *sys.argv[1:]], stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@pytest.mark.parametrize("codec", ["zstd", "gzip", "lz4"])
def test_decompression_memory_is_bounded(codec: str, tmp_path: Path) -> None:
    """160 MiB of zeros (a ratio of thousands to one: zstd's RLE blocks, gzip's and lz4's
    long matches) decompress in pieces: rbkit's peak memory stays far below the stream's size
    (it holds one piece of at most 8 MiB at a time)."""
    zeros = tmp_path / "zeros"
    zeros.write_bytes(bytes(160 << 20))
    bomb = compressed(zeros, codec, tmp_path)
    zeros.unlink()
    done = subprocess.run(
        [sys.executable, "-c", MEASURE_RSS, "check", str(bomb), "--tmpdir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    peak_kb = int(done.stdout.strip())
    assert peak_kb < 120 * 1024, peak_kb
    assert not list(tmp_path.glob("rbkit-src-*"))


def test_named_pipe(tmp_path: Path) -> None:
    """A named pipe (and so bash's <(command)) is read as stdin is."""
    fifo = tmp_path / "dump.rdb.zst"
    os.mkfifo(fifo)
    packed = compressed(ALL_TYPES, "zstd", tmp_path)
    writer = subprocess.Popen(["dd", f"if={packed}", f"of={fifo}", "status=none"])
    code, report = report_of(fifo)
    writer.wait(timeout=60)
    assert code == 0
    assert content(report) == content(report_of(ALL_TYPES)[1])
