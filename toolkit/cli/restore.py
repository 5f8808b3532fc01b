"""``rbkit restore``: four modes, one per function below, each flag belonging to one of them.

- a file restore into a data directory (``--config`` / ``--url``): toolkit/restore/
- a network restore (``--to URL``): toolkit/restore/network/
- a restore drill (``--stage-only``): toolkit/stage/
- finishing a restore cut off (``--rollback DIR``): toolkit/restore/rollback.py

A flag of one mode with another mode's is a usage error naming both: a drill must never reach
a server, whatever else is added to its command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import typer

from toolkit.cli import connection
from toolkit.cli import sources_options as options
from toolkit.cli.output import emit, emit_json, emit_json_lines, emit_report, width
from toolkit.cli.progress import progress_for
from toolkit.errors import ExitCode, UsageError
from toolkit.server.connect import CONNECT_TIMEOUT, ConnectOptions, safe_url

FILE, NETWORK, SELECTIVE, DRILL, ROLLBACK, PITR, COMMON = (
    "File restore (--config / --url)",
    "Network restore (--to)",
    "Selective restore (--to only)",
    "Drill (--stage-only)",
    "Rollback (--rollback DIR)",
    "Point in time (an AOF backup; any mode but --rollback)",
    "Common",
)

EXAMPLES = """\b
Examples:
  # the plan for the server of this config file; nothing changes
  rbkit restore dump.rdb --config /etc/redis/redis.conf --dry-run
  # the restore itself, without the question
  rbkit restore dump.rdb --config /etc/redis/redis.conf --yes
  # a running server's files, found with CONFIG GET
  rbkit restore appendonlydir/ --url redis://127.0.0.1:6379 --yes
  # a restore drill: a scratch server loads it; production untouched
  rbkit restore dump.rdb --stage-only
  # over the network, into a running server or a cluster
  rbkit restore dump.rdb --to redis://10.0.0.5:6379 --yes
  rbkit restore dump.rdb --to 10.0.0.5:6380 --tls --cacert ca.crt --yes
  rbkit restore dump.rdb --to redis://10.0.0.5:7000 --cluster --yes
  # continue a network restore that was cut off (killed, or the connection lost)
  rbkit restore dump.rdb --to redis://10.0.0.5:6379 --resume --yes
  # only some keys, leaving those the target has alone
  rbkit restore dump.rdb --to redis://10.0.0.5:6379 --match 'user:*' --on-conflict skip
  # bring back exactly the keys deleted since the backup
  rbkit diff dump.rdb redis://10.0.0.5:6379 --json > d.json
  rbkit restore dump.rdb --to redis://10.0.0.5:6379 --keys-from d.json --only removed
  # undo a restore that was cut off
  rbkit restore --rollback /var/lib/redis
  rbkit restore appendonlydir/ --before FLUSHALL --stage-only
  rbkit restore appendonlydir/ --until 2026-12-02T17:30:00Z --config redis.conf --yes
"""


@dataclass(frozen=True)
class RestoreArgs:
    """Every option of ``rbkit restore``, as given."""

    backup: Path | None
    stage_only: bool
    to: str | None
    rollback: Path | None
    config: Path | None
    url: str | None
    stop_cmd: str | None
    start_cmd: str | None
    redis_server: Path | None
    cluster: bool
    replace: bool
    module: tuple[Path, ...]
    force: bool
    dry_run: bool
    yes: bool
    json_out: bool
    timeout: float
    verify_values: bool
    discard_writes: bool
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    connect_flags: tuple[str, ...] = ()  # the connection options given
    until: str | None = None
    before: str | None = None
    before_offset: str | None = None
    resume: bool = False
    restart: bool = False
    journal: Path | None = None
    match: tuple[str, ...] = ()
    db: tuple[int, ...] = ()
    type: tuple[str, ...] = ()
    keys_from: Path | None = None
    only: str | None = None
    on_conflict: str | None = None
    ttl: str | None = None

    @property
    def cut(self) -> bool:
        return any(x is not None for x in (self.until, self.before, self.before_offset))


# The modes, and the options that belong to each (besides the common ones).
_CONNECTION = {
    "--pass",
    "--user",
    "--tls",
    "--cacert",
    "--cert",
    "--key",
    "--insecure",
    "--connect-timeout",
    "--sync-now",
}
_CUTS = {"--until", "--before", "--before-offset"}
_JOURNAL = {"--resume", "--restart", "--journal"}
_SELECTIVE = {"--match", "--db", "--type", "--keys-from", "--only", "--on-conflict", "--ttl"}
_MODE_OPTIONS = {
    "--stage-only": {"BACKUP", "--dry-run", "--redis-server", *_CUTS},
    "--to": {
        "BACKUP",
        "--cluster",
        "--replace",
        "--dry-run",
        *_CONNECTION,
        *_CUTS,
        *_JOURNAL,
        *_SELECTIVE,
    },
    "--rollback": {"--url", "--stop-cmd", "--start-cmd", "--discard-writes", "--redis-server"}
    | _CONNECTION,
}
_MODE_TEXT = {
    "--stage-only": "a restore drill touches no server but its own scratch one",
    "--to": "a network restore writes keys into a server; it stops and starts nothing",
    "--rollback": "it undoes the restore cut off in DIR; it takes no BACKUP",
}


def _given(a: RestoreArgs) -> list[str]:
    flags = {
        "--stage-only": a.stage_only,
        "--to": a.to is not None,
        "--rollback": a.rollback is not None,
        "--url": a.url is not None,
        "--stop-cmd": a.stop_cmd is not None,
        "--start-cmd": a.start_cmd is not None,
        "--redis-server": a.redis_server is not None,
        "--cluster": a.cluster,
        "--replace": a.replace,
        "--verify-values": a.verify_values,
        "--discard-writes": a.discard_writes,
        "--dry-run": a.dry_run,
        "BACKUP": a.backup is not None,
        "--until": a.until is not None,
        "--before": a.before is not None,
        "--before-offset": a.before_offset is not None,
        "--resume": a.resume,
        "--restart": a.restart,
        "--journal": a.journal is not None,
        "--match": bool(a.match),
        "--db": bool(a.db),
        "--type": bool(a.type),
        "--keys-from": a.keys_from is not None,
        "--only": a.only is not None,
        "--on-conflict": a.on_conflict is not None,
        "--ttl": a.ttl is not None,
    }
    return [name for name, on in flags.items() if on] + list(a.connect_flags)


def _whole_files(name: str, mode: str) -> str:
    what = {
        "--stage-only": "a restore drill loads the whole backup into its scratch server",
        "file": "a file restore installs the whole file",
    }[mode]
    return (
        f"{name} cannot be used with {'a file restore' if mode == 'file' else mode}: {what}, "
        "and Redis loads whole files; a selective restore writes keys over the network "
        "(--to URL)"
    )


def mode_of(a: RestoreArgs) -> str:
    """Which mode the options ask for; a UsageError naming both flags when they mix."""
    on = _given(a)
    if a.resume and a.restart:
        raise UsageError("--resume and --restart cannot be used together: continue or start over")
    cuts = [name for name in on if name in _CUTS]
    if len(cuts) > 1:
        raise UsageError(f"{cuts[0]} and {cuts[1]} cannot be used together: one cut at a time")
    modes = [m for m in _MODE_OPTIONS if m in on]
    if len(modes) > 1:
        raise UsageError(f"{modes[0]} and {modes[1]} cannot be used together: they are modes")
    if modes:
        mode = modes[0]
        for name in on:
            if name != mode and name not in _MODE_OPTIONS[mode]:
                if name in _SELECTIVE and mode == "--stage-only":
                    raise UsageError(_whole_files(name, mode))
                raise UsageError(f"{name} cannot be used with {mode}: {_MODE_TEXT[mode]}")
        return mode
    for name in on:
        if name in _SELECTIVE:
            raise UsageError(_whole_files(name, "file"))
    for name in ("--cluster", "--replace", *sorted(_JOURNAL)):
        if name in on:
            raise UsageError(f"{name} goes with --to URL")
    return "file"


def restore(
    backup: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="BACKUP...",
            help="RDB file, AOF file, appendonlydir/ or its .manifest, or a Redis data dir; "
            "compressed (gzip, zstd, lz4, bzip2, xz), '-' for stdin, or an s3://, gs://, "
            "az://, http(s):// URL (decompressed or copied into --tmpdir first). Several: "
            "with --stage-only, a drill of each, in parallel.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="REDIS.CONF",
            help="The target's config file (with --stage-only: the backup's).",
            rich_help_panel=FILE,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="The running target (URL or host:port): its files from CONFIG GET and INFO.",
            rich_help_panel=FILE,
        ),
    ] = None,
    stop_cmd: Annotated[
        str | None,
        typer.Option(
            "--stop-cmd",
            metavar="CMD",
            help="Stop the target this way (default: SHUTDOWN SAVE).",
            rich_help_panel=FILE,
        ),
    ] = None,
    start_cmd: Annotated[
        str | None,
        typer.Option(
            "--start-cmd",
            metavar="CMD",
            help="Start it this way (default: its own binary and config file, as its user).",
            rich_help_panel=FILE,
        ),
    ] = None,
    redis_server: Annotated[
        Path | None,
        typer.Option(
            "--redis-server",
            metavar="PATH",
            help="The redis-server binary of a stopped target (with --stage-only: to stage with).",
            rich_help_panel=FILE,
        ),
    ] = None,
    verify_values: Annotated[
        bool,
        typer.Option(
            "--verify-values",
            help="Compare every key's value after the restore (default: a sample).",
            rich_help_panel=FILE,
        ),
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="URL",
            help="Write the keys into this running server (redis://, rediss:// or "
            "unix:// URL, or host:port).",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="The URL is a node of a Redis Cluster (BACKUP may then be a cluster backup "
            "set, as check --cluster reads it).",
            rich_help_panel=NETWORK,
        ),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Overwrite keys that already exist there.", rich_help_panel=NETWORK
        ),
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue a restore that was cut off, after its last acknowledged batch.",
            rich_help_panel=NETWORK,
        ),
    ] = False,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Discard the journal of a restore that was cut off, and start over.",
            rich_help_panel=NETWORK,
        ),
    ] = False,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal",
            metavar="PATH",
            help="Keep the restore's journal here (default: under ~/.local/state/rbkit).",
            rich_help_panel=NETWORK,
        ),
    ] = None,
    match: Annotated[
        list[str] | None,
        typer.Option(
            "--match",
            metavar="GLOB",
            help="Only keys whose name matches this glob (as SCAN MATCH reads it); repeatable.",
            rich_help_panel=SELECTIVE,
        ),
    ] = None,
    db: Annotated[
        list[int] | None,
        typer.Option(
            "--db",
            min=0,
            metavar="N",
            help="Only keys of db N; repeatable.",
            rich_help_panel=SELECTIVE,
        ),
    ] = None,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            metavar="TYPE",
            help="Only keys of this type (as TYPE names it: string, hash, ...); repeatable.",
            rich_help_panel=SELECTIVE,
        ),
    ] = None,
    keys_from: Annotated[
        Path | None,
        typer.Option(
            "--keys-from",
            metavar="FILE",
            help='Only these keys: one name a line ("..." with \\xHH escapes for any byte), '
            "or the output of rbkit diff BACKUP TARGET --json.",
            rich_help_panel=SELECTIVE,
        ),
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            metavar="KINDS",
            help="With a diff --json: removed, changed or removed,changed (default).",
            rich_help_panel=SELECTIVE,
        ),
    ] = None,
    on_conflict: Annotated[
        str | None,
        typer.Option(
            "--on-conflict",
            metavar="skip|replace|fail",
            help="A selected key the target has: leave it, overwrite it, or write nothing "
            "(default with a selection: fail).",
            rich_help_panel=SELECTIVE,
        ),
    ] = None,
    ttl: Annotated[
        str | None,
        typer.Option(
            "--ttl",
            metavar="keep|none|shift",
            help="Expiry as in the backup (default), none, or the time left at the backup's time.",
            rich_help_panel=SELECTIVE,
        ),
    ] = None,
    stage_only: Annotated[
        bool,
        typer.Option(
            "--stage-only",
            help="Load into a scratch redis-server and verify; touch nothing else.",
            rich_help_panel=DRILL,
        ),
    ] = False,
    rollback: Annotated[
        Path | None,
        typer.Option(
            "--rollback",
            metavar="DIR",
            help="Undo the restore cut off in this data dir.",
            rich_help_panel=ROLLBACK,
        ),
    ] = None,
    discard_writes: Annotated[
        bool,
        typer.Option(
            "--discard-writes",
            help="Roll back even a restored server that took client writes (saved first).",
            rich_help_panel=ROLLBACK,
        ),
    ] = False,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="TIME",
            help="An AOF as it was at TIME (unix seconds or ISO 8601; by its #TS lines).",
            rich_help_panel=PITR,
        ),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(
            "--before",
            metavar="COMMAND",
            help="An AOF up to just before the last COMMAND (e.g. FLUSHALL).",
            rich_help_panel=PITR,
        ),
    ] = None,
    before_offset: Annotated[
        str | None,
        typer.Option(
            "--before-offset",
            metavar="FILE:OFFSET",
            help="An AOF up to that offset of that file (from check --timeline).",
            rich_help_panel=PITR,
        ),
    ] = None,
    password: connection.Password = None,
    user: connection.User = None,
    tls: connection.Tls = False,
    cacert: connection.CaCert = None,
    cert: connection.Cert = None,
    key: connection.Key = None,
    insecure: connection.Insecure = False,
    connect_timeout: connection.ConnectTimeout = CONNECT_TIMEOUT,
    sync_now: connection.sync_now(NETWORK) = False,
    module: Annotated[
        list[Path] | None,
        typer.Option(
            "--module",
            metavar="PATH",
            help="A module (.so) for the scratch server; repeatable.",
            rich_help_panel=COMMON,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Go on with a backup the check finds invalid (--to: leave out what the "
            "target cannot take).",
            rich_help_panel=COMMON,
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan for the real target; touch nothing.",
            rich_help_panel=COMMON,
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask for confirmation.", rich_help_panel=COMMON),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the JSON report.", rich_help_panel=COMMON)
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1,
            metavar="SECONDS",
            help="How long each save, stop, start or load may take.",
            rich_help_panel=COMMON,
        ),
    ] = 600.0,
    jobs: options.jobs("Drills of several backups", DRILL) = None,
    executor: options.executor("Drills of several backups", DRILL) = "local",
    tmpdir: options.tmpdir(COMMON) = None,
) -> None:
    """Restore a backup: staged, proven in a scratch server, verified, rolled back by itself."""
    connect, connect_flags = connection.connect_options(
        password, user, tls, cacert, cert, key, insecure, connect_timeout, sync_now=sync_now
    )
    args = RestoreArgs(
        None, stage_only, to, rollback, config, url, stop_cmd, start_cmd, redis_server,
        cluster, replace, tuple(module or ()), force, dry_run, yes, json_out, timeout,
        verify_values, discard_writes, connect, tuple(connect_flags), until, before,
        before_offset, resume, restart, journal, tuple(match or ()), tuple(db or ()),
        tuple(type_ or ()), keys_from, only, on_conflict, ttl,
    )  # fmt: skip
    from toolkit import lifeline

    with lifeline.scratch_root(tmpdir):  # every scratch file of the restore
        backups = backup or []
        if len(backups) > 1 or executor != "local":
            _drills(_with_backup(args, Path(backups[0]) if backups else None), backups, jobs,
                    executor, tmpdir)  # fmt: skip
        elif backups and rollback is None:
            from toolkit.sources.opened import open_backup

            with open_backup(backups[0], tmpdir) as src:
                _run(_with_backup(args, src.path))
        else:
            _run(_with_backup(args, Path(backups[0]) if backups else None))


def _drills(
    a: RestoreArgs, backups: list[str], jobs: int | None, executor: str, tmpdir: Path | None
) -> None:
    """Drills of several backups (or on --executor): one table, or one JSON line each, in
    argument order; the exit code is the worst of theirs."""
    from toolkit.check.batch import worst
    from toolkit.stage.batch import DrillOptions, drill_many

    if mode_of(a) != "--stage-only" or a.cut or a.dry_run:
        raise UsageError(
            "several backups (or --executor): only a drill, --stage-only without a cut or "
            "--dry-run, takes them"
        )
    options = DrillOptions(
        config=str(a.config) if a.config else None,
        modules=tuple(str(m) for m in a.module),
        force=a.force,
        redis_server=str(a.redis_server) if a.redis_server else None,
        tmpdir=str(tmpdir) if tmpdir else None,
    )
    outcomes = drill_many(backups, options, jobs=jobs, executor=executor)
    if a.json_out:
        emit_json_lines(outcomes)
    else:
        from toolkit.stage.batch_render import render_drills

        emit(render_drills(outcomes))
    raise typer.Exit(worst(outcomes))


def _with_backup(args: RestoreArgs, backup: Path | None) -> RestoreArgs:
    return replace(args, backup=backup)  # (``restore`` has an option named replace)


def _run(args: RestoreArgs) -> None:
    """The restore of a local backup (toolkit/sources made it local), in its mode."""
    mode = mode_of(args)
    run = {"--to": _network, "--stage-only": _drill, "--rollback": _rollback, "file": _file}
    if args.cut:
        report, text, ok = _cut_then(args, run[mode])
    else:
        report, text, ok = run[mode](args)
    if args.json_out:
        emit_json(report)
    else:
        emit_report(text, ok=ok)
    raise typer.Exit(int(ExitCode.OK if ok else ExitCode.INVALID))


def _cut_then(
    a: RestoreArgs, run: Callable[[RestoreArgs], tuple[dict[str, Any], str, bool]]
) -> tuple[dict[str, Any], str, bool]:
    """Point in time: stage the AOF up to the cut, then restore that like any backup."""
    from toolkit import lifeline
    from toolkit.check.locate import locate
    from toolkit.check.timeline import cut_at_offset, cut_before_command, cut_until
    from toolkit.restore.cut import build_cut
    from toolkit.server.config import read_config

    backup = _need_backup(a)
    found = locate(backup, read_config(a.config) if a.config and backup.is_dir() else None)
    if a.until is not None:
        point = cut_until(found, parse_time(a.until))
    elif a.before is not None:
        point = cut_before_command(found, a.before)
    else:
        assert a.before_offset is not None
        file, _, offset = a.before_offset.rpartition(":")
        if not file or not offset.isdigit():
            raise UsageError(f"--before-offset {a.before_offset!r}: expected FILE:OFFSET")
        point = cut_at_offset(found, file, int(offset))
    staging = lifeline.scratch_dir("rbkit-cut-")
    try:
        cut = build_cut(found, point, staging)
        _say(
            f"cut {point.why}: {cut.commands_cut} commands left out, from {point.file} "
            f"offset {point.offset}"
        )
        report, text, ok = run(replace(a, backup=cut.backup, until=None, before=None,
                                       before_offset=None))  # fmt: skip
    finally:
        lifeline.remove_dir(staging)
    report = {**report, "backup": str(backup), "cut": cut.summary()}
    text = _cut_lines(cut, backup) + "\n" + text.replace(str(cut.backup), f"{backup} (cut)")
    return report, text, ok


def _cut_lines(cut: Any, backup: Path) -> str:
    s = cut.summary()
    keys = ", ".join(f"db {db}: {n}" for db, n in s["keys_before"].items()) or "none"
    after = ", ".join(f"db {db}: {n}" for db, n in s["keys_after"].items()) or "none"
    return (
        f"point in time: {backup}, cut {s['why']} ({s['file']} offset {s['offset']}); "
        f"{s['commands_cut']} commands left out\n"
        f"  keys in the whole backup: {keys}\n  keys restored (up to the cut): {after}"
    )


def parse_time(text: str) -> int:
    """Unix seconds, or an ISO 8601 time (UTC when it names no zone)."""
    from datetime import datetime, timezone

    if text.strip().isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--until {text!r}: expected unix seconds or an ISO 8601 time (2026-12-02T17:30:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp())


def _say(text: str) -> None:
    emit(f"rbkit: {text}", err=True)


def _need_backup(a: RestoreArgs) -> Path:
    if a.backup is None:
        raise UsageError("missing BACKUP (or --rollback DIR)")
    return a.backup


def _interactive() -> bool:
    """Can a person answer a question here (stdin is a terminal)?"""
    return sys.stdin.isatty()


def _may_ask(a: RestoreArgs, what: str) -> None:
    if not (a.yes or a.dry_run or _interactive()):
        raise UsageError(f"{what}: pass --yes (stdin is not a terminal)")


def _file(a: RestoreArgs) -> tuple[dict[str, Any], str, bool]:
    from toolkit.restore.options import Options
    from toolkit.restore.procedure import RestoreReport
    from toolkit.restore.procedure import restore as run_restore
    from toolkit.restore.report import render_restore, restore_json

    backup = _need_backup(a)
    if a.config is None and a.url is None:
        raise UsageError(
            "say which server to restore into: --config redis.conf or --url URL "
            "(or --stage-only for a restore drill)"
        )
    _may_ask(a, "the restore replaces the target's data")
    opts = Options(
        backup,
        config=a.config,
        url=a.url,
        stop_cmd=a.stop_cmd,
        start_cmd=a.start_cmd,
        redis_server=a.redis_server,
        force=a.force,
        dry_run=a.dry_run,
        timeout=a.timeout,
        verify_values=a.verify_values,
        discard_writes=a.discard_writes,
        connect=a.connect,
        progress=progress_for,
    )

    def confirm(report: RestoreReport) -> bool:
        if a.yes:
            return True
        emit_report(render_restore(report, width=width()), err=True)
        return typer.confirm("Go ahead with the restore?", err=True)

    report = run_restore(opts, confirm=confirm, say=_say)
    return restore_json(report), render_restore(report, width=width()), report.ok


def _network(a: RestoreArgs) -> tuple[dict[str, Any], str, bool]:
    from toolkit.restore.network.command import restore_to
    from toolkit.restore.network.report import NetworkReport, network_json, render_network

    backup = _need_backup(a)
    assert a.to is not None
    _may_ask(a, f"a restore writes into {safe_url(a.to)}")

    def confirm(report: NetworkReport) -> bool:
        if a.yes:
            return True
        emit_report(render_network(report, width=width()), err=True)
        plan = report.plan
        keys = plan.keys_to_restore if plan is not None else "the"
        return typer.confirm(f"Restore {keys} keys into {report.target}?", err=True)

    selection = selection_of(a)
    report = restore_to(
        backup,
        a.to,
        progress=progress_for,
        cluster=a.cluster,
        replace=a.replace,
        selection=selection,
        force=a.force,
        dry_run=a.dry_run,
        config=a.config,
        modules=a.module,
        confirm=confirm,
        connect=a.connect,
        resume=a.resume,
        restart=a.restart,
        journal=a.journal,
    )
    return network_json(report), render_network(report, width=width()), report.ok


def selection_of(a: RestoreArgs) -> Any:
    """The selection.Selection the selective options ask for (a UsageError when they make
    no sense; a KeyListError for a --keys-from file that cannot be read)."""
    import os

    from toolkit.restore.network.keylist import ONLY_CHOICES, read_key_list
    from toolkit.restore.network.selection import ON_CONFLICT, REPLACE, TTL_MODES, Selection

    if a.on_conflict is not None and a.on_conflict not in ON_CONFLICT:
        raise UsageError(f"--on-conflict {a.on_conflict!r}: expected skip, replace or fail")
    if a.replace and a.on_conflict not in (None, REPLACE):
        raise UsageError(f"--replace and --on-conflict {a.on_conflict}: --replace is "
                         "--on-conflict replace; give one of them")  # fmt: skip
    if a.ttl is not None and a.ttl not in TTL_MODES:
        raise UsageError(f"--ttl {a.ttl!r}: expected keep, none or shift")
    only = None
    if a.only is not None:
        if a.keys_from is None:
            raise UsageError("--only goes with --keys-from (the output of rbkit diff --json)")
        only = tuple(dict.fromkeys(w.strip() for w in a.only.split(",")))
        bad = [w for w in only if w not in ONLY_CHOICES]
        if bad or not only:
            raise UsageError(f"--only {a.only!r}: expected removed, changed or removed,changed")
    keys = read_key_list(a.keys_from, only) if a.keys_from is not None else None
    return Selection(
        matches=tuple(os.fsencode(m) for m in a.match),
        dbs=frozenset(a.db) if a.db else None,
        types=frozenset(a.type) if a.type else None,
        keys=keys,
        on_conflict=a.on_conflict,
        ttl=a.ttl or "keep",
    )


def _drill(a: RestoreArgs) -> tuple[dict[str, Any], str, bool]:
    from toolkit.server.process import binary_at
    from toolkit.stage.drill import stage
    from toolkit.stage.report import render_stage, stage_json

    backup = _need_backup(a)
    for m in a.module:
        if not m.is_file():
            raise UsageError(f"{m}: no such module file")
    binary = binary_at(a.redis_server, "--redis-server") if a.redis_server else None
    report = stage(
        backup,
        binary=binary,
        config_path=a.config,
        modules=a.module,
        force=a.force,
        progress=progress_for,
    )
    return stage_json(report), render_stage(report, width=width()), report.verified


def _rollback(a: RestoreArgs) -> tuple[dict[str, Any], str, bool]:
    from toolkit.restore.options import Options
    from toolkit.restore.report import render_rollback, rollback_json
    from toolkit.restore.rollback import rollback_dir

    assert a.rollback is not None
    opts = Options(
        a.rollback,
        config=a.config,
        url=a.url,
        stop_cmd=a.stop_cmd,
        start_cmd=a.start_cmd,
        timeout=a.timeout,
        discard_writes=a.discard_writes,
        connect=a.connect,
    )
    rb = rollback_dir(a.rollback, opts, say=_say)
    return rollback_json(rb), render_rollback(rb, width=width()), rb.verified
