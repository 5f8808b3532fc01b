"""``rbkit export BACKUP``: the command function, registered in toolkit/cli/app.py.

Parse the options, call ``export_backup`` (toolkit/export/run.py), say on stderr what was
written when it went to a file. Exit 0, or 2 with one ``error:`` line.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.output import emit
from toolkit.cli.progress import progress_for
from toolkit.errors import UsageError

EXAMPLES = """\b
Examples:
  # an inventory of every key, for DuckDB, Spark or pandas
  rbkit export dump.rdb -o keys.parquet
  # the big hashes of db 0, as CSV
  rbkit export dump.rdb --format csv --db 0 --type hash --min-bytes 1000000
  # the user:* keys into another server
  rbkit export dump.rdb --format resp --match 'user:*' | redis-cli --pipe
"""


class Format(str, Enum):
    parquet = "parquet"
    csv = "csv"
    jsonl = "jsonl"
    resp = "resp"


def export(
    backup: Annotated[
        Path, typer.Argument(metavar="BACKUP", help="An RDB file, or a data dir holding one.")
    ],
    format_: Annotated[
        Format,
        typer.Option(
            "--format",
            help="parquet (default), csv, jsonl, or resp (RESTORE commands for redis-cli --pipe).",
        ),
    ] = Format.parquet,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (default: stdout)."),
    ] = None,
    db: Annotated[
        list[int] | None,
        typer.Option("--db", "-n", min=0, help="Only this db (repeat for more)."),
    ] = None,
    match: Annotated[
        str | None,
        typer.Option(
            "--match", metavar="GLOB", help="Only key names matching this glob (as SCAN)."
        ),
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type", metavar="TYPE", help="Only keys of this type, as TYPE says it (repeatable)."
        ),
    ] = None,
    min_bytes: Annotated[
        int | None,
        typer.Option("--min-bytes", min=0, help="Only values of at least this serialized size."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="resp: RESTORE ... REPLACE (overwrite keys).")
    ] = False,
) -> None:
    """Write one row per key (db, name, type, encoding, elements, size, expiry, value hash)."""
    if replace and format_ is not Format.resp:
        raise UsageError("--replace applies to --format resp only")
    if output is None and format_ in (Format.parquet, Format.resp) and sys.stdout.isatty():
        raise UsageError(
            f"--format {format_.value} is binary: give -o FILE, or pipe it into a program"
        )
    from toolkit.export.run import export_backup
    from toolkit.export.source import Filters

    filters = Filters(
        dbs=sorted(set(db)) if db else None,
        match=match,
        types=sorted(set(type_)) if type_ else None,
        min_bytes=min_bytes,
    )
    walked = export_backup(
        backup, format_.value, output, filters, replace=replace, progress=progress_for
    )
    if output is not None:
        empty = (
            f"; {walked.empty_skipped:,} empty collection(s) left out"
            if walked.empty_skipped
            else ""
        )
        emit(
            f"exported {walked.exported:,} of {walked.keys_read:,} keys to {output} "
            f"({format_.value}){empty}",
            err=True,
        )
