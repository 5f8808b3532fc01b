"""A one-line progress indicator on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

# Files smaller than this finish before a bar is worth drawing.
MIN_SIZE = 64 << 20


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        if total < MIN_SIZE or not total:
            return
        pct = min(100.0, 100.0 * done / total)
        rate = done / max(time.monotonic() - self.started, 1e-6) / (1 << 20)
        self.stream.write(f"\r{self.label}: {pct:5.1f}%  {rate:6.0f} MB/s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r" + " " * (len(self.label) + 24) + "\r")
            self.stream.flush()


def progress_for(label: str) -> Progress | None:
    return Progress(label) if sys.stderr.isatty() else None
