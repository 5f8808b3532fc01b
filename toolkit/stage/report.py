"""The restore drill's report: the ``rbkit.restore/1`` JSON and the table."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from parsers.printable import printable
from parsers.rdb.constants import REDIS_TYPES
from toolkit.steps import steps_json, steps_table
from toolkit.text import count, layout, pre, size, verdict_line

if TYPE_CHECKING:
    from toolkit.check.result import CheckResult
    from toolkit.server.read import LiveKeyspace
    from toolkit.stage.compare import Allowance, Comparison, Mismatch
    from toolkit.stage.drill import StageReport

SCHEMA = "rbkit.restore/1"
_TYPES = REDIS_TYPES


def backup_json(result: CheckResult | None) -> dict[str, Any]:
    """What every rbkit.restore/1 object says of the backup's check."""
    return {
        "format": result.format if result else None,
        "magic": result.magic if result else None,
        "rdb_version": result.rdb_version if result else None,
        "valid": result.valid if result else None,
    }


def allowance_json(a: Allowance) -> dict[str, Any]:
    """One thing a comparison allowed for, as every rbkit.restore/1 object gives it."""
    return {"db": a.db, "kind": a.kind, "keys": a.keys, "source": a.source, "message": a.sentence}


def mismatch_json(m: Mismatch) -> dict[str, Any]:
    """One difference a comparison found, as every rbkit.restore/1 object gives it."""
    return {
        "db": m.db,
        "what": m.what,
        "expected": m.expected,
        "found": m.found,
        "message": m.sentence,
    }


def comparison_lines(comparison: Comparison) -> list[str]:
    """The allowances and mismatches of a comparison, as the reports print them."""
    out: list[str] = []
    if comparison.allowances:
        out += ["", "allowed for:", *(f"  {a.sentence}" for a in comparison.allowances)]
    if comparison.mismatches:
        out += ["", "mismatches:", *(f"  {m.sentence}" for m in comparison.mismatches)]
    return out


def stage_json(report: StageReport) -> dict[str, Any]:
    """The ``rbkit restore --stage-only --json`` object (schema rbkit.restore/1)."""
    result = report.result
    binary = report.binary
    live = report.live
    comparison = report.comparison
    return {
        "schema": SCHEMA,
        "mode": "stage-only",
        "backup": report.backup,
        **backup_json(result),
        "outcome": report.outcome,
        "ok": report.verified,
        "verified": report.verified,
        "reason": report.reason,
        "reasons": report.reasons,
        "server": {
            "binary": os.fspath(binary.path) if binary else None,
            "version": binary.version_text if binary else None,
            "source": binary.source if binary else None,
            "port": report.port,
            "settings": report.settings,
            "modules": report.modules,
            "load_seconds": report.server_load_seconds,
        },
        "steps": steps_json(report.steps),
        "seconds": round(report.seconds, 6),
        "loaded": None if live is None else _live_json(live),
        "key_names_compared": bool(comparison and comparison.digest_compared),
        "allowances": [allowance_json(a) for a in (comparison.allowances if comparison else [])],
        "mismatches": [mismatch_json(m) for m in (comparison.mismatches if comparison else [])],
        "notes": report.notes + (comparison.notes if comparison else []),
        "problems": [p.to_json() for p in (result.problems if result else [])],
        "log": report.log,
    }


def _live_json(live: LiveKeyspace) -> dict[str, Any]:
    return {
        "version": live.version,
        "server_name": live.server_name,
        "executable": live.executable,
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
        "totals": {
            "keys": sum(d.scanned for d in live.databases.values()),
            "expires": sum(d.expires for d in live.databases.values()),
        },
        "functions": live.functions,
        "modules": live.modules,
        "keys_loaded": live.keys_loaded,
        "keys_expired": live.keys_expired,
        "sources": live.sources,
        "read_by": live.via,
        "read_seconds": round(live.seconds, 6),
    }


def backup_line(result: CheckResult) -> str:
    """``  backup: REDIS RDB 10 (Redis 7.0+), 410.9 KB, valid``: what the drill and the
    network restore say of the backup they were given."""
    what = f"{result.magic} RDB {result.rdb_version}" if result.magic else ""
    if result.min_release:
        what += f" ({'' if result.magic == 'VALKEY' else 'Redis '}{result.min_release}+)"
    total = result.size
    if result.aof is not None:
        total = sum(f.size for f in result.aof.files)
        what = f"{result.aof.layout} AOF" + (f", RDB part {what}" if what else "")
    return f"  backup: {what}, {size(total)}, {'valid' if result.valid else 'INVALID'}"


def problem_lines(result: CheckResult | None) -> list[str]:
    """The check's problems, one line each: ``  error (truncated at offset 12): ...``."""
    out = []
    for p in result.problems if result is not None else []:
        where = f" at offset {p.offset}" if p.offset is not None else ""
        out.append(f"  {p.severity} ({p.code}{where}): {p.message}")
    return out


def render_stage(report: StageReport, *, width: int | None = None) -> str:
    """The drill report as text: verdict, steps with timings, what loaded, allowances,
    mismatches, and the server's log on failure; prose wrapped to ``width``."""
    from tabulate import tabulate

    out: list[str] = []
    result = report.result
    binary = report.binary
    verdicts = {
        "verified": "VERIFIED: the backup loads and the server holds what the backup holds",
        "mismatch": "MISMATCH: the backup loads, but the server holds something else",
        "refused": "REFUSED",
        "failed": "FAILED: the server did not load the backup",
    }
    out.append(
        verdict_line(f"restore drill (--stage-only) of {report.backup}", verdicts[report.outcome])
    )
    if report.outcome in ("refused", "failed") or (report.reason and not report.verified):
        for reason in report.reasons or [report.reason]:
            out.append(f"  reason: {reason}")
    if result is not None:
        out.append(backup_line(result))
    if binary is not None:
        line = f"  server: redis-server {binary.version_text} ({binary.source}, {binary.path})"
        if report.port:
            line += f", scratch on 127.0.0.1:{report.port}, stopped"
        out.append(line)
    if report.settings:
        out.append("  config: " + ", ".join(f"{k} {v}" for k, v in report.settings.items()))
    for m in report.modules:
        out.append(f"  module: {m}")
    out.extend(problem_lines(result))
    notes = report.notes + (report.comparison.notes if report.comparison else [])
    for note in notes:
        out.append(f"  note: {note}")
    out.append("")
    out.append(pre(steps_table(report.steps)))
    live = report.live
    if live is not None and live.databases:
        extra = sorted({t for d in live.databases.values() for t in d.by_type} - set(_TYPES))
        types = [*_TYPES, *extra]
        inv = result.inventory.databases if result is not None and result.inventory else {}
        rows = []
        for db, d in live.databases.items():
            in_backup = inv[db].keys if db in inv else 0
            numbers = [in_backup, d.scanned, d.expires, *(d.by_type.get(t, 0) for t in types)]
            rows.append([str(db), *map(count, numbers)])
        out.append("")
        out.append(f"loaded by redis-server {live.version}:")
        headers = ("db", "in backup", "keys", "expires", *types)
        out.append(
            pre(
                tabulate(
                    rows,
                    headers=headers,
                    disable_numparse=True,
                    colalign=("left", *("right",) * (len(headers) - 1)),
                )
            )
        )
        if live.functions:
            out.append(f"functions: {', '.join(map(printable, live.functions))}")
        if live.modules:
            out.append(f"modules: {', '.join(map(printable, live.modules))}")
    comparison = report.comparison
    if comparison is not None:
        out.extend(comparison_lines(comparison))
        if not comparison.mismatches and report.verified:
            checked = "per-db keys, expires, types"
            checked += ", key names (digest)" if comparison.digest_compared else ""
            checked += " and function libraries"
            out.append("")
            out.append(f"verified: {checked}")
    if report.log:
        out.append("")
        out.append("server log:")
        out.extend(pre(f"  {line}") for line in report.log)
    return layout(out, width)
