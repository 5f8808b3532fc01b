"""``rbkit check --cluster SET``: a cluster's backup set, one backup per shard, as a whole."""

from __future__ import annotations

from pathlib import Path

import typer

from toolkit.cli.output import emit_json, emit_report, width
from toolkit.errors import ExitCode, UsageError


def check_cluster_set(
    path: Path, *, json_out: bool, strict: bool, top: int, **other: object
) -> None:
    """Check the set at ``path`` and exit with its verdict; ``other``: the single-backup
    options given, refused when set."""
    given = [name for name, value in other.items() if value]
    if given:
        names = ", ".join(f"--{n.replace('_', '-')}" for n in given)
        raise UsageError(f"--cluster checks every shard in full: {names} does not apply")
    from toolkit.check.cluster.verdict import check_cluster

    result = check_cluster(path, top=top)
    failed = not result.valid or bool(strict and result.warnings)
    if json_out:
        from toolkit.check.cluster.report import cluster_report

        emit_json(cluster_report(result))
    else:
        from toolkit.check.cluster.render import render_cluster

        emit_report(render_cluster(result, strict=strict, width=width()), ok=not failed)
    raise typer.Exit(int(ExitCode.INVALID if failed else ExitCode.OK))
