"""Compute ``rbkit diff A B``: read both sides and fill a :class:`~toolkit.diff.model.DiffReport`.

The entry point, for the CLI and the renderer::

    compute_diff(
        a: str,
        b: str,
        *,
        dbs: Sequence[int] | None = None,       # --db: only these dbs (None: all)
        match: str | None = None,               # --match: Redis-style glob on key names
        values: bool = False,                   # --values: compare logical content too
        ttl_tolerance_ms: int = 1000,           # TTLs further apart than this differ
        limit: int | None = 100,                # KeyDiff listed in report.keys (None: all)
        prefix_sep: str | None = None,          # --prefix-sep: roll keys up by family
        progress: ProgressFactory | None = None,  # a bar per side read (cli/progress.py)
    ) -> DiffReport

``a`` and ``b`` are spec strings: a ``redis://``/``rediss://``/``unix://`` URL (a live
server), a saved ``check --json`` report, or any backup ``check`` accepts. Every bad input
(unreadable path, damaged backup, refused connection, a report with --match) raises
:class:`DiffError` with a one-line message naming the source; a password never appears in it.

Semantics. A key only in A is REMOVED, or EXPIRED when its TTL had run out by B's time
(``report.b.time_ms``: aux ctime, file mtime, or the server's TIME after reading it), which
is no loss and not counted in ``keys_differing``. A key only in B is ADDED. A key in both
may differ by TYPE; SIZE (same type; STRLEN/LLEN/SCARD/ZCARD/HLEN/XLEN); TTL_GAINED,
TTL_LOST or TTL_CHANGED (expiry times are compared as absolute ms on every side, a live
server's PTTL added to its TIME; further apart than ``ttl_tolerance_ms``); VALUE (with
``values``, same type only: the logical content, see :mod:`toolkit.diff.values`). With
``values`` and a live side, a key in both that differs is read again from the live side(s)
once before it is called changed (``values_reread``). Empty collections in an RDB are left
out, as Redis drops them when it loads the file.

Level: COUNTS when either side is a saved report (then per db the key and expiry counts and
per-type counts are compared, and ``added``/``removed``/... are None), VALUES with
``values``, else KEYS.

Memory: two RDB files are joined out of core by DuckDB (:mod:`toolkit.diff.file_join`,
:mod:`toolkit.diff.columnar`: bounded memory, only the keys whose value bytes differ
decoded). Any other pair keeps each side's keys in :class:`~toolkit.diff.table.KeyTable`
columns (about 40 bytes a key, 56 with values; an RDB side keeps only the offset of each
name in the mapped file), joined one hash bucket at a time (:mod:`toolkit.diff.table_join`;
``RBKIT_DIFF_ENGINE=table`` takes this path for two files too). Either join folds what it
finds into the report through :class:`~toolkit.diff.tally.Tally`. The listed keys
(``report.keys``) are a :class:`~toolkit.diff.keylist.KeyList`: compact columns (about 50
bytes a key plus its name; with a ``limit``, at most about ``2 * limit`` keys held) that
make each ``KeyDiff`` as a renderer reads it, so ``diff --json`` of hundreds of thousands of
differing keys streams them out (render.diff_json ``stream``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from toolkit import lifeline
from toolkit.diff.background import BackgroundCheck, BackgroundSnapshot
from toolkit.diff.file_join import diff_files
from toolkit.diff.model import (
    COUNTS,
    KEYS,
    VALUES,
    Counts,
    DbDiff,
    DiffReport,
)
from toolkit.diff.rdb_side import RdbSide
from toolkit.diff.side import AUTO, DbCounts, Progress, Side
from toolkit.diff.sources import local_spec, open_side
from toolkit.diff.table import KeyTable, TypeCodes
from toolkit.diff.table_join import join_tables
from toolkit.errors import DiffError
from toolkit.server.connect import ConnectOptions
from toolkit.server.glob import glob_matcher

__all__ = ["DiffError", "compute_diff"]

# Two RDB files are joined out of core (columnar.py) unless this is "table" (the in-memory
# join of every side kind; benchmarks/run.py compares the two).
ENGINE = os.environ.get("RBKIT_DIFF_ENGINE", "duckdb")


def compute_diff(
    a: str,
    b: str,
    *,
    dbs: Sequence[int] | None = None,
    match: str | None = None,
    values: bool = False,
    ttl_tolerance_ms: int = 1000,
    limit: int | None = 100,
    prefix_sep: str | None = None,
    progress: Progress = None,
    modules: tuple[str, ...] = (),
    connect: ConnectOptions | None = None,
    via: str = AUTO,
    tmpdir: Path | None = None,
) -> DiffReport:
    """Diff side ``a`` (before) against side ``b`` (after). Raises DiffError for bad input.

    ``modules``: the modules an AOF side's loading server has (as ``rbkit check --module``).
    ``connect``: how to reach a side that is a server (redis-cli's connection options).
    ``via``: how a server is read (side.SNAPSHOT, SCAN or AUTO).
    ``tmpdir``: where every scratch file of the diff goes (a compressed, piped or remote
    backup made local, a server's snapshot, two files' keys spilled; default ``$TMPDIR``).
    """
    if ttl_tolerance_ms < 0:
        raise DiffError(f"TTL tolerance must be 0 or more ms, not {ttl_tolerance_ms}")
    if limit is not None and limit < 0:
        raise DiffError(f"key limit must be 0 or more, not {limit}")
    if prefix_sep == "":
        raise DiffError("--prefix-sep must not be empty")
    db_set = set(dbs) if dbs is not None else None
    if db_set is not None and any(d < 0 for d in db_set):
        raise DiffError(f"db numbers are 0 or more: {sorted(db_set)}")
    if tmpdir is not None and not tmpdir.is_dir():
        raise DiffError(f"{tmpdir}: the temporary directory does not exist (--tmpdir)")
    with lifeline.scratch_root(tmpdir), contextlib.ExitStack() as stack:
        if a == b == "-":
            raise DiffError("-: stdin can be one side only")
        # B, a plain RDB file, is checked in a second process while A is opened (two cores);
        # a server, read as its snapshot, has it taken and checked so.
        later = BackgroundCheck.start(b, modules) or BackgroundSnapshot.start(b, connect, via)
        if later is not None:
            stack.callback(later.close)
        side_a = open_side(local_spec(stack, a, tmpdir), "A", progress, modules, connect, via)
        stack.callback(side_a.close)
        spec_b = local_spec(stack, b, tmpdir)
        side_b = open_side(spec_b, "B", progress, modules, connect, via, later)
        stack.callback(side_b.close)
        counts_only = "report" in (side_a.kind, side_b.kind)
        level = COUNTS if counts_only else VALUES if values else KEYS
        report = DiffReport(
            side_a.source,
            side_b.source,
            level,
            ttl_tolerance_ms=ttl_tolerance_ms,
            dbs_compared=sorted(db_set) if db_set is not None else None,
            match=match,
        )
        if counts_only:
            if match is not None:
                which = a if side_a.kind == "report" else b
                raise DiffError(
                    f"{which}: a saved check report holds counts only, so --match cannot "
                    "apply to it"
                )
            _diff_counts(report, side_a, side_b, db_set)
            if values:
                report.notes.append("values not compared: a saved report holds counts only")
        else:
            _diff_keys(report, side_a, side_b, db_set, match, values, prefix_sep, limit, progress)
    return report


# -- counts only ----------------------------------------------------------------------------


def _diff_counts(report: DiffReport, side_a: Side, side_b: Side, dbs: set[int] | None) -> None:
    ca, cb = side_a.counts(dbs), side_b.counts(dbs)
    for db in sorted(set(ca) | set(cb)):
        x, y = ca.get(db, DbCounts()), cb.get(db, DbCounts())
        d = DbDiff(keys=_counts_only(x.keys, y.keys), expires_a=x.expires, expires_b=y.expires)
        for t in sorted(set(x.by_type) | set(y.by_type)):
            d.by_type[t] = _counts_only(x.by_type.get(t, 0), y.by_type.get(t, 0))
        report.databases[db] = d
    report.notes.append(
        "counts only: a saved check report holds no key names, so per-key differences "
        "(added, removed, changed) are not known"
    )
    _side_notes(report, side_a, "A")
    _side_notes(report, side_b, "B")


def _counts_only(a: int, b: int) -> Counts:
    return Counts(a=a, b=b, added=None, removed=None, expired=None, changed=None, unchanged=None)


def _diff_keys(
    report: DiffReport,
    side_a: Side,
    side_b: Side,
    dbs: set[int] | None,
    match: str | None,
    values: bool,
    prefix_sep: str | None,
    limit: int | None,
    progress: Progress,
) -> None:
    if isinstance(side_a, RdbSide) and isinstance(side_b, RdbSide) and ENGINE != "table":
        diff_files(report, side_a, side_b, dbs, match, values, prefix_sep, limit, progress)
        _notes(report, side_a, side_b, values)
        return
    matcher = glob_matcher(match) if match is not None else None
    pattern = match.encode() if match is not None else None
    types = TypeCodes()
    tables = []
    for side in (side_a, side_b):
        table = KeyTable(types, values=values, name_reader=side.name_reader())
        side.collect(
            table, dbs=dbs, match=matcher, pattern=pattern, values=values, progress=progress
        )
        tables.append(table)
    ta, tb = tables
    comparing = progress("comparing") if progress is not None else None  # no total: a spinner
    join_tables(
        report,
        ta,
        tb,
        values=values,
        prefix_sep=prefix_sep,
        limit=limit,
        b_time=side_b.source.time_ms,
        live_a=side_a.live,
        live_b=side_b.live,
    )
    if comparing is not None:
        comparing.close()
    _notes(report, side_a, side_b, values)


def _notes(report: DiffReport, side_a: Side, side_b: Side, values: bool) -> None:
    """The notes of a per-key diff."""
    _side_notes(report, side_a, "A")
    _side_notes(report, side_b, "B")
    if report.keys_expired:
        report.notes.append(
            f"{report.keys_expired:,} key(s) only in A had a TTL that ran out by B's time "
            f"({report.b.time_source}): expired, not lost"
        )
    if values:
        report.notes.append(
            f"values compared by their logical content for {report.values_compared:,} "
            "key(s) in both sides with the same type"
        )


def _side_notes(report: DiffReport, side: Side, label: str) -> None:
    """Notes on one side: in the report when they concern the diff as a whole (a live side),
    else in the side's own notes."""
    src = side.source
    if side.kind == "live":
        report.notes.append(
            f"{label} is a live server: it was read over {src.seconds:.1f} s "
            f"({src.keys_read:,} keys); keys written meanwhile may show as differences"
        )
    if side.expired_left_out:
        src.notes.append(
            f"{side.expired_left_out:,} key(s) in the snapshot past their TTL by the "
            "server's TIME: left out, as the server no longer serves them"
        )
    if side.empty_skipped:
        src.notes.append(
            f"{side.empty_skipped:,} empty collection(s), which Redis drops when it loads the "
            "file: left out"
        )
    if side.module_values:
        src.notes.append(
            f"{side.module_values:,} module value(s) compared by their serialized bytes: the "
            "module's encoding, which may differ for equal content"
        )
