"""Stream values (types 15, 19, 21, 26): listpacks of entries plus consumer-group metadata.

Layout (rdb.c rdbLoadObject): a count of (16-byte master id, listpack) pairs; the entry
count; the last id; from type 19 the first id, the max deleted id and entries_added; the
consumer groups with their pending entries lists (PEL) and consumers.
"""

from __future__ import annotations

from dataclasses import dataclass

from parsers.errors import CorruptError, TruncatedError
from parsers.rdb import listpack
from parsers.rdb.constants import ValueType
from parsers.rdb.strings import Buffer, read_length, read_string, skip_string, string_span


@dataclass(frozen=True, slots=True)
class StreamSummary:
    length: int
    listpacks: int
    groups: int
    pending: int
    consumers: int


def skip_stream(
    buf: Buffer, mv: memoryview, pos: int, type_id: int, deep: bool = False
) -> tuple[int, StreamSummary]:
    """Walk a stream value without decoding entries. Returns (new offset, summary)."""
    end = len(buf)
    n_listpacks, pos = read_length(buf, pos)
    for _ in range(n_listpacks):
        span = string_span(buf, pos)
        if span is None:
            master, pos = read_string(buf, pos)
            size = len(master)
        else:
            size = span[1] - span[0]
            pos = span[2]
        if size != 16:
            raise CorruptError(f"stream master id is {size} bytes, expected 16", pos)
        lp_at = pos
        span = string_span(buf, pos)
        if span is None:
            blob, pos = read_string(buf, pos)
        else:
            blob, pos = mv[span[0] : span[1]], span[2]
        if deep:
            try:
                listpack.validate(blob)
            except CorruptError as e:
                raise CorruptError(
                    f"{e.what} (byte {e.offset} of a stream listpack)", lp_at
                ) from None
        elif len(blob) < 7 or blob[-1] != 0xFF:
            raise CorruptError("stream listpack lacks its end marker", lp_at)
    length, pos = read_length(buf, pos)
    _, pos = read_length(buf, pos)  # last id ms
    _, pos = read_length(buf, pos)  # last id seq
    if type_id >= ValueType.STREAM_LISTPACKS_2:
        for _ in range(5):  # first id (2), max deleted id (2), entries_added
            _, pos = read_length(buf, pos)
    n_groups, pos = read_length(buf, pos)
    pending = consumers = 0
    for _ in range(n_groups):
        pos = skip_string(buf, pos)  # group name
        _, pos = read_length(buf, pos)  # last id ms
        _, pos = read_length(buf, pos)  # last id seq
        if type_id >= ValueType.STREAM_LISTPACKS_2:
            _, pos = read_length(buf, pos)  # entries_read
        n_pel, pos = read_length(buf, pos)
        pos = _walk_pel(buf, pos, n_pel)
        pending += n_pel
        n_consumers, pos = read_length(buf, pos)
        consumers += n_consumers
        for _ in range(n_consumers):
            pos = skip_string(buf, pos)  # consumer name
            pos += 8  # seen time
            if type_id >= ValueType.STREAM_LISTPACKS_3:
                pos += 8  # active time
            n_cpel, pos = read_length(buf, pos)
            pos = _advance(pos, n_cpel, 16, end)
    if type_id >= ValueType.STREAM_LISTPACKS_4:
        pos = skip_v4_extras(buf, pos)
    if pos > end:
        raise TruncatedError("truncated: stream runs past the end of the input", end)
    return pos, StreamSummary(length, n_listpacks, n_groups, pending, consumers)


def _advance(pos: int, count: int, width: int, end: int) -> int:
    new = pos + count * width
    if new > end:
        raise TruncatedError(f"{count} stream records of {width} bytes run past the end", pos)
    return new


def _walk_pel(buf: Buffer, pos: int, count: int) -> int:
    """Skip PEL entries: 16-byte id, 8-byte delivery time, length-encoded delivery count."""
    if pos + count * 25 > len(buf):  # each entry takes at least 25 bytes
        raise TruncatedError(f"a PEL of {count} entries runs past the end", pos)
    for _ in range(count):
        pos += 24  # 16-byte id + 8-byte delivery time
        _, pos = read_length(buf, pos)  # delivery count
    return pos


def skip_v4_extras(buf: Buffer, pos: int) -> int:
    """Type 26 (Redis 8.6): the idempotent-producer (IDMP) state after entries_added."""
    _, pos = read_length(buf, pos)  # idmp duration
    _, pos = read_length(buf, pos)  # idmp max entries
    producers, pos = read_length(buf, pos)
    for _ in range(producers):
        pos = skip_string(buf, pos)  # producer id
        n, pos = read_length(buf, pos)
        for _ in range(n):
            pos = skip_string(buf, pos)  # iid
            _, pos = read_length(buf, pos)  # id ms
            _, pos = read_length(buf, pos)  # id seq
    _, pos = read_length(buf, pos)  # iids added
    _, pos = read_length(buf, pos)  # iids duplicates
    return pos
