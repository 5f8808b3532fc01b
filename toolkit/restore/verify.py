"""Read a restored (or rolled-back) target back and compare it with what it loaded."""

from __future__ import annotations

from parsers.errors import FormatError
from toolkit.check.result import CheckResult
from toolkit.restore.target import Target
from toolkit.server.read import LiveKeyspace
from toolkit.stage.compare import BackupKeys, Comparison, backup_keys
from toolkit.stage.drill import compare_expected, read_expected
from toolkit.steps import KEYS, ProgressFactory, no_progress, progress_of


def verify_target(
    target: Target,
    result: CheckResult,
    since_ms: int,
    appendonly: bool,
    keys: BackupKeys | None = None,
    progress: ProgressFactory = no_progress,
    notes: list[str] | None = None,
) -> tuple[LiveKeyspace, Comparison]:
    """The target's keyspace, and how it compares with ``result`` loaded at ``since_ms``
    (``keys``: the backup's key names if already read, e.g. by the stage).

    The target is read as its replication snapshot where it gives one, with a quick fork
    (:data:`toolkit.stage.live_snapshot.QUICK_FORK`: rbkit has just started it and holds
    writes off); else by SCAN, the reason in ``notes``."""
    if keys is None:
        try:
            keys = backup_keys(result)
        except (FormatError, OSError):
            keys = None
    client = target.client(timeout=60)
    try:
        with progress_of(progress, "reading the restored target", KEYS) as bar:
            live = read_expected(
                client,
                result,
                keys,
                since_ms,
                bar,
                server=target.server,
                notes=notes,
                quick_fork=True,
            )
    finally:
        client.close()
    # An RDB loaded as itself drops expired keys (and counts them); as an AOF base it does not,
    # and an AOF converted by the stage's SAVE holds none.
    loaded_rdb = not appendonly and result.format == "rdb"
    return live, compare_expected(result, live, keys, since_ms, loaded_rdb)
