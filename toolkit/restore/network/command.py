"""The network restore (``rbkit restore --to URL``): its steps, from a backup to a report.

Steps: gate (check the backup; invalid -> refused unless --force), convert (an AOF only: the
restore drill loads it into a scratch server here, which saves it as an RDB), connect (what
the target says about itself), preflight (the plan: path, per-db counts, refusals), confirm
(the caller's ``confirm``), load, verify. A dry run stops after the preflight.

The report's outcome says how it ended: restored and verified, planned, refused (by the gate
or the preflight, or not confirmed), failed midway, or the target does not hold what the
backup holds. A backup that cannot be read, an unusable URL, or a target that cannot be
reached or refuses the password raise an RbkitError instead.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack, suppress
from pathlib import Path

import redis

from parsers.errors import FormatError
from toolkit import lifeline
from toolkit.check.backup import check_backup
from toolkit.check.problems import gate
from toolkit.check.result import CheckResult
from toolkit.errors import ConnectError, TargetError
from toolkit.restore.network.load import load
from toolkit.restore.network.plan import make_plan
from toolkit.restore.network.report import (
    NetworkReport,
)
from toolkit.restore.network.source import RdbSource, aof_to_rdb
from toolkit.restore.network.target import inspect_target, parse_target
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
from toolkit.text import plural, size


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
) -> NetworkReport:
    """Restore ``backup`` into the server (or cluster) at ``url`` (or ``host:port``, reached
    with ``connect``) and report; ``confirm`` is asked once the plan is made. Raises an
    RbkitError for a usage or I/O problem."""
    target = parse_target(url, connect)
    report = NetworkReport(str(backup), target.display, dry_run)
    progress = progress or no_progress
    with ExitStack() as stack, suppress(_Stop):
        _run(
            report, stack, backup, target, config, cluster, replace, force, modules, confirm,
            progress,
        )  # fmt: skip
    return report


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
) -> None:
    result = _gate(report, backup, config, force, modules, progress_for)
    rdb_result, source = _source(report, stack, result, force, modules)
    with _step(report, "connect") as step:
        dbs = sorted(rdb_result.inventory.databases) if rdb_result.inventory else []
        info = inspect_target(target, cluster=cluster, dbs=dbs)
        where = f"cluster of {len(info.nodes)} primaries" if info.cluster_enabled else "standalone"
        step.detail = f"{info.name}, {where}"
    with _step(report, "preflight") as step:
        try:
            plan = make_plan(
                rdb_result, source, info, cluster=cluster, replace=replace, force=force
            )
        except FormatError as e:  # a damaged backup let through by --force
            raise _stop(report, step, REFUSED, [f"reading the backup: {e}"]) from None
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
    progress = progress_for(f"restoring {backup.name}")
    with _step(report, "load") as step:
        try:
            stats = load(plan, source, target, progress=progress)
        finally:
            if progress is not None:
                progress.close()
        report.stats = stats
        step.detail = (
            f"{plural(stats.keys, 'key')}, {plural(stats.commands, 'command')} in "
            f"{plural(stats.batches, 'batch', 'batches')}, "
            f"{size(stats.bytes)}"
        )
        if stats.stopped or stats.failures:
            report.keys_after = _keys_after(report, target)
            reasons = [stats.stopped or "a command failed"]
            reasons += [f.error for f in stats.failures[:1]]
            raise _stop(report, step, FAILED, reasons)
    with _step(report, "verify") as step:
        keys = _backup_keys(rdb_result) if plan.target_empty else None
        try:
            verification = verify(plan, rdb_result, source, target, stats, keys)
        except (redis.RedisError, OSError) as e:
            raise _stop(report, step, FAILED, [f"reading {target.display} back: {e}"]) from None
        except FormatError as e:  # a damaged backup let through by --force
            raise _stop(report, step, FAILED, [f"reading the backup again: {e}"]) from None
        report.verification = verification
        report.keys_after = _keys_after(report, target)
        if not verification.verified:
            first = verification.mismatches[0].sentence if verification.mismatches else "?"
            more = verification.mismatch_count - 1
            reason = f"the target differs from the backup: {first}"
            raise _stop(report, step, MISMATCH, [reason + (f" (and {more} more)" if more else "")])
        checked = plural(verification.checked, "key")
        step.detail = f"{verification.mode}: {checked} read back, as expected"


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
    if result.format != "aof":
        return result, stack.enter_context(RdbSource(Path(result.path)))
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
    return rdb_result, stack.enter_context(RdbSource(converted.path))


def _backup_keys(result: CheckResult) -> BackupKeys | None:
    """The backup's key names (for the exact read-back), or None when unreadable."""
    try:
        return backup_keys(result)
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
