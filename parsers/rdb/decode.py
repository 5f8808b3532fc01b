"""Decode RDB values into their logical content, on demand.

Counting lives in :mod:`parsers.rdb.values`; this module is for consumers that need what a
key holds (a keyspace model, value diffs). The result of :func:`decode_value` is one of the
small frozen dataclasses below and does not depend on how the value was encoded: a list is
a tuple of bytes whether it came from a quicklist of listpacks or an old linked list, and
integers packed in ziplists/listpacks/intsets come back as their decimal bytes, as Redis
returns them.

Layouts follow redis ``src/rdb.c`` (rdbLoadObject) and ``src/t_stream.c`` (the stream
listpack). Errors are :class:`CorruptError`/:class:`TruncatedError` with file offsets: a
problem inside a listpack, ziplist, intset or zipmap is reported at the file offset of the
string holding that blob, with the byte inside the blob in the message.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from parsers.errors import CorruptError, FormatError, TruncatedError, UnsupportedError
from parsers.rdb import intset, listpack, ziplist, zipmap
from parsers.rdb.constants import VALKEY_HASH_2
from parsers.rdb.constants import ValueType as T
from parsers.rdb.module import module_encoding_version, module_type_name, skip_opcodes
from parsers.rdb.stream import skip_v4_extras
from parsers.rdb.strings import Buffer, read_length, read_string
from parsers.rdb.values import QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN, blob_at

if TYPE_CHECKING:
    from parsers.rdb.walker import RdbWalker

# -- the values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StringValue:
    data: bytes


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SetValue:
    members: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class ZSetValue:
    """Member -> score, in file order (not necessarily score order)."""

    members: dict[bytes, float]


@dataclass(frozen=True, slots=True)
class HashValue:
    """Field -> value; ``field_expires_ms`` holds the absolute expiry of fields that have one."""

    fields: dict[bytes, bytes]
    field_expires_ms: dict[bytes, int]


StreamId = tuple[int, int]
StreamEntry = tuple[StreamId, tuple[tuple[bytes, bytes], ...]]


@dataclass(frozen=True, slots=True)
class StreamGroup:
    """A consumer group: ``pending`` is the size of its PEL; ``entries_read`` is None when the
    file does not say (type 15) or says "invalid" (-1, XINFO's nil)."""

    name: bytes
    last_id: StreamId
    pending: int
    consumers: tuple[bytes, ...]
    entries_read: int | None


@dataclass(frozen=True, slots=True)
class StreamValue:
    """``length`` as stored (XLEN, which may differ from the number of entries: Redis does
    not check it); ``entries`` the live entries in id order."""

    length: int
    last_id: StreamId
    entries: tuple[StreamEntry, ...]
    groups: tuple[StreamGroup, ...]


@dataclass(frozen=True, slots=True)
class ModuleValue:
    """A module value: its type name and encoding version; the content is the module's own."""

    module: str
    encoding_version: int


Value = StringValue | ListValue | SetValue | ZSetValue | HashValue | StreamValue | ModuleValue

# A decoder reads the value at an offset: (buffer, memoryview of it, offset) -> (value, end).
Decoder = Callable[[Buffer, memoryview, int], tuple[Value, int]]

_U64LE = struct.Struct("<Q").unpack_from
_I64LE = struct.Struct("<q").unpack_from
_F64LE = struct.Struct("<d").unpack_from
_ID_BE = struct.Struct(">QQ").unpack_from

# rdbSaveDoubleValue's one-byte lengths for the special values of a type-3 score.
DOUBLE_NAN, DOUBLE_POS_INF, DOUBLE_NEG_INF = 253, 254, 255
# Hash field expiry limits (redis ebuckets.h): expiries above MAX are corrupt.
EB_EXPIRE_TIME_MAX = (1 << 48) - 1
# A listpack-ex triplet's ttl of 0 means "no expiry" (t_hash.c HASH_LP_NO_TTL).
HASH_LP_NO_TTL = 0
# Stream entry flags (t_stream.c).
STREAM_ITEM_FLAG_DELETED = 1
STREAM_ITEM_FLAG_SAMEFIELDS = 2
# A group's entries_read of -1 (stored as a 64-bit length) means "unknown" (SCG_INVALID...).
_U64_MASK = (1 << 64) - 1

# What strtod (zset scores) and string2ll (listpack integers kept as strings) accept, minus
# C's hex floats and leading blanks, which Redis never writes.
_DOUBLE_TEXT = re.compile(rb"[+-]?(?:inf(?:inity)?|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.I)
_INT_TEXT = re.compile(rb"-?(?:0|[1-9]\d*)")

# -- public API ---------------------------------------------------------------------------------


def decode_value(buf: Buffer, type_id: int, value_offset: int, *, magic: str = "REDIS") -> Value:
    """The content of the value of type ``type_id`` starting at ``value_offset``."""
    return read_value(buf, type_id, value_offset, magic=magic)[0]


def read_value(
    buf: Buffer,
    type_id: int,
    value_offset: int,
    *,
    magic: str = "REDIS",
    mv: memoryview | None = None,
) -> tuple[Value, int]:
    """Decode the value at ``value_offset``; returns (value, offset just past it)."""
    table = VALKEY_DECODERS if magic == "VALKEY" else DECODERS
    decoder = table.get(type_id)
    if decoder is None:
        if type_id == T.MODULE_PRE_GA:
            raise UnsupportedError(
                "module value in the Redis 4.0 release-candidate format (type 6): only the "
                "module can read it",
                value_offset,
            )
        raise UnsupportedError(
            f"cannot decode value type {type_id} in a {magic} RDB",
            value_offset,
            code="unknown_type",
        )
    if mv is None:
        mv = buf if isinstance(buf, memoryview) else memoryview(buf)
    try:
        return decoder(buf, mv, value_offset)
    except (IndexError, struct.error):
        raise TruncatedError(
            f"truncated: input ends inside the value that starts at {value_offset}", len(buf)
        ) from None


def decode_key_values(walker: RdbWalker) -> Iterator[tuple[int, bytes, int | None, Value]]:
    """Walk ``walker`` and yield ``(db, key, expire_ms, value)`` for every key.

    Each value is also checked to end where the walk's skipper said it does.
    """
    buf, mv, magic = walker.buf, walker.mv, walker.magic
    for db, type_id, key_offset, value_offset, end, _n, expire in walker.walk():
        key = bytes(walker.key_at(key_offset))
        try:
            value, stop = read_value(buf, type_id, value_offset, magic=magic, mv=mv)
        except FormatError as e:
            raise e.located(key=key, db=db) from None
        if stop != end:
            raise CorruptError(
                f"value decodes to {stop - value_offset} bytes, the walk skipped "
                f"{end - value_offset}",
                value_offset,
                key=key,
                db=db,
            )
        yield db, key, expire, value


def read_double(buf: Buffer, pos: int) -> tuple[float, int]:
    """A type-3 sorted set score: a length byte (253 nan, 254 +inf, 255 -inf) and decimal text."""
    n = buf[pos]
    if n == DOUBLE_NAN:
        return math.nan, pos + 1
    if n == DOUBLE_POS_INF:
        return math.inf, pos + 1
    if n == DOUBLE_NEG_INF:
        return -math.inf, pos + 1
    end = pos + 1 + n
    if end > len(buf):
        raise TruncatedError(
            f"truncated: score of {n} bytes runs {end - len(buf)} bytes past the end", pos
        )
    return _parse_double(bytes(buf[pos + 1 : end]), pos), end


# -- helpers --------------------------------------------------------------------------------


def _string(buf: Buffer, pos: int) -> tuple[bytes, int]:
    s, pos = read_string(buf, pos)
    return bytes(s), pos


def _count(buf: Buffer, pos: int, what: str, min_size: int = 1) -> tuple[int, int]:
    """A length prefix counting items of at least ``min_size`` bytes, checked to fit."""
    n, p = read_length(buf, pos)
    if n * min_size > len(buf) - p:
        raise TruncatedError(f"{n} {what} cannot fit in the {len(buf) - p} bytes left", pos)
    return n, p


def _need(buf: Buffer, pos: int, size: int, what: str) -> None:
    if pos + size > len(buf):
        raise TruncatedError(f"truncated: input ends inside {what}", pos)


def _text(v: bytes | int) -> bytes:
    """A packed entry as Redis returns it: integers as decimal bytes."""
    return v if isinstance(v, bytes) else str(v).encode()


def _parse_double(text: bytes, at: int) -> float:
    if not _DOUBLE_TEXT.fullmatch(text):
        raise CorruptError(f"score {text[:40]!r} is not a number", at)
    return float(text)


def _score(v: bytes | int, at: int) -> float:
    return float(v) if isinstance(v, int) else _parse_double(v, at)


def _packed_int(v: bytes | int, what: str, at: int) -> int:
    """A packed entry read as an integer (a string entry must spell one, as lpGetInteger)."""
    if isinstance(v, int):
        return v
    if _INT_TEXT.fullmatch(v) and -(1 << 63) <= int(v) < (1 << 63):
        return int(v)
    raise CorruptError(f"{what} {v[:40]!r} is not an integer", at)


def _entries(
    encoding: ModuleType, name: str, buf: Buffer, mv: memoryview, pos: int
) -> tuple[list[bytes | int], int]:
    """Every entry of the blob stored at ``pos``; blob-relative errors rebased onto ``pos``."""
    blob, end = blob_at(buf, mv, pos)
    try:
        return list(encoding.entries(blob)), end
    except CorruptError as e:
        raise CorruptError(f"{e.what} (byte {e.offset} of the {name})", pos) from None


def _groups(items: list[bytes | int], per: int, name: str, at: int) -> list[list[bytes | int]]:
    if len(items) % per:
        raise CorruptError(f"{name} holds {len(items)} entries, not a multiple of {per}", at)
    return [items[i : i + per] for i in range(0, len(items), per)]


def _unique(pairs: Iterable[tuple[bytes, object]], what: str, at: int) -> dict:
    """A dict of the pairs; a repeated key is corrupt (Redis refuses duplicates)."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise CorruptError(f"duplicate {what} {k[:40]!r}", at)
        out[k] = v
    return out


def _unique_set(members: Iterable[bytes], at: int) -> frozenset[bytes]:
    items = members if isinstance(members, (list, tuple)) else list(members)
    out = frozenset(items)
    if len(out) != len(items):  # a duplicate: find the first, to name it
        seen: set[bytes] = set()
        for m in items:
            if m in seen:
                raise CorruptError(f"duplicate set member {m[:40]!r}", at)
            seen.add(m)
    return out


# -- strings and lists -------------------------------------------------------------------------


def _string_value(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    data, end = _string(buf, pos)
    return StringValue(data), end


def _plain_strings(buf: Buffer, pos: int, what: str) -> tuple[list[bytes], int]:
    n, pos = _count(buf, pos, what)
    out: list[bytes] = []
    append = out.append
    size = len(buf)
    for _ in range(n):
        b = buf[pos]
        end = pos + 1 + b
        if b < 0x40 and end <= size:  # a short raw string (6-bit length): read inline
            append(bytes(buf[pos + 1 : end]))
            pos = end
        else:
            s, pos = _string(buf, pos)
            append(s)
    return out, pos


def _list(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    items, end = _plain_strings(buf, pos, "list elements")
    return ListValue(tuple(items)), end


def _list_ziplist(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    items, end = _entries(ziplist, "ziplist", buf, mv, pos)
    return ListValue(tuple(map(_text, items))), end


def _quicklist(version: int) -> Decoder:
    """LIST_QUICKLIST (ziplist nodes) and LIST_QUICKLIST_2 (plain or listpack nodes)."""

    def decode(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
        nodes, pos = _count(buf, pos, "quicklist nodes")
        items: list[bytes] = []
        for _ in range(nodes):
            container = QUICKLIST_NODE_PACKED
            if version == 2:
                at = pos
                container, pos = read_length(buf, pos)
                if container not in (QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN):
                    raise CorruptError(f"quicklist node container {container}, expected 1 or 2", at)
            if container == QUICKLIST_NODE_PLAIN:
                at = pos
                item, pos = _string(buf, pos)
                if not item:
                    raise CorruptError("empty plain quicklist node", at)
                items.append(item)
                continue
            if version == 2:
                node, pos = _entries(listpack, "quicklist listpack node", buf, mv, pos)
            else:
                node, pos = _entries(ziplist, "quicklist ziplist node", buf, mv, pos)
            items.extend(map(_text, node))  # Redis skips empty nodes silently
        return ListValue(tuple(items)), pos

    return decode


# -- sets -----------------------------------------------------------------------------------


def _set(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    members, end = _plain_strings(buf, pos, "set members")
    return SetValue(_unique_set(members, pos)), end


def sorted_set_members(raw: Buffer) -> tuple[int, bytes, bytes] | None:
    """A plain-encoded set value's members (RDB type 2, ``raw`` its serialized bytes) sorted
    bytewise, by the C accelerator: (count, their lengths as little-endian uint64, their
    bytes back to back). None without it, or when the value does not read as such a set
    (:func:`read_value` finds and words the problem)."""
    from parsers.rdb import walker

    fast = walker._speedups if walker.USE_SPEEDUPS else None
    if fast is None:
        return None
    got = fast.sorted_members(raw)
    if got is None:
        return None
    lengths, data = got
    return len(lengths) // 8, lengths, data


def _set_intset(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    values, end = _entries(intset, "intset", buf, mv, pos)
    return SetValue(frozenset(map(_text, values))), end


def _set_listpack(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    values, end = _entries(listpack, "set listpack", buf, mv, pos)
    return SetValue(_unique_set(map(_text, values), pos)), end


# -- sorted sets ----------------------------------------------------------------------------


def _zset_members(pairs: Iterable[tuple[bytes, float]], at: int) -> ZSetValue:
    members = _unique(pairs, "sorted set member", at)
    for m, score in members.items():
        if math.isnan(score):  # rdbLoadObject: "Zset with NAN score detected"
            raise CorruptError(f"sorted set member {m[:40]!r} has a NaN score", at)
    return ZSetValue(members)


def _zset(binary: bool) -> Decoder:
    """ZSET (type 3, scores as text) and ZSET_2 (type 5, little-endian binary doubles)."""

    def decode(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
        start = pos
        n, pos = _count(buf, pos, "sorted set members", 2 if not binary else 9)
        pairs = []
        for _ in range(n):
            member, pos = _string(buf, pos)
            if binary:
                _need(buf, pos, 8, "a sorted set score")
                score, pos = _F64LE(buf, pos)[0], pos + 8
            else:
                score, pos = read_double(buf, pos)
            pairs.append((member, score))
        return _zset_members(pairs, start), pos

    return decode


def _zset_packed(encoding: ModuleType, name: str) -> Decoder:
    def decode(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
        items, end = _entries(encoding, name, buf, mv, pos)
        pairs = [(_text(m), _score(s, pos)) for m, s in _groups(items, 2, name, pos)]
        return _zset_members(pairs, pos), end

    return decode


# -- hashes ---------------------------------------------------------------------------------


def _hash(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    start = pos
    n, pos = _count(buf, pos, "hash fields", 2)
    pairs = []
    for _ in range(n):
        field, pos = _string(buf, pos)
        value, pos = _string(buf, pos)
        pairs.append((field, value))
    return HashValue(_unique(pairs, "hash field", start), {}), pos


def _hash_packed(encoding: ModuleType, name: str) -> Decoder:
    """HASH_ZIPMAP, HASH_ZIPLIST and HASH_LISTPACK: field and value in turn."""

    def decode(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
        items, end = _entries(encoding, name, buf, mv, pos)
        pairs = [(_text(f), _text(v)) for f, v in _groups(items, 2, name, pos)]
        return HashValue(_unique(pairs, "hash field", pos), {}), end

    return decode


def _field_expiry(expire_at: int, field: bytes, at: int) -> int:
    if expire_at > EB_EXPIRE_TIME_MAX:
        raise CorruptError(
            f"hash field {field[:40]!r} expires at {expire_at}, past the maximum "
            f"{EB_EXPIRE_TIME_MAX}",
            at,
        )
    return expire_at


def _hash_metadata(with_min_expire: bool) -> Decoder:
    """HASH_METADATA (24): min expiry, then (ttl, field, value) with ttl relative to it;
    HASH_METADATA_PRE_GA (22, Redis 7.4 rc): no min expiry, ttl absolute. ttl 0: none."""

    def decode(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
        start = pos
        min_expire = 0
        if with_min_expire:
            _need(buf, pos, 8, "a hash's minimum field expiry")
            min_expire = _U64LE(buf, pos)[0]
            if min_expire > EB_EXPIRE_TIME_MAX + 1:
                raise CorruptError(f"hash minimum field expiry {min_expire} is invalid", pos)
            pos += 8
        n, pos = _count(buf, pos, "hash fields", 3)
        pairs = []
        expires = []
        for _ in range(n):
            at = pos
            ttl, pos = read_length(buf, pos)
            field, pos = _string(buf, pos)
            value, pos = _string(buf, pos)
            pairs.append((field, value))
            if ttl:
                expire_at = ttl + min_expire - 1 if with_min_expire else ttl
                expires.append((field, _field_expiry(expire_at, field, at)))
        return HashValue(_unique(pairs, "hash field", start), dict(expires)), pos

    return decode


def _hash_listpack_ex(with_min_expire: bool) -> Decoder:
    """HASH_LISTPACK_EX (25; 23 before GA without the min expiry): (field, value, ttl)
    triplets, ttl an absolute ms time or 0 for none."""

    def decode(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
        if with_min_expire:
            _need(buf, pos, 8, "a hash's minimum field expiry")
            pos += 8  # only a hint; Redis ignores it on load
        items, end = _entries(listpack, "hash listpack", buf, mv, pos)
        pairs = []
        expires = []
        for f, v, t in _groups(items, 3, "hash listpack", pos):
            field = _text(f)
            pairs.append((field, _text(v)))
            ttl = _packed_int(t, "hash field ttl", pos)
            if ttl != HASH_LP_NO_TTL:
                if ttl < 0:
                    raise CorruptError(f"hash field {field[:40]!r} has ttl {ttl}", pos)
                expires.append((field, _field_expiry(ttl, field, pos)))
        return HashValue(_unique(pairs, "hash field", pos), dict(expires)), end

    return decode


def _valkey_hash2(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    """Valkey 9 HASH_2: (field, value, 8-byte LE expiry in ms, -1 for none)."""
    start = pos
    n, pos = _count(buf, pos, "hash fields", 10)
    pairs = []
    expires = []
    for _ in range(n):
        field, pos = _string(buf, pos)
        value, pos = _string(buf, pos)
        _need(buf, pos, 8, "a hash field expiry")
        expire_at = _I64LE(buf, pos)[0]
        if expire_at != -1:
            if expire_at < 0:
                raise CorruptError(f"hash field {field[:40]!r} expires at {expire_at}", pos)
            expires.append((field, expire_at))
        pos += 8
        pairs.append((field, value))
    return HashValue(_unique(pairs, "hash field", start), dict(expires)), pos


# -- streams --------------------------------------------------------------------------------


def _stream_listpack(
    items: list[bytes | int], master: StreamId, at: int
) -> tuple[list[StreamEntry], int]:
    """The live entries of one stream listpack (t_stream.c's layout), and its live count.

    Master entry: count, deleted, num-fields, field..., 0. Then per entry: flags, ms and seq
    deltas from the master id, [num-fields, field, value... | value... with SAMEFIELDS],
    lp-count (the entry's listpack size, for walking backwards).
    """
    n = len(items)

    def need(p: int, k: int, what: str) -> None:
        if p + k > n:
            raise CorruptError(f"stream listpack ends inside {what}", at)

    def integer(p: int, what: str) -> int:
        need(p, 1, what)
        return _packed_int(items[p], f"stream {what}", at)

    count = integer(0, "master entry count")
    deleted = integer(1, "master deleted count")
    nfields = integer(2, "master field count")
    if nfields < 0:
        raise CorruptError(f"stream master entry has {nfields} fields", at)
    need(3, nfields, "the master fields")
    master_fields = [_text(f) for f in items[3 : 3 + nfields]]
    p = 3 + nfields
    if integer(p, "master entry terminator") != 0:
        raise CorruptError("stream master entry does not end with 0", at)
    p += 1
    entries: list[StreamEntry] = []
    seen = live = 0
    while p < n:
        flags = integer(p, "entry flags")
        dms = integer(p + 1, "entry id")
        dseq = integer(p + 2, "entry id")
        p += 3
        if flags & STREAM_ITEM_FLAG_SAMEFIELDS:
            k = len(master_fields)
            need(p, k, "an entry's values")
            pairs = tuple(zip(master_fields, map(_text, items[p : p + k]), strict=True))
            p += k
            expected = k + 3
        else:
            k = integer(p, "entry field count")
            if k < 0:
                raise CorruptError(f"stream entry has {k} fields", at)
            p += 1
            need(p, 2 * k, "an entry's fields")
            flat = list(map(_text, items[p : p + 2 * k]))
            pairs = tuple(zip(flat[::2], flat[1::2], strict=True))
            p += 2 * k
            expected = 2 * k + 4
        lp_count = integer(p, "entry lp-count")
        if lp_count != expected:
            raise CorruptError(f"stream entry lp-count {lp_count}, expected {expected}", at)
        p += 1
        seen += 1
        if flags & STREAM_ITEM_FLAG_DELETED:
            continue
        live += 1
        entry_id = ((master[0] + dms) & _U64_MASK, (master[1] + dseq) & _U64_MASK)
        entries.append((entry_id, pairs))
    # streamValidateListpackIntegrity walks exactly count + deleted entries; how many of them
    # carry the deleted flag is not checked against the master entry's split.
    if seen != count + deleted:
        raise CorruptError(
            f"stream listpack master entry says {count} live and {deleted} deleted entries, "
            f"found {seen} in all",
            at,
        )
    return entries, live


def _stream_id(buf: Buffer, pos: int) -> tuple[StreamId, int]:
    ms, pos = read_length(buf, pos)
    seq, pos = read_length(buf, pos)
    return (ms, seq), pos


def _stream(type_id: int) -> Decoder:
    """Streams (15, 19, 21, 26): listpacks keyed by master id, metadata, consumer groups."""

    def decode(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
        n_listpacks, pos = _count(buf, pos, "stream listpacks", 2)
        entries: list[StreamEntry] = []
        for _ in range(n_listpacks):
            at = pos
            master, pos = _string(buf, pos)
            if len(master) != 16:
                raise CorruptError(f"stream master id is {len(master)} bytes, expected 16", at)
            lp_at = pos
            items, pos = _entries(listpack, "stream listpack", buf, mv, pos)
            if not items:
                raise CorruptError("empty listpack inside a stream", lp_at)
            got, _live = _stream_listpack(items, _ID_BE(master), lp_at)
            entries.extend(got)
        # The stored length is what XLEN says, even where the listpacks hold another number
        # of live entries (Redis 5 files have such streams, and Redis loads them as they are).
        length, pos = read_length(buf, pos)
        last_id, pos = _stream_id(buf, pos)
        if type_id >= T.STREAM_LISTPACKS_2:
            _, pos = _stream_id(buf, pos)  # first id
            _, pos = _stream_id(buf, pos)  # max deleted id
            _, pos = read_length(buf, pos)  # entries_added
        n_groups, pos = _count(buf, pos, "consumer groups", 5)
        groups = []
        names: set[bytes] = set()
        for _ in range(n_groups):
            group, pos = _stream_group(buf, pos, type_id)
            if group.name in names:
                raise CorruptError(f"duplicate consumer group {group.name[:40]!r}", pos)
            names.add(group.name)
            groups.append(group)
        if type_id >= T.STREAM_LISTPACKS_4:
            pos = skip_v4_extras(buf, pos)
        if pos > len(buf):
            raise TruncatedError("truncated: stream runs past the end of the input", len(buf))
        return StreamValue(length, last_id, tuple(entries), tuple(groups)), pos

    return decode


def _stream_group(buf: Buffer, pos: int, type_id: int) -> tuple[StreamGroup, int]:
    """One consumer group: name, last id, [entries_read], PEL, consumers with their PELs."""
    name, pos = _string(buf, pos)
    last_id, pos = _stream_id(buf, pos)
    entries_read = None
    if type_id >= T.STREAM_LISTPACKS_2:
        stored, pos = read_length(buf, pos)
        signed = stored - (1 << 64) if stored >= 1 << 63 else stored
        entries_read = None if signed == -1 else signed
    n_pel, pos = _count(buf, pos, "pending entries", 25)
    pel: set[bytes] = set()
    for _ in range(n_pel):
        at = pos
        _need(buf, pos, 24, "a pending entry")
        raw = bytes(buf[pos : pos + 16])
        _, pos = read_length(buf, pos + 24)  # after the id and delivery time: delivery count
        if raw in pel:
            raise CorruptError("duplicate entry in a consumer group's PEL", at)
        pel.add(raw)
    n_consumers, pos = _count(buf, pos, "consumers", 10)
    consumers: dict[bytes, None] = {}
    for _ in range(n_consumers):
        at = pos
        cname, pos = _string(buf, pos)
        if cname in consumers:
            raise CorruptError(f"duplicate consumer {cname[:40]!r}", at)
        consumers[cname] = None
        times = 16 if type_id >= T.STREAM_LISTPACKS_3 else 8  # seen [and active] time
        _need(buf, pos, times, "a consumer's times")
        n_cpel, pos = _count(buf, pos + times, "consumer pending entries", 16)
        for _ in range(n_cpel):
            if bytes(buf[pos : pos + 16]) not in pel:
                raise CorruptError("consumer PEL entry missing from its group's PEL", pos)
            pos += 16
    return StreamGroup(name, last_id, n_pel, tuple(consumers), entries_read), pos


# -- modules --------------------------------------------------------------------------------


def _module(buf: Buffer, mv: memoryview, pos: int) -> tuple[Value, int]:
    module_id, p = read_length(buf, pos)
    end, _ = skip_opcodes(buf, p)
    return ModuleValue(module_type_name(module_id), module_encoding_version(module_id)), end


DECODERS: dict[int, Decoder] = {
    T.STRING: _string_value,
    T.LIST: _list,
    T.SET: _set,
    T.ZSET: _zset(binary=False),
    T.HASH: _hash,
    T.ZSET_2: _zset(binary=True),
    T.MODULE_2: _module,
    T.HASH_ZIPMAP: _hash_packed(zipmap, "zipmap"),
    T.LIST_ZIPLIST: _list_ziplist,
    T.SET_INTSET: _set_intset,
    T.ZSET_ZIPLIST: _zset_packed(ziplist, "sorted set ziplist"),
    T.HASH_ZIPLIST: _hash_packed(ziplist, "hash ziplist"),
    T.LIST_QUICKLIST: _quicklist(1),
    T.STREAM_LISTPACKS: _stream(T.STREAM_LISTPACKS),
    T.HASH_LISTPACK: _hash_packed(listpack, "hash listpack"),
    T.ZSET_LISTPACK: _zset_packed(listpack, "sorted set listpack"),
    T.LIST_QUICKLIST_2: _quicklist(2),
    T.STREAM_LISTPACKS_2: _stream(T.STREAM_LISTPACKS_2),
    T.SET_LISTPACK: _set_listpack,
    T.STREAM_LISTPACKS_3: _stream(T.STREAM_LISTPACKS_3),
    T.HASH_METADATA_PRE_GA: _hash_metadata(with_min_expire=False),
    T.HASH_LISTPACK_EX_PRE_GA: _hash_listpack_ex(with_min_expire=False),
    T.HASH_METADATA: _hash_metadata(with_min_expire=True),
    T.HASH_LISTPACK_EX: _hash_listpack_ex(with_min_expire=True),
    T.STREAM_LISTPACKS_4: _stream(T.STREAM_LISTPACKS_4),
}

# Valkey files share Redis's ids up to 21; 22 is HASH_2 there, and 23 on are not defined.
VALKEY_DECODERS: dict[int, Decoder] = {
    k: v for k, v in DECODERS.items() if k <= T.STREAM_LISTPACKS_3
} | {VALKEY_HASH_2: _valkey_hash2}
