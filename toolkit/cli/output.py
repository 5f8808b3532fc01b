"""Where everything rbkit prints leaves it.

Human-readable text goes through :func:`emit`: one guard, so that no control character from a
backup (a key name, an aux field, a file name in a manifest) reaches the terminal raw, whatever
a renderer missed (names are escaped where they are rendered; this escapes whatever is left,
keeping line breaks and backslashes). A report goes through :func:`emit_report`, which also
colours its verdict on a terminal. JSON goes through :func:`emit_json`, never coloured.

Colour: only when the stream is a terminal (``TERM`` not ``dumb``), never when ``NO_COLOR`` is
set (https://no-color.org); ``FORCE_COLOR`` turns it on where there is no terminal.

Width: reports wrap their prose to :func:`width`: ``COLUMNS``, else the terminal's, else 80.

A reader that goes away (``rbkit check dump.rdb | head -1``) closes the pipe: the rest of the
output is dropped quietly and the command still ends with its own exit code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from parsers.printable import printable
from toolkit.cli.jsontext import write_indented
from toolkit.text import WIDTH

MIN_WIDTH = 40
# Verdict words of the reports' first lines and their colours (SGR codes), longest first.
_VERDICTS = {
    "STRUCTURE NOT VALIDATED": "1;33",
    "NOT VERIFIED": "1;31",
    "ROLLED BACK": "1;33",
    "INVALID": "1;31",
    "VALID": "1;32",
    "VERIFIED": "1;32",
    "RESTORED": "1;32",
    "REFUSED": "1;31",
    "CANCELLED": "1;33",
    "FAILED": "1;31",
    "MISMATCH": "1;31",
    "PLAN": "1;36",
}
_VERDICT = re.compile(r"(?<=: )(" + "|".join(map(re.escape, _VERDICTS)) + r")\b")


def _write(text: str, stream: TextIO) -> None:
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        # The reader is gone: send the rest (and the interpreter's final flush) nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def width() -> int:
    """The width text output is laid out to: ``COLUMNS``, else the terminal's, else 80."""
    return max(MIN_WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)


def colour_on(stream: TextIO) -> bool:
    """Whether ``stream`` gets colour: a terminal, no ``NO_COLOR``; or ``FORCE_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def paint(text: str, sgr: str) -> str:
    return f"\x1b[{sgr}m{text}\x1b[0m"


def emit(text: str, *, err: bool = False) -> None:
    """Print rendered text (a report, a table, a message) to stdout, or stderr with ``err``."""
    _write(printable(text, composed=True, lines=True), sys.stderr if err else sys.stdout)


def emit_report(text: str, *, ok: bool | None = None, err: bool = False) -> None:
    """Print a report whose first line is its verdict, the verdict word coloured on a
    terminal (a diff's sentence: green when ``ok``, yellow when not)."""
    stream = sys.stderr if err else sys.stdout
    safe = printable(text, composed=True, lines=True)
    if colour_on(stream):
        first, _, rest = safe.partition("\n")
        m = _VERDICT.search(first)
        if m is not None:
            first = first[: m.start()] + paint(m.group(1), _VERDICTS[m.group(1)]) + first[m.end() :]
        elif ok is not None and ": " in first:
            head, _, sentence = first.partition(": ")
            first = f"{head}: {paint(sentence, '1;32' if ok else '1;33')}"
        safe = first + ("\n" + rest if rest else "")
    _write(safe, stream)


def emit_json(obj: Any) -> None:
    """Print one JSON document to stdout, written in pieces as it is made (a
    :class:`~toolkit.cli.jsontext.Stream` in it is never whole in memory)."""
    stream = sys.stdout
    try:
        write_indented(obj, stream.write)
        stream.write("\n")
        stream.flush()
    except BrokenPipeError:
        # The reader is gone: send the rest (and the interpreter's final flush) nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def emit_json_lines(outcomes: Iterable[Any]) -> None:
    """Print JSON Lines: for each outcome of several backups (toolkit/check/batch.py), its
    report, or an rbkit.error/1 object naming its path, one object per line."""
    for o in outcomes:
        obj = o.report
        if obj is None:
            obj = {"schema": "rbkit.error/1", "error": o.error, "exit_code": o.exit_code}
            obj["path"] = o.spec
        _write(json.dumps(obj, separators=(",", ":")), sys.stdout)
