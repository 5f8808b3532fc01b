"""The in-memory join of any two sides' :class:`~toolkit.diff.table.KeyTable` columns, one
hash bucket at a time; with a live side and ``--values``, a differing key is read again
before it is called changed.
"""

from __future__ import annotations

from toolkit.diff.live import LiveServer
from toolkit.diff.model import DiffReport
from toolkit.diff.table import NBUCKETS, NO_TTL, Bucket, KeyTable
from toolkit.diff.tally import Row, Tally, judge, row_of

# Keys re-read from a live server per pipeline.
REREAD_BATCH = 500


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
    tally = Tally(
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
    suspects: list[tuple[bytes, Row, Row]] = []
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
    tally: Tally,
    ta: KeyTable,
    tb: KeyTable,
    ba: Bucket | None,
    bb: Bucket | None,
    suspects: list[tuple[bytes, Row, Row]] | None,
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
            tally.only_b(tb.name(bb.ref[j]), row_of(tb, bb, j))
            continue
        if a_h2[i] != b_h2[j]:  # the same h1, another h2: two different keys
            tally.only_a(ta.name(ba.ref[i]), row_of(ta, ba, i))
            tally.only_b(tb.name(bb.ref[j]), row_of(tb, bb, j))
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
        judge(tally, tb.name(bb.ref[j]), row_of(ta, ba, i), row_of(tb, bb, j), suspects)
    for i in ia.values():
        tally.only_a(ta.name(ba.ref[i]), row_of(ta, ba, i))
    tally.same_expiring += expiring
    tally.report.values_compared += compared


def _join_slow(
    tally: Tally,
    ta: KeyTable,
    tb: KeyTable,
    ba: Bucket | None,
    bb: Bucket | None,
    suspects: list[tuple[bytes, Row, Row]] | None,
) -> None:
    """Join a bucket key by key on (h1, h2), one row kept per key."""
    ia, ib = _index128(ba), _index128(bb)
    for h, j in ib.items():
        assert bb is not None
        i = ia.pop(h, -1)
        if i < 0:
            tally.only_b(tb.name(bb.ref[j]), row_of(tb, bb, j))
            continue
        assert ba is not None
        judge(tally, tb.name(bb.ref[j]), row_of(ta, ba, i), row_of(tb, bb, j), suspects)
    for i in ia.values():
        assert ba is not None
        tally.only_a(ta.name(ba.ref[i]), row_of(ta, ba, i))


def _reread(
    tally: Tally,
    live_a: LiveServer | None,
    live_b: LiveServer | None,
    db: int,
    suspects: list[tuple[bytes, Row, Row]],
) -> None:
    """Read the differing keys of ``db`` again from the live side(s), then judge them."""
    suspects.sort(key=lambda s: s[0])
    for start in range(0, len(suspects), REREAD_BATCH):
        chunk = suspects[start : start + REREAD_BATCH]
        keys = [s[0] for s in chunk]
        fresh: list[list[Row | None]] = []
        for server in (live_a, live_b):
            if server is None:
                fresh.append([None] * len(chunk))
                continue
            rows: list[Row | None] = []
            for lk in server.read_keys(db, keys, values=True):
                if lk is None:
                    rows.append(None)
                    continue
                exp = NO_TTL if lk.expire_ms is None else lk.expire_ms
                rows.append(Row(lk.type, exp, lk.size, lk.digest))
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
