"""Compare a backup's inventory with a live server's keyspace (computing only; no rendering).

The backup side is the :class:`~toolkit.check.result.CheckResult` inventory, and optionally the
backup's key names (:func:`backup_keys`): their per-db digest, the TTL of every key that has
one, and the keys touched by commands the AOF model does not apply. With the key names the
comparison is exact: a key whose TTL ran out before the load began must be gone, one that
outlives the read must be there, and one whose TTL ran out in between (or that an unmodelled
command touched) is taken as the server has it, since only the server can say. Without them
the inventory's ``expired_at_check`` and the server's ``rdb_last_load_keys_expired`` are
the allowance. Every allowance made is listed with where its number comes from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from parsers.cluster.slots import key_slot
from parsers.printable import printable
from toolkit.check.inventory import DbStats
from toolkit.check.result import CheckResult
from toolkit.columns import count_true, fixed_bytes
from toolkit.server.read import LiveDb, LiveKeyspace, MetKeys, key_hash
from toolkit.stage.keysummary import summarize
from toolkit.stage.ttls import Gone, Ttls
from toolkit.text import plural

# -- the backup's key names ----------------------------------------------------------------


@dataclass
class DbKeys:
    """The keys of one database of a backup, as Redis would load them."""

    count: int = 0  # keys loaded (empty collections left out, expired keys in)
    digest: int = 0  # XOR of key_hash over those keys
    empty_by_type: Counter[str] = field(default_factory=Counter)  # skipped on load
    empty_expires: int = 0  # of those, how many had a TTL
    ttls: Ttls = field(default_factory=Ttls)  # of every key with one
    # key hash -> (type in the backup or None, has a TTL): touched by unmodelled commands
    undecided: dict[int, tuple[str | None, bool]] = field(default_factory=dict)

    def add(self, key: bytes, type_name: str, expire_ms: int | None) -> None:
        h = key_hash(key)
        self.count += 1
        self.digest ^= h
        if expire_ms is not None:
            self.ttls.add(h, type_name, expire_ms, key_slot(key))


@dataclass
class BackupKeys:
    """Per db, the key names of a backup (as digests), for an exact comparison."""

    databases: dict[int, DbKeys] = field(default_factory=dict)
    undecided_commands: Counter[str] = field(default_factory=Counter)

    def db(self, n: int) -> DbKeys:
        d = self.databases.get(n)
        if d is None:
            d = self.databases[n] = DbKeys()
        return d

    def undecided(self) -> dict[int, set[int]]:
        """The keys touched by a command the model does not apply, per db: what a read of
        the server watches by name. (Whether a key whose TTL ran out meanwhile is there, a
        snapshot tells by its cut, a SCAN read by the keys it met: :class:`MetKeys`.)"""
        return {n: set(d.undecided) for n, d in self.databases.items() if d.undecided}


def backup_keys(result: CheckResult) -> BackupKeys:
    """Read the key names of the backup ``result`` was made from (RDB or AOF).

    Raises FormatError (or OSError) where the backup is damaged or unreadable.
    """
    if result.format == "rdb":
        return rdb_keys([Path(result.path)])
    return _aof_keys(result)


def rdb_keys(paths: list[Path]) -> BackupKeys:
    """The key names of RDB files, together (a cluster's shards). Raises FormatError or
    OSError where one is damaged or unreadable."""
    out = BackupKeys()
    summary = summarize(paths, ttls=True)
    for n, s in summary.databases.items():
        d = out.db(n)
        d.count, d.digest = s.keys, s.digest
        d.empty_by_type, d.empty_expires = s.empty_by_type, s.empty_expires
        if s.ttls is not None:
            d.ttls = s.ttls
    return out


def _aof_keys(result: CheckResult) -> BackupKeys:
    """The keys the AOF check's keyspace model rebuilt, noting those that commands the
    model does not apply touched (the check lists those commands)."""
    assert result.aof is not None and result.replay is not None
    ks, touched = result.replay.keyspace, set(result.replay.touched)
    out = BackupKeys(undecided_commands=Counter(result.aof.unknown_commands))
    for db, key, type_name, expire, _n in ks.entries():
        out.db(db).add(key, type_name, expire)
        if (db, key) in touched:
            touched.discard((db, key))
            out.db(db).undecided[key_hash(key)] = (type_name, expire is not None)
    for db, key in touched:  # not in the model: the server may still have them
        out.db(db).undecided[key_hash(key)] = (None, False)
    for db in result.inventory.databases if result.inventory else ():
        out.db(db)
    return out


# -- the comparison --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    """One difference between what the backup holds and what the server loaded."""

    db: int | None
    what: str  # keys, expires, type <name>, key names, functions, expired on load
    expected: object
    found: object
    sentence: str


@dataclass(frozen=True)
class Allowance:
    """Keys the comparison allowed to be missing (or took as the server has them), and why."""

    db: int | None
    kind: str  # expired_before_load, expired_during_drill, ttl_running_out, empty, undecided,
    # expired_at_check, server_expired
    keys: int
    source: str
    sentence: str


@dataclass
class Comparison:
    mismatches: list[Mismatch] = field(default_factory=list)
    allowances: list[Allowance] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digest_compared: bool = False

    @property
    def verified(self) -> bool:
        return not self.mismatches


@dataclass
class _Expect:
    """Expected counts of one db as ranges: value, minus what may be missing."""

    keys: int = 0
    keys_slack: int = 0
    expires: int = 0
    expires_slack: int = 0  # may be this many fewer
    expires_extra: int = 0  # may be this many more
    by_type: Counter[str] = field(default_factory=Counter)
    type_slack: Counter[str] = field(default_factory=Counter)
    digest: int | None = None


def compare(
    result: CheckResult,
    live: LiveKeyspace,
    *,
    keys: BackupKeys | None = None,
    since_ms: int | None = None,
    watched_until_ms: int | None = None,
    loaded_rdb: bool | None = None,
) -> Comparison:
    """Compare ``result``'s inventory with ``live``; an empty ``mismatches`` means verified.

    ``keys`` (from :func:`backup_keys`) makes it exact: ``since_ms`` is when the load began
    (keys whose TTL ran out before are gone), ``watched_until_ms`` the end of the window of
    TTLs whose keys ``live`` was asked to watch (``BackupKeys.watch``). ``loaded_rdb`` says
    the server loaded an RDB (it then drops expired keys and counts them); default: the
    backup is an RDB.
    """
    inv = result.inventory
    out = Comparison()
    if inv is None:
        out.mismatches.append(
            Mismatch(None, "inventory", None, None, "the backup has no inventory to compare")
        )
        return out
    if loaded_rdb is None:
        loaded_rdb = result.format == "rdb"
    dbs = sorted(set(inv.databases) | set(live.databases))
    expect = {db: _base(inv.databases.get(db)) for db in dbs}
    if keys is not None and since_ms is not None:
        predicted = _exact(out, expect, keys, live, since_ms, watched_until_ms or since_ms)
        if loaded_rdb and live.keys_expired is not None:
            _check_server_expired(out, live, predicted)
    else:
        _from_inventory(out, expect, inv.databases, live, loaded_rdb)
    for db in dbs:
        _compare_db(out, db, expect[db], live.databases.get(db, LiveDb()), live.via != "info")
    _compare_functions(out, inv.functions, live)
    if result.aof is not None and result.aof.approximate and out.mismatches:
        out.notes.append(
            "the AOF inventory is approximate (commands the model does not apply): "
            "a mismatch may be the model's, not the backup's"
        )
    return out


def _base(stats: DbStats | None) -> _Expect:
    if stats is None:
        return _Expect()
    return _Expect(keys=stats.keys, expires=stats.expires, by_type=Counter(stats.by_type))


def _exact(
    out: Comparison,
    expect: dict[int, _Expect],
    bk: BackupKeys,
    live: LiveKeyspace,
    since_ms: int,
    until_ms: int,
) -> tuple[int, int]:
    """Apply the backup's own TTLs, empties and undecided keys; return the range of keys the
    server should have dropped as expired while loading (low, high)."""
    before_total = during_total = 0
    out.digest_compared = True
    clock = live.time_ms
    for db, e in expect.items():
        d = bk.databases.get(db, DbKeys())
        lv = live.databases.get(db, LiveDb())
        empty = sum(d.empty_by_type.values())
        if empty:
            e.keys -= empty
            e.expires -= d.empty_expires
            e.by_type.subtract(d.empty_by_type)
            _allow(
                out,
                db,
                "empty",
                empty,
                "the backup",
                f"{plural(empty, 'empty collection')} in the backup, which Redis skips on load",
            )
        e.digest = d.digest
        seen = lv.met if lv.met is not None else lv.watched
        ttl = ttl_outcomes(
            d, seen, since_ms, until_ms, clock, cut_ms=live.cut_ms, slot_cuts=live.slot_cuts
        )
        gone = ttl.gone
        e.keys -= gone.keys
        e.expires -= gone.keys
        e.expires_extra += gone.keys  # SCAN skips them; kept in memory, INFO may still count them
        e.by_type.subtract(gone.by_type)
        e.digest ^= gone.digest
        before, during = ttl.gone_before_load, gone.keys - ttl.gone_before_load
        e.expires_slack += ttl.watched_in_read  # there at SCAN; may expire before INFO is read
        running = ttl.running_out.keys
        e.keys_slack += running
        e.expires_slack += running
        e.type_slack.update(ttl.running_out.by_type)
        if running:
            e.digest = None
            _allow(
                out,
                db,
                "ttl_running_out",
                running,
                "the backup's TTLs",
                f"{plural(running, 'key')} whose TTL ran out while the server was read "
                "(may or may not be there; key names not compared)",
            )
        if before:
            _allow(
                out,
                db,
                "expired_before_load",
                before,
                "the backup's TTLs",
                f"{plural(before, 'key')} had expired before the load began, by the TTLs in "
                "the backup: not expected",
            )
        if during:
            _allow(
                out,
                db,
                "expired_during_drill",
                during,
                "the backup's TTLs",
                f"{plural(during, 'key')} whose TTL in the backup ran out during the drill "
                "(after the load began): the server no longer has them",
            )
        before_total += before
        during_total += during
        undecided = 0
        for h, (t, has_ttl) in d.undecided.items():
            undecided += 1
            if t is not None:
                e.keys -= 1
                e.by_type[t] -= 1
                e.expires -= has_ttl
                if e.digest is not None:
                    e.digest ^= h
            seen = lv.watched.get(h)
            if seen is not None:
                e.keys += 1
                e.by_type[seen] += 1
                e.expires_extra += 1
                if e.digest is not None:
                    e.digest ^= h
        if undecided:
            commands = ", ".join(
                printable(c.encode("latin-1")) for c in sorted(bk.undecided_commands)
            )
            _allow(
                out,
                db,
                "undecided",
                undecided,
                "the server",
                f"{plural(undecided, 'key')} touched by commands the AOF model does not apply "
                f"({commands}): taken as the server has them",
            )
    return before_total, before_total + during_total


@dataclass
class TtlOutcomes:
    """What a backup's TTLs of one db say of a server that loaded it (see
    :func:`ttl_outcomes`)."""

    gone: Gone  # no longer on the server
    gone_before_load: int  # of those, how many had run out before the load began
    watched_in_read: int  # TTL ran out while the server was read, and the read found them
    running_out: Gone  # ran out after the read, before the server's clock: there or not


def ttl_outcomes(
    d: DbKeys,
    seen: Collection[int] | MetKeys,
    since_ms: int,
    until_ms: int,
    clock_ms: int,
    *,
    cut_ms: int | None = None,
    slot_cuts: Sequence[int | None] | None = None,
) -> TtlOutcomes:
    """Judge the keys of ``d`` that have a TTL (but those touched by unmodelled commands,
    ``d.undecided``, which the caller takes as the server has them) against a server that
    began its load at ``since_ms``, was read until ``until_ms`` and whose clock said
    ``clock_ms`` then. Whether a key whose TTL ran out in (since, until] is still there is
    what the read found: ``seen``, the keys a SCAN read counted (:class:`MetKeys`, or any
    collection of name hashes);
    for a snapshot the server took at ``cut_ms`` by its clock, whether the TTL runs out after
    ``cut_ms`` (the snapshot's own keys are cut there too: nothing needs watching); for a
    cluster, ``slot_cuts``: per slot, the cut of the primary that holds it (None: that one was
    read by SCAN, and ``seen`` says).

    - gone: the TTL ran out by ``since_ms``, or by ``until_ms`` and the key is not there;
    - watched in the read: the TTL ran out in (since, until] and the key is there;
    - running out: the TTL ran out in (until, clock].
    """
    ms, hashes, slots = d.ttls.columns()
    if not len(ms):
        return TtlOutcomes(Gone(), 0, 0, Gone())
    decided = _not_in(hashes, d.undecided)
    if slot_cuts is not None:
        cuts = pc.take(pa.array(slot_cuts, pa.int64()), slots)
        there = pc.coalesce(pc.greater(ms, cuts), _found(hashes, seen))
    elif cut_ms is not None:
        there = pc.greater(ms, cut_ms)
    else:
        there = _found(hashes, seen)
    before = pc.and_(decided, pc.less_equal(ms, since_ms))
    in_read = pc.and_(decided, pc.and_(pc.greater(ms, since_ms), pc.less_equal(ms, until_ms)))
    after = pc.and_(decided, pc.and_(pc.greater(ms, until_ms), pc.less_equal(ms, clock_ms)))
    return TtlOutcomes(
        gone=d.ttls.pick(pc.or_(before, pc.and_(in_read, pc.invert(there)))),
        gone_before_load=count_true(before),
        watched_in_read=count_true(pc.and_(in_read, there)),
        running_out=d.ttls.pick(after),
    )


def _found(hashes: pa.Array, seen: Collection[int] | MetKeys) -> pa.Array:
    """Whether each of ``hashes`` is one the read found."""
    if isinstance(seen, MetKeys):
        mask = seen.contains(fixed_bytes(hashes, 8))
        found = pa.Array.from_buffers(pa.uint8(), len(hashes), [None, pa.py_buffer(mask)])
        return pc.not_equal(found, 0)
    return pc.invert(_not_in(hashes, seen))


def _not_in(hashes: pa.Array, leave_out: Collection[int]) -> pa.Array:
    """Whether each of ``hashes`` is not one of ``leave_out``."""
    if not leave_out:
        return pc.equal(hashes, hashes)  # all true (no nulls)
    return pc.invert(pc.is_in(hashes, pa.array(list(leave_out), pa.uint64())))


def _check_server_expired(out: Comparison, live: LiveKeyspace, predicted: tuple[int, int]) -> None:
    found = live.keys_expired
    if found is None:
        return
    source = live.sources.get("keys_expired", "the server")
    lo, hi = predicted
    if lo <= found <= hi:
        if found:
            _allow(
                out,
                None,
                "server_expired",
                found,
                source,
                f"the server dropped {plural(found, 'expired key')} while loading ({source}), "
                "as the backup's TTLs predict",
            )
        return
    want = str(lo) if lo == hi else f"{lo}-{hi}"
    out.mismatches.append(
        Mismatch(
            None,
            "expired on load",
            want,
            found,
            f"the server dropped {found} expired keys while loading ({source}); the "
            f"backup's TTLs predict {want}",
        )
    )


def _from_inventory(
    out: Comparison,
    expect: dict[int, _Expect],
    databases: dict[int, DbStats],
    live: LiveKeyspace,
    loaded_rdb: bool,
) -> None:
    """Allow for expired keys and empty collections by the inventory's counts alone."""
    at_check = sum(s.expired_at_check for s in databases.values())
    server = live.keys_expired if loaded_rdb else None
    extra = missing = 0
    if server is not None and server != at_check:
        source = live.sources.get("keys_expired", "the server")
        extra, missing = max(0, server - at_check), max(0, at_check - server)
        _allow(
            out,
            None,
            "server_expired",
            server,
            source,
            f"the server dropped {plural(server, 'expired key')} while loading ({source}); "
            f"{at_check} had expired when the backup was checked: allowed for either",
        )
    for db, e in expect.items():
        stats = databases.get(db)
        if stats is None:
            continue
        gone = stats.expired_at_check
        more = min(extra, stats.expires - gone)  # expired after the check, before the load
        fewer = min(missing, gone)  # had expired at check time, yet were loaded
        e.keys += fewer - stats.empty - gone
        e.keys_slack += more + fewer
        e.expires += fewer - gone
        e.expires_slack += more + fewer + stats.empty
        e.expires_extra += gone  # expired, yet kept in memory until deleted: INFO counts them
        for t in e.by_type:
            e.type_slack[t] = min(e.by_type[t], stats.empty + gone + extra)
        if gone:
            _allow(
                out,
                db,
                "expired_at_check",
                gone,
                "inventory expired_at_check",
                f"{plural(gone, 'key')} had expired when the backup was checked "
                "(inventory expired_at_check): not expected",
            )
        if stats.empty:
            _allow(
                out,
                db,
                "empty",
                stats.empty,
                "inventory empty",
                f"{plural(stats.empty, 'empty collection')} in the backup, "
                "which Redis skips on load",
            )
    if server is not None and server == at_check and server:
        source = live.sources.get("keys_expired", "the server")
        _allow(
            out,
            None,
            "server_expired",
            server,
            source,
            f"the server dropped {plural(server, 'expired key')} while loading ({source}), as "
            "many as had expired at check time",
        )


def _compare_db(out: Comparison, db: int, e: _Expect, lv: LiveDb, types: bool = True) -> None:
    """Counts, and unless ``types`` is False (a server read by INFO alone), the per-type
    counts and the key-name digest."""
    _range(out, db, "keys", e.keys - e.keys_slack, e.keys, lv.scanned)
    _range(out, db, "expires", e.expires - e.expires_slack, e.expires + e.expires_extra, lv.expires)
    if not types:
        return
    for t in sorted(set(e.by_type) | set(lv.by_type)):
        want = e.by_type.get(t, 0)
        _range(out, db, f"type {t}", want - e.type_slack.get(t, 0), want, lv.by_type.get(t, 0))
    if e.digest is not None and out.digest_compared and e.digest != lv.digest:
        counts_ok = not any(m.db == db for m in out.mismatches)
        why = "the same counts, other key names" if counts_ok else "the key names differ too"
        out.mismatches.append(
            Mismatch(
                db,
                "key names",
                f"{e.digest:016x}",
                f"{lv.digest:016x}",
                f"db {db}: key-name digest {lv.digest:016x}, expected {e.digest:016x} ({why})",
            )
        )


def _range(out: Comparison, db: int, what: str, lo: int, hi: int, found: int) -> None:
    lo = max(lo, 0)
    if lo <= found <= hi:
        return
    want: object = hi if lo == hi else f"{lo}-{hi}"
    noun = "keys" if what == "keys" else "keys with a TTL" if what == "expires" else what + " keys"
    out.mismatches.append(
        Mismatch(db, what, want, found, f"db {db}: {found} {noun}, expected {want}")
    )


def _compare_functions(out: Comparison, expected: list[str], live: LiveKeyspace) -> None:
    want = sorted(set(expected))
    found = sorted(set(live.functions or []))
    if want != found:
        missing = [f for f in want if f not in found]
        extra = [f for f in found if f not in want]
        parts = []
        if missing:
            parts.append("missing " + ", ".join(map(printable, missing)))
        if extra:
            parts.append("unexpected " + ", ".join(map(printable, extra)))
        out.mismatches.append(
            Mismatch(None, "functions", want, found, "function libraries: " + "; ".join(parts))
        )


def _allow(out: Comparison, db: int | None, kind: str, keys: int, source: str, text: str) -> None:
    where = f"db {db}: " if db is not None else ""
    out.allowances.append(Allowance(db, kind, keys, source, where + text))
