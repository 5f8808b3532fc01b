"""The RDB walker: header, opcodes and keys, in one pass over a buffer.

``RdbWalker(buf).walk()`` yields one :class:`KeyEntry` per key and collects
everything else (aux fields, functions, module aux data, resize hints, the checksum) on the
walker. Values are skipped and counted, not decoded; ``deep=True`` checks each of them as
Redis does when it loads it with ``sanitize-dump-payload yes`` (:mod:`parsers.rdb.sanitize`).
The CRC-64 is computed as the walk goes, in windows, so each page of the input is touched
while it is hot.
"""

from __future__ import annotations

import heapq
import struct
import sys
from bisect import bisect_right
from collections.abc import Callable, Iterator

from parsers.cluster.slots import SlotCounts
from parsers.errors import CorruptError, FormatError, TruncatedError, UnsupportedError
from parsers.rdb.constants import (
    COLLECTION_TYPES,
    MODULE_OPCODE_UINT,
    NOT_READ_OPCODES,
    NOT_READ_TYPES,
    SUPPORTED_VERSIONS,
    VALKEY_SLOT_IMPORT,
    Opcode,
    ValueType,
)
from parsers.rdb.crc64 import crc64
from parsers.rdb.keyhash import KeySink
from parsers.rdb.module import module_type_name, skip_opcodes
from parsers.rdb.records import (
    Aux,
    Checksum,
    Function,
    KeyEntry,
    ModuleAux,
    PartialTally,
    ResizeHint,
    SlotImport,
    SlotInfo,
    Tally,
)
from parsers.rdb.sanitize import VALIDATORS, VALKEY_VALIDATORS
from parsers.rdb.strings import Buffer, read_length, read_string, skip_string, skip_string_checked
from parsers.rdb.values import SKIPPERS, VALKEY_SKIPPERS, Skipper

_I32LE = struct.Struct("<i").unpack_from
_EXPIRETIME_MS = int(Opcode.EXPIRETIME_MS)
_EXPIRETIME = int(Opcode.EXPIRETIME)
_SELECTDB = int(Opcode.SELECTDB)
_RESIZEDB = int(Opcode.RESIZEDB)
_AUX = int(Opcode.AUX)
_EOF = int(Opcode.EOF)
_IDLE = int(Opcode.IDLE)
_FREQ = int(Opcode.FREQ)
_MODULE_2 = int(ValueType.MODULE_2)
_I64LE = struct.Struct("<q").unpack_from
_U64LE = struct.Struct("<Q").unpack_from
# What the accelerator's full scan says it read before the keys it counted (a bit each).
_SCANNED_OPCODES = ((1, _EXPIRETIME_MS), (2, _IDLE), (4, _FREQ))

# CRC and progress run once per this many bytes walked.
WINDOW = 8 << 20

try:  # the optional C accelerator of tally() (setup.py builds it where a compiler is at hand)
    from parsers.rdb import _speedups
except ImportError:  # pragma: no cover - depends on the build
    _speedups = None
# Tests set this to False to run tally() in pure Python and compare.
USE_SPEEDUPS = True

_record = tuple.__new__  # KeyEntry without its __new__'s argument handling: the hot path


def read_header(buf: Buffer) -> tuple[str, int, int]:
    """Magic, version and header size. Raises for anything but a supported RDB header."""
    head = bytes(buf[:9])
    if head.startswith(b"REDIS"):
        magic, digits = b"REDIS", head[5:9]
    elif head.startswith(b"VALKEY"):
        magic, digits = b"VALKEY", head[6:9]
    else:
        if b"REDIS".startswith(head) or b"VALKEY".startswith(head):  # cut inside the magic
            raise TruncatedError(f"input ends after {len(head)} bytes, inside the header", 0)
        raise CorruptError(
            f"not an RDB file: magic {head[:6]!r}, expected 'REDIS' or 'VALKEY'",
            0,
            code="bad_magic",
        )
    if len(head) < 9:
        raise TruncatedError(f"input ends after {len(head)} bytes, inside the header", 0)
    if not digits.isdigit():
        raise CorruptError(f"RDB version {digits!r} is not a number", len(magic))
    version = int(digits)
    if version not in SUPPORTED_VERSIONS[magic]:
        known = SUPPORTED_VERSIONS[magic]
        raise UnsupportedError(
            f"{magic.decode()} RDB version {version} (this parser reads "
            f"{known.start} to {known.stop - 1})",
            len(magic),
            code="unsupported_version",
        )
    return magic.decode(), version, 9


class RdbWalker:
    """One pass over an RDB held in ``buf`` (bytes or mmap).

    ``deep`` checks every value as Redis does when it loads it with ``sanitize-dump-payload
    yes`` (every string, every entry of every listpack, ziplist, intset and zipmap, duplicates,
    scores, streams...; see :mod:`parsers.rdb.sanitize`); without it only the framing is read,
    and the headers and end markers of the packed encodings. ``on_progress`` is called with the
    offset reached about every 8 MB (the caller may release pages before it).

    When :meth:`tally` fails, ``partial`` holds what it had counted before the damage.
    """

    def __init__(
        self,
        buf: Buffer,
        *,
        deep: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.buf = buf
        self.mv = memoryview(buf) if not isinstance(buf, memoryview) else buf
        self.deep = deep
        self.on_progress = on_progress
        self.magic, self.version, self.header_size = read_header(buf)
        self.aux: list[Aux] = []
        self.functions: list[Function] = []
        self.module_aux: list[ModuleAux] = []
        self.resize_hints: list[ResizeHint] = []
        self.slot_info: list[SlotInfo] = []
        self.slot_imports: list[SlotImport] = []
        self.dbs: list[int] = []
        self.db_offsets: list[int] = []  # where each SELECTDB of ``dbs`` is
        self.keys_with_metadata = 0
        self.opcodes_seen: set[int] = set()  # those _opcode read (from RDB 8 on, not all)
        self.checksum: Checksum | None = None
        self.eof_offset: int | None = None
        self.trailing_bytes = 0
        self.partial: PartialTally | None = None
        if deep:
            self._skippers = VALKEY_VALIDATORS if self.magic == "VALKEY" else VALIDATORS
        else:
            self._skippers = VALKEY_SKIPPERS if self.magic == "VALKEY" else SKIPPERS
        self._skip_string = skip_string_checked if deep else skip_string
        self._crc = 0
        self._crc_pos = 0

    # -- helpers for consumers -------------------------------------------------------------

    def key_at(self, offset: int) -> bytes:
        """The key whose string starts at ``offset`` (a yielded KeyEntry's ``key_offset``)."""
        return read_string(self.buf, offset)[0]

    def record_key(self, record_offset: int) -> tuple[int, bytes]:
        """The db and key of the key record whose type byte is at ``record_offset``."""
        i = bisect_right(self.db_offsets, record_offset) - 1
        return (self.dbs[i] if i >= 0 else 0), bytes(self.key_at(record_offset + 1))

    def module_name_at(self, value_offset: int) -> str:
        """The module type name of the MODULE_2 value starting at ``value_offset``."""
        return module_type_name(read_length(self.buf, value_offset)[0])

    # -- the walk ----------------------------------------------------------------------------

    def _advance_crc(self, upto: int) -> None:
        if upto > self._crc_pos:
            self._crc = crc64(self.mv[self._crc_pos : upto], self._crc)
            self._crc_pos = upto
        if self.on_progress is not None:
            self.on_progress(upto)

    def walk(self) -> Iterator[KeyEntry]:
        """Yield ``(db, type_id, key_offset, value_offset, end, elements, expire_ms)`` per key.

        Raises a :class:`FormatError` subclass at the first problem, with the offset, the
        db and the key being read.
        """
        buf, mv, deep, skip = self.buf, self.mv, self.deep, self._skip_string
        skippers = self._skipper_table()
        end = len(buf)
        pos = self.header_size
        db = 0
        expire: int | None = None
        key_at = -1  # start of the key being read, for error messages
        next_tick = WINDOW
        try:
            while True:
                if pos >= next_tick:
                    self._advance_crc(pos)
                    next_tick = pos + WINDOW
                op = buf[pos]
                # The key-reading lines below are repeated in tally(): keep the two alike.
                if op == 0:  # a string: the commonest record, read inline
                    key_at = pos + 1
                    b = buf[key_at]
                    vpos = key_at + 1 + b if b < 0x40 else skip(buf, key_at)
                    b = buf[vpos]
                    nxt = vpos + 1 + b if b < 0x40 else skip(buf, vpos)
                    n = 1
                elif op < 0xF0:
                    skipper = skippers[op]
                    if skipper is None:
                        raise self._unknown_type(op, pos)
                    key_at = pos + 1
                    b = buf[key_at]
                    vpos = key_at + 1 + b if b < 0x40 else skip(buf, key_at)
                    nxt, n = skipper(buf, mv, vpos, deep)
                else:
                    key_at = -1
                    pos, db, expire = self._opcode(op, pos, db, expire)
                    if pos < 0:
                        return
                    continue
                if nxt > end:
                    raise _past_end(nxt, end, vpos)
                yield _record(KeyEntry, (db, op, key_at, vpos, nxt, n, expire))
                expire = None
                pos = nxt
        except (FormatError, IndexError) as e:
            raise self._located(e, key_at, pos, db) from None

    def tally(
        self,
        now_ms: int,
        top: int = 10,
        keys: KeySink | None = None,
        slots: SlotCounts | None = None,
    ) -> Tally:
        """Walk every key and count, without yielding: per db and type the keys and bytes,
        expiries (and how many are at or before ``now_ms``), empty collections, module type
        names, and the ``top`` biggest keys by bytes and by elements. With ``keys`` (a deep
        walk only), note each key Redis does not skip as empty in it (:mod:`parsers.rdb.keyhash`);
        with ``slots`` (a deep walk only), count those keys per cluster hash slot.

        The same walk as :meth:`walk`, with the counting folded into the loop: on files of
        millions of keys the per-key cost of a generator is most of the time. On a failure,
        ``self.partial`` holds the counts of the keys read before it.
        """
        buf, mv, deep, skip = self.buf, self.mv, self.deep, self._skip_string
        skippers = self._skipper_table()
        end = len(buf)
        pos = self.header_size
        db = 0
        expire: int | None = None
        key_at = -1
        last_key: tuple[int, int] | None = None  # (db, type byte offset) of the last key read
        next_tick = WINDOW
        tally = Tally(top)
        cur = tally.db(0)
        counts = cur.counts
        db_bytes = 0  # bytes of cur's keys, added to cur.bytes when the db changes
        collections = COLLECTION_TYPES
        by_bytes, by_elems = tally.by_bytes, tally.by_elements
        min_bytes = min_elems = -1  # thresholds to enter the top lists, once they are full
        fast = _speedups if USE_SPEEDUPS else None
        full_scan = fast.scan_full if fast is not None and deep else None
        # Before RDB 8 the count-only accelerator counts nothing: opcodes it reads
        # (EXPIRETIME_MS, IDLE, FREQ) must then be seen by _opcode, which notes each opcode a
        # version should not hold. The full scan says which it read.
        scan = fast.scan if fast is not None and not deep and self.version >= 8 else None
        valkey = int(self.magic == "VALKEY")
        if (keys is not None or slots is not None) and not deep:
            raise ValueError("keys and slots are noted by the deep walk only")
        slot_buffer = slots.buffer if slots is not None else None
        buckets = keys.buckets if keys is not None else None
        mask = keys.mask if keys is not None else 0
        scan_from = pos  # the accelerator is tried again once the walk passes this offset
        try:
            while True:
                if pos >= next_tick:
                    self._advance_crc(pos)
                    next_tick = pos + WINDOW
                extra = None
                if pos >= scan_from and expire is None and (scan or full_scan) is not None:
                    # Counts a run of records in C and stops before any other record, which the
                    # Python code below then reads (and judges) itself; the full scan may also
                    # hand back one record it checked that Python must count (extra).
                    if full_scan is not None:
                        room = keys.room if keys is not None else 0
                        pos, found, nbytes, nexp, nexpired, seen, last_at, extra, added = full_scan(
                            buf,
                            pos,
                            next_tick,
                            now_ms,
                            min_bytes,
                            min_elems,
                            valkey,
                            buckets,
                            room,
                            mask,
                            db,
                            slot_buffer,
                        )
                        if keys is not None:
                            keys.added(added)  # the C scan noted the key of extra too
                        for bit, opcode in _SCANNED_OPCODES:
                            if seen & bit:
                                self.opcodes_seen.add(opcode)
                    else:
                        pos, found, nbytes, nexp, nexpired, last_at = scan(  # type: ignore[misc]
                            buf, pos, next_tick, now_ms, min_bytes, min_elems, 27
                        )
                    if last_at >= 0:
                        last_key = (db, last_at)
                    for t, c in enumerate(found):
                        if c:
                            counts[t] += c
                    db_bytes += nbytes
                    cur.expires += nexp
                    cur.expired += nexpired
                    scan_from = pos if extra is not None else pos + 1
                    if extra is None and pos >= next_tick:
                        continue
                if extra is not None:
                    op, key_at, vpos, nxt, n, expire = extra
                    start = key_at - 1
                else:
                    start = pos
                    op = buf[pos]
                    if op == 0:
                        key_at = pos + 1
                        b = buf[key_at]
                        vpos = key_at + 1 + b if b < 0x40 else skip(buf, key_at)
                        b = buf[vpos]
                        nxt = vpos + 1 + b if b < 0x40 else skip(buf, vpos)
                        n = 1
                    elif op < 0xF0:
                        skipper = skippers[op]
                        if skipper is None:
                            raise self._unknown_type(op, pos)
                        key_at = pos + 1
                        b = buf[key_at]
                        vpos = key_at + 1 + b if b < 0x40 else skip(buf, key_at)
                        nxt, n = skipper(buf, mv, vpos, deep)
                    else:
                        key_at = -1
                        pos, new_db, expire = self._opcode(op, pos, db, expire)
                        if pos < 0:
                            cur.bytes += db_bytes
                            return tally
                        if new_db != db:
                            cur.bytes += db_bytes
                            db_bytes = 0
                            db = new_db
                            cur = tally.db(db)
                            counts = cur.counts
                        continue
                    if nxt > end:
                        raise _past_end(nxt, end, vpos)
                    if (keys is not None or slots is not None) and not (
                        n == 0 and op in collections
                    ):
                        name = bytes(self.key_at(key_at))
                        if keys is not None:
                            expired = expire is not None and expire < now_ms
                            keys.add(db, name, start, expired)
                        if slots is not None:
                            slots.add(name, expire is not None)
                if n == 0 and op in collections:
                    cur.empty += 1
                elif op == _MODULE_2:
                    name = self.module_name_at(vpos)
                    cur.modules[name] = cur.modules.get(name, 0) + 1
                size = nxt - start
                counts[op] += 1
                db_bytes += size
                if expire is not None:
                    cur.expires += 1
                    if expire <= now_ms:
                        cur.expired += 1
                    expire = None
                if size > min_bytes:
                    min_bytes = _offer(by_bytes, top, size, (size, db, op, key_at, vpos, nxt, n))
                if n > min_elems:
                    min_elems = _offer(by_elems, top, n, (n, db, op, key_at, vpos, nxt, size))
                last_key = (db, start)
                pos = nxt
        except (FormatError, IndexError) as e:
            cur.bytes += db_bytes
            self.partial = PartialTally(tally, last_key)
            raise self._located(e, key_at, pos, db) from None

    def _skipper_table(self) -> list[Skipper | None]:
        """Skippers indexed by type byte (None for a type this magic does not have)."""
        return [self._skippers.get(t) for t in range(0xF0)]

    def _unknown_type(self, op: int, at: int) -> FormatError:
        known = NOT_READ_TYPES[self.magic].get(op)
        if known is not None:
            return self._not_read("value type", op, known, at)
        return UnsupportedError(
            f"unknown value type {op} in a {self.magic} RDB {self.version}",
            at,
            code="unknown_type",
        )

    def _not_read(self, what: str, op: int, known: tuple[str, int], at: int) -> FormatError:
        """A type or opcode whose id is public but whose layout rbkit has no source for."""
        name, since = known
        newer = "" if self.version >= since else f", though this file says RDB {self.version}"
        return UnsupportedError(
            f"{what} {op} of a {self.magic} RDB {since}+ file: {name}{newer}; rbkit does not "
            "read its layout yet (no counts past this record)",
            at,
        )

    def _located(self, e: FormatError | IndexError, key_at: int, pos: int, db: int) -> FormatError:
        """The error to raise for a failure while reading the record at ``pos``."""
        if key_at >= 0 and key_at - 1 != pos:
            key_at = -1  # that key was complete: the failure is in the record after it
        if isinstance(e, FormatError):
            return e.located(key=self._safe_key(key_at), db=db)
        start = key_at - 1 if key_at >= 0 else pos
        if start >= len(self.buf):
            return TruncatedError(
                "truncated: input ends where the next record (or the EOF marker) should start",
                len(self.buf),
                db=db,
            )
        record = _record_name(self.buf, start)
        return TruncatedError(
            f"truncated: input ends inside the {record} that started at {start}",
            len(self.buf),
            key=self._safe_key(key_at),
            db=db,
        )

    def _opcode(self, op: int, at: int, db: int, expire: int | None) -> tuple[int, int, int | None]:
        """Read the opcode record at ``at``. Returns (next offset, db, expire); offset -1 at EOF."""
        buf = self.buf
        end = len(buf)
        pos = at + 1
        self.opcodes_seen.add(op)
        if op == _EXPIRETIME_MS:
            if pos + 8 > end:
                raise TruncatedError("truncated: input ends inside an expire time", at)
            return pos + 8, db, _I64LE(buf, pos)[0]
        if op == _SELECTDB:
            db, pos = read_length(buf, pos)
            self.dbs.append(db)
            self.db_offsets.append(at)
        elif op == _RESIZEDB:
            keys, pos = read_length(buf, pos)
            expires, pos = read_length(buf, pos)
            self.resize_hints.append(ResizeHint(db, keys, expires, at))
        elif op == _AUX:
            name, pos = read_string(buf, pos)
            value, pos = read_string(buf, pos)
            self.aux.append(Aux(bytes(name), bytes(value), at))
        elif op == _EOF:
            self._finish(at)
            return -1, db, expire
        elif op == _EXPIRETIME:
            if pos + 4 > end:
                raise TruncatedError("truncated: input ends inside an expire time", at)
            return pos + 4, db, _I32LE(buf, pos)[0] * 1000
        elif op == _IDLE:
            _, pos = read_length(buf, pos)
        elif op == _FREQ:
            pos += 1
        elif op == Opcode.MODULE_AUX:
            pos = self._module_aux(at, pos)
        elif op == Opcode.FUNCTION2:
            code, pos = read_string(buf, pos)
            self.functions.append(Function(bytes(code), at))
        elif op == Opcode.FUNCTION_PRE_GA:
            pos = self._function_pre_ga(at, pos)
        elif op == Opcode.SLOT_INFO:
            slot, pos = read_length(buf, pos)
            keys, pos = read_length(buf, pos)
            expires, pos = read_length(buf, pos)
            self.slot_info.append(SlotInfo(db, slot, keys, expires, at))
        elif op == VALKEY_SLOT_IMPORT and self.magic == "VALKEY":
            pos = self._slot_import(at, pos)
        elif op == Opcode.KEY_META and self.magic == "REDIS" and self.version >= 13:
            pos = self._skip_key_meta(pos)
        elif op in NOT_READ_OPCODES[self.magic]:
            raise self._not_read("opcode", op, NOT_READ_OPCODES[self.magic][op], at)
        else:
            raise UnsupportedError(
                f"unknown opcode {op} in a {self.magic} RDB {self.version}",
                at,
                code="unknown_opcode",
            )
        return pos, db, expire

    def _safe_key(self, key_at: int) -> bytes | None:
        if key_at < 0:
            return None
        try:
            return bytes(self.key_at(key_at))
        except (FormatError, IndexError):
            return None

    def _finish(self, eof_at: int) -> None:
        """At the EOF opcode: read and verify the checksum, note bytes after it."""
        buf, end = self.buf, len(self.buf)
        self.eof_offset = eof_at
        after = eof_at + 1
        self._advance_crc(after)
        if self.version < 5:
            self.checksum = Checksum("absent", None, None, after)
        else:
            if after + 8 > end:
                raise TruncatedError(
                    f"input ends {end - after} bytes into the 8-byte checksum after EOF", after
                )
            stored = _U64LE(buf, after)[0]
            status = "disabled" if stored == 0 else "ok" if stored == self._crc else "mismatch"
            self.checksum = Checksum(status, stored, self._crc, after)
            after += 8
        self.trailing_bytes = end - after

    def _module_aux(self, at: int, pos: int) -> int:
        module_id, pos = read_length(self.buf, pos)
        when_opcode, pos = read_length(self.buf, pos)
        if when_opcode != MODULE_OPCODE_UINT:
            raise CorruptError(f"module aux 'when' opcode {when_opcode}, expected 2", at)
        when, pos = read_length(self.buf, pos)
        pos, _ = skip_opcodes(self.buf, pos, check=self.deep)
        self.module_aux.append(ModuleAux(module_type_name(module_id), when, at))
        return pos

    def _function_pre_ga(self, at: int, pos: int) -> int:
        buf = self.buf
        name, pos = read_string(buf, pos)
        engine, pos = read_string(buf, pos)
        has_desc, pos = read_length(buf, pos)
        if has_desc:
            pos = skip_string(buf, pos)
        code, pos = read_string(buf, pos)
        self.functions.append(
            Function(bytes(code), at, name=bytes(name), pre_ga=True, engine=bytes(engine))
        )
        return pos

    def _slot_import(self, at: int, pos: int) -> int:
        job, pos = read_string(self.buf, pos)
        n, pos = read_length(self.buf, pos)
        if n > len(self.buf) - pos:
            raise TruncatedError(f"{n} slot ranges cannot fit in the bytes left", pos)
        ranges = []
        for _ in range(n):
            start, pos = read_length(self.buf, pos)
            stop, pos = read_length(self.buf, pos)
            ranges.append((start, stop))
        self.slot_imports.append(SlotImport(bytes(job), tuple(ranges), at))
        return pos

    def _skip_key_meta(self, pos: int) -> int:
        """KEY_META (RDB 13): classes of 4-byte spec + module-style opcodes up to EOF."""
        classes, pos = read_length(self.buf, pos)
        if classes > 7:
            raise CorruptError(f"key metadata with {classes} classes, at most 7", pos)
        for _ in range(classes):
            pos, _ = skip_opcodes(self.buf, pos + 4)
        self.keys_with_metadata += 1
        return pos


def _record_name(buf: Buffer, at: int) -> str:
    op = buf[at] if 0 <= at < len(buf) else -1
    if 0 <= op < 0xF0:
        return "key"
    try:
        return f"{Opcode(op).name} record"
    except ValueError:
        return "record"


def _past_end(nxt: int, end: int, at: int) -> TruncatedError:
    return TruncatedError(f"truncated: value runs {nxt - end} bytes past the end of the input", at)


def _offer(heap: list[tuple[int, ...]], top: int, metric: int, item: tuple[int, ...]) -> int:
    """Put ``item`` in the bounded min-heap; return the metric a key must now exceed."""
    if top <= 0:
        return sys.maxsize
    if len(heap) < top:
        heapq.heappush(heap, item)
        return heap[0][0] if len(heap) == top else -1
    heapq.heappushpop(heap, item)
    return heap[0][0]
