"""Drills of several backups for people: one table, a row per backup in argument order (file,
outcome, format, keys loaded, seconds, first reason), and a line of totals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from parsers.printable import printable
from toolkit.check.batch import Outcome
from toolkit.check.batch_render import short
from toolkit.text import count, plural


def _row(o: Outcome) -> list[Any]:
    name = printable(o.spec, composed=True)
    r = o.report
    if r is None:
        return [name, "ERROR", "-", "-", "-", short(o.error or "")]
    loaded = (r.get("loaded") or {}).get("keys_loaded")
    reason = r.get("reason") or ""
    return [
        name,
        str(r["outcome"]).upper(),
        r.get("format") or "-",
        count(loaded) if loaded is not None else "-",
        f"{r['seconds']:.1f}",
        short(reason),
    ]


def render_drills(outcomes: Sequence[Outcome]) -> str:
    """The table of several drills, then how many were verified, not verified or not run."""
    table = tabulate(
        [_row(o) for o in outcomes],
        headers=["file", "outcome", "format", "keys loaded", "seconds", "first reason"],
        tablefmt="simple",
        colalign=("left", "left", "left", "right", "right", "left"),
        disable_numparse=True,
    )
    ok = sum(1 for o in outcomes if o.exit_code == 0)
    bad = sum(1 for o in outcomes if o.exit_code == 1)
    err = sum(1 for o in outcomes if o.exit_code > 1)
    summary = f"{plural(len(outcomes), 'drill')}: {ok} verified, {bad} not verified, {err} not run"
    return f"{table}\n{summary}"
