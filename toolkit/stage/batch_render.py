"""Drills of several backups for people: one table, a row per backup in argument order (file,
outcome, format, keys loaded, seconds, first reason), and a line of totals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from parsers.printable import printable
from toolkit.check.batch import Outcome
from toolkit.check.batch_render import batch_table, short
from toolkit.text import count


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
    headers = ["file", "outcome", "format", "keys loaded", "seconds", "first reason"]
    rows = [_row(o) for o in outcomes]
    return batch_table(headers, rows, outcomes, "drill", ("verified", "not verified", "not run"))
