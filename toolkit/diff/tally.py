"""What a diff's join finds, folded into the report as it goes (:class:`Tally`), and how a
key in both sides is judged; the same rules whichever join handed the keys over.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.check.keys import display_key
from toolkit.diff.keylist import KeyList, SideState
from toolkit.diff.model import (
    ADDED,
    EXPIRED,
    KINDS,
    REMOVED,
    SIZE,
    TTL_CHANGED,
    TTL_GAINED,
    TTL_LOST,
    TYPE,
    VALUE,
    Counts,
    DbDiff,
    DiffReport,
    PrefixDiff,
)
from toolkit.diff.table import (
    NO_TTL,
    UNKNOWN_TTL,
    Bucket,
    KeyTable,
    unpack_meta,
)

# At most this many key families in report.prefixes (the most differences first).
PREFIX_LIMIT = 100


@dataclass
class Row:
    """One key of one side, unpacked."""

    type: str
    expire: int  # NO_TTL, UNKNOWN_TTL or absolute ms
    size: int | None
    digest: bytes | None


def side_state(row: Row | None) -> SideState:
    """A listed key's state on one side, as KeyList keeps it."""
    if row is None:
        return None
    return (row.type, None if row.expire == NO_TTL else row.expire, row.size)


def row_of(table: KeyTable, bk: Bucket, i: int) -> Row:
    code, size = unpack_meta(bk.meta[i])
    dig = bk.digest(i) if table.values else None
    return Row(table.types.names[code], bk.exp[i], size, dig)


class Tally:
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

    def side_a(self, row: Row) -> None:
        self.dd.keys.a += 1
        self._type_counts(row.type).a += 1
        if row.expire != NO_TTL:
            self.dd.expires_a += 1

    def side_b(self, row: Row) -> None:
        self.dd.keys.b += 1
        self._type_counts(row.type).b += 1
        if row.expire != NO_TTL:
            self.dd.expires_b += 1

    def unchanged(self, a: Row, b: Row) -> None:
        self.side_a(a)
        self.side_b(b)
        self.dd.keys.unchanged += 1  # type: ignore[operator]
        self._type_counts(b.type).unchanged += 1  # type: ignore[operator]
        if self.values and a.digest is not None and b.digest is not None:
            self.report.values_compared += 1

    def only_a(self, key: bytes, a: Row) -> None:
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

    def only_b(self, key: bytes, b: Row) -> None:
        self.side_b(b)
        self.dd.keys.added += 1  # type: ignore[operator]
        self._type_counts(b.type).added += 1  # type: ignore[operator]
        self._differs(key, (ADDED,), None, b, 1)

    def changed(self, key: bytes, kinds: tuple[str, ...], a: Row, b: Row) -> None:
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
        self, key: bytes, kinds: tuple[str, ...], a: Row | None, b: Row | None, slot: int
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

    def _list(self, key: bytes, kinds: tuple[str, ...], a: Row | None, b: Row | None) -> None:
        self.listed.add(self.db, key, kinds, side_state(a), side_state(b))

    def compare(self, a: Row, b: Row) -> tuple[str, ...]:
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


def judge(
    tally: Tally,
    key: bytes,
    a: Row,
    b: Row,
    suspects: list[tuple[bytes, Row, Row]] | None,
) -> None:
    """A key in both sides: unchanged, changed, or (live, with values) to be re-read."""
    kinds = tally.compare(a, b)
    if not kinds:
        tally.unchanged(a, b)
    elif suspects is not None:
        suspects.append((key, a, b))
    else:
        tally.changed(key, kinds, a, b)
