"""How rbkit writes for people: one style for sizes, counts, times and durations, and prose
laid out to the width of the terminal.

Sizes are binary (``410.9 KB`` is 410.9 x 1024 bytes, as Redis's ``used_memory_human``);
counts have thousands separators (``11,200,000 keys``); times are ISO 8601 in UTC
(``2026-11-24T00:52:16Z``); what was not computed is ``-``. JSON keeps plain numbers: these
are for the text reports only.

A report is a list of lines; tables go in as :class:`Pre` (kept as they are: a table is as
wide as its data) and everything else is prose, wrapped by :func:`layout` to the width with
its indent kept and continuation lines indented two more. A JSON array that renderers make
item by item as the CLI writes it (a diff's listed keys) is a :class:`Stream`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

NOT_COMPUTED = "-"
WIDTH = 80  # the default width of text output: COLUMNS, or a terminal's, says otherwise
_NBSP = "\x00"  # stands for a space that must not break a line, while wrapping
_UNITS = ("B", "KB", "MB", "GB", "TB")


def size(n: int | None) -> str:
    """A byte count: ``86 B``, ``410.9 KB``, ``1.2 GB``; ``-`` for None (not computed)."""
    if n is None:
        return NOT_COMPUTED
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def count(n: int | None) -> str:
    """A count with thousands separators: ``1,234``; ``-`` for None (not computed)."""
    return NOT_COMPUTED if n is None else f"{n:,}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 key``, ``2 keys``, ``1,000 key families`` (``many``: an irregular plural)."""
    return f"{count(n)} {word if n == 1 else many or word + 's'}"


def utc_iso(ms: int) -> str:
    """Unix milliseconds as ``YYYY-MM-DDTHH:MM:SSZ`` (``.mmm`` when not a whole second); a
    time no calendar holds stays a number (``... ms``)."""
    try:
        when = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms"
    spec = "seconds" if ms % 1000 == 0 else "milliseconds"
    return when.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def utc_iso_text(seconds: str | int) -> str:
    """A Unix time in seconds (as an aux field ``ctime`` holds it) in ISO 8601 UTC; text that
    is not a number is given back as it is."""
    try:
        value = int(str(seconds).strip())
    except ValueError:
        return str(seconds)
    return utc_iso(value * 1000)


def duration(ms: int) -> str:
    """A TTL in words: ``850 ms``, ``42 s``, ``3 m 20 s``, ``5 h 0 m``, ``12 d 3 h``."""
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    if ms < 1000:
        return f"{sign}{ms} ms"
    s = ms // 1000
    if s < 60:
        return f"{sign}{ms / 1000:.1f} s" if s < 10 else f"{sign}{s} s"
    if s < 3600:
        return f"{sign}{s // 60} m {s % 60} s"
    if s < 86400:
        return f"{sign}{s // 3600} h {s % 3600 // 60} m"
    return f"{sign}{s // 86400} d {s % 86400 // 3600} h"


def ttl_change(a_ms: int, b_ms: int) -> str:
    """Two TTLs as a difference: ``TTL 1 h 0 m -> 60 s (-59 m 0 s)``."""
    delta = b_ms - a_ms
    sign = "+" if delta >= 0 else ""
    return f"TTL {duration(a_ms)} -> {duration(b_ms)} ({sign}{duration(delta)})"


class Pre(str):
    """Text kept as it is by :func:`layout` (a table: as wide as its data)."""


def pre(text: str) -> Pre:
    return Pre(text)


class Head(str):
    """A verdict line: its first ``kept`` characters (``path: VERDICT``) stay on one line
    whatever the width; the rest wraps after them."""

    kept: int


def headline(verdict: str, rest: str = "") -> Head:
    """The first line of a report: ``verdict`` (``dump.rdb: VALID``, never broken, so that
    ``head -1`` and ``grep`` find it whole), then ``rest``, wrapped like any prose."""
    line = Head(verdict + rest)
    line.kept = len(verdict)
    return line


def verdict_line(subject: str, sentence: str) -> Head:
    """``subject: VERDICT: why`` as a :func:`headline` that keeps ``subject: VERDICT`` (the
    sentence up to its first colon, or its first word) on the first line."""
    word, colon, _ = sentence.partition(":")
    if not colon:
        word = sentence.split(" ", 1)[0]
    return headline(f"{subject}: {word}", sentence[len(word) :])


def layout(lines: Iterable[str], width: int | None = WIDTH) -> str:
    """The lines of a report as text: :class:`Pre` blocks as they are, every other line
    wrapped to ``width`` (its indent kept, continuation lines two further in); None: no
    wrapping (what the renderers give a caller that names no width)."""
    if width is None:
        return "\n".join(lines)
    out: list[str] = []
    for line in lines:
        if isinstance(line, Pre):
            out.append(line)
        elif isinstance(line, Head):
            kept = line[: line.kept].replace(" ", _NBSP)
            out.extend(part.replace(_NBSP, " ") for part in wrap(kept + line[line.kept :], width))
        else:
            out.extend(wrap(line, width))
    return "\n".join(out)


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """One line of prose as lines of at most ``width`` characters (a word longer than that,
    such as a long path, gets a line of its own rather than being cut)."""
    if len(line) <= width:
        return [line]
    indent = " " * (len(line) - len(line.lstrip(" ")))
    return textwrap.wrap(
        line,
        width=max(width, len(indent) + 20),
        initial_indent="",
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
        drop_whitespace=True,
    ) or [line]


class Stream:
    """A JSON array whose items are ``make(x)`` for each ``x`` of ``source``, made as they
    are written (``source`` is iterated again each time the array is): a renderer (no IO)
    hands it to the CLI's JSON writer instead of a list holding every item at once.

    toolkit/cli/jsontext.py writes it as it writes a list; ``json.dumps`` needs
    ``default=toolkit.cli.jsontext.plain``.
    """

    def __init__(
        self,
        source: Iterable[Any],
        make: Callable[[Any], Any],
        text: Callable[[Any, str, str], str] | None = None,
        texts: Callable[[str, str], Iterable[str]] | None = None,
    ) -> None:
        self.source = source
        self.make = make
        # ``texts(nl, step)``, if given: every item's text (as ``text`` gives it), in order,
        # made a batch at a time by the renderer; the writer uses it before ``text``.
        self.texts = texts
        # ``text(x, nl, step)``, if given: the text json.dumps(make(x), indent) gives the item
        # at that nesting (``nl`` the newline and indent of its own line, ``step`` one
        # level): the writer uses it instead of walking the item (a diff's million keys).
        self.text = text

    def __iter__(self) -> Iterator[Any]:
        return map(self.make, self.source)
