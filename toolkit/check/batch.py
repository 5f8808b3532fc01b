"""Several backups checked at once: one task per backup, run by toolkit/tasks.py in a local
process pool (the default) or on a Dask distributed cluster (``dask://HOST:PORT``), each task
opening its backup where it lies (toolkit/sources). Outcomes come back in argument order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit.errors import ExitCode, RbkitError
from toolkit.sources.opened import for_workers
from toolkit.tasks import LOCAL, run_tasks


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


def check_one(spec: str, options: CheckOptions, shown: str | None = None) -> Outcome:
    """Check the backup ``spec`` (a path, ``-`` or a URL): the task each worker runs."""
    from toolkit import lifeline
    from toolkit.check.backup import check_backup
    from toolkit.check.report import check_report
    from toolkit.sources.opened import open_backup

    name = shown or spec
    try:
        tmpdir = Path(options.tmpdir) if options.tmpdir else None
        with lifeline.scratch_root(tmpdir), open_backup(spec, tmpdir) as src:
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
    """Check every backup of ``specs`` (toolkit/tasks.py runs them); the outcomes in the
    same order."""
    sent = for_workers(specs)
    calls = [(s, options, name) for s, name in zip(sent, specs, strict=True)]
    return run_tasks(check_one, calls, jobs=jobs, executor=executor)


def worst(outcomes: Sequence[Outcome]) -> int:
    """The exit code of the whole run: the worst of its backups' (2 over 1 over 0)."""
    return max((o.exit_code for o in outcomes), default=int(ExitCode.OK))
