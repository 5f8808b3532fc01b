"""The one progress display of rbkit: a bar on stderr with what is done of the total, the
rate and the time left, drawn by rich; only when stderr is a terminal (nothing on a pipe or a
file, nothing in JSON) and only for a step that lasts (a step done within :data:`DELAY`
seconds never draws).

The layers below the command line know nothing of it: they take a
:class:`toolkit.steps.ProgressFactory` and call what it returns with ``(done, total)``;
:func:`toolkit.cli.progress.progress_for` is the factory the commands pass down (it loads
this module, and rich, only when a terminal will show a bar).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from toolkit.steps import BYTES
from toolkit.text import count, size

DELAY = 0.5  # seconds a step runs before its bar is drawn


class _Amount(ProgressColumn):
    """``12.5 MB / 410.9 MB`` or ``12,000 / 54,000 keys``: done of the total, in the unit."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", BYTES)
        show = size if unit == BYTES else count
        done = show(int(task.completed))
        total = "?" if task.total is None else show(int(task.total))
        suffix = "" if unit == BYTES else f" {unit}"
        return Text(f"{done} / {total}{suffix}", style="progress.download")


class Bar:
    """One step's bar: created when the step starts, drawn once it has run :data:`DELAY`
    seconds, gone (nothing left on the terminal) when closed."""

    def __init__(self, label: str, unit: str = BYTES, stream: TextIO | None = None) -> None:
        self.label = label
        self.unit = unit
        self.started = time.monotonic()
        self._console = Console(file=stream or sys.stderr, force_terminal=stream is not None)
        self._display: Progress | None = None
        self._task = None

    def _open(self) -> None:
        self._display = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            _Amount(),
            TimeRemainingColumn(),
            console=self._console,
            transient=True,
        )
        self._task = self._display.add_task(self.label, total=None, unit=self.unit)
        self._display.start()

    @property
    def drawn(self) -> bool:
        return self._display is not None

    def __call__(self, done: int, total: int | None = None) -> None:
        if self._display is None:
            if time.monotonic() - self.started < DELAY:
                return
            self._open()
        assert self._display is not None and self._task is not None
        self._display.update(self._task, completed=done, total=total or None)

    def close(self) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None
