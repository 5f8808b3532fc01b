"""The verdict on a cluster backup set: each shard checked as any backup is, then the set as a
whole.

- slot coverage: every slot 0-16383 owned by exactly one shard of the set (the owner's slots in
  the shard's own node table); missing and doubled slots as ranges, missing ones named after
  the node the set's other node tables give them to;
- strays: every key hashed to its slot (Redis's keyHashSlot) and looked up in the slots of the
  shard that holds it: a key of a slot its shard neither owns nor imports is unreachable in the
  cluster;
- the RDB's own slot info (Redis 7.4+ SLOT_INFO records, Valkey's ``slot-info`` aux fields)
  against the keys counted per slot;
- keys outside db 0 (a cluster node refuses to start with them);
- one inventory for the whole set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from parsers.cluster.slots import SLOTS, SlotCounts, key_slot, ranges, ranges_text
from parsers.errors import FormatError, format_key
from parsers.rdb.walker import RdbWalker
from toolkit.check.backup import check_backup
from toolkit.check.cluster.layout import ClusterSet, Shard, read_set
from toolkit.check.inventory import Inventory, merged
from toolkit.check.problems import ERROR, WARNING, Problem
from toolkit.check.result import CheckResult
from toolkit.errors import BackupIOError
from toolkit.mapped import mapped

STRAY_EXAMPLES = 5


@dataclass
class ShardCheck:
    """One shard: its check, its keys per slot, the keys found outside its slots."""

    shard: Shard
    result: CheckResult | None = None
    error: str | None = None  # why it could not be checked
    keys_per_slot: list[int] | None = None
    strays: int = 0
    stray_examples: list[tuple[bytes, int]] = field(default_factory=list)  # (key, slot)
    slot_info: dict[int, tuple[int, int]] | None = None  # slot -> (keys, expires), if any

    @property
    def name(self) -> str:
        return self.shard.name

    @property
    def slot_info_mismatches(self) -> list[int]:
        """The slots where the file's own slot info and the keys counted disagree."""
        declared, counted = self.slot_info, self.keys_per_slot
        if declared is None or counted is None:
            return []
        return [
            slot
            for slot in range(SLOTS)
            if declared.get(slot, (0, 0))[0] != counted[slot]
            and (slot in declared or counted[slot])
        ]

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "missing" if self.shard.backup is None else "unreadable"
        return self.result.verdict


@dataclass
class ClusterCheck:
    path: str
    layout: str
    checked_at_ms: int
    shards: list[ShardCheck]
    missing: list[tuple[int, int]]  # slot ranges no shard of the set owns
    missing_owners: list[tuple[tuple[int, int], str]]  # (range, node) from the node tables
    doubled: list[tuple[tuple[int, int], list[str]]]  # (range, shards owning it)
    problems: list[Problem]
    inventory: Inventory

    @property
    def valid(self) -> bool:
        return not any(p.severity == ERROR for p in self.problems)

    @property
    def verdict(self) -> str:
        return "valid" if self.valid else "invalid"

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def strays(self) -> int:
        return sum(s.strays for s in self.shards)


def check_cluster(path: Path, *, top: int = 10, now_ms: int | None = None) -> ClusterCheck:
    """Check the cluster backup set at ``path`` (layout.py). Raises BackupIOError when ``path``
    holds no set."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    found = read_set(path)
    shards = [_check_shard(s, top, now_ms) for s in found.shards]
    owners: list[list[str]] = [[] for _ in range(SLOTS)]
    for s in shards:
        if s.result is not None:
            for slot in s.shard.slots:
                owners[slot].append(s.name)
    missing = ranges(slot for slot in range(SLOTS) if not owners[slot])
    doubled = _doubled(owners)
    inventory = merged([s.result.inventory for s in shards if s.result and s.result.inventory], top)
    check = ClusterCheck(
        str(path),
        found.layout,
        now_ms,
        shards,
        missing,
        _missing_owners(found, missing),
        doubled,
        [],
        inventory,
    )
    check.problems = _problems(check)
    return check


def _check_shard(shard: Shard, top: int, now_ms: int) -> ShardCheck:
    out = ShardCheck(shard)
    if shard.backup is None or shard.problem is not None:
        out.error = shard.problem or "no backup"
        return out
    counts = SlotCounts()
    try:
        out.result = check_backup(shard.backup, top=top, now_ms=now_ms, slots=counts)
    except BackupIOError as e:
        out.error = str(e)
        return out
    out.result.notes[:0] = shard.notes
    if out.result.format == "aof" and out.result.replay is not None:
        for _db, key, _type, expire, _n in out.result.replay.keyspace.entries():
            counts.add(key, expire is not None)
    out.keys_per_slot = counts.keys
    # Keys of a slot the node is importing (a resharding under way) are where Redis accepts them.
    owned = shard.slots | (set(shard.node.importing) if shard.node is not None else set())
    out.strays = sum(n for slot, n in enumerate(out.keys_per_slot) if n and slot not in owned)
    if out.strays:
        out.stray_examples = _stray_examples(out, owned)
    out.slot_info = out.result.slot_info or None
    return out


def _stray_examples(check: ShardCheck, owned: set[int]) -> list[tuple[bytes, int]]:
    """The first keys (in file order) of ``check``'s backup whose slot it does not own."""
    found: list[tuple[bytes, int]] = []
    want = min(STRAY_EXAMPLES, check.strays)
    result = check.result
    if result is not None and result.replay is not None:
        for _db, key, _t, _e, _n in result.replay.keyspace.entries():
            slot = key_slot(key)
            if slot not in owned:
                found.append((key, slot))
                if len(found) >= want:
                    break
        return found
    assert check.shard.backup is not None
    try:
        with mapped(check.shard.backup) as mm:
            if mm is None:
                return found
            walker = RdbWalker(mm)
            for entry in walker.walk():
                key = bytes(walker.key_at(entry.key_offset))
                slot = key_slot(key)
                if slot not in owned:
                    found.append((key, slot))
                    if len(found) >= want:
                        break
    except (FormatError, OSError):
        pass  # the shard's own check reports the damage; the examples end there
    return found


def _doubled(owners: list[list[str]]) -> list[tuple[tuple[int, int], list[str]]]:
    out: list[tuple[tuple[int, int], list[str]]] = []
    for slot, names in enumerate(owners):
        if len(names) < 2:
            continue
        if out and out[-1][0][1] == slot - 1 and out[-1][1] == names:
            out[-1] = ((out[-1][0][0], slot), names)
        else:
            out.append(((slot, slot), names))
    return out


def _missing_owners(
    found: ClusterSet, missing: list[tuple[int, int]]
) -> list[tuple[tuple[int, int], str]]:
    """For each missing range, the node the set's node tables give it to (when they agree)."""
    out = []
    for first, last in missing:
        named = set()
        for table in found.tables:
            for node in table.nodes:
                if node.is_master and first in node.slots and last in node.slots:
                    named.add(f"{node.address} ({node.id[:8]})")
        if len(named) == 1:
            out.append(((first, last), named.pop()))
    return out


def _problems(check: ClusterCheck) -> list[Problem]:
    out: list[Problem] = []
    for s in check.shards:
        if s.result is None:
            out.append(Problem(ERROR, "shard_unreadable", None, f"shard {s.name}: {s.error}"))
        elif not s.result.valid:
            first = next(p for p in s.result.problems if p.severity == ERROR)
            out.append(
                Problem(ERROR, "shard_invalid", None, f"shard {s.name}: invalid ({first.message})")
            )
    if check.missing:
        owners = dict(check.missing_owners)
        named = [
            ranges_text([r]) + (f" (node {owners[r]})" if r in owners else "")
            for r in check.missing
        ]
        count = sum(b - a + 1 for a, b in check.missing)
        out.append(
            Problem(
                ERROR,
                "missing_slots",
                None,
                f"{count:,} slot(s) owned by no shard of the set: {', '.join(named)}",
            )
        )
    for run, names in check.doubled:
        out.append(
            Problem(
                ERROR,
                "doubled_slots",
                None,
                f"slot(s) {ranges_text([run])} owned by several shards: {', '.join(names)}",
            )
        )
    for s in check.shards:
        if s.strays:
            examples = ", ".join(f"{format_key(k)} (slot {slot})" for k, slot in s.stray_examples)
            out.append(
                Problem(
                    ERROR,
                    "stray_keys",
                    None,
                    f"shard {s.name}: {s.strays} key(s) in slots it does not own, unreachable "
                    f"in the cluster: {examples}",
                )
            )
        out.extend(_slot_info_problems(s))
        inv = s.result.inventory if s.result else None
        outside = [db for db, stats in (inv.databases if inv else {}).items() if db and stats.keys]
        if outside:
            out.append(
                Problem(
                    ERROR,
                    "keys_outside_db0",
                    None,
                    f"shard {s.name}: keys in db {', '.join(map(str, outside))}: a cluster node "
                    "refuses to start with keys outside db 0",
                )
            )
    return out


def _slot_info_problems(s: ShardCheck) -> list[Problem]:
    wrong = s.slot_info_mismatches
    if not wrong or s.slot_info is None or s.keys_per_slot is None:
        return []
    first = wrong[0]
    said = s.slot_info.get(first, (0, 0))[0]
    return [
        Problem(
            WARNING,
            "slot_info_mismatch",
            None,
            f"shard {s.name}: the file's slot info disagrees with its keys in {len(wrong)} "
            f"slot(s) ({ranges_text(ranges(wrong)[:5])}); slot {first}: it says {said} key(s), "
            f"the file holds {s.keys_per_slot[first]}",
        )
    ]
