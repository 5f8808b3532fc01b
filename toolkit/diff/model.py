"""What a diff found: the records compute.py fills and render.py prints (no IO here).

A is the "before" side, B the "after" side: a key only in A was *removed*, a key only in B
was *added*, a key in both whose type, size, TTL or value differs was *changed*.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from toolkit.diff.keylist import KeyList

# Per-key kinds of difference, in the order a report lists them.
REMOVED = "removed"  # only in A
EXPIRED = "expired"  # only in A, and its TTL had run out by B's time (not a loss)
ADDED = "added"  # only in B
TYPE = "type"  # TYPE differs
SIZE = "size"  # element count (collections) or byte length (strings) differs
TTL_GAINED = "ttl_gained"  # no TTL in A, a TTL in B
TTL_LOST = "ttl_lost"  # a TTL in A, none in B
TTL_CHANGED = "ttl_changed"  # both have a TTL, further apart than the tolerance
VALUE = "value"  # logical content differs (only with --values)
KINDS = (REMOVED, EXPIRED, ADDED, TYPE, SIZE, TTL_GAINED, TTL_LOST, TTL_CHANGED, VALUE)

# How deep a diff went: counts only (a side is a saved check report), key names and
# metadata (the default), or logical values too (--values).
COUNTS = "counts"
KEYS = "keys"
VALUES = "values"


@dataclass(frozen=True)
class KeyState:
    """One key as one side holds it."""

    type: str  # the name TYPE returns: string list set zset hash stream, or a module type
    expire_ms: int | None  # absolute unix time in ms; None: no TTL
    size: int | None  # elements of a collection, bytes of a string; None: unknown


@dataclass(frozen=True)
class KeyDiff:
    """One key that differs between A and B."""

    db: int
    key: bytes
    kinds: tuple[str, ...]  # from KINDS; REMOVED, EXPIRED and ADDED stand alone
    a: KeyState | None  # None when the key is only in B
    b: KeyState | None  # None when the key is only in A


@dataclass
class Counts:
    """Key counts of one db (or one type in one db) on both sides and how they differ.

    ``added``/``removed``/``expired``/``changed``/``unchanged`` are None when a side gave
    counts only. A key whose type changed counts as changed under B's type; an expired key
    counts under A's type and is not a difference.
    """

    a: int = 0
    b: int = 0
    added: int | None = 0
    removed: int | None = 0
    expired: int | None = 0
    changed: int | None = 0
    unchanged: int | None = 0


@dataclass
class DbDiff:
    keys: Counts = field(default_factory=Counts)
    expires_a: int = 0
    expires_b: int = 0
    by_type: dict[str, Counts] = field(default_factory=dict)


@dataclass
class PrefixDiff:
    """The keys of one key family (name up to the first --prefix-sep) that differ."""

    prefix: str  # display form (keys.display_key); "" for names without the separator
    removed: int = 0
    added: int = 0
    changed: int = 0
    raw: bytes = b""  # the prefix's bytes (what tables show, escaped)

    @property
    def total(self) -> int:
        return self.removed + self.added + self.changed


@dataclass
class Source:
    """One side of the diff: where it was read from and what that took."""

    kind: str  # "rdb", "aof", "report" (a saved check --json), "live", "cluster-set"
    name: str  # path, or the URL without its password
    time_ms: int | None = None  # when the data was current (see time_source)
    time_source: str | None = None  # "aux ctime", "file mtime", "server TIME", ...
    version: str | None = None  # redis-ver aux field or the server's redis_version
    keys_read: int = 0  # keys taken in (a live server: keys SCAN returned)
    seconds: float = 0.0  # how long reading took
    notes: list[str] = field(default_factory=list)  # e.g. "the server changed while read"
    via: str | None = None  # a live server: "snapshot" (its SYNC RDB) or "scan" (SCAN)


@dataclass
class DiffReport:
    a: Source
    b: Source
    level: str  # COUNTS, KEYS or VALUES
    databases: dict[int, DbDiff] = field(default_factory=dict)
    # The first --limit differing keys by (db, key) (all: None): compute.py gives a KeyList
    # (compact columns, a KeyDiff made per key read), a plain list works as well.
    keys: list[KeyDiff] | KeyList = field(default_factory=list)
    keys_differing: int = 0  # all added, removed and changed keys (expired ones not counted)
    keys_expired: int = 0  # keys only in A whose TTL had run out by B's time
    by_kind: dict[str, int] = field(default_factory=dict)  # kind -> keys with that kind
    prefixes: list[PrefixDiff] = field(default_factory=list)  # most differences first
    values_compared: int = 0  # keys whose values were compared (--values)
    values_reread: int = 0  # live keys read a second time before being called changed
    ttl_tolerance_ms: int = 0
    dbs_compared: list[int] | None = None  # --db; None: all
    match: str | None = None  # --match pattern applied to key names
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """True when no difference was found at the report's level (diff's exit code 0).

        Counts only: every db's key count, expires and per-type counts are equal. Otherwise:
        no key was added, removed or changed (keys that merely expired are no difference).
        """
        if self.level != COUNTS:
            return self.keys_differing == 0
        for db in self.databases.values():
            if db.keys.a != db.keys.b or db.expires_a != db.expires_b:
                return False
            if any(c.a != c.b for c in db.by_type.values()):
                return False
        return True
