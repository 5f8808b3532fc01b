"""Where every human-readable output leaves rbkit: one guard, so that no control character
from a backup (a key name, an aux field, a file name in a manifest) reaches the terminal raw,
whatever a renderer missed. Names are escaped where they are rendered (``printable``); this
escapes whatever is left, keeping the output's line breaks and its backslashes."""

from __future__ import annotations

import typer

from parsers.printable import printable


def emit(text: str, *, err: bool = False) -> None:
    """Print rendered text (a report, a table, a message) to stdout, or stderr with ``err``."""
    typer.echo(printable(text, composed=True, lines=True), err=err)
