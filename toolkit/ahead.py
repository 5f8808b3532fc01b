"""Work done in a second thread: started now and collected later (what a restore reads from
the backup while a server loads it), or a stream of items consumed beside the thread that
makes them (an export's writer beside its walk)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
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

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def consumed_aside(items: Iterable[T], consume: Callable[[T], object], depth: int = 2) -> None:
    """Feed ``items`` (made in this thread) to ``consume`` in a second thread, at most
    ``depth`` waiting between them: a walk of a file and the writing of what it yields
    overlap (pyarrow's writers let go of the GIL). Raises what either side raised, the
    producer's first; the consumer's error stops the producer at its next item."""
    waiting: queue.Queue[tuple[bool, T | None]] = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []

    def run() -> None:
        while True:
            more, item = waiting.get()
            if not more:
                return
            if not failed:
                try:
                    consume(item)  # type: ignore[arg-type]
                except BaseException as e:  # handed to the producer's thread
                    failed.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        for item in items:
            if failed:
                break
            waiting.put((True, item))
    finally:
        waiting.put((False, None))
        thread.join()
    if failed:
        raise failed[0]
