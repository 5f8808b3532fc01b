"""Parsing a command's arguments as Redis does: integers, floats, stream ids, range bounds.

Each helper raises :class:`ArgError` (Redis would reply with an error, so the command has no
effect) when an argument is one Redis would refuse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from toolkit.check.keyspace.values import MAX_ID, SEQ_BITS, SEQ_MASK

Args = Sequence[bytes]

_INT_RE = re.compile(rb"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT_BAD = re.compile(rb"[\s_]|nan", re.I)
GEO_LAT = 85.05112878
_GEO_STEP = 26


class ArgError(Exception):
    """Redis would reply with an error: the command has no effect."""


def int_arg(b: bytes, what: str = "value") -> int:
    """A signed 64-bit integer spelled as Redis's string2ll accepts it."""
    if _INT_RE.match(b) is None or len(b) > 20:
        raise ArgError(f"{what} is not an integer or out of range")
    v = int(b)
    if not -(1 << 63) <= v < 1 << 63:
        raise ArgError(f"{what} is not an integer or out of range")
    return v


def float_arg(b: bytes) -> float:
    """A double as strtod reads it (no blanks, no NaN)."""
    if not b or _FLOAT_BAD.search(b) is not None:
        raise ArgError("value is not a valid float")
    try:
        v = float(b)
    except ValueError:
        try:
            v = float.fromhex(b.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise ArgError("value is not a valid float") from None
    if math.isnan(v):
        raise ArgError("value is not a valid float")
    return v


def parse_id(b: bytes, *, missing_seq: int = 0, special: bool = False) -> int:
    """A stream id ``ms-seq`` (or ``ms``) as ``ms << 64 | seq``; '-' and '+' if ``special``."""
    if special and b == b"-":
        return 0
    if special and b == b"+":
        return MAX_ID
    ms, dash, seq = b.partition(b"-")
    try:
        ms_v = int(ms) if ms.isdigit() else -1
        seq_v = (int(seq) if seq.isdigit() else -1) if dash else missing_seq
    except ValueError:
        ms_v = seq_v = -1
    if not 0 <= ms_v <= SEQ_MASK or not 0 <= seq_v <= SEQ_MASK:
        raise ArgError("Invalid stream ID specified as stream command argument")
    return ms_v << SEQ_BITS | seq_v


def format_id(stream_id: int) -> str:
    """``ms-seq`` of a model stream id."""
    return f"{stream_id >> SEQ_BITS}-{stream_id & SEQ_MASK}"


def score_bound(b: bytes) -> tuple[float, bool]:
    """A ZRANGEBYSCORE bound: (value, exclusive)."""
    if b.startswith(b"("):
        return float_arg(b[1:]), True
    return float_arg(b), False


def lex_bound(b: bytes) -> tuple[bytes | None, bool, int]:
    """A lex range item: (value, exclusive, kind) with kind -1 for '-', +1 for '+', 0 else."""
    if b == b"-":
        return b"", True, -1
    if b == b"+":
        return None, True, 1
    if b[:1] == b"(":
        return b[1:], True, 0
    if b[:1] == b"[":
        return b[1:], False, 0
    raise ArgError("min or max not valid string range item")


def lex_cmp(a: tuple[bytes | None, bool, int], b: tuple[bytes | None, bool, int]) -> int:
    """sdscmplex of two range items (- below everything, + above)."""
    if a[2] == b[2] and a[2] != 0:
        return 0
    if a[2] == -1 or b[2] == 1:
        return -1
    if a[2] == 1 or b[2] == -1:
        return 1
    x, y = a[0], b[0]
    assert x is not None and y is not None
    return (x > y) - (x < y)


def gte_min(value: bytes, lo: tuple[bytes | None, bool, int]) -> bool:
    if lo[2] == -1:
        return True
    if lo[2] == 1:
        return False
    assert lo[0] is not None
    return value > lo[0] if lo[1] else value >= lo[0]


def lte_max(value: bytes, hi: tuple[bytes | None, bool, int]) -> bool:
    if hi[2] == 1:
        return True
    if hi[2] == -1:
        return False
    assert hi[0] is not None
    return value < hi[0] if hi[1] else value <= hi[0]


def rank_range(start: int, end: int, n: int) -> range:
    """The ranks ``start..end`` (negative from the end) select, clamped as Redis does."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    start = max(start, 0)
    if start > end or start >= n:
        return range(0)
    return range(start, min(end, n - 1) + 1)


def geohash_score(lon: float, lat: float) -> float:
    """The sorted-set score GEOADD stores: a 52-bit interleaved geohash."""
    lat_off = int((lat + GEO_LAT) / (2 * GEO_LAT) * (1 << _GEO_STEP))
    lon_off = int((lon + 180.0) / 360.0 * (1 << _GEO_STEP))
    bits = 0
    for i in range(_GEO_STEP):
        bits |= ((lat_off >> i) & 1) << (2 * i) | ((lon_off >> i) & 1) << (2 * i + 1)
    return float(bits)
