"""Per-key records in batches of columns: what ``rbkit export`` and the diff read per key.

``key_columns(walker)`` walks an RDB as :meth:`RdbWalker.walk` does and yields
:class:`KeyColumns`: for up to ``rows`` keys at a time, one little-endian array per field in
a bytearray (no Python object per key), ready to be wrapped as Apache Arrow buffers (the
toolkit does that; this module needs no pyarrow)::

    db            int32   the db the key is in
    type_id       uint8   the RDB value type byte (TYPE_NAMES / ENCODING_NAMES say the rest)
    value_offset  int64   where the value's serialized bytes start in the file
    value_bytes   int64   how many they are (the value, without type byte and key)
    elements      int64   what the walker counts (1 for a string)
    expire_ms     int64   absolute expiry in ms, NO_EXPIRY for none
    value_hash    uint64  XXH64 (seed 0) of the value's serialized bytes
    name_offsets  int64   rows + 1 offsets into ``names``: the key names back to back
    key_hash      uint64  XXH64 of the name, seed 0
    key_hash2     uint64  XXH64 of the name, seed 1 (with key_hash: 128 bits naming the key)
    key_offset    int64   where the name's string starts in the file

The C accelerator (``_speedups.records``) fills runs of common records; everything it
declines (opcodes, rarer types, names that do not inflate) is read by the Python code here, as the
walker reads it, so both give the same rows. ``modules`` maps a row of a module value to the
module's type name. Errors are the walker's (a :class:`FormatError` naming the offset and key).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from parsers.errors import FormatError
from parsers.rdb import walker as _walker
from parsers.rdb.constants import ValueType
from parsers.rdb.walker import WINDOW, RdbWalker, _past_end
from parsers.rdb.xxh64 import xxh64

NO_EXPIRY = -(1 << 63)
NO_KEY = 254  # values_at's type byte for an offset that names no key
BATCH_ROWS = 65536
_MODULE_2 = int(ValueType.MODULE_2)
_I32 = struct.Struct("<i").pack_into
_Q = struct.Struct("<Q").pack_into
_q = struct.Struct("<q").pack_into
# Column name, struct format, bytes per row (name_offsets has one entry more than rows).
COLUMNS = (
    ("db", "i", 4),
    ("type_id", "B", 1),
    ("value_offset", "q", 8),
    ("value_bytes", "q", 8),
    ("elements", "q", 8),
    ("expire_ms", "q", 8),
    ("value_hash", "Q", 8),
    ("name_offsets", "q", 8),
    ("key_hash", "Q", 8),
    ("key_hash2", "Q", 8),
    ("key_offset", "q", 8),
)


def py_xor64(data: bytes | bytearray | memoryview) -> int:
    """The XOR of ``data``'s little-endian uint64 values: a column's order-independent digest."""
    out = 0
    for (v,) in struct.iter_unpack("<Q", data):
        out ^= v
    return out


try:  # the C version where the accelerator is built
    from parsers.rdb._speedups import xor64
except ImportError:  # pragma: no cover - depends on the build
    xor64 = py_xor64


class KeyColumns:
    """One batch of key records, column by column (see the module docstring)."""

    __slots__ = ("cap", "columns", "modules", "names", "rows", "used")

    def __init__(self, cap: int = BATCH_ROWS) -> None:
        self.cap = cap
        self.rows = 0
        self.columns = tuple(
            bytearray(width * (cap + (name == "name_offsets"))) for name, _, width in COLUMNS
        )
        self.names = bytearray(max(64, 16 * cap))
        self.used = 0  # bytes of ``names`` taken
        self.modules: dict[int, str] = {}

    def __len__(self) -> int:
        return self.rows

    def column(self, name: str) -> memoryview:
        """The filled part of a column, as a typed memoryview."""
        for i, (n, fmt, width) in enumerate(COLUMNS):
            if n == name:
                count = self.rows + (n == "name_offsets")
                return memoryview(self.columns[i])[: width * count].cast(fmt)
        raise KeyError(name)

    def key(self, row: int) -> bytes:
        """The name of the key in ``row``."""
        offsets = self.column("name_offsets")
        return bytes(self.names[offsets[row] : offsets[row + 1]])

    def append(
        self,
        db: int,
        type_id: int,
        key: bytes,
        value_offset: int,
        end: int,
        elements: int,
        expire_ms: int | None,
        value_hash: int,
        key_offset: int,
    ) -> None:
        """Add one row (the Python path; the C accelerator writes the same bytes)."""
        r = self.rows
        c = self.columns
        need = self.used + len(key)
        if need > len(self.names):
            self.names.extend(bytes(max(need, 2 * len(self.names)) - len(self.names)))
        self.names[self.used : need] = key
        self.used = need
        _I32(c[0], 4 * r, db)
        c[1][r] = type_id
        _q(c[2], 8 * r, value_offset)
        _q(c[3], 8 * r, end - value_offset)
        _q(c[4], 8 * r, elements)
        _q(c[5], 8 * r, NO_EXPIRY if expire_ms is None else expire_ms)
        _Q(c[6], 8 * r, value_hash)
        _q(c[7], 8 * (r + 1), need)
        _Q(c[8], 8 * r, xxh64(key))
        _Q(c[9], 8 * r, xxh64(key, 1))
        _q(c[10], 8 * r, key_offset)
        self.rows = r + 1

    def full(self) -> bool:
        return self.rows >= self.cap


def key_columns(walker: RdbWalker, rows: int = BATCH_ROWS) -> Iterator[KeyColumns]:
    """Every key of the walker's file, in batches of at most ``rows`` (the last may be
    smaller; none is empty). The walker's aux fields, functions, checksum... are collected on
    it as :meth:`RdbWalker.walk` collects them. Raises a :class:`FormatError` subclass at the
    first problem."""
    buf, mv, deep, skip = walker.buf, walker.mv, walker.deep, walker._skip_string
    skippers = walker._skipper_table()
    fast = _walker._speedups if _walker.USE_SPEEDUPS else None
    valkey = walker.magic == "VALKEY"
    end = len(buf)
    pos = walker.header_size
    db = 0
    expire: int | None = None
    key_at = -1
    next_tick = WINDOW
    batch = KeyColumns(rows)
    try:
        while True:
            if pos >= next_tick:
                walker._advance_crc(pos)
                next_tick = pos + WINDOW
            if batch.full():
                yield batch
                batch = KeyColumns(rows)
            if fast is not None and expire is None:
                pos, batch.rows, batch.used = fast.records(
                    buf, pos, next_tick, db, valkey, deep, batch.columns, batch.rows,
                    batch.names, batch.used,
                )  # fmt: skip
                if pos >= next_tick or batch.full():
                    continue
            op = buf[pos]
            if op >= 0xF0:
                key_at = -1
                pos, db, expire = walker._opcode(op, pos, db, expire)
                if pos < 0:
                    break
                continue
            skipper = skippers[op]
            if skipper is None:
                raise walker._unknown_type(op, pos)
            key_at = pos + 1
            b = buf[key_at]
            vpos = key_at + 1 + b if b < 0x40 else skip(buf, key_at)
            nxt, n = skipper(buf, mv, vpos, deep)
            if nxt > end:
                raise _past_end(nxt, end, vpos)
            if op == _MODULE_2:
                batch.modules[batch.rows] = walker.module_name_at(vpos)
            key = bytes(walker.key_at(key_at))
            batch.append(db, op, key, vpos, nxt, n, expire, xxh64(mv[vpos:nxt]), key_at)
            expire = None
            pos = nxt
    except (FormatError, IndexError) as e:
        raise walker._located(e, key_at, pos, db) from None
    if batch.rows:
        yield batch


def strings_at(fd: int, offsets: bytes | memoryview) -> tuple[bytearray, bytearray] | None:
    """The strings whose encodings start at these offsets of the file ``fd`` (native int64;
    a negative one gives an empty string) as Redis loads them, back to back, with their ends
    (native int64, one more than strings, from 0); read by the C accelerator with pread.
    None without it, or when one does not read: read them one by one then (the Python
    reader words the error)."""
    fast = _walker._speedups if _walker.USE_SPEEDUPS else None
    if fast is None:
        return None
    return fast.strings_at(fd, offsets, False)  # type: ignore[no-any-return]


def string_lengths_at(fd: int, offsets: bytes | memoryview) -> bytearray | None:
    """STRLEN of the strings whose encodings start at these offsets of ``fd`` (native int64
    in and out; a negative offset gives -1), from their headers; None as for
    :func:`strings_at`."""
    fast = _walker._speedups if _walker.USE_SPEEDUPS else None
    if fast is None:
        return None
    return fast.strings_at(fd, offsets, True)  # type: ignore[no-any-return]


_FINGERPRINT = struct.Struct("<BB6xqqQ")
_COLLECTIONS_BY_META = frozenset(range(256)) - {0, int(ValueType.MODULE_PRE_GA), _MODULE_2}


def fingerprints(batch: KeyColumns, codes: bytes, values: bool) -> bytearray:
    """Each row's 64-bit fingerprint (native uint64) for the diff's join: XXH64 of (0, RDB
    type, value bytes, expiry, value hash), or for a collection (not a module value) when
    ``values`` is false, of (1, its type name's code in ``codes`` -- 256 bytes, by RDB type --,
    elements, expiry). Keys with equal fingerprints are the same value, or without ``values``
    the same type, size and expiry, up to a 2**-64 chance."""
    fast = _walker._speedups if _walker.USE_SPEEDUPS else None
    if fast is not None:
        return fast.fingerprints(batch.columns, batch.rows, codes, values)  # type: ignore[no-any-return]
    types = batch.column("type_id")
    nbytes, elements = batch.column("value_bytes"), batch.column("elements")
    expire, hashes = batch.column("expire_ms"), batch.column("value_hash")
    out = bytearray(8 * batch.rows)
    for i in range(batch.rows):
        t = types[i]
        if not values and t in _COLLECTIONS_BY_META:
            packed = _FINGERPRINT.pack(1, codes[t], elements[i], expire[i], 0)
        else:
            packed = _FINGERPRINT.pack(0, t, nbytes[i], expire[i], hashes[i])
        _Q(out, 8 * i, xxh64(packed))
    return out


def values_at(
    walker: RdbWalker, fd: int, offsets: bytes | memoryview, dbs: Callable[[int], int]
) -> tuple[bytearray, bytearray, bytearray, bytearray]:
    """For each key whose name's string starts at one of ``offsets`` (native int64; one below
    1: no key) of the walker's file (open as ``fd`` too): its RDB type byte, and its value's
    offset, serialized bytes and elements as :func:`key_columns` reads them (native int64;
    type NO_KEY and -1 for no key). The C accelerator reads them with pread; a record it
    declines is read here, through the walker (its errors are the walker's, in the db
    ``dbs`` gives the row)."""
    fast = _walker._speedups if _walker.USE_SPEEDUPS else None
    n = memoryview(offsets).nbytes // 8
    if fast is not None:
        types, *numbers = fast.values_at(fd, offsets)
    else:
        types, numbers = bytearray(b"\xff" * n), [bytearray(8 * n) for _ in range(3)]
    value_offset, value_bytes, elements = (memoryview(b).cast("q") for b in numbers)
    at = memoryview(offsets).cast("B").cast("q")
    buf, mv, skip = walker.buf, walker.mv, walker._skip_string
    skippers = walker._skipper_table()
    i = types.find(255)
    while i >= 0:
        key_at = at[i]
        if key_at < 1:
            types[i] = NO_KEY
            value_offset[i] = value_bytes[i] = elements[i] = -1
            i = types.find(255, i + 1)
            continue
        op = buf[key_at - 1]
        skipper = skippers[op] if op < len(skippers) else None
        try:
            if skipper is None:
                raise walker._unknown_type(op, key_at - 1)
            b = buf[key_at]
            vpos = key_at + 1 + b if b < 0x40 else skip(buf, key_at)
            end, count = skipper(buf, mv, vpos, False)
            if end > len(buf):
                raise _past_end(end, len(buf), vpos)
        except (FormatError, IndexError) as e:
            raise walker._located(e, key_at, key_at - 1, dbs(i)) from None
        types[i] = op
        value_offset[i], value_bytes[i], elements[i] = vpos, end - vpos, count
        i = types.find(255, i + 1)
    return types, numbers[0], numbers[1], numbers[2]
