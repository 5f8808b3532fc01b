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

Memory: two RDB files are joined out of core by DuckDB (:mod:`toolkit.diff.columnar`:
bounded memory, only the keys whose value bytes differ decoded). Any other pair keeps each
side's keys in :class:`~toolkit.diff.table.KeyTable` columns (about 40 bytes a key, 56 with
values; an RDB side keeps only the offset of each name in the mapped file), joined one hash
bucket at a time (``RBKIT_DIFF_ENGINE=table`` takes this path for two files too). The
listed keys (``report.keys``) are a :class:`~toolkit.diff.keylist.KeyList`: compact columns
(about 50 bytes a key plus its name; with a ``limit``, at most about ``2 * limit`` keys held)
that make each ``KeyDiff`` as a renderer reads it, so ``diff --json`` of hundreds of
thousands of differing keys streams them out (render.diff_json ``stream``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from parsers.errors import FormatError
from toolkit.check.keys import display_key
from toolkit.diff.background import BackgroundCheck, BackgroundSnapshot
from toolkit.diff.keylist import KeyList, SideState
from toolkit.diff.live import LiveServer
from toolkit.diff.model import (
    ADDED,
    COUNTS,
    EXPIRED,
    KEYS,
    KINDS,
    REMOVED,
    SIZE,
    TTL_CHANGED,
    TTL_GAINED,
    TTL_LOST,
    TYPE,
    VALUE,
    VALUES,
    Counts,
    DbDiff,
    DiffReport,
    PrefixDiff,
)
from toolkit.diff.rdb_side import RdbSide
from toolkit.diff.side import AUTO, NEVER, DbCounts, Side
from toolkit.diff.sources import local_spec, open_side
from toolkit.diff.table import (
    NBUCKETS,
    NO_TTL,
    UNKNOWN_TTL,
    Bucket,
    KeyTable,
    TypeCodes,
    clamp_expiry,
    unpack_meta,
)
from toolkit.errors import DiffError
from toolkit.server.connect import ConnectOptions
from toolkit.server.glob import glob_matcher
from toolkit.steps import ProgressFactory

__all__ = ["DiffError", "compute_diff"]

# At most this many key families in report.prefixes (the most differences first).
PREFIX_LIMIT = 100
# Keys re-read from a live server per pipeline.
REREAD_BATCH = 500
# Two RDB files are joined out of core (columnar.py) unless this is "table" (the in-memory
# join of every side kind; benchmarks/run.py compares the two).
ENGINE = os.environ.get("RBKIT_DIFF_ENGINE", "duckdb")

Progress = ProgressFactory | None


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
    ``tmpdir``: where a compressed, piped or remote backup is made local (toolkit/sources),
    a server's snapshot is written and two files' keys are spilled (default: ``$TMPDIR``).
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
    with contextlib.ExitStack() as stack:
        if a == b == "-":
            raise DiffError("-: stdin can be one side only")
        # B, a plain RDB file, is checked in a second process while A is opened (two cores);
        # a server, read as its snapshot, has it taken and checked so.
        later = BackgroundCheck.start(b, modules) or BackgroundSnapshot.start(
            b, connect, via, tmpdir
        )
        if later is not None:
            stack.callback(later.close)
        side_a = open_side(
            local_spec(stack, a, tmpdir), "A", progress, modules, connect, via, tmpdir=tmpdir
        )
        stack.callback(side_a.close)
        spec_b = local_spec(stack, b, tmpdir)
        side_b = open_side(spec_b, "B", progress, modules, connect, via, later, tmpdir)
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
            _diff_keys(
                report, side_a, side_b, db_set, match, values, prefix_sep, limit, progress, tmpdir
            )
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


# -- per key ---------------------------------------------------------------------------------


@dataclass
class _Row:
    """One key of one side, unpacked."""

    type: str
    expire: int  # NO_TTL, UNKNOWN_TTL or absolute ms
    size: int | None
    digest: bytes | None


def _side(row: _Row | None) -> SideState:
    """A listed key's state on one side, as KeyList keeps it."""
    if row is None:
        return None
    return (row.type, None if row.expire == NO_TTL else row.expire, row.size)


def _row(table: KeyTable, bk: Bucket, i: int) -> _Row:
    code, size = unpack_meta(bk.meta[i])
    dig = bk.digest(i) if table.values else None
    return _Row(table.types.names[code], bk.exp[i], size, dig)


class _Tally:
    """Everything the join finds, folded into the report as it goes."""

    def __init__(
        self,
        report: DiffReport,
        ta: KeyTable,
        tb: KeyTable,
        *,
        values: bool,
        tolerance: int,
        b_time: int | None,
        prefix_sep: bytes | None,
        limit: int | None,
    ) -> None:
        self.report = report
        self.ta, self.tb = ta, tb
        self.values = values
        self.tolerance = tolerance
        self.b_time = b_time
        self.sep = prefix_sep
        self.limit = limit
        self.listed = KeyList(limit)  # compact columns, ordered by (db, key) in finish()
        self.prefixes: dict[bytes, list[int]] = {}  # prefix -> [removed, added, changed]
        self.by_kind: dict[str, int] = {}
        self.db = 0
        self.dd = DbDiff()
        self.same = [0] * 256
        self.same_expiring = 0

    def start_db(self, db: int) -> None:
        self.db = db
        self.dd = self.report.databases.setdefault(db, DbDiff())
        self.same = [0] * 256  # type code -> keys found unchanged by the join's fast path
        self.same_expiring = 0  # of those, how many have a TTL

    def end_db(self) -> None:
        """Fold the fast path's unchanged keys into the db's counts."""
        names = self.ta.types.names
        dd = self.dd
        for code, n in enumerate(self.same):
            if n:
                c = self._type_counts(names[code])
                c.a += n
                c.b += n
                c.unchanged += n  # type: ignore[operator]
                dd.keys.a += n
                dd.keys.b += n
                dd.keys.unchanged += n  # type: ignore[operator]
        dd.expires_a += self.same_expiring
        dd.expires_b += self.same_expiring

    def _type_counts(self, type_name: str) -> Counts:
        c = self.dd.by_type.get(type_name)
        if c is None:
            c = self.dd.by_type[type_name] = Counts()
        return c

    def side_a(self, row: _Row) -> None:
        self.dd.keys.a += 1
        self._type_counts(row.type).a += 1
        if row.expire != NO_TTL:
            self.dd.expires_a += 1

    def side_b(self, row: _Row) -> None:
        self.dd.keys.b += 1
        self._type_counts(row.type).b += 1
        if row.expire != NO_TTL:
            self.dd.expires_b += 1

    def unchanged(self, a: _Row, b: _Row) -> None:
        self.side_a(a)
        self.side_b(b)
        self.dd.keys.unchanged += 1  # type: ignore[operator]
        self._type_counts(b.type).unchanged += 1  # type: ignore[operator]
        if self.values and a.digest is not None and b.digest is not None:
            self.report.values_compared += 1

    def only_a(self, key: bytes, a: _Row) -> None:
        self.side_a(a)
        c = self._type_counts(a.type)
        exp = a.expire
        if exp not in (NO_TTL, UNKNOWN_TTL) and self.b_time is not None and exp <= self.b_time:
            self.dd.keys.expired += 1  # type: ignore[operator]
            c.expired += 1  # type: ignore[operator]
            self.report.keys_expired += 1
            self._kind(EXPIRED)
            self._list(key, (EXPIRED,), a, None)
            return
        self.dd.keys.removed += 1  # type: ignore[operator]
        c.removed += 1  # type: ignore[operator]
        self._differs(key, (REMOVED,), a, None, 0)

    def only_b(self, key: bytes, b: _Row) -> None:
        self.side_b(b)
        self.dd.keys.added += 1  # type: ignore[operator]
        self._type_counts(b.type).added += 1  # type: ignore[operator]
        self._differs(key, (ADDED,), None, b, 1)

    def changed(self, key: bytes, kinds: tuple[str, ...], a: _Row, b: _Row) -> None:
        self.side_a(a)
        self.side_b(b)
        self.dd.keys.changed += 1  # type: ignore[operator]
        self._type_counts(b.type).changed += 1  # type: ignore[operator]
        if self.values and a.type == b.type and a.digest is not None and b.digest is not None:
            self.report.values_compared += 1
        self._differs(key, kinds, a, b, 2)

    def _kind(self, kind: str) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + 1

    def _differs(
        self, key: bytes, kinds: tuple[str, ...], a: _Row | None, b: _Row | None, slot: int
    ) -> None:
        self.report.keys_differing += 1
        for k in kinds:
            self._kind(k)
        if self.sep is not None:
            prefix = key.split(self.sep, 1)[0] if self.sep in key else b""
            p = self.prefixes.get(prefix)
            if p is None:
                p = self.prefixes[prefix] = [0, 0, 0]
            p[slot] += 1
        self._list(key, kinds, a, b)

    def _list(self, key: bytes, kinds: tuple[str, ...], a: _Row | None, b: _Row | None) -> None:
        self.listed.add(self.db, key, kinds, _side(a), _side(b))

    def compare(self, a: _Row, b: _Row) -> tuple[str, ...]:
        """The kinds of difference between two rows of one key (empty: the same)."""
        kinds: list[str] = []
        same_type = a.type == b.type
        if not same_type:
            kinds.append(TYPE)
        elif a.size is not None and b.size is not None and a.size != b.size:
            kinds.append(SIZE)
        ea, eb = a.expire, b.expire
        if ea != eb:
            if ea == NO_TTL:
                kinds.append(TTL_GAINED)
            elif eb == NO_TTL:
                kinds.append(TTL_LOST)
            elif UNKNOWN_TTL not in (ea, eb) and abs(ea - eb) > self.tolerance:
                kinds.append(TTL_CHANGED)
        if (
            self.values
            and same_type
            and a.digest is not None
            and b.digest is not None
            and a.digest != b.digest
        ):
            kinds.append(VALUE)
        return tuple(kinds)

    def finish(self) -> None:
        report = self.report
        report.keys = self.listed.finish()
        order = {k: i for i, k in enumerate(KINDS)}
        report.by_kind = dict(sorted(self.by_kind.items(), key=lambda kv: order[kv[0]]))
        ranked = sorted(self.prefixes.items(), key=lambda kv: (-sum(kv[1]), -kv[1][0], kv[0]))
        report.prefixes = [
            PrefixDiff(display_key(p), removed=r, added=ad, changed=c, raw=p)
            for p, (r, ad, c) in ranked[:PREFIX_LIMIT]
        ]
        if len(ranked) > PREFIX_LIMIT:
            report.notes.append(
                f"{len(ranked):,} key families differ; the {PREFIX_LIMIT} with the most "
                "differences are listed"
            )
        for d in report.databases.values():
            d.by_type = dict(sorted(d.by_type.items()))
        report.databases = dict(sorted(report.databases.items()))


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
    tmpdir: Path | None = None,
) -> None:
    if isinstance(side_a, RdbSide) and isinstance(side_b, RdbSide) and ENGINE != "table":
        _diff_files(report, side_a, side_b, dbs, match, values, prefix_sep, limit, progress, tmpdir)
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


def _diff_files(
    report: DiffReport,
    side_a: RdbSide,
    side_b: RdbSide,
    dbs: set[int] | None,
    match: str | None,
    values: bool,
    prefix_sep: str | None,
    limit: int,
    progress: Progress,
    tmpdir: Path | None = None,
) -> None:
    """Two RDB files, joined out of core (:mod:`toolkit.diff.columnar`), their keys spilled
    under ``tmpdir``."""
    from toolkit import lifeline
    from toolkit.diff import batch_judge, columnar, partitions
    from toolkit.diff.forked import Forked

    types = TypeCodes()
    tally = _Tally(
        report,
        KeyTable(types, values=values),
        KeyTable(types, values=values),
        values=values,
        tolerance=report.ttl_tolerance_ms,
        b_time=side_b.source.time_ms,
        prefix_sep=prefix_sep.encode() if prefix_sep is not None else None,
        limit=limit,
    )
    sides, maps = [], []
    for side in (side_a, side_b):
        mm = side.mapped()
        maps.append(mm)
        magic = "VALKEY" if mm is not None and mm[:6] == b"VALKEY" else "REDIS"
        sides.append(columnar.SideRows(side.fd, magic, side.name_reader(), mm))
        sides[-1].label = side.path.name
    sides[1].counting = False  # B's counts are not needed
    codes = columnar.type_codes(types)  # before B's process is forked: the same on both sides

    def spill(i: int, progress: Progress) -> partitions.Spilled:
        side, rows, mm = (side_a, side_b)[i], sides[i], maps[i]
        expired_by = side.expired_by if side.expired_by != NEVER else None
        batches = (
            columnar.side_batches(
                mm, side.path.name, rows, dbs, match, progress, types, expired_by, values
            )
            if mm is not None
            else iter(())
        )
        return partitions.spill(batches, scratch / f"{'ab'[i]}.arrow")

    def spill_b() -> tuple[partitions.Spilled, tuple[Any, ...]] | str:
        """B's side, in the forked process: what it spilled and read, or the error."""
        try:
            spilled = spill(1, None)
        except DiffError as e:
            return str(e)
        r = sides[1]
        return spilled, (r.keys_read, r.empty, r.modules, r.expired, r.seconds)

    scratch = lifeline.scratch_dir("rbkit-diff-join-", tmpdir)
    digests = forked = joined = None
    try:
        digests = columnar.Digests(sides) if values else None  # forked while single-threaded
        forked = Forked.start(spill_b) if maps[1] is not None else None
        spilled_a = spill(0, progress)
        got = forked.result() if forked is not None else spill_b()
        if isinstance(got, str):
            raise DiffError(got)
        spilled_b, read = got
        r = sides[1]
        r.keys_read, r.empty, r.modules, r.expired, r.seconds = read
        joined = columnar.Joined(scratch)
        # (db, type code, has an expiry) -> keys of A the join handed back: A's keys less
        # these are the ones it only counted (the same in both sides).
        handed: dict[tuple[int, int, bool], int] = {}
        current: int | None = None
        widen = partial(columnar.widen, sides=sides, codes=codes, types=types)
        for batch in joined.join(spilled_a, spilled_b, widen):
            if batch_judge.judge_batch(tally, sides, batch, digests, types.names, handed):
                continue
            current = _judge_batch(
                tally, sides, batch.to_pydict(), digests, types.names, handed, current
            )
        if current is not None:
            tally.end_db()
        for (db, code, expiring), n in sorted(sides[0].counts.items()):
            n -= handed.get((db, code, expiring), 0)
            if not n:
                continue
            tally.start_db(db)
            tally.same[code] += n
            tally.same_expiring += n if expiring else 0
            if values:
                report.values_compared += n
            tally.end_db()
        tally.finish()
    finally:
        if joined is not None:
            joined.close()
        if forked is not None:
            forked.close()
        if digests is not None:
            digests.close()
        lifeline.remove_dir(scratch)
    for side, rows in zip((side_a, side_b), sides, strict=True):
        side.source.keys_read, side.source.seconds = rows.keys_read, rows.seconds
        side.empty_skipped = rows.empty
        side.module_values = rows.modules if values else 0
        side.expired_left_out = rows.expired


def _judge_batch(
    tally: _Tally,
    sides: list[Any],
    cols: dict[str, list[Any]],
    digests: Any,
    type_names: list[str],
    handed: dict[tuple[int, int, bool], int],
    current: int | None,
) -> int | None:
    """The keys of a fetched batch of the columnar join, judged key by key as the in-memory
    join judges them (in A only, in B only, or in both), for a batch batch_judge.py declines;
    the keys of A among them counted in ``handed``.
    ``digests``: a :class:`~toolkit.diff.columnar.Digests` with ``--values``, else None.
    ``current``: the db the tally is in; returns the db it is left in."""
    from toolkit.diff.columnar import row_values

    fields = ("rdb_type", "value_offset", "value_bytes", "elements", "type_code", "expire_ms")
    parts = [tuple(cols[f"{s}_{c}"] for c in fields) for s in "ab"]
    name_a, name_b = sides[0].name_at, sides[1].name_at
    key_a, key_b = cols["a_key_offset"], cols["b_key_offset"]
    code_a, exp_a = cols["a_type_code"], cols["a_expire_ms"]
    in_a, in_b = cols["in_a"], cols["in_b"]
    # With --values, the values of the keys in both sides, digested first (two processes).
    done: dict[tuple[int, int], tuple[Any, Any] | str] = {}
    if digests is not None:
        wanted = [(s, i) for i in range(len(in_a)) if in_a[i] and in_b[i] for s in (0, 1)]
        found = digests.run([(s, *(parts[s][c][i] for c in range(4))) for s, i in wanted])
        done = dict(zip(wanted, found, strict=True))

    def as_row(s: int, i: int, with_digest: bool, key: bytes) -> _Row:
        rdb_type, offset, nbytes, elements, code, exp = parts[s]
        got = done.get((s, i)) if with_digest else None
        if got is None:
            try:
                got = row_values(
                    sides[s], rdb_type[i], offset[i], nbytes[i], elements[i], with_digest
                )
            except FormatError as e:
                got = str(e)
        if isinstance(got, str):
            raise DiffError(f"{key!r}: {got}")
        size, dig = got
        e = exp[i]
        return _Row(type_names[code[i]], NO_TTL if e is None else clamp_expiry(e), size, dig)

    values = digests is not None
    for i, db in enumerate(cols["db"]):
        if db != current:  # the join's order is arbitrary: switch dbs as rows come
            if current is not None:
                tally.end_db()
            tally.start_db(db)
            current = db
        if in_a[i]:
            cell = (db, code_a[i], exp_a[i] is not None)
            handed[cell] = handed.get(cell, 0) + 1
        if not in_b[i]:
            key = name_a(key_a[i])
            tally.only_a(key, as_row(0, i, False, key))
        elif not in_a[i]:
            key = name_b(key_b[i])
            tally.only_b(key, as_row(1, i, False, key))
        else:
            key = name_b(key_b[i])
            _judge(tally, key, as_row(0, i, values, key), as_row(1, i, values, key), None)
    return current


def join_tables(
    report: DiffReport,
    ta: KeyTable,
    tb: KeyTable,
    *,
    values: bool,
    prefix_sep: str | None,
    limit: int | None,
    b_time: int | None,
    live_a: LiveServer | None = None,
    live_b: LiveServer | None = None,
) -> None:
    """Join the keys of A and B db by db, bucket by bucket, into ``report``.

    ``b_time``: when B's data was current (keys only in A that expired by then are EXPIRED).
    ``live_a``/``live_b``: the servers to re-read differing keys from, with ``values``.
    """
    tally = _Tally(
        report,
        ta,
        tb,
        values=values,
        tolerance=report.ttl_tolerance_ms,
        b_time=b_time,
        prefix_sep=prefix_sep.encode() if prefix_sep is not None else None,
        limit=limit,
    )
    reread = values and (live_a is not None or live_b is not None)
    suspects: list[tuple[bytes, _Row, _Row]] = []
    for db in sorted(set(ta.dbs) | set(tb.dbs)):
        tally.start_db(db)
        da, db_ = ta.dbs.get(db), tb.dbs.get(db)
        for n in range(NBUCKETS):
            ba = da.buckets[n] if da is not None else None
            bb = db_.buckets[n] if db_ is not None else None
            if ba is None and bb is None:
                continue
            _join_bucket(tally, ta, tb, ba, bb, suspects if reread else None)
            if len(suspects) >= REREAD_BATCH:  # re-read as they come: memory stays bounded
                _reread(tally, live_a, live_b, db, suspects)
                suspects = []
        if suspects:
            _reread(tally, live_a, live_b, db, suspects)
            suspects = []
        tally.end_db()
    tally.finish()


def _index(bk: Bucket | None) -> dict[int, int]:
    """h1 -> row of a bucket (empty for None)."""
    if bk is None:
        return {}
    return dict(zip(bk.h1, range(len(bk)), strict=True))


def _index128(bk: Bucket | None) -> dict[int, int]:
    """(h1, h2) as one int -> row: tells apart keys whose h1 collides, and keeps one row of
    a key a live server's SCAN returned twice."""
    if bk is None:
        return {}
    return {h1 << 64 | h2: i for i, (h1, h2) in enumerate(zip(bk.h1, bk.h2, strict=True))}


def _join_bucket(
    tally: _Tally,
    ta: KeyTable,
    tb: KeyTable,
    ba: Bucket | None,
    bb: Bucket | None,
    suspects: list[tuple[bytes, _Row, _Row]] | None,
) -> None:
    """Join one bucket of A with the same bucket of B.

    When each side's h1 are distinct (nearly always) rows are matched by h1 and told apart by
    h2, and a row equal on both sides is only counted (this loop runs for every key).
    Otherwise (an h1 shared by two keys of one side, or a key SCAN returned twice) the keys
    are joined on (h1, h2).
    """
    if ba is None or bb is None:
        _join_slow(tally, ta, tb, ba, bb, suspects)
        return
    ia, ib = _index(ba), _index(bb)
    if len(ia) != len(ba) or len(ib) != len(bb):
        _join_slow(tally, ta, tb, ba, bb, suspects)
        return
    values = tally.values
    same = tally.same
    expiring = compared = 0
    a_h2, a_exp, a_meta, a_d1, a_d2 = ba.h2, ba.exp, ba.meta, ba.d1, ba.d2
    b_h2, b_exp, b_meta, b_d1, b_d2 = bb.h2, bb.exp, bb.meta, bb.d1, bb.d2
    pop = ia.pop
    for h, j in ib.items():
        i = pop(h, -1)
        if i < 0:
            tally.only_b(tb.name(bb.ref[j]), _row(tb, bb, j))
            continue
        if a_h2[i] != b_h2[j]:  # the same h1, another h2: two different keys
            tally.only_a(ta.name(ba.ref[i]), _row(ta, ba, i))
            tally.only_b(tb.name(bb.ref[j]), _row(tb, bb, j))
            continue
        meta = b_meta[j]
        exp = b_exp[j]
        if a_meta[i] == meta and a_exp[i] == exp:
            if not values:
                same[meta & 0xFF] += 1
                expiring += exp != NO_TTL
                continue
            d1 = b_d1[j]
            if a_d1[i] == d1 and a_d2[i] == b_d2[j]:
                same[meta & 0xFF] += 1
                expiring += exp != NO_TTL
                compared += d1 != 0 or b_d2[j] != 0
                continue
        _judge(tally, tb.name(bb.ref[j]), _row(ta, ba, i), _row(tb, bb, j), suspects)
    for i in ia.values():
        tally.only_a(ta.name(ba.ref[i]), _row(ta, ba, i))
    tally.same_expiring += expiring
    tally.report.values_compared += compared


def _judge(
    tally: _Tally,
    key: bytes,
    a: _Row,
    b: _Row,
    suspects: list[tuple[bytes, _Row, _Row]] | None,
) -> None:
    """A key in both sides: unchanged, changed, or (live, with values) to be re-read."""
    kinds = tally.compare(a, b)
    if not kinds:
        tally.unchanged(a, b)
    elif suspects is not None:
        suspects.append((key, a, b))
    else:
        tally.changed(key, kinds, a, b)


def _join_slow(
    tally: _Tally,
    ta: KeyTable,
    tb: KeyTable,
    ba: Bucket | None,
    bb: Bucket | None,
    suspects: list[tuple[bytes, _Row, _Row]] | None,
) -> None:
    """Join a bucket key by key on (h1, h2), one row kept per key."""
    ia, ib = _index128(ba), _index128(bb)
    for h, j in ib.items():
        assert bb is not None
        i = ia.pop(h, -1)
        if i < 0:
            tally.only_b(tb.name(bb.ref[j]), _row(tb, bb, j))
            continue
        assert ba is not None
        _judge(tally, tb.name(bb.ref[j]), _row(ta, ba, i), _row(tb, bb, j), suspects)
    for i in ia.values():
        assert ba is not None
        tally.only_a(ta.name(ba.ref[i]), _row(ta, ba, i))


def _reread(
    tally: _Tally,
    live_a: LiveServer | None,
    live_b: LiveServer | None,
    db: int,
    suspects: list[tuple[bytes, _Row, _Row]],
) -> None:
    """Read the differing keys of ``db`` again from the live side(s), then judge them."""
    suspects.sort(key=lambda s: s[0])
    for start in range(0, len(suspects), REREAD_BATCH):
        chunk = suspects[start : start + REREAD_BATCH]
        keys = [s[0] for s in chunk]
        fresh: list[list[_Row | None]] = []
        for server in (live_a, live_b):
            if server is None:
                fresh.append([None] * len(chunk))
                continue
            rows: list[_Row | None] = []
            for lk in server.read_keys(db, keys, values=True):
                if lk is None:
                    rows.append(None)
                    continue
                exp = NO_TTL if lk.expire_ms is None else lk.expire_ms
                rows.append(_Row(lk.type, exp, lk.size, lk.digest))
            fresh.append(rows)
        for (key, a, b), new_a, new_b in zip(chunk, fresh[0], fresh[1], strict=True):
            tally.report.values_reread += 1
            if (live_a is not None and new_a is None) or (live_b is not None and new_b is None):
                # Gone from a live side since it was read: judged as first read.
                tally.changed(key, tally.compare(a, b), a, b)
                continue
            a2 = new_a if new_a is not None else a
            b2 = new_b if new_b is not None else b
            kinds = tally.compare(a2, b2)
            if kinds:
                tally.changed(key, kinds, a2, b2)
            else:
                tally.unchanged(a2, b2)


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
