"""The staged restore into a Redis data directory; its rollback is in rollback.py.

    preflight -> copy -> gate -> fit -> stage -> [confirm]
              -> save -> stop -> keep -> install -> start -> verify

Up to the stage nothing of the target changes (``--dry-run`` stops after the plan; the only
thing written is the restore's private copy of the backup, a hidden folder in the data
directory, which is what gets checked, staged and, digest checked again, installed). An
RDB's scratch server starts loading that copy while the gate checks it (the stage takes it
over once the gate has passed). From ``save`` on, every step is announced in the journal
before it runs.

No acknowledged write is lost: the old server stops by ``SHUTDOWN SAVE`` (or refuses, runs on,
and the restore is refused); with ``--stop-cmd`` writes are held off (``CLIENT PAUSE WRITE``)
from the save on. Writes that reach it during the restore are counted and named: they are in
the kept files. The restored server is started by the same binary as the same user, and holds
client writes off from its first answer until it is verified (counts, key names, and values
of a sample of keys). A failure from ``stop`` on rolls back by itself (rollback.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from parsers.errors import FormatError
from toolkit.ahead import Ahead
from toolkit.check.backup import check_backup, note_source
from toolkit.check.locate import RDB, Located, locate
from toolkit.check.problems import gate
from toolkit.check.result import CheckResult
from toolkit.errors import (
    BackupIOError,
    ConfigError,
    JournalError,
    RbkitError,
    RestoreError,
    ServerError,
    TargetError,
)
from toolkit.restore import control, files
from toolkit.restore.journal import (
    JOURNAL,
    Journal,
    LockHeld,
    journaled,
    lock_holder,
    locked,
    rollback_folder,
)
from toolkit.restore.options import Options, Say
from toolkit.restore.rollback import RollbackReport, pause_for, rollback
from toolkit.restore.target import PERSISTENCE, Target, discover
from toolkit.restore.values import Sample, ValueCheck, compare_sample, sample_ahead
from toolkit.restore.verify import verify_target
from toolkit.restore.writes import WritePause, write_calls, write_commands
from toolkit.server.config import RedisConfig, read_config
from toolkit.server.process import ServerBinary, binary_version
from toolkit.server.read import LiveKeyspace
from toolkit.stage.compare import Comparison
from toolkit.stage.compat import needed_databases, refusals
from toolkit.stage.drill import StageReport, stage
from toolkit.stage.scratch import EarlyLoad
from toolkit.steps import (
    CANCELLED,
    FAILED,
    PLANNED,
    REFUSED,
    RESTORED,
    ROLLED_BACK,
    UNVERIFIED,
    Step,
    progress_of,
)


class _Refused(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class _StepFailed(Exception):
    """A step from ``stop`` on went wrong: roll back."""


@dataclass
class Writes:
    """Client writes on the target, as its INFO commandstats counts them."""

    names: frozenset[str] = frozenset()  # the commands that write, on this server
    at_preflight: int | None = None  # the old server's count when rbkit first looked
    during: int | None = None  # writes between the preflight and the stop (in the kept files)
    before_pause: int | None = None  # writes the restored server took before rbkit paused


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
    digests: dict[str, str] = field(default_factory=dict)  # the checked copy's sha256s
    rollback_dir: Path | None = None
    journal: Path | None = None
    live: LiveKeyspace | None = None
    comparison: Comparison | None = None
    values: ValueCheck | None = None
    writes: Writes = field(default_factory=Writes)
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
        try:
            return files.multipart_copy(src, dirname, aofname)
        except FormatError as e:
            raise _Refused([f"the backup's manifest cannot be installed: {e}"]) from None
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
        ("copy", "a private copy of the backup in the data dir, its sha256 taken"),
        ("gate", "check the copy; refuse it if invalid" + (" (--force)" if opts.force else "")),
        ("stage", f"load it into a scratch {target.executable}; compare it with the backup"),
    ]
    try:
        earlier = Journal.read(d)
    except JournalError:
        earlier = None  # the restore itself says what is wrong with it
    if earlier is not None:
        plan.append(("undo", f"first roll back the earlier restore cut off at {earlier.last}"))
    pause = "CLIENT PAUSE WRITE, then " if target.pausable else ""
    if target.running:
        if target.appendonly:
            plan.append(("save", "nothing: appendonly yes, the AOF is fsynced at shutdown"))
        elif opts.stop_cmd:
            plan.append(("save", f"{pause}BGSAVE: from here on writes wait for the restore"))
        else:
            plan.append(("save", "BGSAVE (a failed save stops the restore here, unchanged)"))
        how = opts.stop_cmd or ("SHUTDOWN" if target.appendonly else "SHUTDOWN SAVE")
        plan.append(("stop", f"{pause}{how}; wait until the process is gone"))
    else:
        plan.append(("stop", "nothing: the target is not running"))
    plan.append(
        (
            "keep",
            f"move {', '.join(kept) or 'nothing (no data files there)'} into {folder.name}/",
        )
    )
    plan.append(("install", f"sha256 checked again, renamed into place: {item.describe()}"))
    user = f" as {target.run_as}" if target.run_as and opts.start_cmd is None else ""
    start = opts.start_cmd or shlex.join(
        [os.fspath(target.executable or "redis-server"), os.fspath(target.config.path or "?")]
    )
    plan.append(("start", f"{start}{user}; writes wait from its first answer on"))
    values = "every key's value" if opts.verify_values else "the values of a sample of keys"
    plan.append(("verify", f"per-db keys, expires, types, key names and {values}"))
    plan.append(("rollback", f"on any failure: put {folder.name}/ back, start, verify"))
    return plan


def _preflight(report: RestoreReport, opts: Options, say: Say) -> Target:
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
        if target.running:
            _count_writes(report, target)
        step.detail = (
            f"redis {target.version} at {target.address}, "
            f"{'running' if target.running else 'not running'}, data dir {target.data_dir}, "
            f"appendonly {'yes' if target.appendonly else 'no'}"
        )
    return target


def _count_writes(report: RestoreReport, target: Target) -> None:
    client = target.client(timeout=30)
    try:
        report.writes.names = write_commands(client)
        report.writes.at_preflight = write_calls(client, report.writes.names)
    except redis.RedisError as e:
        raise RestoreError(f"{target.address}: {e}") from None
    finally:
        client.close()
    if target.clients:
        report.notes.append(
            f"{target.clients} other clients are connected to the target: their writes until "
            "the stop are saved in the kept files, not in the restored data; from the stop "
            "until the restored server is verified, writes wait"
            + ("" if target.pausable else " (not on this version: it has no CLIENT PAUSE WRITE)")
        )


def _locate(opts: Options, target: Target) -> Located:
    try:
        return locate(opts.backup, _backup_config(opts.backup, target))
    except BackupIOError as e:
        raise RestoreError(str(e)) from None


def _copy(
    report: RestoreReport, target: Target, opts: Options, found: Located
) -> files.PrivateCopy:
    with journaled(report.steps, "copy") as step:
        try:
            need = sum(p.stat().st_size for p in files.backup_files(found))
        except OSError as e:
            raise RestoreError(f"{found.path}: {e.strerror or e}") from None
        free = shutil.disk_usage(target.data_dir).free
        if need > free:
            raise _Refused(
                [
                    f"not enough room in {target.data_dir}: the copy needs {need} bytes, "
                    f"{free} are free"
                ]
            )
        try:
            private = files.private_copy(found, target.data_dir)
        except OSError as e:
            raise _Refused([f"copying the backup into {target.data_dir}: {e}"]) from None
        report.digests = dict(private.digests)
        step.detail = f"{need} bytes into {private.directory.name}/, sha256 taken"
        return private


def _gate(report: RestoreReport, opts: Options, target: Target, path: Path) -> CheckResult:
    with journaled(report.steps, "gate") as step:
        config = _backup_config(opts.backup, target)
        # The modules the target loads: an AOF's commands of those are no error.
        modules = (*target.module_names, *(os.fspath(m) for m in target.module_paths))
        try:
            with progress_of(opts.progress, f"checking {path.name}") as bar:
                result = check_backup(path, config=config, modules=modules, progress=bar)
        except BackupIOError as e:
            raise RestoreError(str(e)) from None
        note_source(result, opts.backup)  # ``path`` is the private copy of a local backup
        report.result = result
        report.notes.extend(n for n in result.notes if n not in report.notes)
        verdict = gate(result.problems, opts.force, "restored anyway")
        if verdict.refusal:
            raise _Refused([verdict.refusal])
        step.detail = verdict.detail
        if verdict.forced:
            report.notes.append(verdict.forced)
        return result


def _fit(report: RestoreReport, opts: Options, target: Target, result: CheckResult) -> None:
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
        if opts.stop_cmd and target.running and not target.appendonly and not target.pausable:
            reasons.append(
                f"with --stop-cmd and appendonly no, rbkit holds writes off from its save to the "
                f"stop (CLIENT PAUSE WRITE, Redis >= 6.2); the target runs {target.version}: "
                "leave out --stop-cmd (rbkit stops it by SHUTDOWN SAVE)"
            )
        if result.format != "rdb" and not target.appendonly:
            report.notes.append(
                "an AOF backup into a target with appendonly no: the scratch server's SAVE "
                "turns it into an RDB of the target's own version, and that is installed"
            )
        if reasons:
            raise _Refused(reasons)
        step.detail = f"redis {target.version} reads it; databases {have} >= {need}"


def _discover(opts: Options) -> Target:
    """The target, as :func:`discover` finds it. A target that is down after a restore cut
    off is started again with the executable that restore's journal names."""
    executable = opts.redis_server
    if executable is None and opts.config is not None:
        executable = _recorded_executable(opts.config)
    try:
        return discover(
            opts.config,
            opts.url,
            executable=executable,
            start_cmd=opts.start_cmd,
            stop_cmd=opts.stop_cmd,
            connect=opts.connect,
        )
    except TargetError as e:
        raise RestoreError(str(e)) from None


def _recorded_executable(config: Path) -> Path | None:
    """The binary an earlier, cut-off restore in the data dir ``config`` names recorded."""
    try:
        earlier = Journal.read(read_config(config.absolute()).data_dir)
    except (ConfigError, JournalError):
        return None  # the restore reads them again, and says what is wrong
    if earlier is None or not earlier.plan.get("executable"):
        return None
    return Path(earlier.plan["executable"])


def _backup_config(backup: Path, target: Target) -> RedisConfig | None:
    """A data-directory backup is read with the target's file names (and appendonly)."""
    return target.config if backup.is_dir() else None


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
    private: files.PrivateCopy | None = None
    early: EarlyLoad | None = None
    try:
        try:
            target = _preflight(report, opts, say)
            found = _locate(opts, target)
            if opts.dry_run:  # nothing written: the plan is made from the backup as it is
                result = _gate(report, opts, target, found.path)
            else:
                private = _copy(report, target, opts, found)
                early = _early_load(found, target, private)
                result = _gate(report, opts, target, private.backup)
            result.notes[:0] = [n for n in found.notes if n not in result.notes]
            _fit(report, opts, target, result)
            folder = rollback_folder(target.data_dir)
            converted = None
            if result.format != "rdb":  # the stage saves it as an RDB: the values' reference
                converted = (private.directory if private else target.data_dir) / "converted.rdb"
            item = _layout(result, target, converted)
            report.plan = _plan_lines(target, item, opts, folder)
            if opts.dry_run:
                report.outcome = PLANNED
                return report
            assert private is not None
            # The value check's sample is read from the backup while the scratch server loads
            # it (an AOF's: from the RDB the stage saves, after it).
            ahead = _sample_ahead(result, None, opts) if converted is None else None
            _stage(report, result, target, opts, converted, say, early)
            if converted is not None:
                private.add(converted)
                report.digests = dict(private.digests)
                ahead = _sample_ahead(result, converted, opts)
            sample = _sample_of(ahead)  # ready before the target is touched
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
                    target, folder = _undo_earlier(report, earlier, target, opts, item, say)
                    if report.outcome == REFUSED:
                        return report
                _run(report, result, target, opts, item, folder, private, sample, say)
        except LockHeld as e:
            return _refuse(report, [str(e)])
        except JournalError as e:
            raise RestoreError(str(e)) from None
    finally:
        if early is not None:
            early.close()  # (unless the stage took it)
        if private is not None:
            private.remove()
    return report


def _early_load(found: Located, target: Target, private: files.PrivateCopy) -> EarlyLoad | None:
    """A scratch server loading the private copy of an RDB while the gate checks it (the two
    take the machine's two cores); the stage takes it over once the gate has passed. None
    (the stage starts its own after the gate) for an AOF, or where it cannot start."""
    if found.kind != RDB or target.executable is None:
        return None
    try:
        binary = _binary(target)
        databases = int(target.setting("databases"))
        return EarlyLoad(private.backup, binary, databases, target.module_paths)
    except (RbkitError, OSError, ValueError, subprocess.SubprocessError):
        return None  # the stage, after the gate, says what is wrong


def _undo_earlier(
    report: RestoreReport,
    earlier: Journal,
    target: Target,
    opts: Options,
    item: files.Item,
    say: Say,
) -> tuple[Target, Path]:
    """Roll back the restore an earlier run left cut off; then look at the target again."""
    cut = earlier.last
    say(f"an earlier restore was cut off at {cut}: rolling it back first")
    previous = rollback(earlier, target, opts, say)
    report.notes.append(
        f"an earlier restore was cut off at {cut}; rolled back first "
        f"({previous.reason or 'verified'})"
    )
    if not previous.verified:
        _refuse(report, [f"the earlier restore's rollback: {previous.reason}"])
        return target, rollback_folder(target.data_dir)
    # The rollback may have started (or left stopped) the target: look again.
    stale = target.notes
    target = report.target = _discover(opts)
    report.notes = [n for n in report.notes if n not in stale] + target.notes
    if target.problems:
        _refuse(report, target.problems)
    elif target.running:
        _count_writes(report, target)
    folder = rollback_folder(target.data_dir)
    report.plan = _plan_lines(target, item, opts, folder)
    return target, folder


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
    early: EarlyLoad | None = None,
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
            progress=opts.progress,
            counts_only=True,  # the target is read key by key once restored
            early=early,
        )
        report.stage = staged
        if not staged.verified:
            step.status = "refused"
            step.detail = staged.reason or staged.outcome
            raise _Refused([f"the stage ({staged.outcome}): {staged.reason}"])
        version = staged.binary.version_text if staged.binary else "?"
        step.detail = f"loaded in a scratch redis-server {version}, its key counts verified"
        if staged.server_load_seconds is not None:
            step.detail += f" (server load {staged.server_load_seconds:.3f} s)"
            report.server_load_seconds = staged.server_load_seconds


def _journal_plan(
    report: RestoreReport, target: Target, opts: Options, item: files.Item, folder: Path
) -> dict[str, object]:
    d = target.data_dir
    run_as = target.run_as
    return {
        "backup": report.backup,
        "data_dir": os.fspath(d),
        "rollback_dir": os.fspath(folder),
        "names": _names(target),
        "settings": {name: target.setting(name) for name in PERSISTENCE},
        "was_running": target.running,
        "run_id": target.run_id,
        "pid": target.pid,
        "run_as": [run_as.uid, run_as.gid, list(run_as.groups)] if run_as else None,
        "config": os.fspath(target.config.path) if target.config.path else None,
        "url": target.address,
        "stop_cmd": opts.stop_cmd,
        "start_cmd": opts.start_cmd,
        "executable": os.fspath(target.executable) if target.executable else None,
        "install": item.name,
        "sha256": report.digests,
    }


def _run(
    report: RestoreReport,
    result: CheckResult,
    target: Target,
    opts: Options,
    item: files.Item,
    folder: Path,
    private: files.PrivateCopy,
    sample: Sample | None,
    say: Say,
) -> None:
    d = target.data_dir
    names = _names(target)
    owner = files.owner_for(d, names, target.run_as)
    journal = Journal.create(d, _journal_plan(report, target, opts, item, folder))
    report.journal = journal.path
    report.rollback_dir = folder
    steps = report.steps
    old_pause = pause_for(target) if target.running else None
    new_pause = pause_for(target)
    try:
        if target.running and not target.appendonly:
            say("saving the target (BGSAVE)")
            with journaled(steps, "save", journal) as step:
                try:
                    if opts.stop_cmd and old_pause is not None:
                        old_pause.hold()  # nothing acknowledged after the BGSAVE is lost
                    step.detail = control.save(target, opts.timeout, opts.progress)
                except (control.ControlError, redis.RedisError) as e:
                    step.status = "refused"
                    step.detail = str(e)
                    raise _Refused([f"the target could not save its current data: {e}"]) from None
        with journaled(steps, "stop", journal) as step:
            if target.running:
                say("stopping the target")
                _writes_until_stop(report, target, old_pause)
                try:
                    step.detail = control.stop(target, opts.stop_cmd, opts.timeout)
                except control.StillRunning as e:
                    step.status = "refused"
                    step.detail = str(e)
                    raise _Refused([str(e)]) from None
            else:
                step.detail = "not running"
        if old_pause is not None:
            old_pause.release()
        with journaled(steps, "keep", journal) as step:
            report.kept = files.move_all(names, d, folder)
            step.detail = f"{', '.join(report.kept) or 'no data files'} -> {folder.name}/"
            if report.writes.during:
                report.notes.append(
                    f"{report.writes.during} writes reached the target after rbkit's preflight "
                    "and before its stop: they are in the kept files ("
                    + ", ".join(f"{folder.name}/{n}" for n in report.kept)
                    + "), not in the restored data"
                )
        with journaled(steps, "install", journal) as step:
            say(f"installing {item.describe()}")
            files.install(item, d, owner, private)
            report.installed = [item.name]
            step.detail = f"{item.describe()}, sha256 as checked, owner {owner.uid}:{owner.gid}"
            step.detail += f" mode {owner.mode:o}"
        with journaled(steps, "start", journal) as step:
            say("starting the target")
            since_ms = int(time.time() * 1000)
            step.detail = control.start(
                target,
                opts.start_cmd,
                opts.timeout,
                say,
                run_as=target.run_as,
                pause=new_pause,
                progress=opts.progress,
            )
        with journaled(steps, "verify", journal) as step:
            say("verifying the restored keyspace")
            _verify(report, target, result, sample, opts, step, since_ms)
    except _Refused as e:
        for pause in (old_pause, new_pause):
            if pause is not None:
                pause.release()
        journal.write("refused", "done", reason=e.reasons[0])
        report.journal = journal.close(folder)
        report.rollback_dir = folder if folder.is_dir() else None
        _refuse(report, e.reasons)
        return
    except (
        _StepFailed,
        control.ControlError,
        files.ChangedError,
        OSError,
        redis.RedisError,
        TargetError,
        KeyboardInterrupt,
        SystemExit,  # SIGTERM (restore_cli turns it into SystemExit)
    ) as e:
        if old_pause is not None:
            old_pause.release()
        if isinstance(e, KeyboardInterrupt | SystemExit):
            reason = "interrupted (Ctrl-C)" if isinstance(e, KeyboardInterrupt) else "terminated"
        elif isinstance(e, redis.RedisError):
            reason = f"{target.address}: {e}"
        else:
            reason = str(e)
        report.reason = reason
        report.reasons = [reason]
        say(f"failed: {reason}; rolling back")
        report.rollback = rollback(journal, target, opts, say, restored_pause=new_pause)
        if report.rollback.refused:
            report.outcome = UNVERIFIED
        else:
            finished = not (target.data_dir / JOURNAL).exists()  # else --rollback DIR finishes
            report.outcome = ROLLED_BACK if report.rollback.verified or finished else FAILED
        report.journal = journal.path if journal.path.exists() else None
        report.rollback_dir = folder if folder.is_dir() else None
        return
    if new_pause is not None:
        new_pause.release()
    journal.write("restored", "done")
    report.journal = journal.close(folder)
    report.rollback_dir = folder if folder.is_dir() else None
    report.outcome = RESTORED


def _writes_until_stop(report: RestoreReport, target: Target, pause: WritePause | None) -> None:
    """Hold writes off and count those the old server took since the preflight."""
    if pause is not None and not pause.active:
        pause.hold()
    if report.writes.at_preflight is None:
        return
    client = target.client(timeout=30)
    try:
        now = write_calls(client, report.writes.names)
    finally:
        client.close()
    report.writes.during = now - report.writes.at_preflight


def _verify(
    report: RestoreReport,
    target: Target,
    result: CheckResult,
    sample: Sample | None,
    opts: Options,
    step: Step,
    since_ms: int,
) -> None:
    """Compare the target restarted at ``since_ms`` with the backup: counts, key names,
    values."""
    client = target.client(timeout=30)
    try:
        names = report.writes.names or write_commands(client)
        early = write_calls(client, names)
    finally:
        client.close()
    report.writes.before_pause = early
    if early:
        report.notes.append(
            f"{early} client writes reached the restored server before rbkit held writes off"
        )
    keys = report.stage.keys if report.stage else None  # read once, by the stage
    # The sample's values are read (DUMP) while the target's fork sends its snapshot.
    checking = Ahead(lambda: _values(target, sample)) if sample is not None else None
    try:
        live, comparison = verify_target(
            target,
            result,
            since_ms,
            target.appendonly,
            keys,
            progress=opts.progress,
            notes=report.notes,
        )
    except Exception:  # (a Ctrl-C does not wait)
        if checking is not None:
            checking.wait()  # nothing reads the target behind a failure or a rollback
        raise
    if checking is not None:
        checking.wait()
    report.live, report.comparison = live, comparison
    if not comparison.verified:
        first = comparison.mismatches[0].sentence
        more = len(comparison.mismatches) - 1
        step.status = "mismatch"
        step.detail = first + (f" (and {more} more)" if more else "")
        raise _StepFailed(f"the restored server differs from the backup: {step.detail}")
    step.detail = "counts" + (" and key names" if comparison.digest_compared else "") + " match"
    values = checking.result() if checking is not None else None
    if values is not None:
        report.values = values
        if not values.ok:
            step.status = "mismatch"
            step.detail = values.sentence()
            raise _StepFailed(f"the restored server differs from the backup: {step.detail}")
        step.detail += f"; {values.sentence()}"


def _values(target: Target, sample: Sample | None) -> ValueCheck | None:
    if sample is None:
        return None
    return compare_sample(sample, lambda db: target.client(timeout=60, db=db))


def _sample_of(ahead: Ahead[Sample] | None) -> Sample | None:
    """The sample read ahead, once ready; a backup that cannot be read again refuses the
    restore here, before the target is touched."""
    if ahead is None:
        return None
    try:
        return ahead.result()
    except (FormatError, OSError) as e:
        raise _Refused([f"reading the value check's sample from the backup: {e}"]) from None


def _sample_ahead(
    result: CheckResult, reference: Path | None, opts: Options
) -> Ahead[Sample] | None:
    """The value check's sample, read from the backup (or the stage's RDB of an AOF: the
    ``reference``) in a background thread; None without a reference."""
    path = Path(result.path) if result.format == "rdb" else reference
    if path is None or not path.is_file():
        return None
    total = sum(d.keys for d in result.inventory.databases.values()) if result.inventory else 0
    return sample_ahead(path, total, everything=opts.verify_values)
