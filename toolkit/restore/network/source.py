"""What a network restore reads: the keys of an RDB file with their raw value bytes.

An RDB is walked in place (mapped, pages released behind the walk). An AOF backup is first
turned into an RDB by the restore drill (toolkit/stage/drill.py): loaded into a scratch
redis-server here, verified against the AOF's own inventory, saved, and the RDB it wrote is
what goes over the network. That is how the commands of an AOF reach a target that already
holds other keys, or a cluster, without replaying FLUSHDB, SWAPDB or a transaction there.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsers.errors import FormatError
from parsers.rdb.constants import TYPE_NAMES, ValueType
from parsers.rdb.decode import Value, read_value
from parsers.rdb.stream_meta import StreamMeta, read_stream_meta
from parsers.rdb.walker import RdbWalker
from toolkit import lifeline
from toolkit.check.result import CheckResult
from toolkit.errors import BackupIOError
from toolkit.mapped import mapped, release_behind

_MODULE_2 = int(ValueType.MODULE_2)
_STREAMS = frozenset(t for t, name in TYPE_NAMES.items() if name == "stream")


@dataclass(slots=True)
class Item:
    """One key of the backup: its value is ``buf[start:end]``, serialized as in the file.
    (Not frozen: one is made per key, and a frozen dataclass takes five times as long.)"""

    db: int
    key: bytes
    type_id: int
    type_name: str  # as TYPE names it (a module's own type name for module values)
    buf: Any  # the mapped file
    start: int
    end: int
    elements: int
    expire_ms: int | None

    @property
    def raw(self) -> memoryview:
        return memoryview(self.buf)[self.start : self.end]

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Library:
    """A function library of the backup."""

    name: str
    code: bytes
    pre_ga: bool  # the Redis 7.0 release-candidate format: only 7.0 reads it, from an RDB


class RdbSource:
    """The keys and function libraries of an RDB file, read in place.

    Use as a context manager; :meth:`items` may be called more than once (the restore walks
    the file again to verify).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stack = ExitStack()
        self.mm: mmap.mmap | None = None
        self.magic = "REDIS"
        self.rdb_version = 0
        self.size = 0
        self.libraries: list[Library] = []

    def __enter__(self) -> RdbSource:
        try:
            self.mm = self._stack.enter_context(mapped(self.path))
        except OSError as e:
            raise BackupIOError(f"{self.path}: {e.strerror or e}") from None
        if self.mm is None:
            raise BackupIOError(f"{self.path}: the file is empty")
        self.size = len(self.mm)
        walker = RdbWalker(self.mm)
        self.magic, self.rdb_version = walker.magic, walker.version
        keys = walker.walk()
        with contextlib.suppress(FormatError):  # a damaged file (forced): the load says where
            next(keys, None)  # libraries come before the first key (rdbSaveRio writes them so)
        self.libraries = [Library(f.library, f.code, f.pre_ga) for f in walker.functions]
        keys.close()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def items(self, progress: Callable[[int, int], None] | None = None) -> Iterator[Item]:
        """Every key, in file order. Raises the walker's FormatError where the file is damaged."""
        mm = self.mm
        assert mm is not None
        size = self.size
        released = 0

        def on_progress(offset: int) -> None:
            nonlocal released
            released = release_behind(mm, offset, released)
            if progress is not None:
                progress(offset, size)

        walker = RdbWalker(mm, on_progress=on_progress)
        names = TYPE_NAMES
        key_of = walker.key_at
        for db, t, key_offset, value_offset, end, n, expire in walker.walk():
            name = walker.module_name_at(value_offset) if t == _MODULE_2 else names.get(t, "?")
            b = mm[key_offset]
            # A short plain key (6-bit length) is read inline: most keys are.
            key = mm[key_offset + 1 : key_offset + 1 + b] if b < 0x40 else bytes(key_of(key_offset))
            yield Item(db, key, t, name, mm, value_offset, end, n, expire)
        if progress is not None:
            progress(size, size)

    def decode(self, item: Item) -> tuple[Value, StreamMeta | None]:
        """The item's logical value, and a stream's metadata (None for other types)."""
        value, _end = read_value(item.buf, item.type_id, item.start, magic=self.magic)
        meta = None
        if item.type_id in _STREAMS:
            meta = read_stream_meta(item.buf, item.type_id, item.start)
        return value, meta


@dataclass
class Converted:
    """An AOF turned into an RDB by the drill: the file, and what the drill said."""

    path: Path
    directory: Path  # a lifeline.scratch_dir: the caller removes it
    notes: list[str]
    seconds: float


def aof_to_rdb(
    result: CheckResult, *, force: bool, modules: Sequence[Path] = ()
) -> tuple[Converted | None, list[str]]:
    """Load the AOF of ``result`` into a scratch redis-server here (the restore drill, with
    ``modules`` loaded), check what it holds against the AOF's inventory, and have it save an
    RDB.

    Returns (the RDB, []) or (None, the reasons it could not be done). The caller removes
    ``Converted.directory``.
    """
    from toolkit.errors import ServerError
    from toolkit.stage.drill import stage

    directory = lifeline.scratch_dir("rbkit-network-")
    target = directory / "converted.rdb"
    try:
        report = stage(
            Path(result.path),
            checked=result,
            force=force,
            modules=modules,
            save_rdb_to=target,
        )
    except ServerError as e:
        lifeline.remove_dir(directory)
        return None, [f"an AOF is restored through a scratch redis-server here: {e}"]
    if not report.verified or not target.is_file():
        lifeline.remove_dir(directory)
        why = report.reasons or [report.reason or "the scratch server did not save an RDB"]
        return None, [f"turning the AOF into an RDB (restore drill): {r}" for r in why]
    binary = report.binary
    what = f"redis-server {binary.version_text}" if binary else "a scratch redis-server"
    notes = [
        f"the AOF was loaded into {what} here (a scratch server, verified against the "
        f"AOF's inventory) and the RDB it saved is what is restored"
    ]
    return Converted(target, directory, notes, report.seconds), []
