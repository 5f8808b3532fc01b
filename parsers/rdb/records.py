"""What the RDB walker reports besides keys: small frozen records of raw facts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class KeyEntry(NamedTuple):
    """One key as the walker yields it (a plain tuple on the hot path; this names the fields).

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


@dataclass(frozen=True, slots=True)
class Function:
    """A function library: FUNCTION2 holds its code; pre-GA 7.0 files also a name."""

    code: bytes
    offset: int
    name: bytes | None = None
    pre_ga: bool = False


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
