"""The factory of progress bars the commands pass down (toolkit/cli/bar.py draws them): a bar
on stderr when it is a terminal, nothing otherwise. rich is loaded only when a bar is drawn."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from toolkit.steps import BYTES

if TYPE_CHECKING:
    from toolkit.cli.bar import Bar


def progress_for(label: str, unit: str = BYTES) -> Bar | None:
    """A bar for a step on stderr when it is a terminal; None (no display) otherwise."""
    if not sys.stderr.isatty():
        return None
    from toolkit.cli.bar import Bar

    return Bar(label, unit)
