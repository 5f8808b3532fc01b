"""``rbkit check``: validate a backup as the server loading it would, print its inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.output import emit_json, emit_report, width
from toolkit.cli.progress import progress_for
from toolkit.errors import ExitCode, UsageError

EXAMPLES = """\b
Examples:
  # the verdict, the inventory and the biggest keys
  rbkit check dump.rdb
  # the file Redis would load from its data dir, checked
  rbkit check /var/lib/redis --config /etc/redis/redis.conf
  # one JSON object (schema rbkit.check/1)
  rbkit check appendonlydir/ --json
  # the framing only: faster, "structure not validated"
  rbkit check big.rdb --quick
"""


def check(
    backup: Annotated[
        Path,
        typer.Argument(
            metavar="BACKUP",
            help="RDB file, AOF file, appendonlydir/ or its .manifest, or a Redis data dir.",
            show_default=False,
        ),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings make it invalid.")] = False,
    top: Annotated[
        int, typer.Option("--top", min=0, metavar="N", help="How many biggest keys.")
    ] = 10,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Read the framing only, not the values: faster, and the verdict says "
            "'structure not validated'.",
        ),
    ] = False,
    deep: Annotated[
        bool,
        typer.Option("--deep", hidden=True, help="Accepted for compatibility: the default."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="REDIS.CONF",
            help="Which file Redis loads from a data dir (dir, appendonly, names).",
        ),
    ] = None,
    module: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            metavar="NAME|PATH",
            help="A module the loading server has (an AOF's commands of it are accepted); "
            "repeatable.",
        ),
    ] = None,
) -> None:
    """Validate a backup as the server loading it would, and print its inventory."""
    from toolkit.check.backup import check_backup

    if quick and deep:
        raise UsageError("--quick and --deep contradict each other")
    progress = progress_for(f"checking {backup.name}")
    try:
        result = check_backup(
            backup,
            config_path=config,
            top=top,
            quick=quick,
            progress=progress,
            modules=tuple(module or ()),
        )
    finally:
        if progress is not None:
            progress.close()
    failed = not result.valid or (strict and result.warnings)
    if json_out:
        from toolkit.check.report import check_report

        emit_json(check_report(result))
    else:
        from toolkit.check.render import render_check

        emit_report(render_check(result, strict=strict, width=width()), ok=not failed)
    raise typer.Exit(int(ExitCode.INVALID if failed else ExitCode.OK))
