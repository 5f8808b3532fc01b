"""Where everything rbkit prints leaves it.

Human-readable text goes through :func:`emit`: one guard, so that no control character from a
backup (a key name, an aux field, a file name in a manifest) reaches the terminal raw, whatever
a renderer missed (names are escaped where they are rendered; this escapes whatever is left,
keeping line breaks and backslashes). JSON goes through :func:`emit_json`.

A reader that goes away (``rbkit check dump.rdb | head -1``) closes the pipe: the rest of the
output is dropped quietly and the command still ends with its own exit code.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from parsers.printable import printable


def _write(text: str, stream: TextIO) -> None:
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        # The reader is gone: send the rest (and the interpreter's final flush) nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def emit(text: str, *, err: bool = False) -> None:
    """Print rendered text (a report, a table, a message) to stdout, or stderr with ``err``."""
    _write(printable(text, composed=True, lines=True), sys.stderr if err else sys.stdout)


def emit_json(obj: Any) -> None:
    """Print one JSON document to stdout."""
    _write(json.dumps(obj, indent=1), sys.stdout)
