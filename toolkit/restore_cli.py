"""``rbkit restore``: the command function, registered in cli.py (rendering: stage_report.py).

Only ``--stage-only`` (the restore drill, toolkit/stage.py) is implemented so far.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from toolkit.result import BackupIOError
from toolkit.stage_report import render_stage, stage_json
from toolkit.status import ExitCode


def restore(
    backup: Annotated[
        Path,
        typer.Argument(
            help="RDB file, AOF file, appendonlydir/ or its .manifest, or a Redis data dir."
        ),
    ],
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
        typer.Option("--config", help="redis.conf: which file of a data dir Redis loads."),
    ] = None,
    module: Annotated[
        list[Path] | None,
        typer.Option("--module", help="A module (.so) to load into the scratch server."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Stage even a backup the check finds invalid.")
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
) -> None:
    """Restore a backup. With --stage-only: prove it restorable without touching production."""
    if to is not None:
        from toolkit.network.command import restore_to

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
        )
        raise typer.Exit(int(code))
    if cluster or replace:
        _fail("--cluster and --replace go with --to URL")
    if not stage_only:
        _fail(
            "only --stage-only is implemented yet (a staged restore into a live server is "
            "the next step)"
        )
    from subprocess import SubprocessError

    from toolkit.servers import ServerBinary, ServerError, binary_version
    from toolkit.stage import stage

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
        typer.echo(render_stage(report))
    raise typer.Exit(int(ExitCode.OK if report.verified else ExitCode.INVALID))


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(ExitCode.ERROR))
