"""Check any backup: find out what the path holds (locate.py), then check it as an RDB or an
AOF. The one entry point restore and diff use too."""

from __future__ import annotations

from pathlib import Path

from parsers.cluster.slots import SlotCounts
from toolkit.check.locate import AOF, MULTIPART, locate
from toolkit.check.problems import ERROR, Problem
from toolkit.check.rdb import ProgressFn, check_file
from toolkit.check.result import CheckResult
from toolkit.errors import BackupIOError, ConfigError
from toolkit.server.config import RedisConfig, read_config
from toolkit.sources.opened import opened_for


def check_backup(
    path: Path,
    *,
    config_path: Path | None = None,
    config: RedisConfig | None = None,
    top: int = 10,
    quick: bool = False,
    now_ms: int | None = None,
    progress: ProgressFn | None = None,
    modules: tuple[str, ...] = (),
    slots: SlotCounts | None = None,
) -> CheckResult:
    """Check the backup at ``path``. Raises BackupIOError when there is nothing to check.

    ``config`` (or the file ``config_path``) says which file of a data directory Redis loads.
    ``modules`` (names or library paths) are the modules the loading server has: an AOF's
    commands of other modules are errors. ``quick`` reads an RDB's framing only (the values
    are not checked). ``slots``: an RDB's keys are counted there per cluster hash slot (a full
    check only).
    """
    if config_path is not None:
        try:
            config = read_config(config_path)
        except ConfigError as e:
            raise BackupIOError(str(e)) from None
    try:
        found = locate(path, config)
    except BackupIOError as e:
        raise BackupIOError(str(e)) from None
    if found.kind in (AOF, MULTIPART):
        from toolkit.check.aof import check_aof, check_multipart  # needs the keyspace model

        check = check_multipart if found.kind == MULTIPART else check_aof
        result = check(found.path, top=top, now_ms=now_ms, progress=progress, modules=modules)
    else:
        result = check_file(
            found.path, top=top, quick=quick, now_ms=now_ms, progress=progress, slots=slots
        )
    result.notes[:0] = found.notes
    note_source(result, found.path)
    return result


def note_source(result: CheckResult, path: Path) -> None:
    """When ``path`` is the local copy of a compressed, piped or remote backup
    (toolkit/sources): name the backup as the user did, say where its copy went, and make the
    damage of its compressed stream an error (the first one)."""
    opened = opened_for(path)
    if opened is None:
        return
    if result.path == str(opened.path):
        result.shown = opened.shown
    note = opened.note()
    if note and note not in result.notes:
        result.notes.insert(0, note)
    d = opened.damage
    if d is not None and not any(p.message == d.message for p in result.problems):
        result.problems.insert(0, Problem(ERROR, d.code, d.offset, d.message))
