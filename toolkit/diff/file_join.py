"""Two RDB files diffed out of core: both sides' keys spilled as narrow rows, joined by
DuckDB (:mod:`toolkit.diff.columnar`), and the keys it hands back judged a batch at a time.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from parsers.errors import FormatError
from toolkit.diff.model import DiffReport
from toolkit.diff.rdb_side import RdbSide
from toolkit.diff.side import NEVER, Progress
from toolkit.diff.table import NO_TTL, KeyTable, TypeCodes, clamp_expiry
from toolkit.diff.tally import Row, Tally, judge
from toolkit.errors import DiffError


def diff_files(
    report: DiffReport,
    side_a: RdbSide,
    side_b: RdbSide,
    dbs: set[int] | None,
    match: str | None,
    values: bool,
    prefix_sep: str | None,
    limit: int,
    progress: Progress,
) -> None:
    """Two RDB files, joined out of core (:mod:`toolkit.diff.columnar`)."""
    from toolkit import lifeline
    from toolkit.diff import batch_judge, columnar, partitions
    from toolkit.diff.forked import Forked

    types = TypeCodes()
    tally = Tally(
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

    scratch = lifeline.scratch_dir("rbkit-diff-join-")
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
    tally: Tally,
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

    def as_row(s: int, i: int, with_digest: bool, key: bytes) -> Row:
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
        return Row(type_names[code[i]], NO_TTL if e is None else clamp_expiry(e), size, dig)

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
            judge(tally, key, as_row(0, i, values, key), as_row(1, i, values, key), None)
    return current
