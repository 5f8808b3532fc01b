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
    rows = [_row(o, strict) for o in outcomes]
    table = tabulate(
        rows,
        headers=["file", "verdict", "format", "keys", "size", "first problem"],
        tablefmt="simple",
        colalign=("left", "left", "left", "right", "right", "left"),
        disable_numparse=True,
    )
    ok = sum(1 for o in outcomes if o.exit_code == 0)
    bad = sum(1 for o in outcomes if o.exit_code == 1)
    err = sum(1 for o in outcomes if o.exit_code > 1)
    summary = f"{plural(len(outcomes), 'backup')}: {ok} valid, {bad} invalid, {err} not read"
    return f"{table}\n{summary}"
