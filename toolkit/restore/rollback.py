"""Undo a restore: put the kept files back, start the target, verify it against them.

Run by the restore itself when a step from ``stop`` on fails, by a rerun that finds a journal
left by a restore cut off, and by ``rbkit restore --rollback DIR``. Every move is journaled, so
a rollback cut off or run twice never takes a file it already put back for an installed one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from toolkit.backup import check_backup
from toolkit.compare import Comparison
from toolkit.live import LiveKeyspace
from toolkit.locate import RDB, LocateError, locate
from toolkit.redisconf import RedisConfig
from toolkit.restore import control, files
from toolkit.restore.journal import Journal, JournalError, journaled, locked
from toolkit.restore.options import Options, RestoreError, Say
from toolkit.restore.target import Target, TargetError, discover
from toolkit.restore.verify import verify_target
from toolkit.steps import Step


@dataclass
class RollbackReport:
    steps: list[Step] = field(default_factory=list)
    verified: bool = False
    reason: str | None = None
    comparison: Comparison | None = None
    live: LiveKeyspace | None = None


def rollback(journal: Journal, target: Target, opts: Options, say: Say) -> RollbackReport:
    """Return the target to the state the journal's restore kept, start it if it was
    running, and verify it against the kept files. Closes the journal once verified."""
    plan = journal.plan
    d = Path(plan["data_dir"])
    folder = Path(plan["rollback_dir"])
    names: list[str] = plan["names"]
    out = RollbackReport()
    stop_cmd = opts.stop_cmd or plan.get("stop_cmd")
    start_cmd = opts.start_cmd or plan.get("start_cmd")
    try:
        if not journal.began("stop"):
            out.verified = True
            out.reason = "the target was not touched (the restore stopped before stopping it)"
            journal.write("rolled-back", "done", verified=True)
            journal.close(folder)
            return out
        with journaled(out.steps, "stop") as step:
            if control.is_up(target):
                step.detail = control.stop(target, stop_cmd, False, opts.timeout)
            else:
                step.detail = "not running"
        with journaled(out.steps, "put back") as step:
            step.detail = _put_back(journal, d, folder, names)
        if plan.get("was_running"):
            with journaled(out.steps, "start") as step:
                since_ms = int(time.time() * 1000)
                step.detail = control.start(target, start_cmd, opts.timeout, say)
            with journaled(out.steps, "verify") as step:
                _verify_kept(out, target, d, since_ms, plan.get("settings") or {})
                step.detail = "matches the kept files" if out.verified else (out.reason or "")
                if not out.verified:
                    step.status = "mismatch"
        else:
            out.verified = True
            out.reason = None
            with journaled(out.steps, "verify") as step:
                step.detail = "the target was not running before: files put back, not started"
    except (control.ControlError, OSError, redis.RedisError, TargetError) as e:
        out.verified = False
        out.reason = f"rollback failed: {e}"
        say(out.reason)
        journal.write("rollback", "failed", reason=out.reason)
        return out
    if not out.verified:  # the journal stays: `--rollback DIR` can finish it
        journal.write("rollback", "failed", reason=out.reason)
        return out
    journal.write("rolled-back", "done", verified=True)
    journal.close(folder)
    return out


def _put_back(journal: Journal, d: Path, folder: Path, names: list[str]) -> str:
    """Move what the restore installed into ``rejected/`` and the kept files back; journaled
    (as "put back"), so that a rollback cut off or run again never takes a file it already
    put back for an installed one."""
    for name in names:
        files.remove_temporary(d, name)
    if journal.done("put back"):
        return "already done by an earlier rollback"
    if not journal.began("keep"):
        return "nothing moved yet"
    earlier = [e for e in journal.entries if e["step"] == "put back" and "kept" in e]
    kept: list[str] = earlier[0]["kept"] if earlier else files.present(folder, names)
    journal.write("put back", "begin", kept=kept)
    waiting = files.present(folder, kept)  # the kept files not yet back
    rejected: list[str] = []
    if journal.began("install"):  # else what is still here was never moved
        # Here under a kept file's name but not yet put back, or under any other name: the
        # restore's (or the restarted server's).
        ours = [n for n in files.present(d, names) if n not in kept or n in waiting]
        if ours:
            where = files.rejected_dir(folder)
            rejected = files.move_all(ours, d, where)
    files.move_all(waiting, folder, d)
    journal.write("put back", "done")
    detail = f"{', '.join(kept) or 'no files'} back from {folder.name}/"
    if rejected:
        detail += f"; the installed {', '.join(rejected)} -> {where.name}/"
    return detail


def _verify_kept(
    out: RollbackReport, target: Target, d: Path, since_ms: int, settings: dict[str, str]
) -> None:
    """Compare the restarted target with the kept files, found by the restore's own settings
    (``settings``: a server now running from another config must not decide what they are)."""
    config = RedisConfig(target.config.path, {**target.config.settings, **settings})
    try:
        found = locate(d, config)
    except LocateError:
        found = None  # no data files: the server must be empty
    if found is None:
        client = target.client(timeout=60)
        try:
            info = client.info("keyspace")
            keys = sum(int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db"))
        finally:
            client.close()
        out.verified = keys == 0
        out.reason = None if keys == 0 else f"no kept files, but the server holds {keys} keys"
        return
    result = check_backup(d, config=config)
    live, comparison = verify_target(target, result, since_ms, found.kind != RDB)
    out.live, out.comparison = live, comparison
    out.verified = comparison.verified
    if not comparison.verified:
        first = comparison.mismatches[0].sentence
        out.reason = f"the rolled-back server differs from the kept files: {first}"


def rollback_dir(data_dir: Path, opts: Options, say: Say = lambda _t: None) -> RollbackReport:
    """``rbkit restore --rollback DIR``: undo the restore cut off in ``data_dir``."""
    try:
        with locked(data_dir):
            journal = Journal.read(data_dir)
            if journal is None:
                raise RestoreError(f"{data_dir}: no restore in progress here (no journal)")
            plan = journal.plan
            config = opts.config or (Path(plan["config"]) if plan.get("config") else None)
            try:
                target = discover(
                    config,
                    opts.url,
                    executable=Path(plan["executable"]) if plan.get("executable") else None,
                    start_cmd=opts.start_cmd or plan.get("start_cmd"),
                )
            except TargetError as e:
                raise RestoreError(str(e)) from None
            return rollback(journal, target, opts, say)
    except JournalError as e:
        raise RestoreError(str(e)) from None
