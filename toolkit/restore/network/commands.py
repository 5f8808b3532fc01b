"""Plain commands that rebuild a value, for a target that cannot RESTORE the backup's DUMP
payloads (a server older than the file, or of the other family: Redis <-> Valkey).

The value comes decoded (:mod:`parsers.rdb.decode`); collections go in chunks of
:data:`CHUNK` elements per command (RPUSH, SADD, ZADD, HSET). What commands cannot reproduce
exactly, and what this module does about it:

- hash field TTLs: HPEXPIREAT where the target has it; a field whose TTL has run out is not
  sent; without HPEXPIREAT the caller must refuse, or (forced) the fields go without TTLs;
- streams: entries by XADD with their ids, then XSETID (with ENTRIESADDED and MAXDELETEDID
  on 7.0+), XGROUP CREATE (ENTRIESREAD on 7.0+), XGROUP CREATECONSUMER (6.2+) and each
  pending entry by XCLAIM ... TIME RETRYCOUNT FORCE JUSTID. Not reproduced: consumers'
  seen/active times (the target sets them to now) and pending entries whose stream entry
  was deleted (XCLAIM cannot claim them);
- encodings are the target's own choice, as after any write;
- module values have no commands: :class:`NoCommands`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parsers.rdb.decode import (
    HashValue,
    ListValue,
    ModuleValue,
    SetValue,
    StreamValue,
    StringValue,
    Value,
    ZSetValue,
)

if TYPE_CHECKING:
    from parsers.rdb.stream_meta import StreamMeta

CHUNK = 1000  # elements (or fields, members) per command
Arg = bytes | memoryview
Command = tuple[Arg, ...]
Version = tuple[int, ...]
# A consumer group made (and destroyed) only to create an empty stream with MKSTREAM.
_TEMP_GROUP = b"rbkit-restore-mkstream"


class NoCommands(ValueError):
    """A value that no command can rebuild (a module value)."""


@dataclass(frozen=True)
class Capabilities:
    """What the target's commands take."""

    hpexpireat: bool = True  # hash field TTLs (Redis 7.4+, Valkey 9+)
    # The latest field expiry HPEXPIREAT takes (Redis: 2^46 - 1 ms; Valkey: no cap); a later
    # one is sent without its TTL (the plan refused it unless forced).
    field_ttl_max: int | None = None
    stream_extras: bool = True  # XSETID ENTRIESADDED/MAXDELETEDID, ENTRIESREAD (7.0+)
    createconsumer: bool = True  # XGROUP CREATECONSUMER (6.2+)


@dataclass
class Rebuilt:
    """The commands for one key, and what they leave out."""

    commands: list[Command] = field(default_factory=list)
    fields_expired: int = 0  # hash fields whose TTL had run out: not sent
    field_ttls_dropped: int = 0  # fields sent without their TTL (no HPEXPIREAT; forced)
    pel_lost: int = 0  # pending entries of deleted stream entries: XCLAIM cannot make them


def _b(value: int | str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _sid(stream_id: tuple[int, int]) -> bytes:
    return b"%d-%d" % stream_id


def score_text(score: float) -> bytes:
    """A sorted-set score as ZADD takes it, exactly (repr round-trips through strtod)."""
    if math.isinf(score):
        return b"+inf" if score > 0 else b"-inf"
    return repr(score).encode()


def _chunks(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rebuild(
    key: bytes,
    value: Value,
    *,
    caps: Capabilities,
    now_ms: int,
    meta: StreamMeta | None = None,
    chunk: int = CHUNK,
) -> Rebuilt:
    """The commands that make ``key`` hold ``value`` on an empty key (no DEL, no TTL: the
    caller adds those). ``meta`` is the stream's metadata (parsers.rdb.stream_meta) for a
    stream value. Raises NoCommands for a module value."""
    out = Rebuilt()
    cmds = out.commands
    if isinstance(value, StringValue):
        cmds.append((b"SET", key, value.data))
    elif isinstance(value, ListValue):
        cmds.extend((b"RPUSH", key, *part) for part in _chunks(value.items, chunk))
    elif isinstance(value, SetValue):
        cmds.extend((b"SADD", key, *part) for part in _chunks(sorted(value.members), chunk))
    elif isinstance(value, ZSetValue):
        flat = [x for m, s in value.members.items() for x in (score_text(s), m)]
        cmds.extend((b"ZADD", key, *part) for part in _chunks(flat, 2 * chunk))
    elif isinstance(value, HashValue):
        _hash(out, key, value, caps, now_ms, chunk)
    elif isinstance(value, StreamValue):
        _stream(out, key, value, meta, caps)
    elif isinstance(value, ModuleValue):
        raise NoCommands(
            f"a {value.module} value (a module type) cannot be sent as commands; only RESTORE "
            "of its DUMP payload can carry it"
        )
    else:  # pragma: no cover - decode_value returns one of the above
        raise NoCommands(f"no commands for {type(value).__name__}")
    return out


def _hash(out: Rebuilt, key: bytes, value: HashValue, caps: Capabilities, now: int, n: int) -> None:
    expires = value.field_expires_ms
    live = [f for f in value.fields if f not in expires or expires[f] > now]
    out.fields_expired = len(value.fields) - len(live)
    flat = [x for f in live for x in (f, value.fields[f])]
    out.commands.extend((b"HSET", key, *part) for part in _chunks(flat, 2 * n))
    timed = [f for f in live if f in expires]
    if not timed:
        return
    if not caps.hpexpireat:
        out.field_ttls_dropped = len(timed)
        return
    if caps.field_ttl_max is not None:
        kept = [f for f in timed if expires[f] <= caps.field_ttl_max]
        out.field_ttls_dropped = len(timed) - len(kept)
        timed = kept
    by_time: dict[int, list[bytes]] = {}
    for f in timed:
        by_time.setdefault(expires[f], []).append(f)
    for at, fields in sorted(by_time.items()):
        for part in _chunks(fields, n):
            out.commands.append((b"HPEXPIREAT", key, _b(at), b"FIELDS", _b(len(part)), *part))


def _stream(
    out: Rebuilt, key: bytes, value: StreamValue, meta: StreamMeta | None, caps: Capabilities
) -> None:
    cmds = out.commands
    for entry_id, pairs in value.entries:
        cmds.append((b"XADD", key, _sid(entry_id), *(x for pair in pairs for x in pair)))
    if not value.entries:  # an empty stream: made by XGROUP CREATE ... MKSTREAM
        cmds.append((b"XGROUP", b"CREATE", key, _TEMP_GROUP, b"0", b"MKSTREAM"))
        cmds.append((b"XGROUP", b"DESTROY", key, _TEMP_GROUP))
    setid: list[Arg] = [b"XSETID", key, _sid(value.last_id)]
    if caps.stream_extras and meta is not None and meta.entries_added is not None:
        setid += [b"ENTRIESADDED", _b(meta.entries_added)]
        if meta.max_deleted_id is not None and meta.max_deleted_id != (0, 0):
            setid += [b"MAXDELETEDID", _sid(meta.max_deleted_id)]
    cmds.append(tuple(setid))
    present = {entry_id for entry_id, _pairs in value.entries}
    groups = meta.groups if meta is not None else ()
    if meta is None:  # without the metadata: the groups as decode_value has them
        for g in value.groups:
            cmds.append(_group_create(key, g.name, g.last_id, g.entries_read, caps))
            if caps.createconsumer:
                cmds.extend((b"XGROUP", b"CREATECONSUMER", key, g.name, c) for c in g.consumers)
        return
    for g in groups:
        cmds.append(_group_create(key, g.name, g.last_id, g.entries_read, caps))
        delivery = {p.id: p for p in g.pending}
        for c in g.consumers:
            if caps.createconsumer:
                cmds.append((b"XGROUP", b"CREATECONSUMER", key, g.name, c.name))
            for pid in c.pending:
                p = delivery.get(pid)
                if pid not in present or p is None:
                    out.pel_lost += 1
                    continue
                cmds.append(
                    (
                        b"XCLAIM",
                        key,
                        g.name,
                        c.name,
                        b"0",
                        _sid(pid),
                        b"TIME",
                        _b(p.delivery_time_ms),
                        b"RETRYCOUNT",
                        _b(p.delivery_count),
                        b"FORCE",
                        b"JUSTID",
                    )
                )


def _group_create(
    key: bytes, name: bytes, last_id: tuple[int, int], entries_read: int | None, caps: Capabilities
) -> Command:
    cmd: list[Arg] = [b"XGROUP", b"CREATE", key, name, _sid(last_id)]
    if caps.stream_extras and entries_read is not None:
        cmd += [b"ENTRIESREAD", _b(entries_read)]
    return tuple(cmd)


def command_bytes(commands: Iterable[Command]) -> int:
    """The size of the arguments, for batching."""
    return sum(len(a) for cmd in commands for a in cmd)
