"""Timed steps: how the restore drill, the restore and the network restore report their work;
and the shape of a progress display, which the command line passes down (cli/progress.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

# How a drill, a restore, a network restore or a rollback ended (the reports' "outcome").
VERIFIED = "verified"  # done and read back: the server holds what the backup holds
RESTORED = "restored"  # a file restore: the target runs the backup's data, verified
PLANNED = "planned"  # --dry-run: the plan, nothing changed
REFUSED = "refused"  # the gate or a preflight said no: nothing changed
CANCELLED = "cancelled"  # not confirmed: nothing changed
MISMATCH = "mismatch"  # done, but the server does not hold what the backup holds
ROLLED_BACK = "rolled-back"  # a file restore failed and was undone
UNVERIFIED = "unverified"  # the restored server took client writes: left running, not undone
FAILED = "failed"  # failed midway (and, for a file restore, so did its rollback)

BYTES = "bytes"  # the units a step counts its progress in
KEYS = "keys"


class Progress(Protocol):
    """Told how far a long step is (``done`` of ``total`` units; ``total`` None or 0 when it
    is not known), then closed."""

    def __call__(self, done: int, total: int | None = None) -> None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    """Makes the progress display of a step named by ``label`` counting ``unit``
    (:data:`BYTES` or :data:`KEYS`); None where no display is wanted."""

    def __call__(self, label: str, unit: str = BYTES) -> Progress | None: ...


def no_progress(_label: str, _unit: str = BYTES) -> None:
    return None


@contextmanager
def progress_of(factory: ProgressFactory, label: str, unit: str = BYTES) -> Iterator[Progress]:
    """The display ``factory`` makes for a step (or one that shows nothing), closed however
    the step ends."""
    shown = factory(label, unit)
    try:
        yield shown if shown is not None else _Silent()
    finally:
        if shown is not None:
            shown.close()


class _Silent:
    def __call__(self, done: int, total: int | None = None) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class Step:
    name: str  # gate, preflight, stage, stop, install, load, verify, ...
    status: str  # ok, refused, mismatch, failed, skipped
    seconds: float = 0.0
    detail: str = ""


@contextmanager
def timed(steps: list[Step], name: str) -> Iterator[Step]:
    """A step named ``name``, timed and appended to ``steps`` however it ends."""
    step = Step(name, "ok")
    started = time.monotonic()
    try:
        yield step
    finally:
        step.seconds = time.monotonic() - started
        steps.append(step)


def steps_json(steps: list[Step]) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "status": s.status, "seconds": round(s.seconds, 6), "detail": s.detail}
        for s in steps
    ]


def steps_table(steps: list[Step]) -> str:
    from tabulate import tabulate  # only where a table is drawn

    return tabulate(
        [(s.name, s.status, f"{s.seconds:.3f}", s.detail) for s in steps],
        headers=("step", "status", "seconds", "detail"),
        disable_numparse=True,
    )
