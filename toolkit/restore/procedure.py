"""The staged restore into a Redis data directory (../shared/DESIGN.md, "Restore, step by
step"); its rollback is in rollback.py.

    preflight -> gate -> stage -> [confirm] -> save -> stop -> keep -> install -> start -> verify

The first three touch nothing of the target (``--dry-run`` stops after the plan). From ``save``
on, every step is announced in the journal before it runs; a failure from ``stop`` on rolls
back by itself: stop the target, move what was installed into ``rejected/``, move the kept
files back, start the target if it was running, and verify it against the kept files.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from toolkit.backup import check_backup
from toolkit.compare import Comparison
from toolkit.live import LiveKeyspace
from toolkit.problems import gate
from toolkit.redisconf import RedisConfig
from toolkit.restore import control, files
from toolkit.restore.journal import (
    Journal,
    JournalError,
    LockHeld,
    journaled,
    lock_holder,
    locked,
    rollback_folder,
)
from toolkit.restore.options import Options, RestoreError, Say
from toolkit.restore.rollback import RollbackReport, rollback
from toolkit.restore.target import PERSISTENCE, Target, TargetError, discover
from toolkit.restore.verify import verify_target
from toolkit.result import BackupIOError, CheckResult
from toolkit.servers import ServerBinary, ServerError, binary_version
from toolkit.stage import (
    StageReport,
    needed_databases,
    refusals,
    stage,
)
from toolkit.steps import Step

# Outcomes.
RESTORED = "restored"
PLANNED = "planned"  # --dry-run
REFUSED = "refused"
ROLLED_BACK = "rolled-back"
FAILED = "failed"  # and the rollback failed too: the report says what is where
CANCELLED = "cancelled"


class _Refused(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class _StepFailed(Exception):
    """A step from ``stop`` on went wrong: roll back."""


@dataclass
class RestoreReport:
    backup: str
    outcome: str = PLANNED
    reason: str | None = None
    reasons: list[str] = field(default_factory=list)
    result: CheckResult | None = None
    target: Target | None = None
    plan: list[tuple[str, str]] = field(default_factory=list)  # (step, what it will do)
    steps: list[Step] = field(default_factory=list)
    stage: StageReport | None = None
    installed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    rollback_dir: Path | None = None
    journal: Path | None = None
    live: LiveKeyspace | None = None
    comparison: Comparison | None = None
    server_load_seconds: float | None = None
    rollback: RollbackReport | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome in (RESTORED, PLANNED)


# -- preflight and plan ------------------------------------------------------------------


def _names(target: Target) -> list[str]:
    """The data directory's entries that decide what the target loads."""
    names = [target.setting(n) for n in ("dbfilename", "appenddirname", "appendfilename")]
    return list(dict.fromkeys(names))


def _binary(target: Target) -> ServerBinary:
    assert target.executable is not None
    try:
        version = binary_version(target.executable)
    except (ServerError, OSError) as e:
        raise RestoreError(f"{target.executable}: {e}") from None
    return ServerBinary(target.executable, version, "target")


def _layout(result: CheckResult, target: Target, converted: Path | None) -> files.Item:
    """What to install for ``result`` so that ``target`` loads it."""
    dirname = target.setting("appenddirname")
    aofname = target.setting("appendfilename")
    src = Path(result.path)
    if not target.appendonly:
        if result.format == "rdb":
            return files.Item(target.setting("dbfilename"), source=src)
        assert converted is not None  # an AOF becomes an RDB in the stage
        return files.Item(target.setting("dbfilename"), source=converted)
    if result.format == "rdb":
        if target.version_tuple >= (7, 0):
            return files.rdb_as_base(src, dirname, aofname)
        return files.Item(aofname, source=src)  # an RDB is an RDB-preamble AOF to Redis < 7
    assert result.aof is not None
    if result.aof.layout == "multi-part":
        return files.multipart_copy(src, dirname, aofname)
    return files.Item(aofname, source=src)


def _plan_lines(
    target: Target, item: files.Item, opts: Options, folder: Path
) -> list[tuple[str, str]]:
    d = target.data_dir
    kept = files.present(d, _names(target))
    if target.running and not target.appendonly and target.setting("dbfilename") not in kept:
        kept.append(target.setting("dbfilename") + " (written by the save)")
    plan = [
        ("preflight", f"target {target.address}, data dir {d}, redis {target.version}"),
        ("gate", "check the backup; refuse it if invalid" + (" (--force)" if opts.force else "")),
        ("stage", f"load it into a scratch {target.executable}; compare it with the backup"),
    ]
    try:
        earlier = Journal.read(d)
    except JournalError:
        earlier = None  # the restore itself says what is wrong with it
    if earlier is not None:
        plan.append(("undo", f"first roll back the earlier restore cut off at {earlier.last}"))
    if target.running:
        if target.appendonly:
            plan.append(("save", "nothing: appendonly yes, the AOF is fsynced at shutdown"))
        else:
            plan.append(("save", "BGSAVE (a failed save stops the restore here, unchanged)"))
        how = opts.stop_cmd or ("SHUTDOWN NOSAVE" if target.appendonly else "SHUTDOWN SAVE")
        plan.append(("stop", f'CONFIG SET save "", then {how}; wait until the process is gone'))
    else:
        plan.append(("stop", "nothing: the target is not running"))
    plan.append(
        (
            "keep",
            f"move {', '.join(kept) or 'nothing (no data files there)'} into {folder.name}/",
        )
    )
    plan.append(("install", f"copy, fsync, rename into place: {item.describe()}"))
    start = opts.start_cmd or shlex.join(
        [os.fspath(target.executable or "redis-server"), os.fspath(target.config.path or "?")]
    )
    plan.append(("start", f"{start}; wait until loading ends"))
    plan.append(("verify", "per-db keys, expires, types and key-name digest against the backup"))
    plan.append(("rollback", f"on any failure: put {folder.name}/ back, start, verify"))
    return plan


def _preflight(report: RestoreReport, opts: Options, say: Say) -> tuple[Target, CheckResult]:
    with journaled(report.steps, "preflight") as step:
        target = _discover(opts)
        report.target = target
        report.notes.extend(target.notes)
        say(f"target {target.address}: redis {target.version}, data dir {target.data_dir}")
        if not target.data_dir.is_dir():
            raise _Refused([f"the target's data dir {target.data_dir} does not exist"])
        if not os.access(target.data_dir, os.W_OK):
            raise _Refused([f"the target's data dir {target.data_dir} is not writable by rbkit"])
        if target.problems:
            raise _Refused(target.problems)
        if held := lock_holder(target.data_dir):
            raise _Refused([held])
        step.detail = (
            f"redis {target.version} at {target.address}, "
            f"{'running' if target.running else 'not running'}, data dir {target.data_dir}, "
            f"appendonly {'yes' if target.appendonly else 'no'}"
        )
    with journaled(report.steps, "gate") as step:
        try:
            result = check_backup(opts.backup, config=_backup_config(opts.backup, target))
        except BackupIOError as e:
            raise RestoreError(str(e)) from None
        report.result = result
        report.backup = result.path
        report.notes.extend(result.notes)
        verdict = gate(result.problems, opts.force, "restored anyway")
        if verdict.refusal:
            raise _Refused([verdict.refusal])
        step.detail = verdict.detail
        if verdict.forced:
            report.notes.append(verdict.forced)
    with journaled(report.steps, "fit") as step:
        binary = _binary(target)
        server = f"the target runs {target.version}"
        reasons = refusals(result, binary, target.module_paths, server)
        need = needed_databases(result)
        have = int(target.setting("databases"))
        if need > have:
            reasons.append(
                f"the backup uses db {need - 1}, but the target has databases {have} "
                f"(set databases {need} in its config)"
            )
        cut = [p for p in result.problems if p.code in ("truncated_tail", "unterminated_multi")]
        if cut and target.appendonly and target.setting("aof-load-truncated").lower() == "no":
            reasons.append(
                f"the AOF ends cut off ({cut[0].message}) and the target has "
                "aof-load-truncated no: it would refuse to start with it (set it to yes, "
                "Redis's default, to drop the cut-off tail)"
            )
        if result.format != "rdb" and not target.appendonly:
            report.notes.append(
                "an AOF backup into a target with appendonly no: the scratch server's SAVE "
                "turns it into an RDB of the target's own version, and that is installed"
            )
        free = shutil.disk_usage(target.data_dir).free
        need_bytes = _backup_size(result)
        if need_bytes > free:
            reasons.append(
                f"not enough room in {target.data_dir}: the copy needs {need_bytes} bytes, "
                f"{free} are free"
            )
        if reasons:
            raise _Refused(reasons)
        step.detail = f"redis {target.version} reads it; databases {have} >= {need}; disk ok"
    return target, result


def _discover(opts: Options) -> Target:
    """The target, as :func:`discover` finds it. A target that is down after a restore cut
    off is started again with the executable that restore's journal names."""
    try:
        target = discover(
            opts.config, opts.url, executable=opts.redis_server, start_cmd=opts.start_cmd
        )
        if target.running or opts.redis_server is not None:
            return target
        earlier = Journal.read(target.data_dir)
        if earlier is None or not earlier.plan.get("executable"):
            return target
        return discover(
            opts.config,
            opts.url,
            executable=Path(earlier.plan["executable"]),
            start_cmd=opts.start_cmd,
        )
    except TargetError as e:
        raise RestoreError(str(e)) from None
    except JournalError:
        return target  # the restore reads it again under the lock, and says what is wrong


def _backup_config(backup: Path, target: Target) -> RedisConfig | None:
    """A data-directory backup is read with the target's file names (and appendonly)."""
    return target.config if backup.is_dir() else None


def _backup_size(result: CheckResult) -> int:
    if result.aof is not None:
        return sum(f.size for f in result.aof.files)
    return result.size


# -- the restore -------------------------------------------------------------------------


def restore(
    opts: Options,
    *,
    confirm: Callable[[RestoreReport], bool] = lambda _r: True,
    say: Say = lambda _t: None,
) -> RestoreReport:
    """Run the staged restore. Raises RestoreError for usage/I/O problems before any change;
    everything else is in the report (``outcome``)."""
    report = RestoreReport(os.fspath(opts.backup))
    try:
        target, result = _preflight(report, opts, say)
    except _Refused as e:
        return _refuse(report, e.reasons)
    folder = rollback_folder(target.data_dir)
    converted: Path | None = None
    scratch = Path(tempfile.mkdtemp(prefix="rbkit-restore-"))
    try:
        if result.format != "rdb" and not target.appendonly:
            converted = scratch / "converted.rdb"
        item = _layout(result, target, converted or scratch / "converted.rdb")
        report.plan = _plan_lines(target, item, opts, folder)
        if opts.dry_run:
            report.outcome = PLANNED
            return report
        try:
            _stage(report, result, target, opts, converted, say)
        except _Refused as e:
            return _refuse(report, e.reasons)
        if not confirm(report):
            report.outcome = CANCELLED
            report.reason = "not confirmed: nothing was changed"
            return report
        try:
            with locked(target.data_dir) as lock_notes:
                report.notes.extend(lock_notes)
                earlier = Journal.read(target.data_dir)
                if earlier is not None:
                    cut = earlier.last
                    say(f"an earlier restore was cut off at {cut}: rolling it back first")
                    previous = rollback(earlier, target, opts, say)
                    report.notes.append(
                        f"an earlier restore was cut off at {cut}; rolled back first "
                        f"({'verified' if previous.verified else previous.reason})"
                    )
                    if not previous.verified:
                        why = f"the earlier restore's rollback: {previous.reason}"
                        return _refuse(report, [why])
                    # The rollback may have started (or left stopped) the target: look again.
                    stale = target.notes
                    target = report.target = _discover(opts)
                    report.notes = [n for n in report.notes if n not in stale] + target.notes
                    if target.problems:
                        return _refuse(report, target.problems)
                    folder = rollback_folder(target.data_dir)
                    report.plan = _plan_lines(target, item, opts, folder)
                _run(report, result, target, opts, item, folder, say)
        except LockHeld as e:
            return _refuse(report, [str(e)])
        except JournalError as e:
            raise RestoreError(str(e)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def _refuse(report: RestoreReport, reasons: list[str]) -> RestoreReport:
    report.outcome = REFUSED
    report.reasons = reasons
    report.reason = "; ".join(reasons)
    if report.steps and report.steps[-1].status == "failed":
        report.steps[-1].status = "refused"
        report.steps[-1].detail = reasons[0]
    return report


def _stage(
    report: RestoreReport,
    result: CheckResult,
    target: Target,
    opts: Options,
    converted: Path | None,
    say: Say,
) -> None:
    say("staging: loading the backup into a scratch server")
    with journaled(report.steps, "stage") as step:
        staged = stage(
            Path(result.path),
            binary=_binary(target),
            modules=target.module_paths,
            force=opts.force,
            checked=result,
            save_rdb_to=converted,
            server_text=f"the target runs {target.version}",
            load_timeout=opts.timeout,
        )
        report.stage = staged
        if not staged.verified:
            step.status = "refused"
            step.detail = staged.reason or staged.outcome
            raise _Refused([f"the stage ({staged.outcome}): {staged.reason}"])
        version = staged.binary.version_text if staged.binary else "?"
        step.detail = f"loaded and verified in a scratch redis-server {version}"
        if staged.server_load_seconds is not None:
            step.detail += f" (server load {staged.server_load_seconds:.3f} s)"
            report.server_load_seconds = staged.server_load_seconds


def _run(
    report: RestoreReport,
    result: CheckResult,
    target: Target,
    opts: Options,
    item: files.Item,
    folder: Path,
    say: Say,
) -> None:
    d = target.data_dir
    names = _names(target)
    owner = files.owner_for(d, names)
    journal = Journal.create(
        d,
        {
            "backup": report.backup,
            "data_dir": os.fspath(d),
            "rollback_dir": os.fspath(folder),
            "names": names,
            "settings": {name: target.setting(name) for name in PERSISTENCE},
            "was_running": target.running,
            "config": os.fspath(target.config.path) if target.config.path else None,
            "url": target.address,
            "stop_cmd": opts.stop_cmd,
            "start_cmd": opts.start_cmd,
            "executable": os.fspath(target.executable) if target.executable else None,
            "install": item.name,
            "started": time.time(),
        },
    )
    report.journal = journal.path
    report.rollback_dir = folder
    steps = report.steps
    try:
        if target.running and not target.appendonly:
            say("saving the target (BGSAVE)")
            with journaled(steps, "save", journal) as step:
                try:
                    step.detail = control.save(target, opts.timeout, say)
                except control.ControlError as e:
                    step.status = "refused"
                    step.detail = str(e)
                    raise _Refused([f"the target could not save its current data: {e}"]) from None
        with journaled(steps, "stop", journal) as step:
            if target.running:
                say("stopping the target")
                step.detail = control.stop(
                    target, opts.stop_cmd, not target.appendonly, opts.timeout
                )
            else:
                step.detail = "not running"
        with journaled(steps, "keep", journal) as step:
            report.kept = files.move_all(names, d, folder)
            step.detail = f"{', '.join(report.kept) or 'no data files'} -> {folder.name}/"
        with journaled(steps, "install", journal) as step:
            say(f"installing {item.describe()}")
            files.install(item, d, owner)
            report.installed = [item.name]
            step.detail = item.describe() + f", owner {owner.uid}:{owner.gid} mode {owner.mode:o}"
        with journaled(steps, "start", journal) as step:
            say("starting the target")
            since_ms = int(time.time() * 1000)
            step.detail = control.start(target, opts.start_cmd, opts.timeout, say)
        with journaled(steps, "verify", journal) as step:
            say("verifying the restored keyspace")
            keys = report.stage.keys if report.stage else None  # read once, by the stage
            live, comparison = verify_target(target, result, since_ms, target.appendonly, keys)
            report.live, report.comparison = live, comparison
            if not comparison.verified:
                first = comparison.mismatches[0].sentence
                more = len(comparison.mismatches) - 1
                step.status = "mismatch"
                step.detail = first + (f" (and {more} more)" if more else "")
                raise _StepFailed(f"the restored server differs from the backup: {step.detail}")
            step.detail = "counts" + (" and key names" if comparison.digest_compared else "")
            step.detail += " match"
    except _Refused as e:
        journal.write("refused", "done", reason=e.reasons[0])
        journal.close(folder)
        report.journal = folder / journal.path.name
        _refuse(report, e.reasons)
        return
    except (
        _StepFailed,
        control.ControlError,
        OSError,
        redis.RedisError,
        TargetError,
        KeyboardInterrupt,
        SystemExit,  # SIGTERM (restore_cli turns it into SystemExit)
    ) as e:
        if isinstance(e, KeyboardInterrupt | SystemExit):
            reason = "interrupted (Ctrl-C)" if isinstance(e, KeyboardInterrupt) else "terminated"
        elif isinstance(e, redis.RedisError):
            reason = f"{target.address}: {e}"
        else:
            reason = str(e)
        report.reason = reason
        report.reasons = [reason]
        say(f"failed: {reason}; rolling back")
        report.rollback = rollback(journal, target, opts, say)
        report.outcome = ROLLED_BACK if report.rollback.verified else FAILED
        report.journal = journal.path
        return
    journal.write("restored", "done")
    journal.close(folder)
    report.journal = journal.path
    report.outcome = RESTORED
