"""What :mod:`parsers.rdb.decode` leaves out of a stream: its id bookkeeping (first id, max
deleted id, entries added) and each consumer group's pending entries list (PEL) in full, with
delivery times and counts and the consumers' own times. For tools that rebuild a stream with
commands (XSETID, XGROUP CREATE, XCLAIM).

Layout as in redis ``src/rdb.c`` (rdbSaveObject / rdbLoadObject, streams): after the
listpacks, the length and last id; from type 19 the first id, the max deleted id and
entries_added; then the groups: name, last id, [entries_read], the PEL (16-byte big-endian
id, 8-byte little-endian delivery time in ms, length-encoded delivery count), the consumers
(name, 8-byte seen time, from type 21 an 8-byte active time, their PEL as 16-byte ids).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from parsers.errors import TruncatedError
from parsers.rdb.constants import ValueType
from parsers.rdb.strings import Buffer, read_length, read_string, skip_string

StreamId = tuple[int, int]

_ID_BE = struct.Struct(">QQ").unpack_from
_I64LE = struct.Struct("<q").unpack_from
_U64 = 1 << 64


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """One PEL entry of a group: the entry id, when it was last delivered, how often."""

    id: StreamId
    delivery_time_ms: int
    delivery_count: int


@dataclass(frozen=True, slots=True)
class ConsumerMeta:
    """A consumer: ``active_time_ms`` is None before type 21; ``pending`` its PEL ids."""

    name: bytes
    seen_time_ms: int
    active_time_ms: int | None
    pending: tuple[StreamId, ...]


@dataclass(frozen=True, slots=True)
class GroupMeta:
    """A consumer group: ``entries_read`` None when not stored (type 15) or -1 (unknown)."""

    name: bytes
    last_id: StreamId
    entries_read: int | None
    pending: tuple[PendingEntry, ...]
    consumers: tuple[ConsumerMeta, ...]


@dataclass(frozen=True, slots=True)
class StreamMeta:
    """A stream's metadata; the three id-bookkeeping fields are None before type 19."""

    length: int
    last_id: StreamId
    first_id: StreamId | None
    max_deleted_id: StreamId | None
    entries_added: int | None
    groups: tuple[GroupMeta, ...]


def read_stream_meta(buf: Buffer, type_id: int, pos: int) -> StreamMeta:
    """The metadata of the stream value of ``type_id`` (15, 19, 21, 26) starting at ``pos``.

    The entries' listpacks are skipped, not read; a value that runs past the end of ``buf``
    raises :class:`TruncatedError`.
    """
    try:
        return _read(buf, type_id, pos)
    except (IndexError, struct.error):
        raise TruncatedError(
            f"truncated: input ends inside the stream value that starts at {pos}", len(buf)
        ) from None


def _read(buf: Buffer, type_id: int, pos: int) -> StreamMeta:
    n_listpacks, pos = read_length(buf, pos)
    for _ in range(n_listpacks):
        pos = skip_string(buf, skip_string(buf, pos))  # master id, listpack
    length, pos = read_length(buf, pos)
    last_id, pos = _id(buf, pos)
    first_id = max_deleted = entries_added = None
    v2 = type_id >= ValueType.STREAM_LISTPACKS_2
    if v2:
        first_id, pos = _id(buf, pos)
        max_deleted, pos = _id(buf, pos)
        entries_added, pos = read_length(buf, pos)
    n_groups, pos = read_length(buf, pos)
    groups = []
    for _ in range(n_groups):
        name, pos = read_string(buf, pos)
        group_last, pos = _id(buf, pos)
        entries_read = None
        if v2:
            stored, pos = read_length(buf, pos)
            signed = stored - _U64 if stored >= 1 << 63 else stored
            entries_read = None if signed == -1 else signed
        n_pel, pos = read_length(buf, pos)
        _room(buf, pos, n_pel, 25, "PEL entries")
        pel = []
        for _ in range(n_pel):
            entry_id = _ID_BE(buf, pos)
            delivered = _I64LE(buf, pos + 16)[0]
            count, pos = read_length(buf, pos + 24)
            pel.append(PendingEntry(entry_id, delivered, count))
        n_consumers, pos = read_length(buf, pos)
        _room(buf, pos, n_consumers, 10, "consumers")
        consumers = []
        for _ in range(n_consumers):
            cname, pos = read_string(buf, pos)
            seen = _I64LE(buf, pos)[0]
            pos += 8
            active = None
            if type_id >= ValueType.STREAM_LISTPACKS_3:
                active = _I64LE(buf, pos)[0]
                pos += 8
            n_cpel, pos = read_length(buf, pos)
            _room(buf, pos, n_cpel, 16, "consumer PEL ids")
            ids = tuple(_ID_BE(buf, pos + 16 * i) for i in range(n_cpel))
            pos += 16 * n_cpel
            consumers.append(ConsumerMeta(bytes(cname), seen, active, ids))
        groups.append(
            GroupMeta(bytes(name), group_last, entries_read, tuple(pel), tuple(consumers))
        )
    return StreamMeta(length, last_id, first_id, max_deleted, entries_added, tuple(groups))


def _id(buf: Buffer, pos: int) -> tuple[StreamId, int]:
    ms, pos = read_length(buf, pos)
    seq, pos = read_length(buf, pos)
    return (ms, seq), pos


def _room(buf: Buffer, pos: int, count: int, width: int, what: str) -> None:
    if pos + count * width > len(buf):
        raise TruncatedError(f"{count} {what} cannot fit in the {len(buf) - pos} bytes left", pos)
