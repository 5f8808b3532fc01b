"""A guard for tests that feed damaged input: a parser that loops fails the test, not CI."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

ALARM_SECONDS = 10


class Hung(Exception):
    """An example ran past its alarm: the parser is looping, not failing."""


@contextmanager
def alarm(seconds: int = ALARM_SECONDS) -> Iterator[None]:
    """Raise Hung inside the block if it runs longer than ``seconds``."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise Hung(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
