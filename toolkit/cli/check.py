"""``rbkit check``: validate a backup as the server loading it would, print its inventory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from toolkit.cli import sources_options as options
from toolkit.cli.output import emit, emit_json, emit_json_lines, emit_report, width
from toolkit.cli.progress import progress_for
from toolkit.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from toolkit.check.timeline import Timeline

EXAMPLES = """\b
Examples:
  # the verdict, the inventory and the biggest keys
  rbkit check dump.rdb
  # the file Redis would load from its data dir, checked
  rbkit check /var/lib/redis --config /etc/redis/redis.conf
  # one JSON object (schema rbkit.check/1)
  rbkit check appendonlydir/ --json
  # the framing only: faster, "structure not validated"
  rbkit check big.rdb --quick
  # when what happened in an AOF: FLUSHALL, mass deletes, with offsets
  rbkit check appendonlydir/ --timeline
  # a cluster's backup set: every shard, every slot once, every key in its shard
  rbkit check --cluster /backups/cluster-2024-05-01/
  # compressed (told by its bytes), from stdin, or in object storage
  rbkit check dump.rdb.zst
  ssh db1 cat /var/lib/redis/dump.rdb | rbkit check -
  rbkit check s3://bucket/redis/dump.rdb.gz
  # several at once, in parallel: a table, or JSON Lines with --json
  rbkit check /backups/*.rdb --jobs 4
  rbkit check /shared/backups/*.rdb --executor dask://scheduler:8786 --json
"""
SOURCES_HELP = (
    "RDB file, AOF file, appendonlydir/ or its .manifest, or a Redis data dir; compressed "
    "(gzip, zstd, lz4, bzip2, xz), '-' for stdin, or s3://, gs://, az://, http(s):// URLs. "
    "Several: checked in parallel, one table (--json: one JSON object per line)."
)


def _timeline(backup: Path, config: Path | None) -> Timeline:
    from toolkit.check.locate import locate
    from toolkit.check.timeline import timeline
    from toolkit.server.config import read_config

    found = locate(backup, read_config(config) if config else None)
    return timeline(found)


def check(
    backups: Annotated[
        list[str],
        typer.Argument(metavar="BACKUP...", help=SOURCES_HELP, show_default=False),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings make it invalid.")] = False,
    top: Annotated[
        int, typer.Option("--top", min=0, metavar="N", help="How many biggest keys.")
    ] = 10,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Read the framing only, not the values: faster, and the verdict says "
            "'structure not validated'.",
        ),
    ] = False,
    deep: Annotated[
        bool,
        typer.Option("--deep", hidden=True, help="Accepted for compatibility: the default."),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="REDIS.CONF",
            help="Which file Redis loads from a data dir (dir, appendonly, names).",
        ),
    ] = None,
    timeline: Annotated[
        bool,
        typer.Option(
            "--timeline",
            help="For an AOF: its #TS time axis, commands per interval, and the destructive "
            "events (FLUSHALL, mass deletes...) with file and offset.",
        ),
    ] = False,
    module: Annotated[
        list[str] | None,
        typer.Option(
            "--module",
            metavar="NAME|PATH",
            help="A module the loading server has (an AOF's commands of it are accepted); "
            "repeatable.",
        ),
    ] = None,
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="BACKUP is a cluster's backup set: a folder per shard (its RDB or "
            "appendonlydir/ and nodes.conf), or what 'redis-cli --cluster backup' writes. "
            "Checks every shard, slot coverage and that each key is in its slot's shard.",
        ),
    ] = False,
    jobs: options.jobs("Several backups") = None,
    executor: options.executor("Several backups") = "local",
    tmpdir: options.tmpdir() = None,
) -> None:
    """Validate a backup as the server loading it would, and print its inventory."""
    from toolkit import lifeline

    with lifeline.scratch_root(tmpdir):  # every scratch file of the check
        if cluster:
            if len(backups) > 1 or executor != "local":
                raise UsageError("--cluster takes one backup set: a folder of shards")
            from toolkit.cli.cluster_check import check_cluster_set

            given = {"quick": quick, "config": config, "timeline": timeline, "module": module}
            check_cluster_set(Path(backups[0]), json_out=json_out, strict=strict, top=top, **given)
            return
        if quick and deep:
            raise UsageError("--quick and --deep contradict each other")
        if len(backups) > 1 or executor != "local":
            if timeline:
                raise UsageError("--timeline takes one backup, not several")
            _check_several(
                backups, json_out, strict, top, quick, config, module, jobs, executor, tmpdir
            )
            return
        from toolkit.sources.opened import open_backup

        with open_backup(backups[0], tmpdir) as src:
            _check_one(src.path, json_out, strict, top, quick, config, timeline, module)


def _check_one(
    backup: Path,
    json_out: bool,
    strict: bool,
    top: int,
    quick: bool,
    config: Path | None,
    timeline: bool,
    module: list[str] | None,
) -> None:
    from toolkit.check.backup import check_backup

    progress = progress_for(f"checking {backup.name}")
    try:
        result = check_backup(
            backup,
            config_path=config,
            top=top,
            quick=quick,
            progress=progress,
            modules=tuple(module or ()),
        )
    finally:
        if progress is not None:
            progress.close()
    history = _timeline(backup, config) if timeline else None
    failed = not result.valid or (strict and result.warnings)
    if json_out:
        from toolkit.check.report import check_report
        from toolkit.check.timeline_report import timeline_json

        report = check_report(result)
        if history is not None:
            report["timeline"] = timeline_json(history)
        emit_json(report)
    else:
        from toolkit.check.render import render_check
        from toolkit.check.timeline_report import render_timeline

        emit_report(render_check(result, strict=strict, width=width()), ok=not failed)
        if history is not None:
            emit("\n" + render_timeline(history))
    raise typer.Exit(int(ExitCode.INVALID if failed else ExitCode.OK))


def _check_several(
    backups: list[str],
    json_out: bool,
    strict: bool,
    top: int,
    quick: bool,
    config: Path | None,
    module: list[str] | None,
    jobs: int | None,
    executor: str,
    tmpdir: Path | None,
) -> None:
    """Several backups: checked in parallel, one table or one JSON line each, in order; the
    exit code is the worst of theirs."""
    from toolkit.check.batch import CheckOptions, check_many, worst

    options = CheckOptions(
        top=top,
        quick=quick,
        strict=strict,
        config=str(config) if config else None,
        modules=tuple(module or ()),
        tmpdir=str(tmpdir) if tmpdir else None,
    )
    outcomes = check_many(backups, options, jobs=jobs, executor=executor)
    if json_out:
        emit_json_lines(outcomes)
    else:
        from toolkit.check.batch_render import render_batch

        emit(render_batch(outcomes, strict=strict))
    raise typer.Exit(worst(outcomes))
