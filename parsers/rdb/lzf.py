"""LZF: the compression RDB applies to strings longer than 20 bytes (``rdbcompression yes``).

An LZF string in an RDB is ``<clen> <len> <clen bytes>``; this module checks and inflates the
bytes given the declared ``len``, using the C binding ``lzf`` (python-lzf, the same liblzf as
redis ``src/lzf_d.c``).
"""

from __future__ import annotations

import lzf as _lzf

from parsers.errors import BAD_LZF, CorruptError

DEFAULT_MAX_LEN = 1 << 30
# One LZF input byte yields at most 88 output bytes: a 3-byte back-reference copies 264 bytes.
MAX_EXPANSION = 88
# Above this declared length the data is walked (no output written) before anything is
# allocated for it: a length that lies costs no memory.
WALK_FIRST = 1 << 20


def decompress(
    data: bytes | memoryview, expected_len: int, max_len: int = DEFAULT_MAX_LEN
) -> bytes:
    """Inflate data to exactly expected_len bytes, refusing lengths above max_len or impossible
    for len(data) before allocating anything.

    A declared length of 0 inflates to nothing whatever the data: Redis's lzf_decompress
    reports every failure as 0 bytes written, which then matches the length it was asked for.
    """
    if expected_len == 0:
        return b""
    if expected_len < 0:
        raise _bad(f"LZF length {expected_len} is negative")
    if expected_len > max_len:
        raise _bad(f"LZF length {expected_len} is above the {max_len}-byte limit")
    if expected_len > len(data) * MAX_EXPANSION:
        raise _bad(f"LZF data of {len(data)} bytes cannot decompress to {expected_len} bytes")
    if expected_len > WALK_FIRST and not fits(data, expected_len):
        raise _bad(f"LZF data does not decompress to {expected_len} bytes")
    try:
        out = _lzf.decompress(bytes(data), expected_len)
    except ValueError:
        out = None
    if out is None or len(out) != expected_len:
        raise _bad(f"LZF data does not decompress to {expected_len} bytes")
    return out


def check(data: bytes | memoryview, expected_len: int, max_len: int = DEFAULT_MAX_LEN) -> None:
    """Raise unless data inflates to exactly expected_len bytes (what Redis checks on load)."""
    decompress(data, expected_len, max_len)


def fits(data: bytes | memoryview, expected_len: int) -> bool:
    """Would lzf_decompress (redis ``src/lzf_d.c``) write exactly expected_len bytes? Only the
    positions are followed: literal runs and back references must stay inside the input, the
    output and what was written so far."""
    ip, end, op = 0, len(data), 0
    while ip < end:
        ctrl = data[ip]
        ip += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            ctrl += 1
            if op + ctrl > expected_len or ip + ctrl > end:
                return False
            ip += ctrl
            op += ctrl
            continue
        size, back = ctrl >> 5, ((ctrl & 0x1F) << 8) + 1  # a back reference
        if ip >= end:
            return False
        if size == 7:
            size += data[ip]
            ip += 1
            if ip >= end:
                return False
        back += data[ip]
        ip += 1
        if op + size + 2 > expected_len or back > op:
            return False
        op += size + 2
    return op == expected_len


def _bad(what: str) -> CorruptError:
    return CorruptError(what, 0, code=BAD_LZF)
