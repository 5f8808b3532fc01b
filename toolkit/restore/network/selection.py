"""A selective network restore: which keys of the backup go (``--match``, ``--db``, ``--type``,
``--keys-from``), what becomes of keys the target already has (``--on-conflict``), and the TTL
each key gets (``--ttl``).

Selectors of different kinds must all hold (``--db 0 --match 'user:*'``: keys of db 0 named
``user:*``); several of one kind are alternatives (``--match 'a:*' --match 'b:*'``).

The preflight walks the backup once (:func:`plan_selection`): it counts the keys to write per
type and the keys skipped per reason, and asks the target (pipelined EXISTS) which selected keys
it already has. A :class:`Picker` then makes the same decision, key by key, for the load and
for the verification, so the three agree.

TTLs: ``keep`` sends each key's absolute expiry from the backup (a key whose expiry has passed
by the time it is sent is skipped); ``none`` sends no TTL; ``shift`` gives each key the time it
had left at the backup's own time (the end of the second its aux ``ctime`` names), counted from
the start of the load. With
``none`` and ``shift``, a key whose TTL had run out by the backup's time is skipped (it was
gone from the server already). Hash fields' own TTLs are not changed by ``--ttl``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import redis

from parsers.printable import printable
from toolkit.check.result import CheckResult
from toolkit.restore.network.keylist import KeyList
from toolkit.restore.network.plan import (
    DbPlan,
    Plan,
    all_fields_expired,
    field_ttl_types,
    is_empty_collection,
)
from toolkit.restore.network.source import Item, RdbSource
from toolkit.server.connect import Server
from toolkit.server.glob import glob_matcher
from toolkit.text import plural

SKIP, REPLACE, FAIL = "skip", "replace", "fail"
ON_CONFLICT = (SKIP, REPLACE, FAIL)
KEEP, NONE, SHIFT = "keep", "none", "shift"
TTL_MODES = (KEEP, NONE, SHIFT)
# Why a key of the backup is not written (the plan's and the report's reasons).
NOT_SELECTED = "not_selected"
EXPIRED = "expired"
EMPTY = "empty"
LEFT_OUT = "left_out"
CONFLICT = "conflict"
REASONS = (NOT_SELECTED, EXPIRED, EMPTY, LEFT_OUT, CONFLICT)
CONFLICTS_LISTED = 5
EXISTS_BATCH = 1000


@dataclass(frozen=True)
class Selection:
    """What was asked: the selectors, the conflict policy and the TTL mode."""

    matches: tuple[bytes, ...] = ()
    dbs: frozenset[int] | None = None
    types: frozenset[str] | None = None
    keys: KeyList | None = None
    on_conflict: str | None = None  # as given; see conflict_mode
    ttl: str = KEEP

    @property
    def selects(self) -> bool:
        """Some keys of the backup may be left out on purpose."""
        return (
            bool(self.matches)
            or self.dbs is not None
            or self.types is not None
            or (self.keys is not None)
        )

    @property
    def conflict_mode(self) -> str | None:
        """``--on-conflict``, or ``fail`` for a selection that does not say (only selected
        keys can conflict); None: the whole-backup rule (a target db that holds keys refuses
        the restore, unless --replace)."""
        return self.on_conflict or (FAIL if self.selects else None)

    @property
    def by_key(self) -> bool:
        """The target's keys are checked one by one (rather than per db)."""
        return self.conflict_mode in (SKIP, FAIL)

    @property
    def active(self) -> bool:
        return self.selects or self.on_conflict is not None or self.ttl != KEEP

    def describe(self) -> list[str]:
        """The selectors, as options (escaped for a terminal)."""
        out = [f"--match '{printable(p)}'" for p in self.matches]
        out += [f"--db {db}" for db in sorted(self.dbs or ())]
        out += [f"--type {t}" for t in sorted(self.types or ())]
        if self.keys is not None:
            only = f" --only {','.join(self.keys.only)}" if self.keys.kind == "diff" else ""
            out.append(f"--keys-from {printable(self.keys.path)}{only}")
        return out


class Picker:
    """The decision about one key of the backup, the same in the plan, the load and the
    verification. :meth:`decide` sets the key's expiry as ``--ttl`` says."""

    def __init__(self, selection: Selection, backup_ms: int | None) -> None:
        self.selection = selection
        self.backup_ms = backup_ms
        self.base_ms = int(time.time() * 1000)  # --ttl shift counts from here (load start)
        self.skip: dict[int, set[bytes]] = {}  # keys the target has (--on-conflict skip)
        self._match = [glob_matcher(p) for p in selection.matches]

    def selected(self, item: Item) -> bool:
        s = self.selection
        if s.dbs is not None and item.db not in s.dbs:
            return False
        if s.types is not None and item.type_name not in s.types:
            return False
        if self._match and not any(m(item.key) for m in self._match):
            return False
        return s.keys is None or s.keys.has(item.db, bytes(item.key))

    def decide(self, item: Item) -> str | None:
        """Why ``item`` is not written (a reason of REASONS), or None: it is."""
        if not self.selected(item):
            return NOT_SELECTED
        expire = item.expire_ms
        ttl = self.selection.ttl
        if expire is not None and ttl != KEEP:
            assert self.backup_ms is not None
            if expire <= self.backup_ms:
                return EXPIRED
            item.expire_ms = None if ttl == NONE else self.base_ms + expire - self.backup_ms
        skip = self.skip.get(item.db)
        if skip and bytes(item.key) in skip:
            return CONFLICT
        return None

    def __call__(self, item: Item, skipped: Counter[str], expired: Counter[int]) -> bool:
        """The load's hook: True to write ``item``; else the reason is counted."""
        why = self.decide(item)
        if why is None:
            return True
        if why == EXPIRED:
            expired[item.db] += 1
        else:
            skipped[why] += 1
        return False


@dataclass
class SelectionPlan:
    """What the preflight found for a selective restore."""

    selection: Selection
    picker: Picker
    backup_ms: int | None  # the backup's own time (for --ttl shift)
    backup_time_source: str | None
    to_write: Counter[str] = field(default_factory=Counter)  # keys per type
    skipped: Counter[str] = field(default_factory=Counter)  # keys per reason
    existing: int = 0  # selected keys the target has already
    existing_first: list[tuple[int, bytes]] = field(default_factory=list)
    names_listed: int = 0  # --keys-from names
    names_found: int = 0  # of those, found in the backup
    notes: list[str] = field(default_factory=list)

    @property
    def keys_to_write(self) -> int:
        return sum(self.to_write.values())


def backup_time(result: CheckResult, converted: bool) -> tuple[int | None, str | None]:
    """The backup's own time in ms and where it comes from: the last ms of the second its
    aux ctime names (ctime is in whole seconds). So a key that expired in that second counts
    as expired, and a shifted TTL is at most a second shorter than it was, never longer."""
    ctime = str(result.aux.get("ctime", "")).strip()
    if not ctime.isdigit():
        return None, None
    end = int(ctime) * 1000 + 999
    if converted:
        return end, "aux ctime of the RDB the restore drill saved from the AOF, end of its second"
    return end, "aux ctime of the backup, end of its second"


def plan_selection(
    plan: Plan,
    result: CheckResult,
    source: RdbSource,
    selection: Selection,
    url: Server,
    *,
    converted: bool = False,
) -> SelectionPlan:
    """Walk the backup as the load will, count, and ask the target which selected keys it
    has; per-db counts go into ``plan.dbs``, a ``--on-conflict fail`` with conflicts into
    its blockers. Raises redis errors to the caller."""
    backup_ms, time_source = backup_time(result, converted)
    picker = Picker(selection, backup_ms)
    out = SelectionPlan(selection, picker, backup_ms, time_source)
    if selection.ttl != KEEP and backup_ms is None:
        plan.blockers.append(
            f"--ttl {selection.ttl} needs the backup's own time, and the backup has no aux "
            "ctime field: use --ttl keep"
        )
        return out
    dbs: dict[int, DbPlan] = {}
    before = plan.target.keys_by_db()
    ttl_types = field_ttl_types(source.magic)
    found: set[tuple[int, bytes]] = set()
    seen_types: set[str] = set()
    mode = selection.conflict_mode
    with _Exists(plan, url) as exists:
        for item in source.items():
            d = dbs.get(item.db)
            if d is None:
                d = dbs[item.db] = DbPlan(target_before=before.get(item.db, 0))
            d.keys += 1
            seen_types.add(item.type_name)
            why = _reason(plan, picker, item, ttl_types, source)
            if why is not None:
                _count(d, why)
                out.skipped[why] += 1
                continue
            if selection.keys is not None:
                found.add((item.db if selection.keys.kind == "diff" else -1, bytes(item.key)))
            if mode is None:
                out.to_write[item.type_name] += 1
                continue
            for db, key, type_name, there in exists.add(item):
                _existing(out, dbs[db], db, key, type_name, there)
        for db, key, type_name, there in exists.flush():
            _existing(out, dbs[db], db, key, type_name, there)
    plan.dbs.update(dbs)
    _absent(out, "--db", sorted((selection.dbs or set()) - set(dbs)), "db")
    _absent(out, "--type", sorted((selection.types or set()) - seen_types), "key of type")
    if selection.keys is not None:
        out.names_listed, out.names_found = selection.keys.count, len(found)
        _key_list_notes(out, selection.keys)
    if mode == FAIL and out.existing:
        first = ", ".join(f"db {db}: '{printable(k)}'" for db, k in out.existing_first)
        more = out.existing - len(out.existing_first)
        plan.blockers.append(
            f"{plural(out.existing, 'selected key')} {'is' if out.existing == 1 else 'are'} "
            f"on the target already ({first}"
            f"{f' and {more} more' if more else ''}); nothing was written. Pass --on-conflict "
            "skip to leave them as they are, or --on-conflict replace to overwrite them"
        )
    return out


def _reason(
    plan: Plan, picker: Picker, item: Item, ttl_types: frozenset[int], source: RdbSource
) -> str | None:
    """The load's own order: left out, the picker, empty, expired by now."""
    if item.db in plan.skip_dbs or item.type_name in plan.skip_types:
        return LEFT_OUT
    why = picker.decide(item)
    if why is not None:
        return why
    if is_empty_collection(item.type_id, item.elements):
        return EMPTY
    now = time.time() * 1000
    if item.expire_ms is not None and item.expire_ms <= now:
        return EXPIRED
    if item.type_id in ttl_types and all_fields_expired(source.decode(item)[0], now):
        return EXPIRED
    return None


def _count(d: DbPlan, why: str) -> None:
    if why == LEFT_OUT:
        d.left_out += 1
    elif why == NOT_SELECTED:
        d.not_selected += 1
    elif why == EXPIRED:
        d.expired += 1
    elif why == EMPTY:
        d.empty += 1
    else:
        d.conflicts += 1


def _existing(
    out: SelectionPlan, d: DbPlan, db: int, key: bytes, type_name: str, there: bool
) -> None:
    if there:
        out.existing += 1
        if len(out.existing_first) < CONFLICTS_LISTED:
            out.existing_first.append((db, key))
        if out.selection.conflict_mode == SKIP:
            out.picker.skip.setdefault(db, set()).add(key)
            out.skipped[CONFLICT] += 1
            d.conflicts += 1
            return
    out.to_write[type_name] += 1


def _key_list_notes(out: SelectionPlan, keys: KeyList) -> None:
    missing = out.names_listed - out.names_found
    if missing:
        out.notes.append(
            f"{plural(missing, 'name')} of --keys-from {printable(keys.path)} "
            f"{'is' if missing == 1 else 'are'} not in the backup"
            f"{' (in the db the diff names)' if keys.kind == 'diff' else ''}: nothing to restore "
            "for them"
        )


def _absent(out: SelectionPlan, option: str, missing: list[int] | list[str], what: str) -> None:
    for value in missing:
        out.notes.append(f"{option} {printable(str(value))}: the backup has no {what} {value}")


class _Exists:
    """Pipelined EXISTS of the keys to write, in batches: per db on one server, routed by
    slot on a cluster."""

    def __init__(self, plan: Plan, url: Server) -> None:
        self.url = url
        self.cluster = plan.target.cluster_enabled
        self.rc = None
        self.clients: dict[int, redis.Redis] = {}
        self.batch: list[tuple[int, bytes, str]] = []

    def __enter__(self) -> _Exists:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.rc is not None:
            self.rc.close()
        for c in self.clients.values():
            c.close()

    def add(self, item: Item) -> Iterator[tuple[int, bytes, str, bool]]:
        self.batch.append((item.db, bytes(item.key), item.type_name))
        if len(self.batch) >= EXISTS_BATCH:
            yield from self.flush()

    def flush(self) -> Iterator[tuple[int, bytes, str, bool]]:
        batch, self.batch = self.batch, []
        by_db: dict[int, list[tuple[int, bytes, str]]] = {}
        for entry in batch:
            by_db.setdefault(entry[0], []).append(entry)
        for db, entries in by_db.items():
            pipe = self._pipeline(db)
            for _db, key, _t in entries:
                pipe.exists(key)
            for (db_, key, type_name), n in zip(entries, pipe.execute(), strict=True):
                yield db_, key, type_name, bool(n)

    def _pipeline(self, db: int) -> redis.client.Pipeline:
        if self.cluster:
            if self.rc is None:
                self.rc = self.url.cluster()
            return self.rc.pipeline()  # type: ignore[no-any-return]
        client = self.clients.get(db)
        if client is None:
            client = self.clients[db] = self.url.client(db)
        return client.pipeline(transaction=False)
