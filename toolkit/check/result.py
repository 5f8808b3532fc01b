"""What a check finds, whatever the backup's format: the verdict, problems, inventory."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parsers.rdb.records import Checksum
from toolkit.check.inventory import Inventory
from toolkit.check.problems import ERROR, WARNING, Problem

if TYPE_CHECKING:
    from toolkit.check.keyspace import Keyspace


@dataclass
class AofFile:
    """One file of an AOF: its place in the manifest and what reading it found."""

    name: str
    role: str  # single, base, incr, history
    size: int
    seq: int | None = None
    format: str = "resp"  # resp, rdb, rdb+resp (an RDB preamble, then commands)
    commands: int = 0
    checked: bool = True  # history files are listed, not read
    start_offset: int | None = None  # manifest startoffset/endoffset (Redis 8)
    end_offset: int | None = None


@dataclass
class AofDetails:
    layout: str  # single or multi-part
    manifest: str | None = None
    files: list[AofFile] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)
    commands_by_db: Counter[int] = field(default_factory=Counter)
    first_ts: int | None = None
    last_ts: int | None = None
    unknown_commands: Counter[str] = field(default_factory=Counter)
    approximate: bool = False
    command_table: str | None = None  # the server whose command table judged the commands
    command_table_why: str = ""
    modules: list[str] = field(default_factory=list)  # --module: what the loader has


@dataclass
class AofReplay:
    """The keyspace an AOF check rebuilt, kept for restore's comparison: the model, and the
    (db, key) pairs that commands the model does not apply named."""

    keyspace: Keyspace
    touched: set[tuple[int, bytes]] = field(default_factory=set)


@dataclass(frozen=True)
class Partial:
    """What the check of an invalid backup read before the damage: the inventory of those keys,
    the last of them (db, name, offset of its record) and the offset of the damage."""

    inventory: Inventory
    last_key: tuple[int, bytes, int] | None
    damage_at: int | None


@dataclass
class CheckResult:
    path: str  # the local file read (for a compressed, piped or remote backup: its copy)
    format: str  # rdb or aof
    size: int
    checked_at_ms: int
    quick: bool = False  # --quick: only the framing was read, values were not checked
    magic: str | None = None
    rdb_version: int | None = None
    min_release: str | None = None
    checksum: Checksum | None = None
    problems: list[Problem] = field(default_factory=list)
    aux: dict[str, str] = field(default_factory=dict)
    inventory: Inventory | None = None
    aof: AofDetails | None = None
    notes: list[str] = field(default_factory=list)  # which file was chosen, and why
    replay: AofReplay | None = None  # AOF only: the rebuilt keyspace (not in the report)
    partial: Partial | None = None  # invalid: what was read before the damage
    # RDB: slot -> (keys, expires) the file's own slot info declares (cluster nodes' saves)
    slot_info: dict[int, tuple[int, int]] = field(default_factory=dict)
    shown: str | None = None  # the backup as the user named it, when ``path`` is its copy

    @property
    def name(self) -> str:
        """The backup as reports name it."""
        return self.shown or self.path

    @property
    def valid(self) -> bool:
        return not any(p.severity == ERROR for p in self.problems)

    @property
    def verdict(self) -> str:
        """valid, invalid, or (--quick, no errors found) structure not validated."""
        if not self.valid:
            return "invalid"
        return "structure not validated" if self.quick else "valid"

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]
