"""The restore drill (``rbkit restore --stage-only``): prove a backup restorable without
touching production.

The first steps of every restore (docs/restore.md): the gate (check the
backup; an invalid one is refused unless forced), the preflight (can this redis-server read
it: RDB version and magic, multi-part AOF, commands, modules, databases, disk room), and the
stage: load the backup into a scratch redis-server of that binary on a free loopback port in a
temporary directory, wait for the load to end, read what it holds (toolkit.server.read) and compare
it with the backup (toolkit.stage.compare). The scratch server never saves and is always stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import redis

from parsers.errors import FormatError
from parsers.printable import printable
from toolkit import lifeline
from toolkit.ahead import Ahead
from toolkit.check.backup import check_backup
from toolkit.check.problems import gate
from toolkit.check.result import CheckResult
from toolkit.errors import ServerError
from toolkit.server.connect import Server
from toolkit.server.process import ServerBinary, free_port
from toolkit.server.read import LiveKeyspace, read_counts, read_live
from toolkit.stage.compare import BackupKeys, Comparison, backup_keys, compare
from toolkit.stage.compat import choose_binary, needed_modules, refusals
from toolkit.stage.live_snapshot import NoSnapshot, read_snapshot
from toolkit.stage.scratch import (
    EarlyLoad,
    ScratchServer,
    copy_size,
    expired_from_log,
    install_backup,
    load_log,
    logged_load_seconds,
    scratch_settings,
    with_modules,
)
from toolkit.steps import (
    FAILED,
    KEYS,
    MISMATCH,
    REFUSED,
    VERIFIED,
    Progress,
    ProgressFactory,
    Step,
    no_progress,
    progress_of,
    timed,
)

Version = tuple[int, ...]
T = TypeVar("T")

# Keys whose TTL runs out within this long after the load began are judged by what the read
# found (later: running out, allowed either way).
WATCH_MS = 3600 * 1000
_VIA = {
    "snapshot": "read as its replication snapshot",
    "scan": "read by SCAN",
    "info": "counted by INFO keyspace",
}


@dataclass
class StageReport:
    """What a restore drill did and found."""

    backup: str
    outcome: str = VERIFIED  # verified, mismatch, refused, failed
    reason: str | None = None  # one sentence when not verified
    reasons: list[str] = field(default_factory=list)  # each refusal reason on its own
    result: CheckResult | None = None
    binary: ServerBinary | None = None
    modules: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # the scratch server's config
    port: int | None = None
    steps: list[Step] = field(default_factory=list)
    live: LiveKeyspace | None = None
    keys: BackupKeys | None = None  # the backup's key names, as compared (not in the JSON)
    comparison: Comparison | None = None
    server_load_seconds: float | None = None  # as the server logged it
    notes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # the server's log lines on failure

    @property
    def verified(self) -> bool:
        return self.outcome == VERIFIED

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)


class _Stop(Exception):
    """Ends the drill early; the report already says why."""


# -- preflight -----------------------------------------------------------------------------


# -- the drill -----------------------------------------------------------------------------


def stage(
    backup: Path,
    *,
    binary: ServerBinary | None = None,
    config_path: Path | None = None,
    modules: Sequence[Path] = (),
    now_ms: int | None = None,
    force: bool = False,
    checked: CheckResult | None = None,
    workdir: Path | None = None,
    load_timeout: float | None = None,
    save_rdb_to: Path | None = None,
    server_text: str | None = None,
    progress: ProgressFactory = no_progress,
    counts_only: bool = False,
    early: EarlyLoad | None = None,
) -> StageReport:
    """Run the restore drill on ``backup`` and report. Raises BackupIOError when there is
    nothing to read and ServerError when no redis-server can be found.

    ``checked`` is a check result to use instead of checking again (its inventory is what the
    server's keyspace must match); ``workdir`` where the scratch directory goes (default: the
    system temp dir); ``save_rdb_to`` where to copy an RDB the scratch server saves once
    verified (how an AOF backup becomes an RDB for a target with ``appendonly no``);
    ``server_text`` how refusals name the server (default "this redis-server is X");
    ``counts_only`` reads the scratch server by INFO alone (keys and TTLs per db), for a
    restore that compares its target key by key afterwards anyway; ``early`` a scratch
    server already loading the backup (the restore's, started while its gate ran), used
    where it fits the check's result and closed otherwise (the caller closes it too, for
    when the stage ends before it gets to it).
    """
    report = StageReport(str(backup))
    try:
        result = _gate(report, backup, config_path, now_ms, force, checked, modules)
        if early is not None and not early.fits(result):
            early.close()  # not what this stage loads: it starts its own
            early = None
        binary = _preflight(report, result, binary, modules, workdir, server_text)
        _load_and_compare(
            report,
            result,
            binary,
            modules,
            workdir,
            load_timeout,
            save_rdb_to,
            progress,
            counts_only,
            early,
        )
    except _Stop:
        pass
    return report


def _stop(
    report: StageReport, step: Step, outcome: str, reason: str, reasons: Sequence[str] = ()
) -> _Stop:
    step.status = outcome if outcome in (REFUSED, MISMATCH) else FAILED
    step.detail = reasons[0] if reasons else reason
    if len(reasons) > 1:
        step.detail += f" (and {len(reasons) - 1} more)"
    report.outcome = outcome
    report.reason = reason
    report.reasons = list(reasons) or [reason]
    return _Stop()


def _gate(
    report: StageReport,
    backup: Path,
    config_path: Path | None,
    now_ms: int | None,
    force: bool,
    checked: CheckResult | None,
    modules: Sequence[Path] = (),
) -> CheckResult:
    with timed(report.steps, "gate") as step:
        # The scratch server loads ``modules``: an AOF's commands of theirs are accepted.
        result = checked or check_backup(
            backup,
            config_path=config_path,
            now_ms=now_ms,
            modules=tuple(os.fspath(m) for m in modules),
        )
        report.result = result
        report.backup = result.name
        report.notes.extend(result.notes)
        verdict = gate(result.problems, force, "staged anyway")
        if verdict.refusal:
            raise _stop(report, step, REFUSED, verdict.refusal)
        step.detail = verdict.detail
        if verdict.forced:
            report.notes.append(verdict.forced)
        return result


def _preflight(
    report: StageReport,
    result: CheckResult,
    binary: ServerBinary | None,
    modules: Sequence[Path],
    workdir: Path | None,
    server_text: str | None = None,
) -> ServerBinary:
    with timed(report.steps, "preflight") as step:
        chosen = binary is None
        if binary is None:
            binary = choose_binary(result, modules)
        report.binary = binary
        report.modules = [os.fspath(m) for m in modules]
        reasons = refusals(result, binary, modules, server_text)
        if chosen:
            what = f"redis-server {binary.version_text} ({binary.source}, {binary.path})"
            report.notes.append(
                f"{what} chosen: it can read this backup"
                if not reasons
                else f"no redis-server here can load this backup as it is; {what} tried"
            )
        if reasons:
            raise _stop(report, step, REFUSED, "; ".join(reasons), reasons)
        types, commands = needed_modules(result, binary.version)
        if types or commands:
            report.notes.append(
                "the backup needs "
                + ", ".join(map(printable, [*types, *commands]))
                + ": the server will say "
                "whether the --module files provide them"
            )
        need = copy_size(result)
        where = workdir or Path(tempfile.gettempdir())
        free = shutil.disk_usage(where).free
        if need > free:
            raise _stop(
                report,
                step,
                REFUSED,
                f"not enough room in {where} for the scratch copy: needs {need} bytes, {free} free",
            )
        step.detail = f"redis-server {binary.version_text} can load it"
        return binary


def _load_and_compare(
    report: StageReport,
    result: CheckResult,
    binary: ServerBinary,
    modules: Sequence[Path],
    workdir: Path | None,
    load_timeout: float | None,
    save_rdb_to: Path | None = None,
    progress: ProgressFactory = no_progress,
    counts_only: bool = False,
    early: EarlyLoad | None = None,
) -> None:
    if early is not None:
        settings = early.settings
        directory = early.directory
        server = early.take()
    else:
        settings = with_modules(scratch_settings(result, binary, report.notes), modules)
        directory = lifeline.scratch_dir("rbkit-stage-", workdir)
        server = ScratchServer(binary, directory, free_port(), settings)
    report.settings = {k: v for k, v in settings.items() if k != "loadmodule"}
    report.port = server.port
    try:
        with timed(report.steps, "copy") as step:
            if early is not None:
                step.detail = f"{early.copied} bytes into {directory}, while the gate checked it"
            else:
                try:
                    copied = install_backup(result, directory, settings)
                except OSError as e:
                    raise _stop(report, step, FAILED, f"copying the backup: {e}") from None
                step.detail = f"{copied} bytes into {directory}"
        # The backup's key names are read while the server loads it (on the other core).
        names = None if report.keys else Ahead(lambda: backup_keys(result))
        # Generous: Redis loads small keys at a few MB/s; a dead server is noticed at once.
        timeout = load_timeout or max(120.0, copy_size(result) / (2 << 20))
        since_ms = early.since_ms if early is not None else int(time.time() * 1000)
        with timed(report.steps, "load") as step:
            try:
                with progress_of(progress, "loading into the scratch server") as bar:
                    if early is not None:
                        server.wait_loaded(timeout, bar)
                    else:
                        server.start(timeout, bar)
            except ServerError as e:
                report.log = load_log(server.log_path)
                reason = report.log[-1] if report.log else str(e)
                raise _stop(report, step, FAILED, f"the server did not load it: {reason}") from None
            report.server_load_seconds = logged_load_seconds(server.log_path)
            step.detail = f"redis-server {binary.version_text} on 127.0.0.1:{server.port}"
            if report.server_load_seconds is not None:
                step.detail += f", loaded in {report.server_load_seconds:.3f} s (its log)"
        # (a load that failed leaves the names unread: nothing waits for them)
        with timed(report.steps, "key-names") as step:  # its seconds: the wait past the load
            try:
                report.keys = report.keys or (names.result() if names else None)
                count = sum(d.count for d in report.keys.databases.values())
                step.detail = f"{count} keys, read while the server loaded"
            except (FormatError, OSError) as e:
                step.status = "skipped"
                step.detail = f"not read ({e}): compared by counts only"
        keys = report.keys
        with timed(report.steps, "read") as step:
            client = server.client(socket_timeout=60)
            try:
                if counts_only:
                    live = read_counts(client)
                else:
                    with progress_of(progress, "reading the scratch server", KEYS) as bar:
                        live = read_expected(
                            client,
                            result,
                            keys,
                            since_ms,
                            bar,
                            server=Server.parse(f"redis://127.0.0.1:{server.port}"),
                            notes=report.notes,
                            quick_fork=True,
                        )
            except redis.RedisError as e:
                raise _stop(report, step, FAILED, f"reading the scratch server: {e}") from None
            finally:
                client.close()
            expired_from_log(live, server.log_path)
            report.live = live
            step.detail = f"{live.keys} keys in {len(live.databases)} dbs, " + _VIA[live.via]
        with timed(report.steps, "compare") as step:
            comparison = compare_expected(
                result, live, None if counts_only else keys, since_ms, result.format == "rdb"
            )
            report.comparison = comparison
            if not comparison.verified:
                first = comparison.mismatches[0].sentence
                more = len(comparison.mismatches) - 1
                reason = f"the loaded keyspace differs from the backup: {first}"
                if more:
                    reason += f" (and {more} more)"
                raise _stop(report, step, MISMATCH, reason)
            step.detail = "counts" + (" and key names" if comparison.digest_compared else "")
            step.detail += " match"
        if save_rdb_to is not None:
            with timed(report.steps, "save") as step:
                client = server.client(socket_timeout=None)
                try:
                    client.save()
                    shutil.copyfile(directory / "dump.rdb", save_rdb_to)
                except (redis.RedisError, OSError) as e:
                    raise _stop(report, step, FAILED, f"saving the loaded data: {e}") from None
                finally:
                    client.close()
                step.detail = f"SAVE, the RDB it wrote copied to {save_rdb_to}"
    finally:
        with timed(report.steps, "stop") as step:
            try:
                server.stop()
            except (OSError, subprocess.SubprocessError) as e:  # pragma: no cover
                step.status = FAILED
                step.detail = str(e)
            lifeline.remove_dir(directory)
            if step.status == "ok":
                step.detail = f"scratch server shut down (nosave), {directory} removed"


def read_expected(
    client: redis.Redis,
    result: CheckResult,
    keys: BackupKeys | None,
    since_ms: int,
    progress: Progress | None = None,
    *,
    server: Server | None = None,
    notes: list[str] | None = None,
    quick_fork: bool = False,
) -> LiveKeyspace:
    """Read a server that loaded ``result``'s backup at ``since_ms``: the types the backup
    holds, and the keys touched by commands the AOF model does not apply (watched by name:
    only the server can tell). Whether a key whose TTL ran out within :data:`WATCH_MS` of the
    load is there, a SCAN read says by the keys it counted (``LiveDb.met``).

    With ``server``, it is read as its replication snapshot where it gives one
    (:mod:`toolkit.stage.live_snapshot`; ``quick_fork`` as there), else by SCAN, the reason
    added to ``notes``. A snapshot is cut at the server's clock (``LiveKeyspace.cut_ms``):
    it says by itself which TTLs ran out, and the keys with a TTL are not watched."""
    if server is not None:
        try:
            live = read_snapshot(
                server, watch=keys.undecided() if keys else None, quick_fork=quick_fork
            )
        except NoSnapshot as e:
            if notes is not None:
                notes.append(f"{server.display} read by SCAN, not as a replication snapshot: {e}")
        else:
            live.cut_ms = live.time_ms
            return live
    inv = result.inventory.databases if result.inventory else {}
    types = {t for stats in inv.values() for t, n in stats.by_type.items() if n}
    watch = keys.undecided() if keys else None
    return read_live(client, watch=watch, types=types, progress=progress)


def compare_expected(
    result: CheckResult,
    live: LiveKeyspace,
    keys: BackupKeys | None,
    since_ms: int,
    loaded_rdb: bool,
) -> Comparison:
    """Compare what :func:`read_expected` read with the backup."""
    return compare(
        result,
        live,
        keys=keys,
        since_ms=since_ms if keys else None,
        watched_until_ms=since_ms + WATCH_MS,
        loaded_rdb=loaded_rdb,
    )
