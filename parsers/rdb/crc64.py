"""CRC-64/Jones as Redis computes it (reflected; b"123456789" gives 0xe9c6d914c4b8d9ca)."""

from __future__ import annotations

import anycrc

_MODEL = anycrc.Model("CRC64-REDIS")


def crc64(data: bytes | memoryview, crc: int = 0) -> int:
    """Continue ``crc`` over ``data``; feed large inputs in chunks, never byte by byte."""
    return int(_MODEL.calc(data, crc)) if crc else int(_MODEL.calc(data))
