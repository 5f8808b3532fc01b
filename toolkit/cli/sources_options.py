"""The options every command that reads backups shares: where a compressed, piped or remote
backup's copy goes (``--tmpdir``), and how several backups are run (``--jobs``,
``--executor``). Each is a function of the help panel it shows in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

TMPDIR_HELP = (
    "Where rbkit's scratch files go: a compressed, piped (-) or remote (s3://, https://...) "
    "backup made local, scratch servers' folders, servers' snapshots, spills (directories "
    "rbkit-*, removed when rbkit ends; default $TMPDIR or /tmp)."
)


def tmpdir(panel: str | None = None) -> Any:
    return Annotated[
        Path | None,
        typer.Option("--tmpdir", metavar="DIR", help=TMPDIR_HELP, rich_help_panel=panel),
    ]


def jobs(what: str, panel: str | None = None) -> Any:
    return Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            metavar="N",
            help=f"{what}: how many at once (default: the number of cores).",
            show_default=False,
            rich_help_panel=panel,
        ),
    ]


def executor(what: str, panel: str | None = None) -> Any:
    return Annotated[
        str,
        typer.Option(
            "--executor",
            metavar="local|dask://HOST:PORT",
            help=f"{what}: a local process pool, or a Dask scheduler's workers (needs the "
            "package distributed), each opening its backup where it lies.",
            rich_help_panel=panel,
        ),
    ]
