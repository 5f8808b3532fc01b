"""One side of a diff, as every kind of side offers it: per-db counts or its keys collected
into a :class:`~toolkit.diff.table.KeyTable`, and a :class:`~toolkit.diff.model.Source`
saying what it was and when its data was current; and what the kinds share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit import lifeline
from toolkit.check.problems import ERROR
from toolkit.check.result import CheckResult
from toolkit.diff.live import LiveServer
from toolkit.diff.model import Source
from toolkit.diff.table import KeyTable
from toolkit.errors import DiffError
from toolkit.steps import ProgressFactory

Progress = ProgressFactory | None
Matcher = Callable[[bytes], object] | None
# How a live side is read: its replication snapshot, SCAN, or the snapshot where it can be.
SNAPSHOT, SCAN, AUTO = "snapshot", "scan", "auto"
# An expiry no key has: no key is left out as expired.
NEVER = -(1 << 64)


@dataclass
class DbCounts:
    """One db's counts, as a side reports them when only counts are compared."""

    keys: int = 0
    expires: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


class Side:
    """One opened side. Subclasses fill ``source`` and implement what they can."""

    kind = ""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.empty_skipped = 0  # empty collections left out (Redis drops them on load)
        self.module_values = 0  # module values whose digests were taken
        self.expired_left_out = 0  # keys past their TTL at a snapshot's time, left out

    @property
    def live(self) -> LiveServer | None:
        """The server to re-read keys from (a live side only)."""
        return None

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        raise NotImplementedError

    def collect(
        self,
        table: KeyTable,
        *,
        dbs: set[int] | None,
        match: Matcher,
        pattern: bytes | None,
        values: bool,
        progress: Progress,
    ) -> None:
        raise NotImplementedError

    def name_reader(self) -> Callable[[int], bytes] | None:
        """Reads a key name back from the ref ``collect`` stored (None: names kept in the
        table)."""
        return None

    def close(self) -> None:
        """Release what the side holds open (mapped file, connections, scratch server)."""


def added_counts(sides: list[Side], dbs: set[int] | None) -> dict[int, DbCounts]:
    """The counts of several sides (a set's shards, a cluster's primaries) added up."""
    out: dict[int, DbCounts] = {}
    for side in sides:
        for db, c in side.counts(dbs).items():
            into = out.setdefault(db, DbCounts())
            into.keys += c.keys
            into.expires += c.expires
            for name, n in c.by_type.items():
                into.by_type[name] = into.by_type.get(name, 0) + n
    return dict(sorted(out.items()))


def refuse_invalid(result: CheckResult) -> None:
    """A DiffError naming the first error the check of a side's backup found, if any."""
    errors = [p for p in result.problems if p.severity == ERROR]
    if not errors:
        return
    p = errors[0]
    where = f" (offset {p.offset})" if p.offset is not None and "offset" not in p.message else ""
    more = f" and {len(errors) - 1} more error(s)" if len(errors) > 1 else ""
    raise DiffError(
        f"{result.name}: not a valid backup: {p.message}{where}{more}; a diff of a damaged "
        "backup would be meaningless (see rbkit check)"
    )


def mtime_ms(path: Path) -> int | None:
    """When ``path`` was last written (ms), or None where it cannot be read."""
    try:
        return int(path.stat().st_mtime * 1000)
    except OSError:
        return None


class InScratchDir:
    """A side read from files rbkit wrote into a scratch folder, removed when it closes."""

    _directory: Path

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]
        finally:
            lifeline.remove_dir(self._directory)
