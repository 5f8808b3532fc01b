"""Skip one value of each RDB type, counting its elements without decoding them.

``SKIPPERS[type_id](buf, mv, pos, deep)`` returns ``(new offset, elements)``. Containers
stored as a blob (listpack, ziplist, intset, zipmap) are counted from their headers, which
are checked (declared size, end marker); ``deep=True`` walks and checks every entry.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from types import ModuleType

from parsers.errors import CorruptError, TruncatedError, UnsupportedError
from parsers.rdb import intset, listpack, ziplist, zipmap
from parsers.rdb.constants import ValueType as T
from parsers.rdb.module import module_type_name, skip_module_value
from parsers.rdb.stream import skip_stream
from parsers.rdb.strings import Buffer, read_length, read_string, skip_string, string_span

Skipper = Callable[[Buffer, memoryview, int, bool], tuple[int, int]]

QUICKLIST_NODE_PLAIN = 1
QUICKLIST_NODE_PACKED = 2


def blob_at(buf: Buffer, mv: memoryview, pos: int) -> tuple[bytes | memoryview, int]:
    """The bytes of the string at pos (a view when stored raw, decompressed when LZF)."""
    span = string_span(buf, pos)
    if span is None:
        return read_string(buf, pos)
    return mv[span[0] : span[1]], span[2]


def _count_blob(
    encoding: ModuleType, name: str, buf: Buffer, mv: memoryview, pos: int, deep: bool
) -> tuple[int, int]:
    blob, end = blob_at(buf, mv, pos)
    try:
        n = encoding.validate(blob) if deep else encoding.count(blob)
    except CorruptError as e:
        raise CorruptError(f"{e.what} (byte {e.offset} of the {name})", pos) from None
    return end, n


def _strings(buf: Buffer, pos: int, count: int) -> int:
    end = len(buf)
    if count > end - pos:  # every string takes at least one byte
        raise TruncatedError(f"{count} elements cannot fit in the {end - pos} bytes left", pos)
    for _ in range(count):
        b = buf[pos]
        pos = pos + 1 + b if b < 0x40 else skip_string(buf, pos)
    if pos > end:
        raise TruncatedError(f"truncated: elements run {pos - end} bytes past the end", end)
    return pos


_LP_HEADER = struct.Struct("<IH").unpack_from
_ZL_HEADER = struct.Struct("<IIH").unpack_from
_LZF = 0xC3  # string encoding byte: LZF-compressed


def _packed(encoding: ModuleType, name: str, per: int = 1) -> Skipper:
    """A skipper for a listpack or ziplist blob holding ``per`` entries per element.

    It counts from the header, touching only the blob's ends. The common shapes are handled
    inline: a raw blob, or an LZF blob whose first literal run holds the header and whose last
    literal byte is the end marker. Anything else (deep mode, an unknown count, a header that
    does not add up) goes through the encoding module, which decides precisely and names the
    problem. This runs once per collection key, so it is written for speed.
    """
    is_listpack = encoding is listpack
    min_size = 7 if is_listpack else 11

    def skip(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
        if not deep:
            b = buf[pos]
            if b < 0x40:
                s = pos + 1
                e = s + b
                size = b
            elif b < 0x80:
                s = pos + 2
                size = ((b & 0x3F) << 8) | buf[pos + 1]
                e = s + size
            elif b == _LZF:
                p = pos + 1
                c = buf[p]
                if c < 0x40:
                    clen = c
                    p += 1
                elif c < 0x80:
                    clen = ((c & 0x3F) << 8) | buf[p + 1]
                    p += 2
                else:
                    clen, p = read_length(buf, p)
                c = buf[p]
                if c < 0x40:
                    size = c
                    p += 1
                elif c < 0x80:
                    size = ((c & 0x3F) << 8) | buf[p + 1]
                    p += 2
                else:
                    size, p = read_length(buf, p)
                e = p + clen
                c = buf[p]
                # A first literal run of 10+ bytes, inside the compressed data, holds the header.
                s = p + 1 if 9 <= c < 32 and p + 2 + c <= e else -1
            else:
                s = -1
            if s >= 0 and e <= len(buf) and size >= min_size and buf[e - 1] == 0xFF:
                if is_listpack:
                    total, n = _LP_HEADER(buf, s)
                    ok = total == size and n != 0xFFFF
                else:
                    total, tail, n = _ZL_HEADER(buf, s)
                    ok = total == size and tail < size and n != 0xFFFF
                if ok and 2 * n <= total - min_size and (per == 1 or n % per == 0):
                    return e, n // per
        e, n = _count_blob(encoding, name, buf, mv, pos, deep)
        if n % per:
            raise CorruptError(f"{name} holds {n} entries, not a multiple of {per}", pos)
        return e, n // per

    return skip


_QUICKLIST_ZIPLIST = _packed(ziplist, "quicklist ziplist node")
_QUICKLIST_LISTPACK = _packed(listpack, "quicklist listpack node")


def skip_string_value(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    return skip_string(buf, pos), 1


def skip_list_or_set(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    n = buf[pos]
    if n < 0x40:
        pos += 1
        for _ in range(n):  # at most 63 strings: no need to check they can fit first
            b = buf[pos]
            pos = pos + 1 + b if b < 0x40 else skip_string(buf, pos)
        return pos, n
    n, pos = read_length(buf, pos)
    return _strings(buf, pos, n), n


def skip_hash(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    n, pos = read_length(buf, pos)
    return _strings(buf, pos, 2 * n), n


def skip_zset(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    """ZSET (type 3): member string, then the score as a length-prefixed decimal string."""
    n, pos = read_length(buf, pos)
    end = len(buf)
    for _ in range(n):
        pos = skip_string(buf, pos)
        if pos >= end:
            raise TruncatedError("truncated: sorted set score runs past the end", end)
        b = buf[pos]
        pos += 1 if b >= 253 else 1 + b  # 253 nan, 254 +inf, 255 -inf
    if pos > end:
        raise TruncatedError("truncated: sorted set runs past the end of the input", end)
    return pos, n


def skip_zset2(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    """ZSET_2 (type 5): member string, then an 8-byte binary double."""
    n, pos = read_length(buf, pos)
    end = len(buf)
    if n > end - pos:
        raise TruncatedError(f"{n} sorted set members cannot fit in {end - pos} bytes", pos)
    for _ in range(n):
        pos = skip_string(buf, pos) + 8
    if pos > end:
        raise TruncatedError("truncated: sorted set runs past the end of the input", end)
    return pos, n


def skip_module(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    pos, _values, _name = skip_module_value(buf, pos)
    return pos, 1


def skip_module_pre_ga(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    """Type 6 values carry no opcode annotations: only the module itself can skip them."""
    module_id, _ = read_length(buf, pos)
    raise UnsupportedError(
        f"value of module type '{module_type_name(module_id)}' in the Redis 4.0 release-"
        "candidate format (type 6), which only that module can read",
        pos,
    )


def skip_intset(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    return _count_blob(intset, "intset", buf, mv, pos, deep)


def skip_zipmap(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    # zipmap.count already counts pairs
    return _count_blob(zipmap, "zipmap", buf, mv, pos, deep)


def skip_quicklist(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    """LIST_QUICKLIST (type 14): a count of ziplist nodes."""
    nodes, pos = read_length(buf, pos)
    if nodes > len(buf) - pos:
        raise TruncatedError(f"{nodes} quicklist nodes cannot fit in the bytes left", pos)
    total = 0
    for _ in range(nodes):
        pos, n = _QUICKLIST_ZIPLIST(buf, mv, pos, deep)
        total += n
    return pos, total


def skip_quicklist2(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    """LIST_QUICKLIST_2 (type 18): nodes tagged PLAIN (one element) or PACKED (listpack)."""
    nodes = buf[pos]
    if nodes < 0x40:
        pos += 1
    else:
        nodes, pos = read_length(buf, pos)
        if nodes > len(buf) - pos:
            raise TruncatedError(f"{nodes} quicklist nodes cannot fit in the bytes left", pos)
    total = 0
    for _ in range(nodes):
        container = buf[pos]
        if container == QUICKLIST_NODE_PACKED:
            pos, n = _QUICKLIST_LISTPACK(buf, mv, pos + 1, deep)
            total += n  # an empty node is skipped by Redis, not refused
        elif container == QUICKLIST_NODE_PLAIN:
            pos = skip_string(buf, pos + 1)
            total += 1
        else:
            raise CorruptError(f"quicklist node container {container}, expected 1 or 2", pos)
    return pos, total


def skip_stream_value(type_id: int) -> Skipper:
    def skip(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
        pos, summary = skip_stream(buf, mv, pos, type_id, deep)
        return pos, summary.length

    return skip


def skip_hash_metadata(with_min_expire: bool) -> Skipper:
    """HASH_METADATA (24, and 22 before GA): field TTLs, then field and value strings."""

    def skip(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
        if with_min_expire:
            pos += 8
        n, pos = read_length(buf, pos)
        if n > len(buf) - pos:
            raise TruncatedError(f"{n} hash fields cannot fit in the bytes left", pos)
        for _ in range(n):
            _, pos = read_length(buf, pos)  # ttl
            pos = skip_string(buf, skip_string(buf, pos))
        return pos, n

    return skip


def skip_hash_listpack_ex(with_min_expire: bool) -> Skipper:
    """HASH_LISTPACK_EX (25, and 23 before GA): a listpack of field, value, ttl triplets."""
    triplets = _packed(listpack, "hash listpack", 3)

    def skip(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
        return triplets(buf, mv, pos + 8 if with_min_expire else pos, deep)

    return skip


def skip_valkey_hash2(buf: Buffer, mv: memoryview, pos: int, deep: bool) -> tuple[int, int]:
    """Valkey 9 HASH_2 (type 22 under the VALKEY magic): field, value, 8-byte expiry (-1 none)."""
    n, pos = read_length(buf, pos)
    if n > len(buf) - pos:
        raise TruncatedError(f"{n} hash fields cannot fit in the bytes left", pos)
    for _ in range(n):
        pos = skip_string(buf, skip_string(buf, pos)) + 8
    if pos > len(buf):
        raise TruncatedError("truncated: hash runs past the end of the input", len(buf))
    return pos, n


SKIPPERS: dict[int, Skipper] = {
    T.STRING: skip_string_value,
    T.LIST: skip_list_or_set,
    T.SET: skip_list_or_set,
    T.ZSET: skip_zset,
    T.HASH: skip_hash,
    T.ZSET_2: skip_zset2,
    T.MODULE_PRE_GA: skip_module_pre_ga,
    T.MODULE_2: skip_module,
    T.HASH_ZIPMAP: skip_zipmap,
    T.LIST_ZIPLIST: _packed(ziplist, "ziplist"),
    T.SET_INTSET: skip_intset,
    T.ZSET_ZIPLIST: _packed(ziplist, "sorted set ziplist", 2),
    T.HASH_ZIPLIST: _packed(ziplist, "hash ziplist", 2),
    T.LIST_QUICKLIST: skip_quicklist,
    T.STREAM_LISTPACKS: skip_stream_value(T.STREAM_LISTPACKS),
    T.HASH_LISTPACK: _packed(listpack, "hash listpack", 2),
    T.ZSET_LISTPACK: _packed(listpack, "sorted set listpack", 2),
    T.LIST_QUICKLIST_2: skip_quicklist2,
    T.STREAM_LISTPACKS_2: skip_stream_value(T.STREAM_LISTPACKS_2),
    T.SET_LISTPACK: _packed(listpack, "set listpack"),
    T.STREAM_LISTPACKS_3: skip_stream_value(T.STREAM_LISTPACKS_3),
    T.HASH_METADATA_PRE_GA: skip_hash_metadata(with_min_expire=False),
    T.HASH_LISTPACK_EX_PRE_GA: skip_hash_listpack_ex(with_min_expire=False),
    T.HASH_METADATA: skip_hash_metadata(with_min_expire=True),
    T.HASH_LISTPACK_EX: skip_hash_listpack_ex(with_min_expire=True),
    T.STREAM_LISTPACKS_4: skip_stream_value(T.STREAM_LISTPACKS_4),
}

# Valkey files share Redis's ids up to 21; 22 means HASH_2 there.
VALKEY_SKIPPERS: dict[int, Skipper] = {
    k: v for k, v in SKIPPERS.items() if k <= T.STREAM_LISTPACKS_3
} | {22: skip_valkey_hash2}
