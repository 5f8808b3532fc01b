"""A job run in a forked process while this one does other work (two cores): the check of
the other side of a diff, the other side's walk."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from toolkit import lifeline
from toolkit.errors import DiffError

# The job a forked worker runs (set before it is forked: it inherits it).
_JOB: Callable[[], Any] | None = None


def _run_job() -> Any:
    assert _JOB is not None
    lifeline.detach_child()
    return _JOB()


class Forked:
    """A job (any callable: it is not pickled, the forked process inherits it) run in a
    forked process. :meth:`result` waits for it and raises what it raised; :meth:`close`
    ends the process if it still runs. None from :meth:`start` where this system cannot
    fork or has one core (run the job in this process then)."""

    def __init__(self, job: Callable[[], Any]) -> None:
        global _JOB
        _JOB = job
        context = multiprocessing.get_context("fork")
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        self._future = self._pool.submit(_run_job)  # forked now, with the job in its memory
        self._pids = [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.pid]
        for pid in self._pids:
            lifeline.watch_process(pid)  # ended with rbkit if rbkit is killed

    @classmethod
    def start(cls, job: Callable[[], Any]) -> Forked | None:
        if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        try:
            return cls(job)
        except (OSError, BrokenProcessPool):
            return None

    def done(self) -> bool:
        """Whether the job has ended (:meth:`result` then does not wait)."""
        return self._future.done()

    def result(self) -> Any:
        try:
            return self._future.result()
        except BrokenProcessPool:
            raise DiffError("the process reading the other side ended unexpectedly") from None
        finally:
            self.close()

    def close(self) -> None:
        if not self._future.done():
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for pid in self._pids:
            lifeline.forget_process(pid)
        self._pids = []
