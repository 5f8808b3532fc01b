"""Independent tasks run side by side: in a local process pool (the default: nothing to
install) or on a Dask distributed cluster (``dask://HOST:PORT``, the optional extra
``rbkit[dask]``). A task is a module-level function and its arguments, so that another process
or machine can run it; the results come back in the order of the calls, whatever order the
tasks finished in."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from toolkit.errors import UsageError

LOCAL = "local"
DASK = "dask://"
T = TypeVar("T")


def run_tasks(
    task: Callable[..., T],
    calls: Sequence[tuple[Any, ...]],
    *,
    jobs: int | None = None,
    executor: str = LOCAL,
) -> list[T]:
    """``task(*call)`` for every call of ``calls``: ``jobs`` at a time in a local pool
    (default: the number of cores; 1 runs them here, one after the other), or on the Dask
    scheduler ``executor`` names. Raises UsageError for an executor that cannot be used."""
    if executor == LOCAL:
        return _local(task, calls, jobs or os.cpu_count() or 1)
    if executor.startswith(DASK):
        return _dask(task, calls, executor[len(DASK) :])
    raise UsageError(f"--executor {executor!r}: expected 'local' or dask://HOST:PORT")


def _local(task: Callable[..., T], calls: Sequence[tuple[Any, ...]], jobs: int) -> list[T]:
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: expected 1 or more")
    if jobs == 1 or len(calls) < 2:
        return [task(*call) for call in calls]
    context = multiprocessing.get_context("spawn")  # no state of this process is inherited
    with ProcessPoolExecutor(max_workers=min(jobs, len(calls)), mp_context=context) as pool:
        try:
            futures = [pool.submit(task, *call) for call in calls]
            return [f.result() for f in futures]
        except BaseException:  # Ctrl-C, SIGTERM: what has not started does not start,
            # and what runs is ended (its temporary dirs and scratch servers go with it:
            # toolkit/lifeline.py), rather than waited for
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _dask(task: Callable[..., T], calls: Sequence[tuple[Any, ...]], address: str) -> list[T]:
    try:
        from distributed import Client
    except ImportError:
        raise UsageError(
            "--executor dask://...: needs the package distributed (pip install 'rbkit[dask]')"
        ) from None
    if not address:
        raise UsageError("--executor dask://HOST:PORT: the scheduler's address is missing")
    try:
        client = Client(f"tcp://{address}", timeout="20s")
    except Exception as e:
        raise UsageError(f"--executor dask://{address}: no Dask scheduler answers ({e})") from None
    with client:
        columns = [list(column) for column in zip(*calls, strict=True)] if calls else []
        futures = client.map(task, *columns, pure=False)
        return list(client.gather(futures))
