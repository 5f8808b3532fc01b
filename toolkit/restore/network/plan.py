"""The network restore's preflight: what would be written where, by which path, and why not.

Computed from the backup's check (inventory), its keys and libraries, and what the target
says about itself (target.py); nothing is written. Three kinds of findings:

- blockers: the target's state forbids the restore (a replica, a cluster without --cluster,
  keys already there without --replace, a function library of the same name). Never forced.
- losses: content of the backup this target cannot take (module values without the module or
  as commands, dbs above ``databases`` or other than 0 on a cluster, function libraries before
  7.0, hash field TTLs without HPEXPIREAT). Refused; ``--force`` restores the rest and the
  report lists what was left out.
- inexact: restored, but not exactly as in the file (listed, never refused).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from parsers.printable import printable
from parsers.rdb.constants import COLLECTION_TYPES, REDIS_TYPES, VALKEY_HASH_2, ValueType
from parsers.rdb.decode import HashValue
from parsers.rdb.versions import server_reads
from toolkit.check.result import CheckResult
from toolkit.restore.network.commands import Capabilities
from toolkit.restore.network.source import Library, RdbSource
from toolkit.restore.network.target import TargetInfo
from toolkit.stage.compat import BUILTIN_TYPES, MODULE_OF_TYPE
from toolkit.text import plural, size

PAYLOAD = "payload"
COMMANDS = "commands"

# Module type name -> the names MODULE LIST gives the modules that provide it.
MODULE_NAMES: dict[str, frozenset[str]] = {
    "graphdata": frozenset({"graph"}),
    "ReJSON-RL": frozenset({"ReJSON"}),
    "MBbloom--": frozenset({"bf"}),
    "MBbloomCF": frozenset({"bf"}),
    "TSDB-TYPE": frozenset({"timeseries"}),
    "TopK-TYPE": frozenset({"bf"}),
    "CMSk-TYPE": frozenset({"bf"}),
    "TDIS-TYPE": frozenset({"bf"}),
    "ft_index0": frozenset({"search", "ft"}),
    "vectorset": frozenset({"vectorset"}),
}
# The latest hash field expiry Redis's HPEXPIREAT takes: HFE_MAX_ABS_TIME_MSEC in t_hash.c,
# EB_EXPIRE_TIME_MAX >> 2 = 2^46 - 1 ms (year 4199); a later one is "invalid expire time".
# Valkey 9 has no such cap.
REDIS_FIELD_TTL_MAX_MS = ((1 << 48) - 1) >> 2
# Hash types that can hold field TTLs (Redis magic; Valkey's HASH_2 is 22).
_FIELD_TTL_TYPES = frozenset(
    {
        ValueType.HASH_METADATA_PRE_GA,
        ValueType.HASH_LISTPACK_EX_PRE_GA,
        ValueType.HASH_METADATA,
        ValueType.HASH_LISTPACK_EX,
    }
)
NO_ROLLBACK = (
    "there is no rollback over the network: a failure midway leaves the keys restored so "
    "far; a refused restore writes nothing"
)


@dataclass
class DbPlan:
    """One database: the backup's keys and what becomes of them."""

    keys: int = 0  # in the backup
    expired: int = 0  # TTL already run out: skipped
    empty: int = 0  # empty collections (Redis skips them on load): skipped
    left_out: int = 0  # cannot go to this target (forced)
    target_before: int = 0  # keys the target's db holds now
    not_selected: int = 0  # left out by a selection (selection.py)
    conflicts: int = 0  # on the target already: skipped (--on-conflict skip)

    @property
    def to_restore(self) -> int:
        skipped = self.expired + self.empty + self.left_out + self.not_selected + self.conflicts
        return max(0, self.keys - skipped)


@dataclass
class Plan:
    target: TargetInfo
    path: str  # payload or commands
    path_reason: str
    replace: bool
    force: bool
    dbs: dict[int, DbPlan] = field(default_factory=dict)
    libraries: list[Library] = field(default_factory=list)
    libraries_action: str = "none"  # none, load, replace, skip
    blockers: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    inexact: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skip_dbs: set[int] = field(default_factory=set)
    skip_types: set[str] = field(default_factory=set)
    field_ttls: str = "none"  # none, keep, drop (forced: no HPEXPIREAT)
    caps: Capabilities = field(default_factory=Capabilities)
    by_key: bool = False  # keys already there are checked one by one (selection.py), not per db
    keys_only: bool = False  # a selection: keys only, no function libraries
    selection: Any = None  # selection.SelectionPlan of a selective restore

    @property
    def refusals(self) -> list[str]:
        """Why the restore is refused (empty: it may go ahead)."""
        return self.blockers + ([] if self.force else self.losses)

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    @property
    def involved(self) -> list[int]:
        """The dbs the restore writes to."""
        return sorted(db for db, d in self.dbs.items() if d.to_restore and db not in self.skip_dbs)

    @property
    def target_empty(self) -> bool:
        """No keys in the dbs the restore writes to (the whole cluster, on a cluster)."""
        if self.target.cluster_enabled:
            return not any(self.target.keys_by_db().values())
        before = self.target.keys_by_db()
        return not any(before.get(db, 0) for db in self.involved)

    @property
    def keys_to_restore(self) -> int:
        return sum(d.to_restore for d in self.dbs.values())


def make_plan(
    result: CheckResult,
    source: RdbSource,
    target: TargetInfo,
    *,
    cluster: bool,
    replace: bool,
    force: bool,
    path: str | None = None,
    by_key: bool = False,
    keys_only: bool = False,
) -> Plan:
    """The preflight of restoring ``source`` (checked as ``result``) into ``target``.
    ``path`` forces the command path (``COMMANDS``) where RESTORE would do (for tests).
    ``by_key``: keys already on the target are a matter for selection.py, not a blocker
    here; ``keys_only``: a selection, which leaves function libraries alone."""
    readable = server_reads(source.magic, source.rdb_version, target.version, target.valkey)
    readable = readable and path != COMMANDS
    plan = Plan(
        target,
        PAYLOAD if readable else COMMANDS,
        _path_reason(readable, source, target),
        replace,
        force,
        caps=Capabilities(
            hpexpireat=target.has("HPEXPIREAT"),
            field_ttl_max=None if target.valkey else REDIS_FIELD_TTL_MAX_MS,
            stream_extras=target.version >= (7, 0),
            createconsumer=target.version >= (6, 2),
        ),
        by_key=by_key,
        keys_only=keys_only,
    )
    _target_state(plan, cluster)
    _databases(plan, result)
    _modules(plan, result)
    _libraries(plan, source)
    if plan.path == COMMANDS:
        _field_ttls(plan, result, source)
        _inexact(plan, result)
    _existing(plan)
    _memory(plan, result)
    if plan.losses and not force:
        plan.notes.append(
            "--force would restore everything else and leave out what this target cannot "
            "take (it never overrides a refusal about the target's state)"
        )
    plan.notes.append(NO_ROLLBACK)
    return plan


def _path_reason(readable: bool, source: RdbSource, target: TargetInfo) -> str:
    file = f"{source.magic} RDB {source.rdb_version}"
    if readable:
        return (
            f"{target.name} reads {file}: RESTORE of DUMP payloads made of the file's own "
            "value bytes (exact)"
        )
    if source.magic == "VALKEY" and not target.valkey:
        why = f"Redis cannot read a {file} file's payloads"
    elif source.magic == "REDIS" and target.valkey:
        why = f"Valkey refuses payloads of Redis's {file} (only up to RDB 11)"
    else:
        why = f"{target.name} reads RDB {target.rdb_version} at most, the file is {file}"
    return f"{why}: plain commands (SET, RPUSH, SADD, ZADD, HSET, XADD ...)"


def _target_state(plan: Plan, cluster: bool) -> None:
    t = plan.target
    if t.version < (5, 0) and not t.valkey:
        plan.blockers.append(
            f"{t.display} runs {t.name}: a network restore needs Redis >= 5.0 (RESTORE ... "
            "ABSTTL keeps each key's expiry time as it is in the backup)"
        )
    if t.role != "master":
        plan.blockers.append(
            f"{t.display} is a replica (role:{t.role}): restore into its master instead"
        )
    if t.cluster_enabled and not cluster:
        plan.blockers.append(
            f"{t.display} is a Redis Cluster node (cluster_enabled:1): pass --cluster to "
            "restore into the cluster, keys routed by slot"
        )
    elif cluster and not t.cluster_enabled:
        plan.blockers.append(
            f"--cluster: {t.display} is not a cluster node (cluster_enabled:0); drop --cluster"
        )
    elif cluster and t.cluster_state != "ok":
        plan.blockers.append(
            f"the cluster at {t.display} is not serving every slot (cluster_state:"
            f"{t.cluster_state}): fix the cluster first"
        )


def _databases(plan: Plan, result: CheckResult) -> None:
    inv = result.inventory
    before = plan.target.keys_by_db()
    for db, stats in sorted((inv.databases if inv else {}).items()):
        plan.dbs[db] = DbPlan(stats.keys, stats.expired_at_check, stats.empty, 0, before.get(db, 0))
    if plan.target.cluster_enabled:
        other = [db for db, d in plan.dbs.items() if db != 0 and d.to_restore]
        if other:
            n = sum(plan.dbs[db].to_restore for db in other)
            plan.losses.append(
                "a Redis Cluster has db 0 only; the backup holds "
                f"{plural(n, 'key')} in {_dbs(other)}"
            )
            _leave_out_dbs(plan, other)
        return
    limit = plan.target.databases
    if limit is None:
        return
    high = [db for db, d in plan.dbs.items() if db >= limit and d.to_restore]
    if high:
        n = sum(plan.dbs[db].to_restore for db in high)
        plan.losses.append(
            f"the backup holds {plural(n, 'key')} in {_dbs(high)}; {plan.target.display} has "
            f"databases {limit} ({plan.target.databases_source}), so db {limit - 1} is its last"
        )
        _leave_out_dbs(plan, high)


def _leave_out_dbs(plan: Plan, dbs: Iterable[int]) -> None:
    for db in dbs:
        d = plan.dbs[db]
        d.left_out = d.to_restore
        plan.skip_dbs.add(db)


def _modules(plan: Plan, result: CheckResult) -> None:
    inv = result.inventory
    if inv is None:
        return
    counts: dict[str, int] = {}
    for db, stats in inv.databases.items():
        if db in plan.skip_dbs:
            continue
        for t, n in stats.by_type.items():
            if t not in REDIS_TYPES and n:
                counts[t] = counts.get(t, 0) + n
    t = plan.target
    for type_name, n in sorted(counts.items()):
        what = f"{plural(n, 'value')} of module type {type_name}"
        if plan.path == COMMANDS:
            plan.losses.append(
                f"the backup holds {what}, which cannot be sent as commands (only RESTORE of "
                f"its DUMP payload carries it, and {t.name} cannot read this file's payloads)"
            )
            _leave_out_type(plan, result, type_name)
            continue
        builtin = type_name in BUILTIN_TYPES and not t.valkey
        if builtin and t.version >= BUILTIN_TYPES[type_name]:
            continue
        providers = MODULE_NAMES.get(type_name)
        loaded = set(t.modules or [])
        if providers is not None and providers & loaded:
            continue
        if t.modules is None:
            plan.notes.append(
                f"MODULE LIST is not allowed on {t.display}: whether it has module type "
                f"{type_name} shows at the first RESTORE of such a key"
            )
            continue
        if providers is None and loaded:
            plan.notes.append(
                f"module type {type_name}: not known to rbkit; one of the loaded modules "
                f"({', '.join(sorted(loaded))}) may provide it (the first RESTORE will tell)"
            )
            continue
        about = MODULE_OF_TYPE.get(type_name)
        if builtin:
            about = f"built into Redis >= {'.'.join(map(str, BUILTIN_TYPES[type_name]))}"
        modules = ", ".join(sorted(loaded)) or "none"
        plan.losses.append(
            f"the backup holds {what}{f' ({about})' if about else ''}, and {t.display} "
            f"has no module for it (MODULE LIST: {modules})"
        )
        _leave_out_type(plan, result, type_name)


def _leave_out_type(plan: Plan, result: CheckResult, type_name: str) -> None:
    plan.skip_types.add(type_name)
    for db, stats in (result.inventory.databases if result.inventory else {}).items():
        if db not in plan.skip_dbs and stats.by_type.get(type_name):
            plan.dbs[db].left_out += stats.by_type[type_name]


def _libraries(plan: Plan, source: RdbSource) -> None:
    libs = source.libraries
    plan.libraries = list(libs)
    if not libs:
        return
    if plan.keys_only:
        plan.notes.append(
            "a selection restores keys only: the backup's function libraries are not loaded"
        )
        return
    t = plan.target
    names = ", ".join(lib.name for lib in libs)
    pre_ga = [lib.name for lib in libs if lib.pre_ga]
    if not t.has("FUNCTION"):
        plan.losses.append(
            f"the backup holds function libraries ({names}), which need Redis >= 7.0 "
            f"(FUNCTION LOAD); the target is {t.name}"
        )
        plan.libraries_action = "skip"
        return
    if pre_ga:
        plan.losses.append(
            f"function libraries {', '.join(pre_ga)} are in the Redis 7.0 release-candidate "
            "format, which only Redis 7.0 reads, from an RDB file (FUNCTION LOAD does not take it)"
        )
    existing = sorted({lib.name for lib in libs} & set(t.functions or []))
    if existing and not plan.replace:
        plan.blockers.append(
            f"{t.display} already has function "
            f"{'library' if len(existing) == 1 else 'libraries'} {', '.join(existing)}; pass "
            "--replace to replace it"
        )
    plan.libraries_action = "replace" if plan.replace else "load"


def _field_ttls(plan: Plan, result: CheckResult, source: RdbSource) -> None:
    """Hash fields with their own TTL, on the command path: HPEXPIREAT or a loss. A Redis
    target also refuses a field expiry past 2^46 - 1 ms (``invalid expire time``), which only
    Valkey writes: a loss too."""
    types = field_ttl_types(source.magic)
    inv = result.inventory
    if plan.caps.hpexpireat:
        plan.field_ttls = "keep"
    if inv is None or not types & inv.type_ids:
        return
    cap = plan.caps.field_ttl_max if plan.caps.hpexpireat else None
    if plan.caps.hpexpireat and cap is None:
        return
    hashes = fields = 0
    example = b""
    now = time.time() * 1000
    for item in source.items():
        if item.type_id not in types or item.db in plan.skip_dbs:
            continue
        value, _meta = source.decode(item)
        if not isinstance(value, HashValue):
            continue
        limit = now if cap is None else cap  # past the cap, or (no HPEXPIREAT) still to run
        timed = sum(1 for e in value.field_expires_ms.values() if e > limit)
        if timed:
            hashes += 1
            fields += timed
            example = example or item.key
    if not hashes:
        return
    what = f"{plural(fields, 'hash field')} in {plural(hashes, 'hash', 'hashes')}"
    if cap is not None:
        plan.losses.append(
            f"{what} (e.g. '{printable(example)}') have a TTL past {cap} ms (year 4199), "
            "the latest Redis takes (HPEXPIREAT: invalid expire time; Valkey has no such "
            f"cap); the target is {plan.target.name} (--force restores those fields without "
            "their TTL)"
        )
        return
    plan.field_ttls = "drop"
    plan.losses.append(
        f"{what} (e.g. '{printable(example)}') have a TTL of their own, which needs "
        f"HPEXPIREAT (Redis >= 7.4); the target is {plan.target.name} (--force restores "
        "those fields without their TTL)"
    )


def _inexact(plan: Plan, result: CheckResult) -> None:
    inv = result.inventory
    streams = sum(s.by_type.get("stream", 0) for s in inv.databases.values()) if inv else 0
    plan.inexact.append(
        "value encodings (listpack, intset, ...) are the target's own choice, as after any write"
    )
    if not streams:
        return
    plan.inexact.append(
        "streams: consumers' seen and active times become the time of the restore; pending "
        "entries whose stream entry was deleted cannot be re-created (XCLAIM needs the entry)"
    )
    if not plan.caps.stream_extras:
        plan.inexact.append(
            f"streams: {plan.target.name} keeps no entries-added count, max deleted id or "
            "consumer-group entries-read (those are Redis 7.0+)"
        )
    if not plan.caps.createconsumer:
        plan.inexact.append(
            "streams: consumers without pending entries are not created (XGROUP "
            "CREATECONSUMER is Redis 6.2+)"
        )


def _existing(plan: Plan) -> None:
    if plan.replace or plan.by_key:
        return
    t = plan.target
    if t.cluster_enabled:
        n = sum(t.keys_by_db().values())
        if n:
            plan.blockers.append(
                f"target db 0 holds {plural(n, 'key')} (over {plural(len(t.nodes), 'node')}); pass "
                "--replace to overwrite keys of the same name (others are kept)"
            )
        return
    for db in plan.involved:
        n = plan.dbs[db].target_before
        if n:
            plan.blockers.append(
                f"target db {db} holds {plural(n, 'key')}; pass --replace to overwrite keys of "
                "the same name (others are kept)"
            )


def _memory(plan: Plan, result: CheckResult) -> None:
    t = plan.target
    inv = result.inventory
    if not t.maxmemory or inv is None:
        return
    need = sum(s.bytes for s in inv.databases.values())
    room = t.maxmemory - (t.used_memory or 0)
    if need > room:
        plan.notes.append(
            f"the backup's values take {size(need)} serialized; the target has "
            f"maxmemory {size(t.maxmemory)} with {size(t.used_memory or 0)} "
            "used: writes may fail with OOM"
        )


def _dbs(dbs: list[int]) -> str:
    return ("db " if len(dbs) == 1 else "dbs ") + ", ".join(map(str, sorted(dbs)))


def field_ttl_types(magic: str) -> frozenset[int]:
    """The value types that can hold hash fields with a TTL of their own."""
    return _FIELD_TTL_TYPES if magic == "REDIS" else frozenset({VALKEY_HASH_2})


def all_fields_expired(value: object, now_ms: float) -> bool:
    """A hash every field of which has a TTL that has run out (Redis would hold it empty)."""
    if not isinstance(value, HashValue) or not value.fields:
        return False
    expires = value.field_expires_ms
    return len(expires) == len(value.fields) and all(e <= now_ms for e in expires.values())


def is_empty_collection(type_id: int, elements: int) -> bool:
    """Redis skips empty collections when loading, and RESTORE refuses them."""
    return elements == 0 and type_id in COLLECTION_TYPES
