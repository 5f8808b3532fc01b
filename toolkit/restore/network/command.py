"""The network restore (``rbkit restore --to URL``): its steps, from a backup to a report.

Steps: gate (check the backup; invalid -> refused unless --force), convert (an AOF only: the
restore drill loads it into a scratch server here, which saves it as an RDB), connect (what
the target says about itself), journal (an interrupted restore's journal: resumed with
--resume, discarded with --restart, else a refusal; resume.py), preflight (the plan: path,
per-db counts, refusals), confirm (the caller's ``confirm``), load, verify. A dry run stops
after the preflight.

The report's outcome says how it ended: restored and verified, planned, refused (by the gate
or the preflight, or not confirmed), failed midway, or the target does not hold what the
backup holds. A backup that cannot be read, an unusable URL, or a target that cannot be
reached or refuses the password raise an RbkitError instead.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, suppress
from pathlib import Path

import redis

from parsers.errors import FormatError
from toolkit import lifeline
from toolkit.check.backup import check_backup
from toolkit.check.cluster.layout import is_set
from toolkit.check.problems import gate
from toolkit.check.result import CheckResult
from toolkit.errors import ConnectError, RestoreError, TargetError
from toolkit.restore.network import resume as journals
from toolkit.restore.network.cluster_set import SetSource, set_result
from toolkit.restore.network.load import LoadStats, load, restore_snapshot
from toolkit.restore.network.plan import make_plan
from toolkit.restore.network.report import NetworkReport
from toolkit.restore.network.selection import KEEP, REPLACE, Selection, plan_selection
from toolkit.restore.network.source import RdbSource, aof_to_rdb
from toolkit.restore.network.target import TargetInfo, inspect_target, parse_target
from toolkit.restore.network.verify import verify
from toolkit.server.connect import ConnectOptions, Server
from toolkit.stage.compare import BackupKeys, backup_keys
from toolkit.steps import (
    CANCELLED,
    FAILED,
    MISMATCH,
    PLANNED,
    REFUSED,
    ProgressFactory,
    Step,
    no_progress,
    timed,
)
from toolkit.text import count, plural, size


class _Stop(Exception):
    """The restore ends here; the report says why."""


def restore_to(
    backup: Path,
    url: str,
    *,
    cluster: bool,
    replace: bool,
    force: bool,
    dry_run: bool,
    config: Path | None = None,
    modules: Sequence[Path] = (),
    confirm: Callable[[NetworkReport], bool] = lambda _r: True,
    progress: ProgressFactory | None = None,
    connect: ConnectOptions | None = None,
    resume: bool = False,
    restart: bool = False,
    journal: Path | None = None,
    selection: Selection | None = None,
) -> NetworkReport:
    """Restore ``backup`` into the server (or cluster) at ``url`` (or ``host:port``, reached
    with ``connect``) and report; ``confirm`` is asked once the plan is made. ``resume``
    continues the restore an interrupted run journaled, ``restart`` discards its journal
    (kept at ``journal``, default resume.py's). ``selection``: which keys, what of keys
    already there, which TTLs (selection.py). Raises an RbkitError for a usage or I/O
    problem."""
    if is_set(backup) and not cluster:
        raise RestoreError(
            f"{backup}: a cluster backup set goes into a cluster: pass --cluster (and any "
            "node's URL); its keys are routed by slot"
        )
    target = parse_target(url, connect)
    report = NetworkReport(str(backup), target.display, dry_run)
    progress = progress or no_progress
    asked = _Journaling(resume, restart, journal)
    selection = selection or Selection()
    if replace and selection.on_conflict is None and selection.selects:  # --replace
        selection = dataclasses.replace(selection, on_conflict=REPLACE)
    replace = replace or selection.conflict_mode == REPLACE
    with ExitStack() as stack, suppress(_Stop):
        _run(
            report, stack, backup, target, config, cluster, replace, force, modules, confirm,
            progress, asked, selection,
        )  # fmt: skip
    return report


class _Journaling:
    """What was asked of the journal (--resume, --restart, --journal)."""

    def __init__(self, resume: bool, restart: bool, file: Path | None) -> None:
        self.resume, self.restart, self.file = resume, restart, file


def _step(report: NetworkReport, name: str) -> AbstractContextManager[Step]:
    return timed(report.steps, name)


def _stop(report: NetworkReport, step: Step, outcome: str, reasons: list[str]) -> _Stop:
    step.status = "refused" if outcome in (REFUSED, CANCELLED) else outcome
    step.detail = reasons[0] + (f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else "")
    report.stop(outcome, reasons)
    return _Stop()


def _run(
    report: NetworkReport,
    stack: ExitStack,
    backup: Path,
    target: Server,
    config: Path | None,
    cluster: bool,
    replace: bool,
    force: bool,
    modules: Sequence[Path],
    confirm: Callable[[NetworkReport], bool],
    progress_for: ProgressFactory,
    asked: _Journaling,
    selection: Selection,
) -> None:
    set_source: SetSource | None = None
    if is_set(backup):
        rdb_result, set_source = _set_gate(report, stack, backup, force, modules)
        source: RdbSource | SetSource = set_source
    else:
        result = _gate(report, backup, config, force, modules, progress_for)
        rdb_result, source = _source(report, stack, result, force, modules)
    with _step(report, "connect") as step:
        dbs = sorted(rdb_result.inventory.databases) if rdb_result.inventory else []
        info = inspect_target(target, cluster=cluster, dbs=dbs)
        where = f"cluster of {len(info.nodes)} primaries" if info.cluster_enabled else "standalone"
        step.detail = f"{info.name}, {where}"
        report.notes.extend(info.notes)
    if set_source is not None:
        resumption = _journal(report, backup, journals.SET, info, replace, asked)
    else:
        unjournaled = journals.AOF if result.format == "aof" else None
        if selection.selects or selection.ttl != KEEP:
            unjournaled = journals.SELECTIVE
        resumption = _journal(report, Path(result.path), unjournaled, info, replace, asked)
    if resumption.previous is not None:
        stack.callback(resumption.previous.release)
    with _step(report, "preflight") as step:
        try:
            plan = make_plan(
                rdb_result, source, info, cluster=cluster, replace=replace, force=force,
                by_key=selection.by_key, keys_only=selection.selects,
            )  # fmt: skip
            if selection.active:
                converted = report.restored_file is not None
                plan.selection = plan_selection(
                    plan, rdb_result, source, selection, target, converted=converted
                )
        except FormatError as e:  # a damaged backup let through by --force
            raise _stop(report, step, REFUSED, [f"reading the backup: {e}"]) from None
        except (redis.RedisError, OSError) as e:
            raise _stop(report, step, REFUSED, [f"reading {target.display}: {e}"]) from None
        report.plan = plan
        if plan.refused:
            raise _stop(report, step, REFUSED, plan.refusals)
        step.detail = f"{plan.keys_to_restore} keys by {plan.path}"
        if plan.losses:
            n = len(plan.losses)
            step.detail += f"; --force overrides {plural(n, 'refusal')}"
    if report.dry_run:
        report.outcome = PLANNED
        return
    with _step(report, "confirm") as step:
        if not confirm(report):
            raise _stop(report, step, CANCELLED, ["not confirmed"])
        step.detail = "confirmed"
    journal = _open_journal(resumption, info, replace, plan.path)
    if journal is not None:
        stack.callback(journal.release)
    progress = progress_for(f"restoring {backup.name}")
    if plan.selection is not None:
        plan.selection.picker.base_ms = int(time.time() * 1000)  # where --ttl shift counts from
    with _step(report, "load") as step:
        try:
            stats = load(plan, source, target, progress=progress, journal=journal,
                         stats=_stats_from(resumption))  # fmt: skip
        finally:
            if progress is not None:
                progress.close()
        report.stats = stats
        if report.journal is not None:
            report.journal.kept = bool(stats.stopped or stats.failures)
        earlier = sum(stats.resumed.values())
        step.detail = (
            f"{plural(stats.keys, 'key')}"
            + (f" ({count(earlier)} by the interrupted run)" if earlier else "")
            + f", {plural(stats.commands, 'command')} in "
            f"{plural(stats.batches, 'batch', 'batches')}, "
            f"{size(stats.bytes)}"
        )
        if stats.stopped or stats.failures:
            report.keys_after = _keys_after(report, target)
            reasons = [stats.stopped or "a command failed"]
            reasons += [f.error for f in stats.failures[:1]]
            if report.journal is not None:
                reasons.append(
                    f"the journal {report.journal.path} is kept: the same command with "
                    "--resume continues after the last acknowledged batch"
                )
            raise _stop(report, step, FAILED, reasons)
    with _step(report, "verify") as step:
        keys = _backup_keys(rdb_result, set_source) if plan.target_empty else None
        try:
            verification = verify(plan, rdb_result, source, target, stats, keys)
        except (redis.RedisError, OSError) as e:
            raise _stop(report, step, FAILED, [f"reading {target.display} back: {e}"]) from None
        except FormatError as e:  # a damaged backup let through by --force
            raise _stop(report, step, FAILED, [f"reading the backup again: {e}"]) from None
        report.verification = verification
        if verification.comparison is not None:
            report.notes.extend(verification.comparison.notes)
        report.keys_after = _keys_after(report, target)
        if journal is not None:
            journal.remove()  # the restore ended: verified, or found different
        if not verification.verified:
            first = verification.mismatches[0].sentence if verification.mismatches else "?"
            more = verification.mismatch_count - 1
            reason = f"the target differs from the backup: {first}"
            raise _stop(report, step, MISMATCH, [reason + (f" (and {more} more)" if more else "")])
        checked = plural(verification.checked, "key")
        step.detail = f"{verification.mode}: {checked} read back, as expected"


def _journal(
    report: NetworkReport,
    backup: Path,
    unjournaled: tuple[str, str] | None,
    info: TargetInfo,
    replace: bool,
    asked: _Journaling,
) -> journals.Resumption:
    """The journal step: a fresh restore, a resumed one, or a refusal (resume.py)."""
    with _step(report, "journal") as step:
        try:
            resumption = journals.prepare(
                backup,
                unjournaled=unjournaled,
                info=info,
                replace=replace,
                resume=asked.resume,
                restart=asked.restart,
                journal=asked.file,
                dry_run=report.dry_run,
            )
        except journals.Refused as e:
            raise _stop(report, step, REFUSED, e.reasons) from None
        report.notes.extend(resumption.notes)
        report.journal = journals.JournalReport.of(resumption)
        previous = resumption.previous
        if previous is not None:
            note = journals.discount(info, previous)
            if note:
                report.notes.append(note)
            step.detail = f"resuming: {previous.summary()}"
        else:
            step.detail = f"none kept ({unjournaled[0]})" if unjournaled is not None else "new"
        return resumption


def _open_journal(
    r: journals.Resumption, info: TargetInfo, replace: bool, path: str
) -> journals.Journal | None:
    if r.file is None:
        return None
    if r.previous is not None:
        return r.previous
    header = journals.header_for(r.backup, r.sha256, info, replace, path)
    return journals.Journal.create(r.file, header)


def _stats_from(r: journals.Resumption) -> LoadStats | None:
    """The counts where the interrupted run left them (None: a fresh restore)."""
    p = r.previous
    if p is None:
        return None
    stats = LoadStats()
    restore_snapshot(stats, p.restored, p.walked)
    stats.started_ms = p.header.started_ms
    return stats


def _gate(
    report: NetworkReport,
    backup: Path,
    config: Path | None,
    force: bool,
    modules: Sequence[Path],
    progress_for: ProgressFactory,
) -> CheckResult:
    with _step(report, "gate") as step:
        progress = progress_for(f"checking {backup.name}")
        try:
            result = check_backup(
                backup,
                config_path=config,
                progress=progress,
                modules=tuple(os.fspath(m) for m in modules),
            )
        finally:
            if progress is not None:
                progress.close()
        report.result = result
        report.backup = result.name
        report.notes.extend(result.notes)
        verdict = gate(result.problems, force, "restored anyway")
        if verdict.refusal:
            raise _stop(report, step, REFUSED, [verdict.refusal])
        step.detail = verdict.detail
        if verdict.forced:
            report.notes.append(verdict.forced)
        return result


def _source(
    report: NetworkReport,
    stack: ExitStack,
    result: CheckResult,
    force: bool,
    modules: Sequence[Path] = (),
) -> tuple[CheckResult, RdbSource]:
    """The RDB to send: the backup itself, or the RDB an AOF backup turns into."""
    rdb_result, path = _rdb_of(report, stack, result, force, modules)
    return rdb_result, stack.enter_context(RdbSource(path))


def _set_gate(
    report: NetworkReport,
    stack: ExitStack,
    backup: Path,
    force: bool,
    modules: Sequence[Path],
) -> tuple[CheckResult, SetSource]:
    """The gate of a cluster backup set (check --cluster: one verdict over every shard), then
    its shards' RDB files as one source."""
    from toolkit.check.cluster.verdict import check_cluster

    with _step(report, "gate") as step:
        check = check_cluster(backup)
        report.backup = str(backup)
        verdict = gate(check.problems, force, "restored anyway")
        if verdict.refusal:
            report.result = set_result(check, [s.result for s in check.shards if s.result])
            raise _stop(report, step, REFUSED, [verdict.refusal])
        step.detail = f"cluster backup set of {plural(len(check.shards), 'shard')}: "
        step.detail += verdict.detail
        if verdict.forced:
            report.notes.append(verdict.forced)
    rdbs = [
        _rdb_of(report, stack, s.result, force, modules)
        for s in check.shards
        if s.result is not None
    ]
    report.result = set_result(check, [r for r, _ in rdbs])
    report.notes.extend(report.result.notes)
    return report.result, stack.enter_context(SetSource([p for _, p in rdbs]))


def _rdb_of(
    report: NetworkReport,
    stack: ExitStack,
    result: CheckResult,
    force: bool,
    modules: Sequence[Path] = (),
) -> tuple[CheckResult, Path]:
    """The RDB file to send: the backup itself, or the RDB an AOF backup turns into."""
    if result.format != "aof":
        return result, Path(result.path)
    with _step(report, "convert") as step:
        converted, reasons = aof_to_rdb(result, force=force, modules=modules)
        if converted is None:
            raise _stop(report, step, REFUSED, reasons)
        stack.callback(lifeline.remove_dir, converted.directory)
        report.notes.extend(converted.notes)
        rdb_result = check_backup(converted.path)
        report.restored_file = rdb_result
        step.detail = (
            f"loaded, verified and saved as RDB {rdb_result.rdb_version} by a scratch server here"
        )
    return rdb_result, converted.path


def _backup_keys(result: CheckResult, set_source: SetSource | None) -> BackupKeys | None:
    """The backup's key names (for the exact read-back), or None when unreadable."""
    try:
        return set_source.backup_keys() if set_source is not None else backup_keys(result)
    except (FormatError, OSError):
        return None


def _keys_after(report: NetworkReport, target: Server) -> dict[int, int] | None:
    """INFO keyspace of the target (all primaries of a cluster) once written."""
    plan = report.plan
    if plan is None:
        return None
    try:
        info = inspect_target(target, cluster=plan.target.cluster_enabled)
    except (TargetError, ConnectError):
        return None
    return info.keys_by_db()
