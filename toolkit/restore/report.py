"""The restore's report: the ``rbkit.restore/1`` JSON (mode "file") and the text."""

from __future__ import annotations

import os
from typing import Any

from tabulate import tabulate

from toolkit.restore.procedure import (
    RestoreReport,
)
from toolkit.restore.rollback import RollbackReport
from toolkit.stage.report import (
    SCHEMA,
    allowance_json,
    backup_json,
    comparison_lines,
    mismatch_json,
    stage_json,
)
from toolkit.steps import (
    CANCELLED,
    FAILED,
    PLANNED,
    REFUSED,
    RESTORED,
    ROLLED_BACK,
    UNVERIFIED,
    steps_json,
    steps_table,
)
from toolkit.text import layout, pre, verdict_line

VERDICTS = {
    RESTORED: "RESTORED: the target runs the backup's data, verified",
    PLANNED: "PLAN (--dry-run): nothing was changed",
    REFUSED: "REFUSED: nothing was changed",
    CANCELLED: "CANCELLED: nothing was changed",
    ROLLED_BACK: "ROLLED BACK: the restore failed; the target is back to its kept state",
    FAILED: "FAILED: the restore failed and so did the rollback; see below what is where",
    UNVERIFIED: (
        "NOT VERIFIED: the restored server runs, but it differs from the backup and has taken "
        "client writes, so it was not rolled back"
    ),
}


def _rollback_json(rb: RollbackReport | None) -> dict[str, Any] | None:
    if rb is None:
        return None
    return {
        "verified": rb.verified,
        "refused": rb.refused,
        "reason": rb.reason,
        "steps": steps_json(rb.steps),
    }


def rollback_json(rb: RollbackReport) -> dict[str, Any]:
    """The ``rbkit restore --rollback DIR --json`` object: its ``outcome`` is ``verified``
    (rolled back and verified), ``refused`` or ``failed``."""
    outcome = "refused" if rb.refused else "verified" if rb.verified else "failed"
    return {
        "schema": SCHEMA,
        "mode": "rollback",
        "outcome": outcome,
        "ok": rb.verified,
        **(_rollback_json(rb) or {}),
    }


def restore_json(report: RestoreReport) -> dict[str, Any]:
    """The ``rbkit restore --json`` object (schema rbkit.restore/1, mode "file")."""
    t = report.target
    result = report.result
    comparison = report.comparison
    live = report.live
    return {
        "schema": SCHEMA,
        "mode": "file",
        "backup": report.backup,
        **backup_json(result),
        "outcome": report.outcome,
        "ok": report.ok,
        "verified": report.outcome == RESTORED,
        "reason": report.reason,
        "reasons": report.reasons,
        "target": None
        if t is None
        else {
            "address": t.address,
            "running": t.running,
            "version": t.version,
            "executable": os.fspath(t.executable) if t.executable else None,
            "config_file": os.fspath(t.config.path) if t.config.path else None,
            "data_dir": os.fspath(t.data_dir),
            "dbfilename": t.setting("dbfilename"),
            "appendonly": t.appendonly,
            "appenddirname": t.setting("appenddirname"),
            "appendfilename": t.setting("appendfilename"),
            "databases": int(t.setting("databases")),
            "modules": t.module_names,
            "sources": t.sources,
        },
        "plan": [{"step": s, "action": a} for s, a in report.plan],
        "steps": steps_json(report.steps),
        "seconds": round(sum(s.seconds for s in report.steps), 6),
        "server_load_seconds": report.server_load_seconds,
        "stage": stage_json(report.stage) if report.stage else None,
        "kept": report.kept,
        "installed": report.installed,
        "sha256": report.digests,
        "writes": {
            "during_restore": report.writes.during,
            "before_pause": report.writes.before_pause,
        },
        "rollback_dir": os.fspath(report.rollback_dir) if report.rollback_dir else None,
        "journal": os.fspath(report.journal) if report.journal else None,
        "verification": None
        if comparison is None
        else {
            "verified": comparison.verified,
            "key_names_compared": comparison.digest_compared,
            "keys": live.keys if live else None,
            "mismatches": [mismatch_json(m) for m in comparison.mismatches],
            "allowances": [allowance_json(a) for a in comparison.allowances],
            "values": None
            if report.values is None
            else {
                "compared": report.values.compared,
                "left_out": report.values.skipped,
                "every_key": report.values.everything,
                "differing": len(report.values.differing),
                "missing": len(report.values.missing),
                "ok": report.values.ok,
            },
        },
        "rollback": _rollback_json(report.rollback),
        "notes": report.notes,
    }


def render_restore(report: RestoreReport, *, width: int | None = None) -> str:
    """The restore report as text: verdict, target, plan or steps, the comparison, the
    rollback and where the kept files are; prose wrapped to ``width``."""
    verdict = VERDICTS[report.outcome]
    if report.outcome == ROLLED_BACK and report.rollback is not None:
        verdict += ", verified" if report.rollback.verified else ", not verified"
    out: list[str] = [verdict_line(f"restore of {report.backup}", verdict)]
    for reason in report.reasons:
        out.append(f"  reason: {reason}")
    t = report.target
    if t is not None:
        state = "running" if t.running else "not running"
        out.append(f"  target: redis {t.version} at {t.address} ({state}), data dir {t.data_dir}")
        aof = "yes" if t.appendonly else "no"
        out.append(
            f"  config: {t.config.path or 'none (CONFIG GET)'}; appendonly {aof}, "
            f"dbfilename {t.setting('dbfilename')}, appenddirname {t.setting('appenddirname')}"
        )
    for note in report.notes:
        out.append(f"  note: {note}")
    if report.plan and report.outcome == PLANNED:
        out.append("")
        plan = tabulate(report.plan, headers=("step", "what it will do"), disable_numparse=True)
        out.append(pre(plan))
    if report.steps:
        out.append("")
        out.append(pre(steps_table(report.steps)))
    if report.comparison is not None:
        out.extend(comparison_lines(report.comparison))
    rb = report.rollback
    if rb is not None:
        out.append("")
        if rb.refused:
            out.append(f"rollback: REFUSED: {rb.reason}")
        else:
            out.append("rollback: " + ("verified" if rb.verified else f"NOT verified: {rb.reason}"))
        if rb.steps:
            out.append(pre(steps_table(rb.steps)))
    if report.rollback_dir is not None and report.outcome != PLANNED:
        out.append("")
        out.append(f"kept: the previous files are in {report.rollback_dir}")
        if report.journal is not None:
            out.append(f"journal: {report.journal}")
    return layout(out, width)


def render_rollback(rb: RollbackReport, *, width: int | None = None) -> str:
    """The report of ``restore --rollback DIR``: its verdict, then its steps."""
    if rb.refused:
        head = f"rollback: REFUSED: {rb.reason}"
    else:
        head = "rollback: " + ("done, verified" if rb.verified else f"FAILED: {rb.reason}")
    if rb.verified and rb.reason:
        head += f" ({rb.reason})"
    lines = [verdict_line("rollback", head.removeprefix("rollback: "))]
    return layout([*lines, *(["", pre(steps_table(rb.steps))] if rb.steps else [])], width)
