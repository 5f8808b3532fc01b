"""Listpack: the packed list of strings and integers inside RDB 10+ string blobs.

Layout (redis ``src/listpack.c``): ``<total-bytes u32 LE> <num-elements u16 LE> <entry>* 0xFF``.
Each entry is an encoding byte (with any length bytes), the data, then a "backlen" of 1-5 bytes
holding the size of encoding + data so the list can be walked backwards. A num-elements of
65535 means "unknown": the entries must be counted. Offsets in errors are within the blob.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from parsers.errors import CorruptError

HEADER_SIZE = 6
END = 0xFF
UNKNOWN_COUNT = 0xFFFF
# The smallest entry is a 7-bit integer: one encoding byte and a one-byte backlen.
MIN_ENTRY_SIZE = 2

_HEADER = struct.Struct("<IH")
_U32 = struct.Struct("<I")
_I16 = struct.Struct("<h")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")

Blob = bytes | memoryview


def _backlen_size(n: int) -> int:
    """Bytes the writer uses for the backlen of an n-byte entry (lpEncodeBacklen's thresholds)."""
    if n <= 127:
        return 1
    if n < 16383:
        return 2
    if n < 2097151:
        return 3
    if n < 268435455:
        return 4
    return 5


def _header(blob: Blob) -> int:
    """Check total size and end marker; return the header's element count."""
    size = len(blob)
    if size < HEADER_SIZE + 1:
        raise CorruptError(f"listpack needs at least 7 bytes, blob has {size}", 0)
    total, numele = _HEADER.unpack_from(blob, 0)
    if total != size:
        raise CorruptError(f"listpack header says {total} bytes, blob has {size}", 0)
    if blob[size - 1] != END:
        raise CorruptError(
            f"listpack last byte is 0x{blob[size - 1]:02x}, expected end marker 0xff", size - 1
        )
    if numele != UNKNOWN_COUNT and numele * MIN_ENTRY_SIZE > size - HEADER_SIZE - 1:
        raise CorruptError(
            f"listpack header says {numele} entries, {size} bytes hold at most "
            f"{(size - HEADER_SIZE - 1) // MIN_ENTRY_SIZE}",
            4,
        )
    return numele


def count(blob: Blob) -> int:
    """Cheap check of the header and end marker; the entry count (walked only if unknown)."""
    numele = _header(blob)
    if numele != UNKNOWN_COUNT:
        return numele
    return validate(blob)


def validate(blob: Blob) -> int:
    """Deep check: every entry's encoding, bounds and backlen, the end, and the count."""
    n = 0
    for _ in _walk(blob, decode=False):
        n += 1
    return n


def entries(blob: Blob, *, loose_end: bool = False) -> Iterator[bytes | int]:
    """Every entry, strings as bytes and integers as int, checked as ``validate`` does.

    ``loose_end`` stops at the first end marker and checks neither where it is nor the header's
    count: the listpack of a stream is walked that way (t_stream.c
    streamValidateListpackIntegrity checks the header, then only the entries it reads).
    """
    return (v for _, v in _walk(blob, decode=True, loose_end=loose_end))


def located_entries(blob: Blob, *, loose_end: bool = False) -> Iterator[tuple[int, bytes | int]]:
    """``(offset in the blob, value)`` of every entry, as ``entries`` yields the values."""
    return _walk(blob, decode=True, loose_end=loose_end)


def check_header(blob: Blob) -> None:
    """What lpValidateIntegrity checks without walking: the size, total bytes, end marker."""
    size = len(blob)
    if size < HEADER_SIZE + 1:
        raise CorruptError(f"listpack needs at least 7 bytes, blob has {size}", 0)
    total = _U32.unpack_from(blob, 0)[0]
    if total != size:
        raise CorruptError(f"listpack header says {total} bytes, blob has {size}", 0)
    if blob[size - 1] != END:
        raise CorruptError(
            f"listpack last byte is 0x{blob[size - 1]:02x}, expected end marker 0xff", size - 1
        )


def _walk(blob: Blob, *, decode: bool, loose_end: bool = False) -> Iterator:
    """Check each entry, then yield (offset, value) (decode) or its offset; check the end and
    count."""
    if loose_end:
        check_header(blob)
        numele = UNKNOWN_COUNT
    else:
        numele = _header(blob)
    end = len(blob) - 1  # position of the end marker; no entry may reach it
    p = HEADER_SIZE
    n = 0
    while True:
        b = blob[p]
        if b == END:
            break
        if b < 0x80:  # 7-bit unsigned integer
            head, size = 1, 1
        elif b < 0xC0:  # 6-bit string length
            head, size = 1, 1 + (b & 0x3F)
        elif b < 0xE0:  # 13-bit signed integer
            head, size = 2, 2
        elif b < 0xF0:  # 12-bit string length
            head = 2
            if p + head > end:
                raise _truncated_header(p, head, end)
            size = 2 + (((b & 0x0F) << 8) | blob[p + 1])
        elif b == 0xF0:  # 32-bit string length
            head = 5
            if p + head > end:
                raise _truncated_header(p, head, end)
            # A 32-bit sum in listpack.c (lpCurrentEncodedSizeUnsafe): it wraps, and so here.
            size = (5 + _U32.unpack_from(blob, p + 1)[0]) & 0xFFFFFFFF
        elif b <= 0xF4:  # 16, 24, 32 or 64-bit signed integer
            head = 1
            size = (3, 4, 5, 9)[b - 0xF1]
        else:
            raise CorruptError(f"listpack entry has unknown encoding byte 0x{b:02x}", p)
        backlen = _backlen_size(size)
        nxt = p + size + backlen
        if nxt > end:
            raise CorruptError(
                f"listpack entry of {size} bytes plus {backlen}-byte backlen needs "
                f"{size + backlen} bytes, {end - p} remain before the end marker",
                p,
            )
        if size > 127 or blob[nxt - 1] != size:  # a one-byte backlen equal to size is fine
            _check_backlen(blob, p + size, nxt, size)
        yield (p, _decode(blob, p, b, head, size)) if decode else p
        n += 1
        p = nxt
    if loose_end:
        return
    if p != end:
        raise CorruptError(
            f"listpack end marker found at {p}, expected at {end} (the last byte)", p
        )
    if numele != UNKNOWN_COUNT and numele != n:
        raise CorruptError(f"listpack header says {numele} entries, found {n}", 4)


def _truncated_header(p: int, head: int, end: int) -> CorruptError:
    return CorruptError(
        f"listpack entry header needs {head} bytes, {end - p} remain before the end marker", p
    )


def _check_backlen(blob: Blob, start: int, nxt: int, size: int) -> None:
    """Decode the backlen ending at nxt-1 as listpack.c does (7 bits a byte, read backwards)."""
    value = 0
    shift = 0
    q = nxt - 1
    while True:
        byte = blob[q]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            break
        shift += 7
        q -= 1
        if shift > 28:
            raise CorruptError("listpack backlen runs over 5 bytes", start)
    if value != size:
        raise CorruptError(f"listpack backlen says {value} bytes, entry is {size}", start)


def _decode(blob: Blob, p: int, b: int, head: int, size: int) -> bytes | int:
    """The value of the (already bounds-checked) entry at p with encoding byte b."""
    if b < 0x80:
        return b
    if b < 0xC0 or 0xE0 <= b <= 0xF0:
        return bytes(blob[p + head : p + size])
    if b < 0xE0:
        v = ((b & 0x1F) << 8) | blob[p + 1]
        return v - 0x2000 if v >= 0x1000 else v
    if b == 0xF1:
        return _I16.unpack_from(blob, p + 1)[0]
    if b == 0xF2:
        v = blob[p + 1] | (blob[p + 2] << 8) | (blob[p + 3] << 16)
        return v - 0x1000000 if v >= 0x800000 else v
    if b == 0xF3:
        return _I32.unpack_from(blob, p + 1)[0]
    return _I64.unpack_from(blob, p + 1)[0]
