"""Ziplist: the packed list of strings and integers inside RDB 2-9 string blobs.

Layout (redis ``src/ziplist.c``): ``<zlbytes u32 LE> <zltail u32 LE> <zllen u16 LE> <entry>* 0xFF``.
``zltail`` is the offset of the last entry; a ``zllen`` of 65535 means "unknown". Each entry is
``<prevlen> <encoding> <data>``: prevlen (size of the previous entry) is one byte below 254, or
0xFE and a u32 LE; the encoding byte says string (6, 14 or 32-bit big-endian length) or integer
(8/16/24/32/64-bit LE, or a 4-bit immediate 0xF1-0xFD meaning 0-12). Offsets are within the blob.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from parsers.errors import CorruptError

HEADER_SIZE = 10
END = 0xFF
BIG_PREVLEN = 0xFE
UNKNOWN_COUNT = 0xFFFF
# The smallest entry is a one-byte prevlen and a 4-bit immediate integer.
MIN_ENTRY_SIZE = 2

_HEADER = struct.Struct("<IIH")
_U32 = struct.Struct("<I")
_U32_BE = struct.Struct(">I")
_INTS = {  # integer encoding byte -> (data size, struct or None for 24-bit)
    0xFE: (1, struct.Struct("<b")),
    0xC0: (2, struct.Struct("<h")),
    0xF0: (3, None),
    0xD0: (4, struct.Struct("<i")),
    0xE0: (8, struct.Struct("<q")),
}

Blob = bytes | memoryview


def _header(blob: Blob) -> tuple[int, int]:
    """Check zlbytes, the end marker and zltail's range; return (zltail, zllen)."""
    size = len(blob)
    if size < HEADER_SIZE + 1:
        raise CorruptError(f"ziplist needs at least 11 bytes, blob has {size}", 0)
    zlbytes, zltail, zllen = _HEADER.unpack_from(blob, 0)
    if zlbytes != size:
        raise CorruptError(f"ziplist header says {zlbytes} bytes, blob has {size}", 0)
    if blob[size - 1] != END:
        raise CorruptError(
            f"ziplist last byte is 0x{blob[size - 1]:02x}, expected end marker 0xff", size - 1
        )
    if zltail > size - 1:
        raise CorruptError(f"ziplist tail offset {zltail} is past the end marker at {size - 1}", 4)
    if zllen != UNKNOWN_COUNT and zllen * MIN_ENTRY_SIZE > size - HEADER_SIZE - 1:
        raise CorruptError(
            f"ziplist header says {zllen} entries, {size} bytes hold at most "
            f"{(size - HEADER_SIZE - 1) // MIN_ENTRY_SIZE}",
            8,
        )
    return zltail, zllen


def count(blob: Blob) -> int:
    """Cheap check of the header and end marker; the entry count (walked only if unknown)."""
    zllen = _header(blob)[1]
    if zllen != UNKNOWN_COUNT:
        return zllen
    return validate(blob)


def validate(blob: Blob) -> int:
    """Deep check: encodings, bounds, prevlens, the end, zltail and the count; the count."""
    n = 0
    for _ in _walk(blob, decode=False):
        n += 1
    return n


def entries(blob: Blob) -> Iterator[bytes | int]:
    """Every entry, strings as bytes and integers as int, checked as ``validate`` does."""
    return (v for _, v in _walk(blob, decode=True))


def located_entries(blob: Blob) -> Iterator[tuple[int, bytes | int]]:
    """``(offset in the blob, value)`` of every entry, as ``entries`` yields the values."""
    return _walk(blob, decode=True)


def _walk(blob: Blob, *, decode: bool) -> Iterator:
    """Check each entry, then yield (offset, value) (decode) or its offset; check the end and
    tail."""
    zltail, zllen = _header(blob)
    end = len(blob) - 1  # position of the end marker; no entry may reach it
    p = HEADER_SIZE
    prev_size = 0
    last = -1
    n = 0
    while True:
        b = blob[p]
        if b == END:
            break
        if b < BIG_PREVLEN:
            prevlen, q = b, p + 1
        else:
            if p + 5 > end:
                raise CorruptError(
                    f"ziplist 5-byte prevlen needs 5 bytes, {end - p} remain before the end marker",
                    p,
                )
            prevlen, q = _U32.unpack_from(blob, p + 1)[0], p + 5
        if prevlen != prev_size:
            raise CorruptError(
                f"ziplist entry says previous entry is {prevlen} bytes, it is {prev_size}", p
            )
        enc = blob[q]  # q <= end: the end marker is there at worst
        if enc < 0x40:  # string, 6-bit length
            data, size = q + 1, enc & 0x3F
        elif enc < 0x80:  # string, 14-bit big-endian length
            if q + 2 > end:
                raise _truncated_encoding(q, 2, end)
            data, size = q + 2, ((enc & 0x3F) << 8) | blob[q + 1]
        elif enc < 0xC0:  # string, 32-bit big-endian length
            if q + 5 > end:
                raise _truncated_encoding(q, 5, end)
            data, size = q + 5, _U32_BE.unpack_from(blob, q + 1)[0]
        elif 0xF1 <= enc <= 0xFD:  # 4-bit immediate integer
            data, size = q + 1, 0
        elif enc in _INTS:
            data, size = q + 1, _INTS[enc][0]
        else:
            raise CorruptError(f"ziplist entry has unknown encoding byte 0x{enc:02x}", q)
        nxt = data + size
        if nxt > end:
            raise CorruptError(
                f"ziplist entry needs {nxt - p} bytes, {end - p} remain before the end marker", p
            )
        yield (p, _decode(blob, enc, data, size)) if decode else p
        n += 1
        prev_size = nxt - p
        last = p
        p = nxt
    if p != end:
        raise CorruptError(f"ziplist end marker found at {p}, expected at {end} (the last byte)", p)
    if last >= 0 and zltail != last:  # ziplist.c checks the tail only when there are entries
        raise CorruptError(f"ziplist tail offset is {zltail}, the last entry starts at {last}", 4)
    if zllen != UNKNOWN_COUNT and zllen != n:
        raise CorruptError(f"ziplist header says {zllen} entries, found {n}", 8)


def _truncated_encoding(q: int, need: int, end: int) -> CorruptError:
    return CorruptError(
        f"ziplist string encoding needs {need} bytes, {end - q} remain before the end marker", q
    )


def _decode(blob: Blob, enc: int, data: int, size: int) -> bytes | int:
    """The value of the (already bounds-checked) entry with encoding byte enc."""
    if enc < 0xC0:
        return bytes(blob[data : data + size])
    if 0xF1 <= enc <= 0xFD:
        return (enc & 0x0F) - 1
    fmt = _INTS[enc][1]
    if fmt is None:  # 24-bit
        v = blob[data] | (blob[data + 1] << 8) | (blob[data + 2] << 16)
        return v - 0x1000000 if v >= 0x800000 else v
    return fmt.unpack_from(blob, data)[0]
