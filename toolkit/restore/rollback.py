"""Undo a restore: put the kept files back, start the target, verify it against them.

Run by the restore itself when a step from ``stop`` on fails, by a rerun that finds a journal
left by a restore cut off, and by ``rbkit restore --rollback DIR``. Every move is journaled, so
a rollback cut off or run twice never takes a file it already put back for an installed one.

A rollback never makes a server forget a write it acknowledged:

- the old server, if it never went down (its ``run_id`` is the journal's), is left running
  and nothing is moved;
- a server started after the restore's stop (the restored one) is stopped only once writes
  are held off and it is known to hold no client write; one that took writes is left
  running and the rollback refused, unless ``--discard-writes``: then it saves its data
  first (``SHUTDOWN SAVE``), which goes into the rollback folder with the installed files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from toolkit.check.backup import check_backup
from toolkit.check.locate import RDB, locate
from toolkit.errors import BackupIOError, JournalError, RestoreError, TargetError
from toolkit.restore import control, files
from toolkit.restore.journal import Journal, journaled, locked
from toolkit.restore.options import Options, Say
from toolkit.restore.target import Target, discover
from toolkit.restore.verify import verify_target
from toolkit.restore.writes import WritePause, write_calls, write_commands
from toolkit.server.config import RedisConfig
from toolkit.server.identity import RunAs
from toolkit.server.read import LiveKeyspace
from toolkit.stage.compare import Comparison
from toolkit.steps import Step


@dataclass
class RollbackReport:
    steps: list[Step] = field(default_factory=list)
    verified: bool = False
    refused: bool = False  # a server holding client writes was left running
    early_writes: int = 0  # client writes the restarted server took before rbkit's pause
    reason: str | None = None
    comparison: Comparison | None = None
    live: LiveKeyspace | None = None


class _Refused(Exception):
    """The rollback stops here, the server left running: the message says why."""


def _run_as(plan: dict) -> RunAs | None:
    ids = plan.get("run_as")
    return RunAs(ids[0], ids[1], tuple(ids[2])) if ids else None


def pause_for(target: Target) -> WritePause | None:
    """A write pause on the target, where its version has one."""
    if not target.pausable:
        return None
    return WritePause(
        lambda: target.client(timeout=10), target.setting("min-replicas-to-write") or "0"
    )


def rollback(
    journal: Journal,
    target: Target,
    opts: Options,
    say: Say,
    *,
    restored_pause: WritePause | None = None,
) -> RollbackReport:
    """Return the target to the state the journal's restore kept, start it if it was
    running, and verify it against the kept files. Closes the journal once done.
    ``restored_pause``: the restore's own pause on the server it started, if it holds one."""
    plan = journal.plan
    d = Path(plan["data_dir"])
    folder = Path(plan["rollback_dir"])
    names: list[str] = plan["names"]
    out = RollbackReport()
    start_cmd = opts.start_cmd or plan.get("start_cmd")
    run_as = _run_as(plan)
    pause = restored_pause or pause_for(target)
    try:
        if not journal.began("stop"):
            out.verified = True
            out.reason = "the target was not touched (the restore stopped before stopping it)"
            _close(journal, folder)
            return out
        answer = control.look(target)
        if answer.up and answer.run_id is not None and answer.run_id == plan.get("run_id"):
            out.verified = True
            out.reason = "the target was never stopped: it runs on with its own data, untouched"
            with journaled(out.steps, "stop") as step:
                step.status = "skipped"
                step.detail = f"{target.address} still runs as before (run_id {answer.run_id})"
            _close(journal, folder)
            return out
        if answer.up:
            with journaled(out.steps, "stop") as step:
                if journal.done("put back") and _matches(out, target, d, plan, pause):
                    step.status = "skipped"
                    step.detail = "it already runs the kept files"
                    _close(journal, folder)
                    return out
                step.detail = _stop_started(target, answer, pause, opts, folder, plan)
            if pause is not None:
                pause.release()  # that server is gone
        with journaled(out.steps, "put back") as step:
            step.detail = _put_back(journal, d, folder, names)
        if plan.get("was_running"):
            pause = pause_for(target)
            with journaled(out.steps, "start") as step:
                step.detail = control.start(
                    target, start_cmd, opts.timeout, say, run_as=run_as, pause=pause
                )
            with journaled(out.steps, "verify") as step:
                _verify_kept(out, target, d, plan.get("settings") or {})
                step.detail = "matches the kept files" if out.verified else (out.reason or "")
                if not out.verified:
                    step.status = "mismatch"
                if not out.verified and out.early_writes:
                    # The kept files are back and running, with writes clients made before
                    # rbkit could hold them off (a --start-cmd start): nothing to undo again.
                    out.reason = (
                        f"the kept files are back and the server runs them, but {out.early_writes}"
                        " client writes reached it before rbkit could hold writes off, so it "
                        "cannot be compared with them exactly"
                    )
                    step.detail = out.reason
                    journal.write("rolled-back", "done", verified=False)
                    journal.close(folder)
                    return out
        else:
            out.verified = True
            out.reason = None
            with journaled(out.steps, "verify") as step:
                step.detail = "the target was not running before: files put back, not started"
    except _Refused as e:
        out.refused = True
        out.reason = str(e)
        say(out.reason)
        journal.write("rollback", "refused", reason=out.reason)
        return out
    except (control.ControlError, OSError, redis.RedisError, TargetError) as e:
        out.verified = False
        out.reason = f"rollback failed: {e}"
        say(out.reason)
        journal.write("rollback", "failed", reason=out.reason)
        return out
    finally:
        if pause is not None:
            pause.release()
    if not out.verified:  # the journal stays: `--rollback DIR` can finish it
        journal.write("rollback", "failed", reason=out.reason)
        return out
    _close(journal, folder)
    return out


def _close(journal: Journal, folder: Path) -> None:
    journal.write("rolled-back", "done", verified=True)
    journal.close(folder)


def _stop_started(
    target: Target,
    answer: control.Answer,
    pause: WritePause | None,
    opts: Options,
    folder: Path,
    plan: dict,
) -> str:
    """Stop the server that runs where the restore stopped the old one: writes held off
    first; refused (it runs on) when it took client writes, unless --discard-writes."""
    if pause is not None and not pause.active:
        pause.hold()
    client = target.client(timeout=30)
    try:
        writes = write_calls(client, write_commands(client))
    finally:
        client.close()
    if writes and not opts.discard_writes:
        raise _Refused(
            f"the server running at {target.address} since the restore's stop has accepted "
            f"{writes} writes from clients; a rollback would discard them, so it is left "
            "running as it is (writes allowed again). To roll back anyway, run "
            f"'rbkit restore --rollback {plan['data_dir']} --discard-writes': its data is "
            f"saved first and kept in {folder.name}/"
        )
    detail = control.stop_started(
        target, target.appendonly, bool(writes), opts.timeout, answer.pid or None
    )
    if writes:
        detail += f"; it held {writes} client writes: saved first, kept with the installed files"
    return detail


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


def _matches(
    out: RollbackReport, target: Target, d: Path, plan: dict, pause: WritePause | None
) -> bool:
    """Whether the server that runs already holds the kept files (writes held off to see)."""
    if pause is not None and not pause.active:
        pause.hold()
    _verify_kept(out, target, d, plan.get("settings") or {})
    return out.verified


def _verify_kept(out: RollbackReport, target: Target, d: Path, settings: dict[str, str]) -> None:
    """Compare the running target with the kept files, found by the restore's own settings
    (``settings``: a server now running from another config must not decide what they are)."""
    since_ms = int(time.time() * 1000)
    client = target.client(timeout=30)
    try:
        out.early_writes = write_calls(client, write_commands(client))
    finally:
        client.close()
    config = RedisConfig(target.config.path, {**target.config.settings, **settings})
    try:
        found = locate(d, config)
    except BackupIOError:
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
    out.reason = None
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
                    stop_cmd=opts.stop_cmd or plan.get("stop_cmd"),
                    connect=opts.connect,
                )
            except TargetError as e:
                raise RestoreError(str(e)) from None
            if plan.get("executable"):  # the binary the restore recorded, not a guess
                target.executable = Path(plan["executable"])
            files.remove_stale_copies(data_dir)
            return rollback(journal, target, opts, say)
    except JournalError as e:
        raise RestoreError(str(e)) from None
