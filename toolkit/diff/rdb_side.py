"""An RDB file as a side: its keys from the C walk over the file mapped in memory, values
read at their offsets; a live server's replication snapshot is read as one.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parsers.errors import FormatError
from parsers.rdb.constants import COLLECTION_TYPES, TYPE_NAMES, ValueType
from parsers.rdb.decode import read_value
from parsers.rdb.strings import read_length, read_string, skip_string, string_length
from parsers.rdb.walker import RdbWalker
from toolkit.check.result import CheckResult
from toolkit.diff.model import Source
from toolkit.diff.side import (
    NEVER,
    SNAPSHOT,
    DbCounts,
    InScratchDir,
    Matcher,
    Progress,
    Side,
    mtime_ms,
)
from toolkit.diff.table import (
    BUCKET_SHIFT,
    MASK64,
    NO_TTL,
    KeyTable,
    clamp_expiry,
)
from toolkit.diff.values import digest, string_digest
from toolkit.errors import DiffError
from toolkit.mapped import release_behind
from toolkit.server.snapshot import Snapshot
from toolkit.steps import no_progress

_STRING = int(ValueType.STRING)
_MODULE_2 = int(ValueType.MODULE_2)
# Bytes read at a name's offset to get it (longer names take a second read).
NAME_READ = 256


def _aux_ctime_ms(aux: dict[str, Any]) -> int | None:
    ctime = aux.get("ctime")
    try:
        return int(str(ctime)) * 1000 if ctime is not None else None
    except ValueError:
        return None


class RdbSide(Side):
    kind = "rdb"

    def __init__(self, result: CheckResult) -> None:
        path = Path(result.path)
        source = Source("rdb", result.name, version=result.aux.get("redis-ver"))
        ctime = _aux_ctime_ms(result.aux)
        if ctime is not None:
            source.time_ms, source.time_source = ctime, "aux ctime"
        else:
            source.time_ms, source.time_source = mtime_ms(path), "file mtime"
        super().__init__(source)
        source.notes.extend(result.notes)
        self.result = result
        self.path = path
        self._stack = contextlib.ExitStack()
        self._mm: mmap.mmap | None = None
        self._fd = -1
        self.expired_by = NEVER  # keys expiring at or before this ms are left out
        self.ref_base = 0  # added to every name offset stored (a set's shard number << 48)

    def counts(self, dbs: set[int] | None) -> dict[int, DbCounts]:
        inv = self.result.inventory
        out: dict[int, DbCounts] = {}
        for db, s in (inv.databases if inv else {}).items():
            if dbs is None or db in dbs:
                out[db] = DbCounts(s.keys, s.expires, dict(s.by_type))
        self.source.keys_read = sum(c.keys for c in out.values())
        return out

    def mapped(self) -> mmap.mmap | None:
        """The file, mapped read-only (None when empty); unmapped by :meth:`close`."""
        return self._map()

    @property
    def fd(self) -> int:
        """The open file's descriptor (after :meth:`mapped`), for reading with pread."""
        return self._fd

    def _map(self) -> mmap.mmap | None:
        if self._mm is None:
            try:
                f = self._stack.enter_context(open(self.path, "rb"))  # noqa: SIM115
                self._fd = f.fileno()
                if os.fstat(self._fd).st_size:
                    self._mm = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
                    self._stack.callback(_close_map, self._mm)
            except OSError as e:
                raise DiffError(f"{self.path}: {e.strerror or e}") from None
        return self._mm

    def name_reader(self) -> Callable[[int], bytes]:
        """Reads names with pread, not through the map: the few names a report needs are
        scattered over the file, and mapped pages touched at random would stay in RSS."""

        def read(ref: int) -> bytes:
            chunk = os.pread(self._fd, NAME_READ, ref)
            try:
                return bytes(read_string(chunk, 0)[0])
            except (FormatError, IndexError):  # a name longer than the chunk
                assert self._mm is not None
                end = skip_string(self._mm, ref)
                return bytes(read_string(os.pread(self._fd, end - ref, ref), 0)[0])

        return read

    def close(self) -> None:
        self._stack.close()
        self._mm = None

    def collect(
        self,
        table: KeyTable,
        *,
        dbs: set[int] | None,
        match: Matcher,
        pattern: bytes | None,
        values: bool,
        progress: Progress,
    ) -> None:
        started = time.monotonic()
        mm = self._map()
        if mm is None:
            return
        released = 0
        size = len(mm)
        label = self.path.name

        bar = (progress or no_progress)(f"reading {label}")

        def hook(offset: int) -> None:
            nonlocal released
            released = release_behind(mm, offset, released)
            if bar is not None:
                bar(offset, size)

        try:
            walker = RdbWalker(mm, on_progress=hook)
            self._walk(walker, mm, table, dbs, match, values)
        except FormatError as e:
            raise DiffError(f"{self.path}: {e}") from None
        finally:
            if bar is not None:
                bar.close()
        self.source.seconds = time.monotonic() - started

    def _walk(
        self,
        walker: RdbWalker,
        buf: mmap.mmap,
        table: KeyTable,
        dbs: set[int] | None,
        match: Matcher,
        values: bool,
    ) -> None:
        """Every key into ``table``: the loop is written out, as it runs per key."""
        types = table.types
        codes = {t: types.code(name) for t, name in TYPE_NAMES.items() if name != "module"}
        module_codes: dict[int, int] = {}  # module id -> type code
        collections = COLLECTION_TYPES
        magic, mv = walker.magic, walker.mv
        m64, shift = MASK64, BUCKET_SHIFT
        tables = table.dbs
        n_read = 0
        empty = 0
        modules = 0
        expired_by, expired = self.expired_by, 0
        base = self.ref_base
        for db, t, key_offset, value_offset, end, n, expire in walker.walk():
            if dbs is not None and db not in dbs:
                continue
            if expire is not None and expire <= expired_by:
                expired += 1
                continue
            if n == 0 and t in collections:
                empty += 1
                continue
            b = buf[key_offset]
            key = (
                buf[key_offset + 1 : key_offset + 1 + b]
                if b < 0x40
                else read_string(buf, key_offset)[0]
            )
            if match is not None and not match(key):
                continue
            if t == _STRING:
                code = codes[t]
                size: int | None = string_length(buf, value_offset)
            elif t == _MODULE_2:
                module_id = read_length(buf, value_offset)[0]
                code = module_codes.get(module_id, -1)
                if code < 0:
                    code = module_codes[module_id] = types.code(walker.module_name_at(value_offset))
                size = None
            else:
                code = codes[t]
                size = n
            h1 = hash(key) & m64
            d = tables.get(db)
            if d is None:
                d = table.db(db)
            bk = d.buckets[h1 >> shift]
            if bk is None:
                bk = d.bucket(h1 >> shift)
            bk.h1.append(h1)
            bk.h2.append(hash(key + b"\x00") & m64)
            bk.ref.append(key_offset + base)
            bk.exp.append(NO_TTL if expire is None else clamp_expiry(expire))
            bk.meta.append(code if size is None else (size + 1) << 8 | code)
            d.count += 1
            n_read += 1
            if values:
                if t == _STRING:
                    bk.add_digest(string_digest(read_string(buf, value_offset)[0]))
                else:
                    try:
                        value = read_value(buf, t, value_offset, magic=magic, mv=mv)[0]
                    except FormatError as e:
                        raise e.located(key=bytes(key), db=db) from None
                    module = t == _MODULE_2
                    modules += module
                    bk.add_digest(digest(value, buf[value_offset:end] if module else None))
        self.source.keys_read = n_read
        self.empty_skipped = empty
        self.module_values = modules
        self.expired_left_out = expired


def _close_map(mm: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):
        mm.close()


class SnapshotSide(InScratchDir, RdbSide):
    """A live server read as its replication snapshot: an RDB file in a scratch dir, read
    like any other (consistent in time, so no key is re-read); the source says it is live."""

    def __init__(self, result: CheckResult, name: str, snap: Snapshot, directory: Path) -> None:
        super().__init__(result)
        source = self.source
        source.kind, source.name, source.via = "live", name, SNAPSHOT
        if snap.time_ms is not None:
            source.time_ms, source.time_source = snap.time_ms, "server TIME after its snapshot"
            # What a reader of the server sees: keys past their TTL are gone.
            self.expired_by = snap.time_ms
        source.notes.append(
            f"read as its replication snapshot (SYNC): {snap.bytes:,} bytes in "
            f"{snap.seconds:.2f} s, consistent at one moment"
        )
        source.notes.extend(snap.delay_notes())
        self._directory = directory
