"""A cluster backup set as the source of a network restore: every shard's keys, one after the
other, routed by slot into a cluster of any shape (the cluster writer of load.py).

The set is gated once (``check --cluster``: any invalid shard, missing or doubled slot, or stray
key refuses it unless --force); the plan, the load and the verification see one backup whose
inventory is the set's and whose keys are the union of the shards' (an AOF shard is first
turned into an RDB, as a single AOF backup is).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

from parsers.rdb.decode import Value
from parsers.rdb.stream_meta import StreamMeta
from parsers.rdb.versions import release_for
from toolkit.check.cluster.verdict import ClusterCheck
from toolkit.check.result import CheckResult
from toolkit.errors import RestoreError
from toolkit.restore.network.source import Item, Library, RdbSource
from toolkit.stage.compare import BackupKeys, rdb_keys


class SetSource:
    """The RDB files of a set's shards read as one source (RdbSource's interface, less the
    mapped buffer that only the single-server packer uses)."""

    mm = None

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self._stack = ExitStack()
        self.sources: list[RdbSource] = []
        self.magic = "REDIS"
        self.rdb_version = 0
        self.size = 0
        self.libraries: list[Library] = []

    def __enter__(self) -> SetSource:
        try:
            self.sources = [self._stack.enter_context(RdbSource(p)) for p in self.paths]
        except BaseException:
            self._stack.close()
            raise
        magics = {s.magic for s in self.sources}
        if len(magics) > 1:
            self._stack.close()
            raise RestoreError(f"the set's shards mix RDB magics ({', '.join(sorted(magics))})")
        self.magic = magics.pop() if magics else "REDIS"
        # Payloads carry the newest version of the set: a server that reads it reads the rest.
        self.rdb_version = max((s.rdb_version for s in self.sources), default=0)
        self.size = sum(s.size for s in self.sources)
        seen: set[str] = set()
        for s in self.sources:
            for lib in s.libraries:
                if lib.name not in seen:
                    seen.add(lib.name)
                    self.libraries.append(lib)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def items(self, progress: Callable[[int, int], None] | None = None) -> Iterator[Item]:
        """Every key of every shard, shard after shard, in file order."""
        total, done = self.size, 0
        for source in self.sources:
            base = done

            def step(offset: int, _size: int, base: int = base) -> None:
                if progress is not None:
                    progress(base + offset, total)

            yield from source.items(step)
            done += source.size

    def decode(self, item: Item) -> tuple[Value, StreamMeta | None]:
        return self.sources[0].decode(item)

    def backup_keys(self) -> BackupKeys:
        """The key names of every shard, together (FormatError/OSError where one is bad)."""
        return rdb_keys(self.paths)


def set_result(check: ClusterCheck, results: list[CheckResult]) -> CheckResult:
    """One CheckResult for the whole set (``results``: each shard's RDB, converted from an AOF
    where it was one): the set's problems and inventory, the newest RDB version."""
    out = CheckResult(check.path, "rdb", sum(r.size for r in results), check.checked_at_ms)
    if results:
        newest = max(results, key=lambda r: r.rdb_version or 0)
        out.magic, out.rdb_version = newest.magic, newest.rdb_version
        out.checksum = newest.checksum
    if out.magic and out.rdb_version:
        out.min_release = release_for(out.magic, out.rdb_version)
    out.problems = list(check.problems)
    out.inventory = check.inventory
    out.notes = [
        f"a cluster backup set of {len(check.shards)} shards ({check.layout}), restored as "
        "one backup: each key goes to the node owning its slot"
    ]
    return out
