"""What the RDB walker reports besides keys: small frozen records of raw facts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple


class KeyEntry(NamedTuple):
    """One key as the walker yields it (made without a call per field, on the hot path).

    ``key_offset`` is where the key's string starts (read it with ``RdbWalker.key_at``),
    ``value_offset`` where the value starts, ``end`` where the next record starts, so the
    serialized size is ``end - key_offset`` plus the type byte. ``expire_ms`` is absolute.
    """

    db: int
    type_id: int
    key_offset: int
    value_offset: int
    end: int
    elements: int
    expire_ms: int | None


@dataclass(frozen=True, slots=True)
class Aux:
    name: bytes
    value: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class ResizeHint:
    db: int
    keys: int
    expires: int
    offset: int


@dataclass(frozen=True, slots=True)
class SlotInfo:
    db: int
    slot: int
    keys: int
    expires: int
    offset: int


_LIBRARY_NAME = re.compile(rb"^#!\s*\S+\s+(?:.*?\s)?name=(\S+)")


def library_name(code: bytes) -> str:
    """The library name from a function library's shebang line (``#!lua name=mylib``)."""
    match = _LIBRARY_NAME.match(code)
    return match.group(1).decode("utf-8", "replace") if match else "?"


@dataclass(frozen=True, slots=True)
class Function:
    """A function library: FUNCTION2 holds its code; pre-GA 7.0 files also a name and engine."""

    code: bytes
    offset: int
    name: bytes | None = None
    pre_ga: bool = False
    engine: bytes | None = None

    @property
    def library(self) -> str:
        """The library's name, as FUNCTION LIST shows it."""
        return self.name.decode("utf-8", "replace") if self.name else library_name(self.code)


@dataclass(frozen=True, slots=True)
class ModuleAux:
    module: str
    when: int
    offset: int


@dataclass(frozen=True, slots=True)
class SlotImport:
    """Valkey 9 slot-import job state (opcode 243 under the VALKEY magic)."""

    job: bytes
    ranges: tuple[tuple[int, int], ...]
    offset: int


@dataclass(frozen=True, slots=True)
class Checksum:
    """``status``: ok, mismatch, disabled (stored zero) or absent (RDB < 5)."""

    status: str
    stored: int | None
    computed: int | None
    offset: int


@dataclass(slots=True)
class DbTally:
    """Counts for one db. ``counts`` is indexed by value type id; ``bytes`` is the size of
    all its key records (type byte, key and value)."""

    counts: list[int] = field(default_factory=lambda: [0] * 256)
    bytes: int = 0
    expires: int = 0
    expired: int = 0  # expiry at or before the ``now_ms`` given to the tally
    empty: int = 0  # empty collections (Redis skips them when loading)
    modules: dict[str, int] = field(default_factory=dict)  # module type name -> keys


@dataclass(slots=True)
class Tally:
    """What RdbWalker.tally counts. The top lists hold, smallest first (heaps), tuples of
    (metric, db, type id, key offset, value offset, end, other metric); metric is the bytes
    for ``by_bytes`` and the elements for ``by_elements``."""

    top: int
    dbs: dict[int, DbTally] = field(default_factory=dict)
    by_bytes: list[tuple[int, ...]] = field(default_factory=list)
    by_elements: list[tuple[int, ...]] = field(default_factory=list)

    def db(self, number: int) -> DbTally:
        found = self.dbs.get(number)
        if found is None:
            found = self.dbs[number] = DbTally()
        return found


@dataclass(frozen=True, slots=True)
class PartialTally:
    """What :meth:`RdbWalker.tally` had counted when it met damage: the counts of the keys read
    before it, and ``last_key``, the (db, offset of the type byte) of the last of them."""

    tally: Tally
    last_key: tuple[int, int] | None
