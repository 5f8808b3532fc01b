"""A saved ``check --json`` report as a side: counts only."""

from __future__ import annotations

from pathlib import Path

from toolkit.diff.model import Source
from toolkit.diff.saved_report import SavedReport
from toolkit.diff.side import DbCounts, Side


class ReportSide(Side):
    kind = "report"

    def __init__(self, path: Path, report: SavedReport) -> None:
        source = Source("report", str(path), version=report.redis_ver)
        if report.last_ts is not None:
            source.time_ms, source.time_source = report.last_ts * 1000, "report aof last #TS"
        elif report.ctime_s is not None:
            source.time_ms, source.time_source = report.ctime_s * 1000, "report aux ctime"
        super().__init__(source)
        self._counts = {
            db: DbCounts(c.keys, c.expires, dict(c.by_type)) for db, c in report.databases.items()
        }
        source.keys_read = sum(c.keys for c in self._counts.values())
        source.notes.append(f"{path} is a saved check report: counts only")
        for n, text in (
            (
                sum(c.expired_at_check for c in report.databases.values()),
                "keys already expired when it was checked",
            ),
            (sum(c.empty for c in report.databases.values()), "empty collections"),
        ):
            if n:
                source.notes.append(f"its counts include {n:,} {text}, which a server drops")

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        return {db: c for db, c in self._counts.items() if dbs is None or db in dbs}
