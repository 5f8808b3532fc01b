"""Byte builders for tests: RDB lengths and strings, listpacks, ziplists, intsets, zipmaps, the
listpacks of streams, stream values, and whole RDB files with a correct checksum.

Layouts as Redis writes them (redis ``src/rdb.c``, ``listpack.c``, ``ziplist.c``, ``intset.c``,
``zipmap.c``, ``t_stream.c``); a header field left as None is the true one, so tests can lie
in exactly one place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import lzf

from parsers.rdb.crc64 import crc64

# -- RDB lengths and strings --------------------------------------------------------------------


def length(n: int) -> bytes:
    """An RDB length in the smallest of its 6, 14, 32 or 64-bit forms."""
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n < 1 << 32:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def rstr(data: bytes) -> bytes:
    """An RDB string stored raw."""
    return length(len(data)) + data


def lzf_str(data: bytes, *, ulen: int | None = None, packed: bytes | None = None) -> bytes:
    """An RDB string stored LZF-compressed (``packed``, default lzf.compress(data)); ``ulen``
    is the declared inflated length (default len(data))."""
    packed = lzf.compress(data) if packed is None else packed
    assert packed is not None, "data that LZF does not shrink"
    return b"\xc3" + length(len(packed)) + length(len(data) if ulen is None else ulen) + packed


# -- listpacks ----------------------------------------------------------------------------------


def backlen(n: int) -> bytes:
    """The backlen listpack.c writes for an n-byte entry: 7 bits a byte, highest group first,
    every byte but the first flagged with 0x80; widths by lpEncodeBacklen's thresholds."""
    width = 1 if n <= 127 else 2 if n < 16383 else 3 if n < 2097151 else 4 if n < 268435455 else 5
    groups = [(n >> (7 * i)) & 127 for i in range(width)]  # lowest group first
    return bytes([groups[-1]] + [g | 0x80 for g in reversed(groups[:-1])])


def encode(value: bytes | int) -> bytes:
    """One listpack entry, in the smallest encoding Redis would pick, with its backlen."""
    if isinstance(value, int):
        if 0 <= value <= 127:
            body = bytes([value])
        elif -4096 <= value <= 4095:
            v = value & 0x1FFF
            body = bytes([0xC0 | (v >> 8), v & 0xFF])
        elif -(2**15) <= value < 2**15:
            body = b"\xf1" + struct.pack("<h", value)
        elif -(2**23) <= value < 2**23:
            body = b"\xf2" + (value & 0xFFFFFF).to_bytes(3, "little")
        elif -(2**31) <= value < 2**31:
            body = b"\xf3" + struct.pack("<i", value)
        else:
            body = b"\xf4" + struct.pack("<q", value)
    elif len(value) < 64:
        body = bytes([0x80 | len(value)]) + value
    elif len(value) < 4096:
        body = bytes([0xE0 | (len(value) >> 8), len(value) & 0xFF]) + value
    else:
        body = b"\xf0" + struct.pack("<I", len(value)) + value
    return body + backlen(len(body))


def pack(*raw: bytes, count: int | None = None, total: int | None = None) -> bytes:
    """A listpack of already encoded entries; count and total default to the true ones."""
    body = b"".join(raw)
    size = 6 + len(body) + 1
    n = len(raw) if count is None else count
    return struct.pack("<IH", size if total is None else total, n) + body + b"\xff"


def lp(*values: bytes | int, count: int | None = None) -> bytes:
    """A listpack of values."""
    return pack(*(encode(v) for v in values), count=count)


# -- ziplists -----------------------------------------------------------------------------------


def encoding(value: bytes | int) -> bytes:
    """Ziplist encoding byte(s) and data, as the smallest encoding Redis would pick."""
    if isinstance(value, int):
        if 0 <= value <= 12:
            return bytes([0xF1 + value])
        if -(2**7) <= value < 2**7:
            return b"\xfe" + struct.pack("<b", value)
        if -(2**15) <= value < 2**15:
            return b"\xc0" + struct.pack("<h", value)
        if -(2**23) <= value < 2**23:
            return b"\xf0" + (value & 0xFFFFFF).to_bytes(3, "little")
        if -(2**31) <= value < 2**31:
            return b"\xd0" + struct.pack("<i", value)
        return b"\xe0" + struct.pack("<q", value)
    n = len(value)
    if n <= 63:
        return bytes([n]) + value
    if n <= 16383:
        return bytes([0x40 | (n >> 8), n & 0xFF]) + value
    return b"\x80" + struct.pack(">I", n) + value


def prevlen(n: int, big: bool = False) -> bytes:
    return bytes([n]) if n < 254 and not big else b"\xfe" + struct.pack("<I", n)


def zl(
    *values: bytes | int,
    count: int | None = None,
    tail: int | None = None,
    total: int | None = None,
) -> bytes:
    """A ziplist of values; header fields default to the true ones."""
    body = bytearray()
    prev = 0
    last = 10
    for v in values:
        entry = prevlen(prev) + encoding(v)
        last = 10 + len(body)
        body += entry
        prev = len(entry)
    return frame(bytes(body), len(values) if count is None else count, last, tail, total)


def frame(body: bytes, count: int, last: int = 10, tail=None, total=None) -> bytes:
    """A ziplist around already encoded entries."""
    size = 10 + len(body) + 1
    return (
        struct.pack(
            "<IIH",
            size if total is None else total,
            last if tail is None else tail,
            count,
        )
        + body
        + b"\xff"
    )


# -- intsets and zipmaps ------------------------------------------------------------------------

INTSET_FORMATS = {2: "<h", 4: "<i", 8: "<q"}


def iset(width: int, *values: int, length: int | None = None) -> bytes:
    """An intset of the given width; length defaults to the number of values."""
    n = len(values) if length is None else length
    fmt = INTSET_FORMATS[width]
    return struct.pack("<II", width, n) + b"".join(struct.pack(fmt, v) for v in values)


def zipmap_length(n: int) -> bytes:
    return bytes([n]) if n < 254 else b"\xfe" + struct.pack("<I", n)


def zm(*pairs: tuple[bytes, bytes], count: int | None = None, free: int = 0) -> bytes:
    """A zipmap of (field, value) pairs, each value followed by `free` unused bytes."""
    n = len(pairs) if count is None else count
    body = b"".join(
        zipmap_length(len(k)) + k + zipmap_length(len(v)) + bytes([free]) + v + b"\x00" * free
        for k, v in pairs
    )
    return bytes([n]) + body + b"\xff"


# -- streams ------------------------------------------------------------------------------------


def stream_listpack(
    fields: tuple[bytes, ...],
    entries: list[tuple[int, int, tuple[bytes, ...]]],
    *,
    lp_count_delta: int = 0,
) -> bytes:
    """A stream listpack (t_stream.c): the master entry (count, deleted 0, the master fields,
    0), then per entry (ms delta, seq delta, values) with the master's fields (flag
    SAMEFIELDS) and its lp-count (``lp_count_delta`` added to the last one)."""
    items: list[bytes | int] = [len(entries), 0, len(fields), *fields, 0]
    for i, (dms, dseq, values) in enumerate(entries):
        lp_count = len(values) + 3 + (lp_count_delta if i == len(entries) - 1 else 0)
        items += [2, dms, dseq, *values, lp_count]
    return lp(*items)


@dataclass
class Group:
    """A consumer group: its PEL (ids), and its consumers with the ids each holds."""

    name: bytes
    pel: list[tuple[int, int]]
    consumers: list[tuple[bytes, list[tuple[int, int]]]]


def stream_id(ms: int, seq: int) -> bytes:
    """A 128-bit stream id as the PELs and master ids store it (big-endian)."""
    return struct.pack(">QQ", ms, seq)


def stream_value(
    listpacks: list[tuple[bytes, bytes]],
    length_: int,
    last_id: tuple[int, int],
    groups: list[Group],
) -> bytes:
    """A STREAM_LISTPACKS_2 (type 19) value: (master id, listpack) pairs, the length, last id,
    first id (0-0), max deleted id (0-0), entries added (the length), then the groups."""
    out = length(len(listpacks))
    for master, blob in listpacks:
        out += rstr(master) + rstr(blob)
    out += length(length_) + length(last_id[0]) + length(last_id[1])
    out += length(0) * 4 + length(length_)
    out += length(len(groups))
    for g in groups:
        out += rstr(g.name) + length(last_id[0]) + length(last_id[1])  # its last id
        out += length(length_)  # entries read
        out += length(len(g.pel))
        for ms, seq in g.pel:
            out += stream_id(ms, seq) + struct.pack("<q", 1_700_000_000_000) + length(1)
        out += length(len(g.consumers))
        for name, ids in g.consumers:
            out += rstr(name) + struct.pack("<q", 1_700_000_000_000) + length(len(ids))
            out += b"".join(stream_id(ms, seq) for ms, seq in ids)
    return out


# -- whole files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RdbFile:
    """An RDB file and where the values of its keys lie: (start, end) per key, in order."""

    data: bytes
    values: tuple[tuple[int, int], ...]


def rdb_file(keys: list[tuple[int, bytes, bytes]], version: int = 10) -> RdbFile:
    """An RDB of (type id, key name, value bytes) records in db 0, with its CRC-64."""
    out = bytearray(b"REDIS%04d" % version + b"\xfe\x00")
    spans = []
    for type_id, name, value in keys:
        out += bytes([type_id]) + rstr(name)
        spans.append((len(out), len(out) + len(value)))
        out += value
    out += b"\xff"
    out += struct.pack("<Q", crc64(bytes(out)))
    return RdbFile(bytes(out), tuple(spans))


def rdb_of(magic: bytes, version: int, body: bytes, *, checksum: bool = True) -> bytes:
    """A whole RDB: the header (REDIS0014, VALKEY081), ``body`` (opcodes and key records), the
    EOF opcode and the CRC-64 (zero when not ``checksum``, as with ``rdbchecksum no``)."""
    digits = b"%04d" % version if magic == b"REDIS" else b"%03d" % version
    out = magic + digits + body + b"\xff"
    return out + struct.pack("<Q", crc64(out) if checksum else 0)


def vkcs(rdb: bytes, *, flags: int = 1, version: int = 1, codec: int = 1, kind: int = 0,
         content_checksum: bool | None = None) -> bytes:  # fmt: skip
    """Valkey's VKCS envelope (src/compression_stream.h lines 12-29, commit 21ee8c457c8e) around
    one LZ4 frame of ``rdb``; the frame's content checksum follows ``flags`` bit 0 unless
    ``content_checksum`` says otherwise."""
    import lz4.frame

    checked = bool(flags & 1) if content_checksum is None else content_checksum
    frame = lz4.frame.compress(rdb, content_checksum=checked)
    return b"VKCS" + bytes([version, codec, flags, kind]) + frame
