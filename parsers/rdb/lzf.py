"""LZF: the compression RDB applies to strings longer than 20 bytes (``rdbcompression yes``).

An LZF string in an RDB is ``<clen> <len> <clen bytes>``; this module checks and inflates the
bytes given the declared ``len``, using the C binding ``lzf`` (python-lzf, the same liblzf as
redis ``src/lzf_d.c``).
"""

from __future__ import annotations

import lzf as _lzf

from parsers.errors import CorruptError

DEFAULT_MAX_LEN = 1 << 30
# One LZF input byte yields at most 88 output bytes: a 3-byte back-reference copies 264 bytes.
MAX_EXPANSION = 88


def decompress(
    data: bytes | memoryview, expected_len: int, max_len: int = DEFAULT_MAX_LEN
) -> bytes:
    """Inflate data to exactly expected_len bytes, refusing lengths above max_len or impossible
    for len(data) before allocating anything."""
    if expected_len < 0:
        raise CorruptError(f"LZF length {expected_len} is negative", 0)
    if expected_len > max_len:
        raise CorruptError(f"LZF length {expected_len} is above the {max_len}-byte limit", 0)
    if expected_len > len(data) * MAX_EXPANSION:
        raise CorruptError(
            f"LZF data of {len(data)} bytes cannot decompress to {expected_len} bytes", 0
        )
    if expected_len == 0:  # the binding rejects empty input; nothing inflates to 0 bytes else
        if len(data) == 0:
            return b""
        raise CorruptError(f"LZF data of {len(data)} bytes does not decompress to 0 bytes", 0)
    try:
        out = _lzf.decompress(bytes(data), expected_len)
    except ValueError:
        out = None
    if out is None or len(out) != expected_len:
        raise CorruptError(f"LZF data does not decompress to {expected_len} bytes", 0)
    return out
