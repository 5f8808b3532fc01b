"""Several backups checked at once: one task per backup, run in a local process pool (the
default) or on a Dask distributed cluster (``dask://HOST:PORT``, the optional extra
``rbkit[dask]``), each task opening its backup where it lies (toolkit/sources). Outcomes come
back in argument order, whatever order the tasks finished in."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ExitCode, RbkitError, UsageError

LOCAL = "local"
DASK = "dask://"


@dataclass(frozen=True)
class CheckOptions:
    """What each task is asked (as ``rbkit check`` options)."""

    top: int = 10
    quick: bool = False
    strict: bool = False
    config: str | None = None
    modules: tuple[str, ...] = ()
    tmpdir: str | None = None


@dataclass
class Outcome:
    """One backup's check: its rbkit.check/1 report, or the error that stopped it."""

    spec: str  # as the user named it
    exit_code: int
    report: dict[str, Any] | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)


def check_one(spec: str, options: CheckOptions, shown: str | None = None) -> Outcome:
    """Check the backup ``spec`` (a path, ``-`` or a URL): the task each worker runs."""
    from toolkit.check.backup import check_backup
    from toolkit.check.report import check_report
    from toolkit.sources.opened import open_backup

    name = shown or spec
    try:
        tmpdir = Path(options.tmpdir) if options.tmpdir else None
        with open_backup(spec, tmpdir) as src:
            result = check_backup(
                src.path,
                config_path=Path(options.config) if options.config else None,
                top=options.top,
                quick=options.quick,
                modules=options.modules,
            )
            if result.name.startswith(spec):  # a worker's absolute path: as the user wrote it
                result.shown = name + result.name[len(spec) :]
    except RbkitError as e:
        return Outcome(name, int(e.exit_code), error=str(e).replace(spec, name, 1))
    except Exception as e:  # a bug of rbkit's: this backup's line says so, the others go on
        return Outcome(name, int(ExitCode.ERROR), error=f"internal error ({type(e).__name__}: {e})")
    failed = not result.valid or (options.strict and result.warnings)
    code = ExitCode.INVALID if failed else ExitCode.OK
    return Outcome(name, int(code), report=check_report(result))


def check_many(
    specs: Sequence[str], options: CheckOptions, *, jobs: int | None, executor: str = LOCAL
) -> list[Outcome]:
    """Check every backup of ``specs``; the outcomes in the same order."""
    if STDIN_SPEC in specs:
        raise UsageError("-: stdin can be one backup only, not one of several")
    # A worker may run elsewhere or in another directory: it gets absolute local paths.
    sent = [s if "://" in s else os.path.abspath(s) for s in specs]
    if executor == LOCAL:
        return _local(specs, sent, options, jobs or os.cpu_count() or 1)
    if executor.startswith(DASK):
        return _dask(specs, sent, options, executor[len(DASK) :])
    raise UsageError(f"--executor {executor!r}: expected 'local' or dask://HOST:PORT")


STDIN_SPEC = "-"


def _local(
    specs: Sequence[str], sent: Sequence[str], options: CheckOptions, jobs: int
) -> list[Outcome]:
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: expected 1 or more")
    if jobs == 1:
        return [check_one(s, options, name) for s, name in zip(sent, specs, strict=True)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(specs)), mp_context=context) as pool:
        try:
            futures = [
                pool.submit(check_one, s, options, name)
                for s, name in zip(sent, specs, strict=True)
            ]
            return [f.result() for f in futures]
        except BaseException:  # Ctrl-C: what has not started does not start
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _dask(
    specs: Sequence[str], sent: Sequence[str], options: CheckOptions, address: str
) -> list[Outcome]:
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
        futures = client.map(check_one, sent, [options] * len(sent), specs, pure=False)
        return list(client.gather(futures))


def worst(outcomes: Sequence[Outcome]) -> int:
    """The exit code of the whole run: the worst of its backups' (2 over 1 over 0)."""
    return max((o.exit_code for o in outcomes), default=int(ExitCode.OK))
