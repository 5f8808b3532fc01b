"""Run rbkit with a fault injected from outside the product: ``python tests/kill_after.py
STEP[:TERM] ARGS...`` runs ``rbkit ARGS`` and kills it (SIGKILL, as a crash or ``kill -9``
would; or SIGTERM, an operator's kill) right after its restore journal records STEP done."""

from __future__ import annotations

import os
import signal
import sys

from toolkit.cli import main
from toolkit.restore.journal import Journal


def _inject(step: str, sig: signal.Signals) -> None:
    original = Journal.write

    def write(self: Journal, name: str, status: str, **detail: object) -> None:
        original(self, name, status, **detail)
        if name == step and status == "done":
            os.kill(os.getpid(), sig)

    Journal.write = write  # type: ignore[method-assign]


if __name__ == "__main__":
    name, _, how = sys.argv[1].partition(":")
    _inject(name, signal.SIGTERM if how == "TERM" else signal.SIGKILL)
    sys.argv = ["rbkit", *sys.argv[2:]]
    main()
