"""A JSON array made item by item as it is written (toolkit/cli/jsontext.py writes it).

Renderers (no IO) hand it to the CLI's JSON writer instead of a list that would hold every
item at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any


class Stream:
    """A JSON array whose items are ``make(x)`` for each ``x`` of ``source``, made as they
    are written (``source`` is iterated again each time the array is).

    toolkit/cli/jsontext.py writes it as it writes a list; ``json.dumps`` needs
    ``default=toolkit.cli.jsontext.plain``.
    """

    def __init__(self, source: Iterable[Any], make: Callable[[Any], Any]) -> None:
        self.source = source
        self.make = make

    def __iter__(self) -> Iterator[Any]:
        return map(self.make, self.source)
