"""The ``rbkit`` command line: parse options, call the toolkit, render, exit."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from toolkit import __version__
from toolkit.check.backup import check_backup
from toolkit.check.result import BackupIOError
from toolkit.cli.diff import diff
from toolkit.cli.output import emit
from toolkit.cli.progress import progress_for
from toolkit.cli.restore import restore
from toolkit.errors import ExitCode

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Inspect, validate, restore and compare Redis backups (RDB and AOF).",
    pretty_exceptions_enable=False,
)


def abort(message: str, code: ExitCode = ExitCode.ERROR) -> typer.Exit:
    emit(f"error: {message}", err=True)
    return typer.Exit(int(code))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rbkit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """rbkit: check a backup before you restore it."""


@app.command()
def check(
    backup: Annotated[
        Path,
        typer.Argument(
            help="RDB file, AOF file, appendonlydir/ or its .manifest, or a Redis data dir."
        ),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings make it invalid.")] = False,
    top: Annotated[int, typer.Option("--top", min=0, help="How many biggest keys.")] = 10,
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
            "--config", help="redis.conf: which file Redis loads (dir, appendonly, names)."
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
    if quick and deep:
        raise abort("--quick and --deep contradict each other")
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
    except BackupIOError as e:
        raise abort(str(e)) from None
    finally:
        if progress is not None:
            progress.close()
    if json_out:
        from toolkit.check.report import check_report

        typer.echo(json.dumps(check_report(result), indent=1))
    else:
        from toolkit.check.render import render_check  # tabulate: only when a table is wanted

        emit(render_check(result, strict=strict))
    failed = not result.valid or (strict and result.warnings)
    raise typer.Exit(int(ExitCode.INVALID if failed else ExitCode.OK))


app.command()(restore)
app.command()(diff)


def main() -> None:
    """Console-script entry: run the app; a closed stdout (``| head``) ends quietly."""
    try:
        app()
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(int(ExitCode.OK))
    except Exception as e:  # a bug of ours: one line, not a traceback (RBKIT_DEBUG=1 shows it)
        if os.environ.get("RBKIT_DEBUG"):
            raise
        emit(f"error: internal error ({type(e).__name__}: {e}); please report it", err=True)
        sys.exit(int(ExitCode.ERROR))
