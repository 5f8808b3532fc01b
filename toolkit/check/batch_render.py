"""Several backups' checks for people: one table, a row per backup in argument order (file,
verdict, format, keys, size, first problem), and a line of totals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from parsers.printable import printable
from toolkit.check.batch import Outcome
from toolkit.text import count, plural, size

PROBLEM_WIDTH = 60


def _row(o: Outcome, strict: bool) -> list[Any]:
    name = printable(o.spec, composed=True)
    r = o.report
    if r is None:
        return [name, "ERROR", "-", "-", "-", short(o.error or "")]
    verdict = "INVALID" if o.exit_code else str(r["verdict"]).upper()
    first = next((p for p in r["problems"] if p["severity"] == "error"), None)
    if first is None and (strict or verdict != "VALID"):
        first = next(iter(r["problems"]), None)
    problem = short(first["message"]) if first else ""
    keys = count(r["totals"]["keys"]) if r.get("totals") else "-"
    return [name, verdict, r["format"], keys, size(r["size"]), problem]


def short(text: str) -> str:
    """``text`` on one line, inert, cut to PROBLEM_WIDTH."""
    text = printable(text, composed=True)
    return text if len(text) <= PROBLEM_WIDTH else text[: PROBLEM_WIDTH - 3] + "..."


def render_batch(outcomes: Sequence[Outcome], *, strict: bool = False) -> str:
    """The table of several checks, then how many were valid, invalid or not read."""
    headers = ["file", "verdict", "format", "keys", "size", "first problem"]
    rows = [_row(o, strict) for o in outcomes]
    return batch_table(headers, rows, outcomes, "backup", ("valid", "invalid", "not read"))


def batch_table(
    headers: list[str],
    rows: list[list[Any]],
    outcomes: Sequence[Outcome],
    noun: str,
    words: tuple[str, str, str],
) -> str:
    """A table of several backups (the file first, numbers in columns 4 and 5 right-aligned),
    then a line counting outcomes by exit code: 0, 1, 2 as ``words`` say."""
    table = tabulate(
        rows,
        headers=headers,
        tablefmt="simple",
        colalign=("left", "left", "left", "right", "right", "left"),
        disable_numparse=True,
    )
    by_code = [sum(1 for o in outcomes if min(o.exit_code, 2) == code) for code in (0, 1, 2)]
    counted = ", ".join(f"{n} {word}" for n, word in zip(by_code, words, strict=True))
    return f"{table}\n{plural(len(outcomes), noun)}: {counted}"
