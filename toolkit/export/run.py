"""``rbkit export BACKUP``: the entry point the CLI calls.

::

    export_backup(backup, fmt, out, filters, replace=False, progress=None) -> Walked

``fmt`` is parquet, csv, jsonl or resp; ``out`` a path, or None for the binary stdout
(``stdout``). A file is written under a temporary name beside it and renamed into place only
when the whole backup was read and verified: a damaged backup leaves no partial file (on
stdout the rows already written stay, and the error follows).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from toolkit.errors import ExportError
from toolkit.export.source import Filters, Walked, rdb_path, read_batches
from toolkit.export.writers import write_csv, write_jsonl, write_parquet
from toolkit.mapped import mapped
from toolkit.steps import ProgressFactory, no_progress, progress_of

FORMATS = ("parquet", "csv", "jsonl", "resp")


def export_backup(
    backup: Path,
    fmt: str,
    out: Path | None,
    filters: Filters,
    *,
    replace: bool = False,
    progress: ProgressFactory | None = None,
    stdout: BinaryIO | None = None,
) -> Walked:
    """Write one row (or RESTORE command) per key of ``backup``; returns what was read."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    path = rdb_path(backup)
    walked = Walked(path)
    try:
        with (
            mapped(path) as mm,
            progress_of(progress or no_progress, f"exporting {path.name}") as bar,
            _output(out, stdout) as sink,
        ):
            if mm is None:
                raise ExportError(f"{path}: empty file, not an RDB")
            batches = read_batches(mm, walked, filters, bar)
            if fmt == "parquet":
                write_parquet(batches, sink)
            elif fmt == "csv":
                write_csv(batches, sink)
            elif fmt == "jsonl":
                write_jsonl(batches, sink)
            else:
                from toolkit.export.resp import write_resp  # the redis client: only here

                write_resp(batches, sink, mm, walked, replace=replace)
    except OSError as e:
        where = e.filename or out or path
        raise ExportError(f"{where}: {e.strerror or e}") from None
    return walked


@contextlib.contextmanager
def _output(out: Path | None, stdout: BinaryIO | None):  # type: ignore[no-untyped-def]
    """The stream to write to: ``out`` under a temporary name, renamed on success."""
    if out is None:
        stream = stdout if stdout is not None else sys.stdout.buffer
        yield stream
        stream.flush()
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
