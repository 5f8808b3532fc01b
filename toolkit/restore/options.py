"""What a restore was asked to do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.server.connect import ConnectOptions
from toolkit.steps import ProgressFactory, no_progress

Say = Callable[[str], None]


@dataclass
class Options:
    backup: Path
    config: Path | None = None
    url: str | None = None
    stop_cmd: str | None = None
    start_cmd: str | None = None
    redis_server: Path | None = None
    force: bool = False
    dry_run: bool = False
    timeout: float = 600.0  # for each of save, stop, start and load
    verify_values: bool = False  # every key's value, not a sample
    discard_writes: bool = False  # a rollback may stop a server that took client writes
    connect: ConnectOptions = field(default_factory=ConnectOptions)  # reaching --url's server
    progress: ProgressFactory = no_progress  # the display of the long steps (cli/progress.py)
