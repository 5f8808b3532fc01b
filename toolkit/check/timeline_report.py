"""The timeline of an AOF as people read it (a table of intervals, the events) and as JSON
(the ``timeline`` object of ``rbkit check --timeline --json``)."""

from __future__ import annotations

import time
from typing import Any

from tabulate import tabulate

from parsers.printable import printable
from toolkit.check.timeline import Timeline


def iso(stamp: int | None) -> str:
    """Unix seconds as ISO 8601 UTC; ``-`` when unknown."""
    if stamp is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def timeline_json(t: Timeline) -> dict[str, Any]:
    return {
        "files": t.parts,
        "commands": t.commands,
        "annotations": t.annotations,
        "first_ts": t.first_ts,
        "last_ts": t.last_ts,
        "first_time": iso(t.first_ts) if t.first_ts is not None else None,
        "last_time": iso(t.last_ts) if t.last_ts is not None else None,
        "before_first_ts": t.untimed,
        "interval_seconds": t.interval,
        "intervals": [
            {"start": start, "start_time": iso(start), "commands": n}
            for start, n in sorted(t.buckets.items())
        ],
        "events": [
            {
                "kind": e.kind,
                "command": e.command,
                "file": e.file,
                "offset": e.offset,
                "db": e.db,
                "keys": e.keys,
                "ts": e.time,
                "time": iso(e.time) if e.time is not None else None,
            }
            for e in t.events
        ],
    }


def render_timeline(t: Timeline) -> str:
    out = [
        f"timeline: {t.commands} commands in {len(t.parts)} files, "
        + (
            f"#TS from {iso(t.first_ts)} to {iso(t.last_ts)}"
            if t.first_ts is not None
            else "no #TS annotations (aof-timestamp-enabled no): no times"
        )
    ]
    if t.untimed and t.first_ts is not None:
        out.append(f"  {t.untimed} commands before the first #TS")
    if t.buckets:
        rows = [(iso(start), n) for start, n in sorted(t.buckets.items())]
        out += ["", tabulate(rows, headers=(f"from ({t.interval} s)", "commands"))]
    out.append("")
    if not t.events:
        out.append("no destructive events")
    else:
        rows = [
            (
                iso(e.time),
                e.kind,
                printable(e.command.encode()),
                e.db,
                e.keys or "",
                e.file,
                e.offset,
            )
            for e in t.events
        ]
        out.append(
            tabulate(
                rows,
                headers=("time (last #TS)", "event", "command", "db", "keys", "file", "offset"),
                disable_numparse=True,
            )
        )
    return "\n".join(out)
