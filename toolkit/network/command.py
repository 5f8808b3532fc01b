"""The network restore's entry point, called by ``rbkit restore --to`` (toolkit/restore_cli.py)."""

from __future__ import annotations

from pathlib import Path

from toolkit.status import ExitCode


def restore_to(
    backup: Path,
    url: str,
    *,
    cluster: bool,
    replace: bool,
    force: bool,
    yes: bool,
    dry_run: bool,
    json_out: bool,
    config: Path | None = None,
) -> ExitCode:
    """Restore ``backup`` into the server (or cluster) at ``url``; print the report; return
    the exit code."""
    raise NotImplementedError("network restore (--to) is not implemented yet")
