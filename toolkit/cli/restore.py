"""``rbkit restore``: the command function, registered in cli.py.

Three modes: the staged restore into a data directory (toolkit/restore/), the restore drill
``--stage-only`` (toolkit/stage.py), and the network restore ``--to URL`` (toolkit/network/).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from toolkit.check.result import BackupIOError
from toolkit.cli.output import emit
from toolkit.errors import ExitCode
from toolkit.stage.report import render_stage, stage_json


def restore(
    backup: Annotated[
        Path | None,
        typer.Argument(
            help="RDB file, AOF file, appendonlydir/ or its .manifest, or a Redis data dir."
        ),
    ] = None,
    stage_only: Annotated[
        bool,
        typer.Option(
            "--stage-only",
            help="Restore drill: load into a scratch redis-server, verify, touch nothing else.",
        ),
    ] = False,
    redis_server: Annotated[
        Path | None,
        typer.Option(
            "--redis-server",
            help="The redis-server binary to stage with (default: one that reads the backup).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="The target's redis.conf (with --stage-only: the backup's)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="The target server: learn its files from CONFIG GET/INFO."),
    ] = None,
    stop_cmd: Annotated[
        str | None,
        typer.Option("--stop-cmd", help="Stop the target this way (default: SHUTDOWN)."),
    ] = None,
    start_cmd: Annotated[
        str | None,
        typer.Option("--start-cmd", help="Start it this way (default: redis-server CONFIG)."),
    ] = None,
    rollback: Annotated[
        Path | None,
        typer.Option("--rollback", help="Undo a restore cut off in this data dir."),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Seconds each save, stop, start or load may take."),
    ] = 600.0,
    module: Annotated[
        list[Path] | None,
        typer.Option("--module", help="A module (.so) to load into the scratch server."),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Go on with a backup the check finds invalid (--to: also leave out what the "
            "target cannot take).",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="Restore over the network into this server (redis:// or rediss:// URL)."
        ),
    ] = None,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="With --to: the URL is a node of a Redis Cluster.")
    ] = False,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="With --to: overwrite keys that already exist there."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan for the real target; touch nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    verify_values: Annotated[
        bool,
        typer.Option(
            "--verify-values",
            help="Compare every key's value after the restore (default: a sample of keys).",
        ),
    ] = False,
    discard_writes: Annotated[
        bool,
        typer.Option(
            "--discard-writes",
            help="Roll back even a restored server that took client writes (its data is "
            "saved into the rollback folder first).",
        ),
    ] = False,
) -> None:
    """Restore a backup. With --stage-only: prove it restorable without touching production."""
    _exclusive(
        {
            "--stage-only": stage_only,
            "--to": to is not None,
            "--rollback": rollback is not None,
            "--url": url is not None,
            "--stop-cmd": stop_cmd is not None,
            "--start-cmd": start_cmd is not None,
            "--cluster": cluster,
            "--replace": replace,
            "--verify-values": verify_values,
            "--discard-writes": discard_writes,
            "--dry-run": dry_run,
            "BACKUP": backup is not None,
        }
    )
    if to is not None:
        from toolkit.restore.network.command import restore_to

        code = restore_to(
            backup,
            to,
            cluster=cluster,
            replace=replace,
            force=force,
            yes=yes,
            dry_run=dry_run,
            json_out=json_out,
            config=config,
            modules=list(module or []),
        )
        raise typer.Exit(int(code))
    if rollback is not None:
        _rollback(rollback, config, url, stop_cmd, start_cmd, timeout, json_out, discard_writes)
    if backup is None:
        _fail("missing BACKUP (or --rollback DIR)")
    if not stage_only:
        from toolkit.restore.options import Options

        if config is None and url is None:
            _fail(
                "say which server to restore into: --config redis.conf or --url URL "
                "(or --stage-only for a restore drill)"
            )

        opts = Options(
            backup,
            config=config,
            url=url,
            stop_cmd=stop_cmd,
            start_cmd=start_cmd,
            redis_server=redis_server,
            force=force,
            dry_run=dry_run,
            timeout=timeout,
            verify_values=verify_values,
            discard_writes=discard_writes,
        )
        _restore(opts, yes, json_out)
    from subprocess import SubprocessError

    from toolkit.server.process import ServerBinary, ServerError, binary_version
    from toolkit.stage.drill import stage

    modules = list(module or [])
    for m in modules:
        if not m.is_file():
            _fail(f"{m}: no such module file")
    binary = None
    if redis_server is not None:
        try:
            binary = ServerBinary(
                redis_server.absolute(), binary_version(redis_server), "--redis-server"
            )
        except ServerError as e:
            _fail(str(e))
        except (OSError, SubprocessError) as e:
            _fail(f"{redis_server}: {getattr(e, 'strerror', None) or e}")
    # A SIGTERM ends the drill as Ctrl-C does: through the code that stops the scratch server.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        report = stage(backup, binary=binary, config_path=config, modules=modules, force=force)
    except (BackupIOError, ServerError) as e:
        _fail(str(e))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if json_out:
        typer.echo(json.dumps(stage_json(report), indent=1))
    else:
        emit(render_stage(report))
    raise typer.Exit(int(ExitCode.OK if report.verified else ExitCode.INVALID))


def _say(text: str) -> None:
    emit(f"rbkit: {text}", err=True)


def _restore(opts: object, yes: bool, json_out: bool) -> NoReturn:
    import sys

    from toolkit.restore.options import Options, RestoreError
    from toolkit.restore.procedure import RestoreReport
    from toolkit.restore.procedure import restore as run_restore
    from toolkit.restore.report import render_restore, restore_json

    assert isinstance(opts, Options)
    interactive = sys.stdin.isatty()
    if not (yes or opts.dry_run or interactive):
        _fail("the restore replaces the target's data: pass --yes (stdin is not a terminal)")

    def confirm(report: RestoreReport) -> bool:
        if yes:
            return True
        emit(render_restore(report), err=True)
        return typer.confirm("Go ahead with the restore?", err=True)

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        report = run_restore(opts, confirm=confirm, say=_say)
    except RestoreError as e:
        _fail(str(e))
    finally:
        signal.signal(signal.SIGTERM, previous)
    if json_out:
        typer.echo(json.dumps(restore_json(report), indent=1))
    else:
        emit(render_restore(report))
    raise typer.Exit(int(ExitCode.OK if report.ok else ExitCode.INVALID))


def _rollback(
    data_dir: Path,
    config: Path | None,
    url: str | None,
    stop_cmd: str | None,
    start_cmd: str | None,
    timeout: float,
    json_out: bool,
    discard_writes: bool,
) -> NoReturn:
    from toolkit.restore.options import Options, RestoreError
    from toolkit.restore.report import render_rollback, rollback_json
    from toolkit.restore.rollback import rollback_dir

    opts = Options(
        data_dir,
        config=config,
        url=url,
        stop_cmd=stop_cmd,
        start_cmd=start_cmd,
        timeout=timeout,
        discard_writes=discard_writes,
    )
    try:
        rb = rollback_dir(data_dir, opts, say=_say)
    except RestoreError as e:
        _fail(str(e))
    if json_out:
        typer.echo(json.dumps(rollback_json(rb), indent=1))
    else:
        emit(render_rollback(rb))
    raise typer.Exit(int(ExitCode.OK if rb.verified else ExitCode.INVALID))


# The modes, and the options that belong to each; an option of one mode with another mode's
# flag is a usage error that names both (a drill must never reach a server, whatever is added).
_MODE_OPTIONS = {
    "--stage-only": {"BACKUP", "--dry-run"},
    "--to": {"BACKUP", "--cluster", "--replace", "--dry-run"},
    "--rollback": {"--url", "--stop-cmd", "--start-cmd", "--discard-writes"},
}


def _exclusive(given: dict[str, bool]) -> None:
    """Refuse (exit 2) flags of two modes at once, naming both."""
    on = [name for name, present in given.items() if present]
    modes = [m for m in _MODE_OPTIONS if m in on]
    if len(modes) > 1:
        _fail(f"{modes[0]} and {modes[1]} cannot be used together: they are different modes")
    if modes:
        mode = modes[0]
        for name in on:
            if name != mode and name not in _MODE_OPTIONS[mode]:
                _fail(f"{name} cannot be used with {mode}: {_MODE_TEXT[mode]}")
    else:
        for name in ("--cluster", "--replace"):
            if name in on:
                _fail(f"{name} goes with --to URL")


_MODE_TEXT = {
    "--stage-only": "a restore drill touches no server but its own scratch one",
    "--to": "a network restore writes keys into a server; it stops and starts nothing",
    "--rollback": "it undoes the restore cut off in DIR; it takes no BACKUP",
}


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _fail(message: str) -> NoReturn:
    emit(f"error: {message}", err=True)
    raise typer.Exit(int(ExitCode.ERROR))
