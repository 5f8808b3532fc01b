"""Work started in a background thread now and collected later: what a restore reads from
the backup while a server loads it (the second core is idle then)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Ahead(Generic[T]):
    """``work()`` run in a daemon thread started at once; :meth:`result` waits for it and
    returns what it returned or raises what it raised."""

    def __init__(self, work: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._value = work()
        except BaseException as e:  # handed to the caller of result()
            self._error = e

    def wait(self) -> None:
        """Wait until the work has ended, whatever its outcome (:meth:`result` tells it)."""
        self._thread.join()

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
