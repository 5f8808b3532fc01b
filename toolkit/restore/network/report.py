"""The network restore's report: the model, its ``rbkit.restore/1`` JSON (``"mode":
"network"``) and the text with its tables."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from parsers.printable import printable
from toolkit.check.keys import key_fields
from toolkit.check.result import CheckResult
from toolkit.restore.network.load import Failure, LoadStats
from toolkit.restore.network.plan import Plan
from toolkit.restore.network.resume import JournalReport
from toolkit.restore.network.selection import (
    CONFLICT,
    NOT_SELECTED,
    REASONS,
    SHIFT,
    SKIP,
    SelectionPlan,
)
from toolkit.restore.network.verify import Verification
from toolkit.server.read import LiveKeyspace
from toolkit.stage.report import (
    SCHEMA,
    allowance_json,
    backup_json,
    backup_line,
    mismatch_json,
    problem_lines,
)
from toolkit.steps import (
    CANCELLED,
    FAILED,
    MISMATCH,
    PLANNED,
    REFUSED,
    VERIFIED,
    Step,
    steps_json,
    steps_table,
)
from toolkit.text import count, layout, plural, pre, size, utc_iso, verdict_line


@dataclass
class NetworkReport:
    """What a network restore did and found."""

    backup: str
    target: str  # the URL without its password
    dry_run: bool
    outcome: str = VERIFIED
    reason: str | None = None
    reasons: list[str] = field(default_factory=list)
    result: CheckResult | None = None  # the backup's check
    restored_file: CheckResult | None = None  # the RDB sent, when it is not the backup (AOF)
    plan: Plan | None = None
    stats: LoadStats | None = None
    verification: Verification | None = None
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keys_after: dict[int, int] | None = None  # INFO keyspace once written
    journal: JournalReport | None = None  # None: no journal (an AOF backup, or not reached)

    @property
    def ok(self) -> bool:
        return self.outcome in (VERIFIED, PLANNED)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def stop(self, outcome: str, reasons: list[str]) -> None:
        self.outcome = outcome
        self.reasons = list(reasons)
        self.reason = "; ".join(reasons)


# -- JSON ------------------------------------------------------------------------------------


def network_json(report: NetworkReport) -> dict[str, Any]:
    """The ``rbkit restore --to URL --json`` object (schema rbkit.restore/1, mode network)."""
    result = report.result
    plan = report.plan
    return {
        "schema": SCHEMA,
        "mode": "network",
        "backup": report.backup,
        **backup_json(result),
        "dry_run": report.dry_run,
        "outcome": report.outcome,
        "ok": report.ok,
        "verified": report.outcome == VERIFIED,
        "reason": report.reason,
        "reasons": report.reasons,
        "target": _target_json(report),
        "path": plan.path if plan else None,
        "path_reason": plan.path_reason if plan else None,
        "plan": _plan_json(plan) if plan else None,
        "selection": _selection_json(plan.selection) if plan and plan.selection else None,
        "steps": steps_json(report.steps),
        "seconds": round(report.seconds, 6),
        "restored": _stats_json(report.stats) if report.stats else None,
        "verification": _verification_json(report.verification),
        "keys_after": _dbmap(report.keys_after) if report.keys_after is not None else None,
        "journal": _journal_json(report.journal),
        "notes": report.notes,
        "problems": [p.to_json() for p in (result.problems if result else [])],
    }


def _journal_json(j: JournalReport | None) -> dict[str, Any] | None:
    return asdict(j) if j is not None else None


def _dbmap(d: dict[int, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in sorted(d.items())}


def _target_json(report: NetworkReport) -> dict[str, Any]:
    out: dict[str, Any] = {"url": report.target}
    t = report.plan.target if report.plan else None
    if t is None:
        return out
    out.update(
        {
            "server_name": t.server_name,
            "version": t.version_text,
            "role": t.role,
            "cluster": t.cluster_enabled,
            "cluster_state": t.cluster_state,
            "nodes": [
                {
                    "address": n.address,
                    "version": n.version,
                    "keys": _dbmap({db: k for db, (k, _e) in n.keyspace.items()}),
                }
                for n in t.nodes
            ],
            "rdb_version": t.rdb_version,
            "databases": t.databases,
            "databases_source": t.databases_source,
            "modules": t.modules,
            "functions": t.functions,
            "keys_before": _dbmap(t.keys_by_db()),
            "bulk_limit": t.bulk_limit,
            "bulk_limit_source": t.bulk_limit_source,
        }
    )
    return out


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "databases": {
            str(db): {
                "keys": d.keys,
                "expired": d.expired,
                "empty": d.empty,
                "left_out": d.left_out,
                "not_selected": d.not_selected,
                "conflicts_skipped": d.conflicts,
                "to_restore": d.to_restore,
                "target_before": d.target_before,
            }
            for db, d in sorted(plan.dbs.items())
        },
        "keys_to_restore": plan.keys_to_restore,
        "target_empty": plan.target_empty,
        "replace": plan.replace,
        "forced": plan.force and bool(plan.losses),
        "libraries": [lib.name for lib in plan.libraries],
        "libraries_action": plan.libraries_action,
        "field_ttls": plan.field_ttls,
        "blockers": plan.blockers,
        "losses": plan.losses,
        "inexact": plan.inexact,
        "notes": plan.notes,
    }


def _selection_json(sp: SelectionPlan) -> dict[str, Any]:
    s = sp.selection
    keys = s.keys
    shift = s.ttl == SHIFT
    return {
        "match": [key_fields(p, "pattern") for p in s.matches],
        "dbs": sorted(s.dbs) if s.dbs is not None else None,
        "types": sorted(s.types) if s.types is not None else None,
        "keys_from": None
        if keys is None
        else {
            "path": keys.path,
            "kind": keys.kind,
            "only": list(keys.only),
            "names": sp.names_listed,
            "found": sp.names_found,
            "diff_a": keys.diff_a,
        },
        "on_conflict": s.conflict_mode,
        "ttl": s.ttl,
        "backup_time_ms": sp.backup_ms,
        "backup_time": utc_iso(sp.backup_ms) if sp.backup_ms is not None else None,
        "backup_time_source": sp.backup_time_source,
        "ttl_from_ms": sp.picker.base_ms if shift else None,
        "to_write": {"keys": sp.keys_to_write, "by_type": dict(sorted(sp.to_write.items()))},
        "skipped": {reason: sp.skipped[reason] for reason in REASONS},
        "existing": sp.existing,
        "existing_keys": [{"db": db, **key_fields(k)} for db, k in sp.existing_first],
        "notes": sp.notes,
    }


def _stats_json(stats: LoadStats) -> dict[str, Any]:
    dbs = sorted(set(stats.restored) | set(stats.expired) | set(stats.empty) | set(stats.left_out))
    return {
        "databases": {
            str(db): {
                "keys": stats.restored[db],
                "expired_skipped": stats.expired[db],
                "empty_skipped": stats.empty[db],
                "left_out": stats.left_out[db],
                "chunked": stats.chunked[db],
            }
            for db in dbs
        },
        "keys": stats.keys,
        "resumed_keys": sum(stats.resumed.values()),
        "chunked": sum(stats.chunked.values()),
        "leftover_temp_keys": [{"db": db, **key_fields(k)} for db, k in stats.leftovers],
        "expired_skipped": sum(stats.expired.values()),
        "skipped": {reason: stats.skipped[reason] for reason in (NOT_SELECTED, CONFLICT)},
        "libraries": stats.libraries,
        "commands": stats.commands,
        "bytes": stats.bytes,
        "batches": stats.batches,
        "seconds": round(stats.seconds, 6),
        "fields_expired": stats.fields_expired,
        "field_ttls_dropped": stats.field_ttls_dropped,
        "pending_entries_lost": stats.pel_lost,
        "failed": stats.failed,
        "failures": [
            {
                "db": f.db,
                **(key_fields(f.key) if f.key is not None else {"key": None}),
                "error": f.error,
            }
            for f in stats.failures
        ],
        "stopped": stats.stopped,
    }


def _verification_json(v: Verification | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "mode": v.mode,
        "verified": v.verified,
        "checked": v.checked,
        "mismatch_count": v.mismatch_count,
        "mismatches": [mismatch_json(m) for m in v.mismatches],
        "allowances": [allowance_json(a) for a in v.allowances],
        "libraries_missing": v.libraries_missing,
        "key_names_compared": bool(v.comparison and v.comparison.digest_compared),
        "read": _live_json(v.live) if v.live is not None else None,
        "seconds": round(v.seconds, 6),
    }


def _live_json(live: LiveKeyspace) -> dict[str, Any]:
    """What the read-back found, per db (the drill's ``loaded`` shape, in short)."""
    return {
        "version": live.version,
        "databases": {
            str(db): {
                "keys": d.scanned,
                "info_keys": d.keys,
                "expires": d.expires,
                "by_type": d.by_type,
                "digest": f"{d.digest:016x}",
            }
            for db, d in live.databases.items()
        },
        "functions": live.functions,
        "sources": live.sources,
        "read_by": live.via,
    }


# -- text ------------------------------------------------------------------------------------

_VERDICTS = {
    VERIFIED: "VERIFIED: restored, and the target holds what the backup holds",
    PLANNED: "PLAN (--dry-run): nothing was written",
    REFUSED: "REFUSED: nothing was written",
    CANCELLED: "CANCELLED: nothing was written",
    FAILED: "FAILED",
    MISMATCH: "MISMATCH: restored, but the target does not hold what the backup holds",
}


def render_network(report: NetworkReport, *, width: int | None = None) -> str:
    """The report as text: verdict, backup and target, the plan per db, steps, read-back;
    prose wrapped to ``width``."""
    from tabulate import tabulate

    out: list[str] = []
    verdict = _VERDICTS[report.outcome]
    if _selects(report.plan) and report.outcome in (VERIFIED, MISMATCH):
        verdict = verdict.replace(
            "what the backup holds", "the selected keys as the backup has them"
        )
    if report.outcome == REFUSED and report.dry_run:
        verdict = "REFUSED (--dry-run): the restore would be refused"
    out.append(verdict_line(f"network restore of {report.backup} into {report.target}", verdict))
    if not report.ok:
        for reason in report.reasons or [report.reason or "?"]:
            out.append(f"  reason: {reason}")
    result = report.result
    if result is not None:
        out.append(backup_line(result))
        out.extend(problem_lines(result))
    plan = report.plan
    if plan is not None:
        t = plan.target
        kind = f"cluster of {len(t.nodes)} primaries" if t.cluster_enabled else "standalone"
        dbs = f", databases {t.databases}" if t.databases and not t.cluster_enabled else ""
        state = "empty" if plan.target_empty else "holds keys"
        out.append(f"  target: {t.name}, {kind}{dbs}, reads RDB <= {t.rdb_version}; {state}")
        out.append(f"  path: {plan.path}: {plan.path_reason}")
        if plan.libraries:
            names = ", ".join(lib.name for lib in plan.libraries)
            out.append(f"  functions: {names} ({plan.libraries_action})")
        if plan.losses and plan.force:
            for loss in plan.losses:
                out.append(f"  left out (--force): {loss}")
        for item in plan.inexact:
            out.append(f"  not exact: {item}")
        if plan.selection is not None:
            out.extend(_selection_lines(plan.selection))
    for note in report.notes + (plan.notes if plan else []):
        out.append(f"  note: {note}")
    if plan is not None and plan.dbs:
        stats = report.stats
        after = report.keys_after
        picked = plan.selection is not None
        headers = ["db", "in backup", "expired", "empty", "left out"]
        headers += ["not selected", "already there"] if picked else []
        headers += ["to restore", "before"]
        if stats is not None:
            headers.append("restored")
        if after is not None:
            headers.append("after")
        rows = []
        for db, d in sorted(plan.dbs.items()):
            numbers = [d.keys, d.expired, d.empty, d.left_out]
            numbers += [d.not_selected, d.conflicts] if picked else []
            numbers += [d.to_restore, d.target_before]
            if stats is not None:
                numbers.append(stats.restored[db])
            if after is not None:
                numbers.append(after.get(db, 0))
            rows.append([str(db), *map(count, numbers)])
        out.append("")
        align = ("left", *("right",) * (len(headers) - 1))
        out.append(pre(tabulate(rows, headers=headers, disable_numparse=True, colalign=align)))
    if report.steps:
        out.append("")
        out.append(pre(steps_table(report.steps)))
    stats = report.stats
    if stats is not None and (stats.failures or stats.stopped):
        out.append("")
        out.append("failures:")
        for f in stats.failures:
            where = f"db {f.db}: '{printable(f.key)}': " if f.key is not None else ""
            out.append(f"  {where}{f.error}")
        if stats.failed > len(stats.failures):
            out.append(f"  ... {count(stats.failed - len(stats.failures))} more")
        if stats.stopped:
            out.append(f"  {stats.stopped}")
    if stats is not None:
        out.extend(_load_lines(report, stats))
    v = report.verification
    if v is not None:
        if v.allowances:
            out.append("")
            out.append("allowed for:")
            out.extend(f"  {a.sentence}" for a in v.allowances)
        if v.mismatches:
            out.append("")
            out.append("mismatches:")
            out.extend(f"  {m.sentence}" for m in v.mismatches)
            if v.mismatch_count > len(v.mismatches):
                out.append(f"  ... {count(v.mismatch_count - len(v.mismatches))} more")
        elif v.verified:
            out.append("")
            ttl_mode = plan.selection.selection.ttl if plan and plan.selection else None
            out.append(f"verified: {_verified_text(v, ttl_mode)}")
    return layout(out, width)


def _load_lines(report: NetworkReport, stats: LoadStats) -> list[str]:
    """Keys written in chunks, temporary keys left, and the journal: resumed or kept."""
    out = []
    limit = report.plan.target.bulk_limit if report.plan else 0
    if stats.chunked:
        n = sum(stats.chunked.values())
        out.append(
            f"chunked: {plural(n, 'key')} too big for one command (proto-max-bulk-len "
            f"{size(limit)}) written in chunks into a temporary key, then renamed"
        )
    for db, key in stats.leftovers:
        out.append(
            f"temporary key perhaps left on the target: db {db}: '{printable(key)}' (--resume "
            "writes that key again and removes it; else delete it)"
        )
    j = report.journal
    if j is not None and j.resumed:
        out.append(
            f"resumed: {plural(j.keys_before, 'key')} acknowledged by the interrupted run "
            f"were not written again; {plural(j.rewritten, 'key')} it sent without an answer "
            f"{'was' if j.rewritten == 1 else 'were'} written again (REPLACE)"
        )
    if j is not None and j.kept:
        out.append(
            f"journal: {j.path} is kept: the same command with --resume continues after the "
            "last acknowledged batch (--restart discards it)"
        )
    return ["", *out] if out else []


_REASON_WORDS = {
    NOT_SELECTED: "not selected",
    "expired": "expired",
    "empty": "empty (Redis skips them)",
    "left_out": "left out (--force)",
    CONFLICT: "already on the target (--on-conflict skip)",
}


def _selection_lines(sp: SelectionPlan) -> list[str]:
    """What a selective restore selects, writes and skips."""
    s = sp.selection
    asked = ", ".join(s.describe()) or "every key"
    conflict = s.conflict_mode or "refuse if a db written to holds keys (no --on-conflict)"
    out = [f"  selection: {asked}; on conflict: {conflict}; TTL: {_ttl_text(sp)}"]
    types = ", ".join(f"{n} {t}" for t, n in sorted(sp.to_write.items()))
    out.append(f"  to write: {plural(sp.keys_to_write, 'key')}{f' ({types})' if types else ''}")
    skipped = [f"{count(sp.skipped[r])} {_REASON_WORDS[r]}" for r in REASONS if sp.skipped[r]]
    if skipped:
        out.append(f"  skipped: {', '.join(skipped)}")
    if sp.existing:
        first = ", ".join(f"db {db}: '{printable(k)}'" for db, k in sp.existing_first)
        more = sp.existing - len(sp.existing_first)
        what = {SKIP: "left as they are", "replace": "replaced"}.get(s.conflict_mode or "", "")
        out.append(
            f"  on the target already: {plural(sp.existing, 'selected key')}"
            f"{f', {what}' if what else ''} ({first}{f' and {more} more' if more else ''})"
        )
    keys = s.keys
    if keys is not None:
        found = f"{count(sp.names_found)} of {plural(sp.names_listed, 'name')} found in the backup"
        side = f", a diff of {printable(keys.diff_a)} (A) and the target" if keys.diff_a else ""
        out.append(f"  --keys-from {printable(keys.path)}{side}: {found}")
    out.extend(f"  note: {n}" for n in sp.notes)
    return out


def _ttl_text(sp: SelectionPlan) -> str:
    ttl = sp.selection.ttl
    if ttl == SHIFT and sp.backup_ms is not None:
        return (
            f"shift: each key keeps the TTL it had left at {utc_iso(sp.backup_ms)} "
            f"({sp.backup_time_source}), from the start of the load"
        )
    if ttl == "none":
        return "none: no key gets a TTL"
    return "keep: each key's expiry time as in the backup"


def _selects(plan: Plan | None) -> bool:
    """A plan that restores a selection of the backup's keys."""
    return plan is not None and plan.selection is not None and plan.selection.selection.selects


def _verified_text(v: Verification, ttl_mode: str | None) -> str:
    if v.mode == "keyspace":
        what = "per-db keys, expires, types"
        if v.comparison and v.comparison.digest_compared:
            what += ", key names (digest)"
        return what + " and function libraries, as the backup holds them"
    ttl = "type and TTL"
    if ttl_mode not in (None, "keep"):
        ttl = f"type and the TTL --ttl {ttl_mode} gave it"
    return f"each of the {plural(v.checked, 'restored key')} exists with the backup's {ttl}"


def _failure_json(f: Failure) -> dict[str, object]:
    key = key_fields(f.key) if f.key is not None else {"key": None}
    return {"db": f.db, **key, "error": f.error}
