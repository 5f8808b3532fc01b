"""RDB length and string encodings: read, or skip without decoding.

Every function takes the buffer and an offset and returns the new offset (and the value when
it reads one). The buffer is ``bytes`` or an ``mmap``: indexing gives an int, slicing bytes.
Bounds: a length that runs past the end of the buffer raises :class:`TruncatedError`.
"""

from __future__ import annotations

import struct
from typing import Any

from parsers.errors import CorruptError, TruncatedError
from parsers.rdb import lzf

Buffer = Any  # bytes, bytearray or mmap.mmap: int on index, bytes on slice

_U32BE = struct.Struct(">I").unpack_from
_U64BE = struct.Struct(">Q").unpack_from
_I16LE = struct.Struct("<h").unpack_from
_I32LE = struct.Struct("<i").unpack_from

ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF = 0, 1, 2, 3

# A decompressed LZF string may not claim more than this (a lying header must not allocate).
MAX_LZF_LEN = 1 << 31


def read_length(buf: Buffer, pos: int) -> tuple[int, int]:
    """A length (6, 14, 32 or 64 bit). Returns (length, new offset).

    As Redis's rdbLoadLen reads it: a byte with the two top bits set (a string encoding, where
    a length is expected) counts as its low 6 bits; 0x82 to 0xBF are no length at all.
    """
    b = buf[pos]
    t = b >> 6
    if t == 0 or t == 3:
        return b & 0x3F, pos + 1
    if t == 1:
        return ((b & 0x3F) << 8) | buf[pos + 1], pos + 2
    if b == 0x80:
        _check(buf, pos + 5, pos)
        return _U32BE(buf, pos + 1)[0], pos + 5
    if b == 0x81:
        _check(buf, pos + 9, pos)
        return _U64BE(buf, pos + 1)[0], pos + 9
    raise CorruptError(f"expected a length, found encoding byte 0x{b:02x}", pos)


def skip_string(buf: Buffer, pos: int) -> int:
    """Skip a string in any encoding without decoding it. Returns the new offset."""
    b = buf[pos]
    t = b >> 6
    if t == 0:
        end = pos + 1 + (b & 0x3F)
    elif t == 1:
        end = pos + 2 + (((b & 0x3F) << 8) | buf[pos + 1])
    elif t == 2:
        n, p = read_length(buf, pos)
        end = p + n
    else:
        enc = b & 0x3F
        if enc == ENC_INT8:
            end = pos + 2
        elif enc == ENC_INT16:
            end = pos + 3
        elif enc == ENC_INT32:
            end = pos + 5
        elif enc == ENC_LZF:
            clen, p = read_length(buf, pos + 1)
            _, p = read_length(buf, p)
            end = p + clen
        else:
            raise CorruptError(f"unknown string encoding 0x{b:02x}", pos)
    if end > len(buf):
        raise TruncatedError(
            f"truncated: string runs {end - len(buf)} bytes past the end of the input", pos
        )
    return end


def skip_string_checked(buf: Buffer, pos: int) -> int:
    """Skip a string as :func:`skip_string` does, checking that an LZF-compressed one inflates
    to exactly its declared length (Redis: "Invalid LZF compressed string")."""
    if buf[pos] != 0xC0 | ENC_LZF:
        return skip_string(buf, pos)
    clen, p = read_length(buf, pos + 1)
    ulen, p = read_length(buf, p)
    _check(buf, p + clen, pos)
    try:
        lzf.check(buf[p : p + clen], ulen, max_len=MAX_LZF_LEN)
    except CorruptError as e:
        raise e.located(offset=pos) from None
    return p + clen


def read_string(buf: Buffer, pos: int) -> tuple[bytes, int]:
    """Read a string, decoding integer and LZF encodings. Returns (bytes, new offset)."""
    b = buf[pos]
    t = b >> 6
    if t == 0:
        start, n = pos + 1, b & 0x3F
    elif t == 1:
        start, n = pos + 2, ((b & 0x3F) << 8) | buf[pos + 1]
    elif t == 2:
        n, start = read_length(buf, pos)
    else:
        enc = b & 0x3F
        if enc == ENC_INT8:
            _check(buf, pos + 2, pos)
            v = buf[pos + 1]
            return str(v - 256 if v > 127 else v).encode(), pos + 2
        if enc == ENC_INT16:
            _check(buf, pos + 3, pos)
            return str(_I16LE(buf, pos + 1)[0]).encode(), pos + 3
        if enc == ENC_INT32:
            _check(buf, pos + 5, pos)
            return str(_I32LE(buf, pos + 1)[0]).encode(), pos + 5
        if enc == ENC_LZF:
            clen, p = read_length(buf, pos + 1)
            ulen, p = read_length(buf, p)
            _check(buf, p + clen, pos)
            try:
                return lzf.decompress(buf[p : p + clen], ulen, max_len=MAX_LZF_LEN), p + clen
            except CorruptError as e:
                raise e.located(offset=pos) from None
        raise CorruptError(f"unknown string encoding 0x{b:02x}", pos)
    end = start + n
    _check(buf, end, pos)
    return buf[start:end], end


def string_span(buf: Buffer, pos: int) -> tuple[int, int, int] | None:
    """Where a raw (uncompressed, non-integer) string's bytes lie: (start, end, next offset).

    None when the string is LZF-compressed or integer-encoded; then use read_string.
    """
    b = buf[pos]
    t = b >> 6
    if t == 0:
        start, n = pos + 1, b & 0x3F
    elif t == 1:
        start, n = pos + 2, ((b & 0x3F) << 8) | buf[pos + 1]
    elif t == 2:
        n, start = read_length(buf, pos)
    else:
        return None
    end = start + n
    _check(buf, end, pos)
    return start, end, end


def _check(buf: Buffer, end: int, at: int) -> None:
    """Raise unless the field starting at ``at`` and ending before ``end`` is in the input."""
    if end > len(buf):
        raise TruncatedError(
            f"truncated: field runs {end - len(buf)} bytes past the end of the input", at
        )


def string_length(buf: Buffer, pos: int) -> int:
    """STRLEN of the string encoded at ``pos``, read from its header where it can be (an
    integer-encoded string's length is that of its decimal text; an LZF string's is its
    uncompressed length): no decompression."""
    b = buf[pos]
    t = b >> 6
    if t == 0:
        return b & 0x3F
    if t == 1:
        return ((b & 0x3F) << 8) | buf[pos + 1]
    if t == 2:
        return read_length(buf, pos)[0]
    if b & 0x3F == 3:  # LZF: compressed length, then the uncompressed length
        _, p = read_length(buf, pos + 1)
        return read_length(buf, p)[0]
    return len(read_string(buf, pos)[0])
