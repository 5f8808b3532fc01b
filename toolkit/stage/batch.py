"""Drills of several backups (``rbkit restore A B ... --stage-only``): one task per backup,
each opening its backup where it lies (toolkit/sources) and starting its own scratch server,
run by toolkit/tasks.py in a local process pool or on a Dask cluster; the outcomes come back in
argument order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from toolkit.check.batch import Outcome
from toolkit.errors import ExitCode, RbkitError
from toolkit.sources.opened import for_workers
from toolkit.tasks import run_tasks


@dataclass(frozen=True)
class DrillOptions:
    """What each drill is asked (as ``rbkit restore --stage-only`` options)."""

    config: str | None = None
    modules: tuple[str, ...] = ()
    force: bool = False
    redis_server: str | None = None
    tmpdir: str | None = None


def drill_one(spec: str, options: DrillOptions, shown: str | None = None) -> Outcome:
    """The restore drill of ``spec`` (a path, or a URL): the task each worker runs."""
    from toolkit import lifeline
    from toolkit.server.process import binary_at
    from toolkit.sources.opened import open_backup
    from toolkit.stage.drill import stage
    from toolkit.stage.report import stage_json

    name = shown or spec
    try:
        binary = binary_at(Path(options.redis_server), "--redis-server") if (
            options.redis_server
        ) else None  # fmt: skip
        tmpdir = Path(options.tmpdir) if options.tmpdir else None
        with lifeline.scratch_root(tmpdir), open_backup(spec, tmpdir) as src:
            report = stage(
                src.path,
                binary=binary,
                config_path=Path(options.config) if options.config else None,
                modules=tuple(Path(m) for m in options.modules),
                force=options.force,
            )
            doc = stage_json(report)
    except RbkitError as e:
        return Outcome(name, int(e.exit_code), error=str(e).replace(spec, name, 1))
    except Exception as e:  # a bug of rbkit's: this backup's line says so, the others go on
        return Outcome(name, int(ExitCode.ERROR), error=f"internal error ({type(e).__name__}: {e})")
    if str(doc.get("backup", "")).startswith(spec):  # a worker's absolute path
        doc["backup"] = name + str(doc["backup"])[len(spec) :]
    return Outcome(name, int(ExitCode.OK if report.verified else ExitCode.INVALID), report=doc)


def drill_many(
    specs: Sequence[str], options: DrillOptions, *, jobs: int | None, executor: str
) -> list[Outcome]:
    """The drill of every backup of ``specs``; the outcomes in the same order."""
    sent = for_workers(specs)
    calls = [(s, options, name) for s, name in zip(sent, specs, strict=True)]
    return run_tasks(drill_one, calls, jobs=jobs, executor=executor)
