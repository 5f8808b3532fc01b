"""Compressed copies of the fixtures, made with the reference libraries, and the parts of a
check report that must not depend on how the backup was stored."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lz4.frame
import zstandard

ROOT = Path(__file__).resolve().parent.parent
# Each format as its own command-line tool writes it by default (checksums on).
COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor(write_checksum=True).compress(b),
    "lz4": lambda b: lz4.frame.compress(b, content_checksum=True),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}
SUFFIX = {"gzip": ".gz", "zstd": ".zst", "lz4": ".lz4", "bzip2": ".bz2", "xz": ".xz"}
# Report fields that name the file or the moment, not what is in it.
WHERE = {"path", "notes", "checked_at_ms"}


def compressed(src: Path, codec: str, dest_dir: Path, name: str | None = None) -> Path:
    """``src`` compressed with ``codec`` into ``dest_dir`` (``name``: default src + suffix)."""
    out = dest_dir / (name or src.name + SUFFIX[codec])
    out.write_bytes(COMPRESS[codec](src.read_bytes()))
    return out


def content(report: dict[str, Any]) -> dict[str, Any]:
    """A check report without the fields that say where and when."""
    return {k: v for k, v in report.items() if k not in WHERE}


def run_rbkit(
    *args: str | Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``python -m toolkit ARGS`` in a subprocess (stdin: ``stdin``, else nothing), its
    output kept as bytes; wide text output (COLUMNS=1000) unless ``env`` says otherwise."""
    return subprocess.run(
        [sys.executable, "-m", "toolkit", *map(str, args)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=ROOT,
        env={"COLUMNS": "1000", **os.environ, **(env or {})},
        timeout=300,
    )


def rbkit_text(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """:func:`run_rbkit`, its output as text."""
    done = run_rbkit(*args)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


@contextlib.contextmanager
def dask_scheduler() -> Iterator[str]:
    """A real Dask LocalCluster (a scheduler and two worker processes) on 127.0.0.1; yields
    ``dask://HOST:PORT`` for --executor."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
