"""When things happened in an AOF: ``rbkit check --timeline``, and where to cut it.

The ``#TS:<unix seconds>`` annotations a server writes with ``aof-timestamp-enabled yes`` are
the time axis: every command is dated by the last annotation before it. Read across a
multi-part AOF in load order (the base, then the incr files; an RDB base holds state, not
history), the timeline counts commands per interval and lists the destructive events an
on-call engineer looks for after an incident, each with its file, offset and time:

- ``flushall``, ``flushdb``, ``swapdb``, ``function-flush``: one command each;
- ``mass-delete``: one DEL/UNLINK, or one MULTI/EXEC block (a script's effects are written as
  one), that deletes at least ``mass_keys`` keys;
- ``delete-burst``, ``expire-storm``: at least ``mass_keys`` keys deleted, or ``storm``
  expiries set, by many commands within one second (so only where #TS lines date them).

A :class:`CutPoint` says where a point-in-time restore stops: just before a command (the
last occurrence of a name, ``--before``), before the first annotation after a time
(``--until``), or at an offset (``--before-offset``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from parsers.aof.manifest import parse_manifest
from parsers.aof.resp import Annotation, Command, read_commands
from parsers.errors import FormatError
from parsers.rdb.constants import MAGICS
from parsers.rdb.walker import RdbWalker
from toolkit.check.locate import MULTIPART, RDB, Located
from toolkit.errors import BackupIOError, UsageError
from toolkit.mapped import mapped

MASS_KEYS = 100
STORM = 1000
_DELETES = {b"DEL", b"UNLINK"}
_EXPIRES = {b"EXPIRE", b"PEXPIRE", b"EXPIREAT", b"PEXPIREAT"}
_SINGLE = {
    b"FLUSHALL": "flushall",
    b"FLUSHDB": "flushdb",
    b"SWAPDB": "swapdb",
}


@dataclass(frozen=True)
class Part:
    """One file of the AOF, in load order: where its commands start (after an RDB part)."""

    name: str
    path: Path
    role: str  # single, base, incr
    start: int  # offset of the first command (0, or the end of an RDB preamble / base)


@dataclass(frozen=True)
class Event:
    kind: str
    command: str  # what was run, as the AOF has it (MULTI for a transaction)
    file: str
    offset: int
    time: int | None  # the last #TS before it (unix seconds); None before the first one
    db: int
    keys: int = 0  # keys deleted, or expiries set


@dataclass
class Timeline:
    parts: list[str] = field(default_factory=list)
    commands: int = 0
    annotations: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    untimed: int = 0  # commands before the first #TS
    interval: int = 60  # seconds per bucket
    buckets: dict[int, int] = field(default_factory=dict)  # bucket start -> commands
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class CutPoint:
    """Where a cut backup ends: everything before ``offset`` in ``file`` is kept, and all
    files before it; ``why`` says what was chosen, ``time`` the #TS in force there."""

    file: str
    offset: int
    why: str
    time: int | None


def parts_of(found: Located) -> list[Part]:
    """The files of the AOF ``found`` in the order a server loads them (history left out)."""
    if found.kind == RDB:
        raise UsageError(f"{found.path}: an RDB file has no command history to read or cut")
    if found.kind != MULTIPART:
        return [Part(found.path.name, found.path, "single", _commands_start(found.path))]
    folder = found.path.parent
    try:
        manifest = parse_manifest(found.path.read_bytes())
    except (OSError, FormatError) as e:
        raise BackupIOError(f"{found.path}: {e}") from None
    out = []
    for entry in manifest.entries:
        if entry.type == "h":
            continue
        path = folder / entry.name
        role = "base" if entry.type == "b" else "incr"
        out.append(Part(entry.name, path, role, _commands_start(path)))
    return out


def _commands_start(path: Path) -> int:
    """0, or where the commands start after an RDB preamble (the whole file for an RDB)."""
    try:
        with mapped(path) as mm:
            if mm is None or not mm[:9].startswith(MAGICS):
                return 0
            walker = RdbWalker(mm)
            for _ in walker.walk():
                pass
            return len(mm) - walker.trailing_bytes
    except OSError as e:
        raise BackupIOError(f"{path}: {e.strerror or e}") from None
    except FormatError as e:
        raise BackupIOError(f"{path}: its RDB part cannot be read: {e}") from None


def items(parts: list[Part]) -> Iterator[tuple[Part, Command | Annotation]]:
    """Every command and annotation of ``parts``, in load order (stops at damage)."""
    for part in parts:
        try:
            with mapped(part.path) as mm:
                if mm is None:
                    continue
                for item in read_commands(mm, part.start):
                    yield part, item
        except OSError as e:
            raise BackupIOError(f"{part.path}: {e.strerror or e}") from None
        except FormatError:
            return  # the check says what is wrong; the timeline ends where the damage starts


def timeline(found: Located, *, mass_keys: int = MASS_KEYS, storm: int = STORM) -> Timeline:
    """Read the AOF ``found`` (see the module docstring)."""
    parts = parts_of(found)
    out = Timeline(parts=[p.name for p in parts])
    dated: list[int] = []
    ts: int | None = None
    db = 0
    multi: Event | None = None  # the open MULTI, counting what its block deletes
    second: dict[str, Event] = {}  # per-second bursts of this second
    for part, item in items(parts):
        if isinstance(item, Annotation):
            stamp = item.timestamp
            if stamp is not None:
                out.annotations += 1
                out.first_ts = stamp if out.first_ts is None else out.first_ts
                out.last_ts = stamp
                if stamp != ts:
                    _close_second(out, second, mass_keys, storm)
                ts = stamp
            continue
        out.commands += 1
        if ts is None:
            out.untimed += 1
        else:
            dated.append(ts)
        name = item.args[0].upper()
        where = (part.name, item.offset, ts, db)
        if name == b"SELECT" and len(item.args) == 2 and item.args[1].isdigit():
            db = int(item.args[1])
        elif name == b"MULTI":
            multi = Event("mass-delete", "MULTI", *where)
        elif name == b"EXEC" and multi is not None:
            if multi.keys >= mass_keys:
                out.events.append(multi)
            multi = None
        elif name in _SINGLE:
            out.events.append(Event(_SINGLE[name], name.decode(), *where))
        elif name == b"FUNCTION" and len(item.args) > 1 and item.args[1].upper() == b"FLUSH":
            out.events.append(Event("function-flush", "FUNCTION FLUSH", *where))
        elif name in _DELETES:
            n = len(item.args) - 1
            if multi is not None:
                multi = _more(multi, n)
            elif n >= mass_keys:
                out.events.append(Event("mass-delete", name.decode(), *where, keys=n))
                continue  # an event of its own, not part of a burst of many commands
            if ts is not None:  # a burst is many commands within one second
                burst = second.get("delete-burst") or Event("delete-burst", "DEL/UNLINK", *where)
                second["delete-burst"] = _more(burst, n)
        elif name in _EXPIRES and ts is not None:
            storm_event = second.get("expire-storm") or Event("expire-storm", "EXPIRE", *where)
            second["expire-storm"] = _more(storm_event, 1)
    _close_second(out, second, mass_keys, storm)
    out.interval = _interval(out.first_ts, out.last_ts)
    for stamp in dated:
        start = stamp - stamp % out.interval
        out.buckets[start] = out.buckets.get(start, 0) + 1
    out.events.sort(key=lambda e: (out.parts.index(e.file), e.offset))
    return out


def _more(event: Event, keys: int) -> Event:
    return Event(event.kind, event.command, event.file, event.offset, event.time, event.db,
                 event.keys + keys)  # fmt: skip


def _close_second(out: Timeline, second: dict[str, Event], mass_keys: int, storm: int) -> None:
    for kind, event in second.items():
        if event.keys >= (storm if kind == "expire-storm" else mass_keys):
            out.events.append(event)
    second.clear()


def _interval(first: int | None, last: int | None) -> int:
    """Seconds per bucket: about 60 buckets or fewer over the span, in round units."""
    if first is None or last is None:
        return 60
    span = max(1, last - first)
    for step in (1, 10, 60, 300, 900, 3600, 4 * 3600, 86400):
        if span / step <= 60:
            return step
    return 7 * 86400


# -- where to cut --------------------------------------------------------------------------


def cut_before_command(found: Located, command: str) -> CutPoint:
    """Just before the last occurrence of ``command`` (before its MULTI, inside one)."""
    want = command.upper().encode()
    parts = parts_of(found)
    found_at: CutPoint | None = None
    multi_at: tuple[str, int] | None = None
    ts: int | None = None
    for part, item in items(parts):
        if isinstance(item, Annotation):
            ts = item.timestamp if item.timestamp is not None else ts
            continue
        name = item.args[0].upper()
        if name == b"MULTI":
            multi_at = (part.name, item.offset)
        elif name in (b"EXEC", b"DISCARD"):
            multi_at = None
        if name == want or b" ".join(a.upper() for a in item.args[:2]) == want:
            file, offset = multi_at or (part.name, item.offset)
            if part.role == "base":
                continue  # a base holds state; a cut inside it is no point in time
            found_at = CutPoint(file, offset, f"before the last {command.upper()}", ts)
    if found_at is None:
        raise UsageError(f"{found.path}: no {command.upper()} after the base to cut before")
    return found_at


def cut_until(found: Located, until: int) -> CutPoint:
    """Before the first #TS annotation later than ``until`` (unix seconds); refused when
    ``until`` is older than the AOF's base (an RDB base's ctime)."""
    parts = parts_of(found)
    born = _base_time(parts)
    if born is not None and until < born:
        raise UsageError(
            f"{found.path}: {_iso(until)} is before the AOF's base was written ({_iso(born)}): "
            "the oldest state it holds is the base's"
        )
    seen = False
    last: int | None = None
    for part, item in items(parts):
        if not isinstance(item, Annotation) or item.timestamp is None:
            continue
        seen = True
        if item.timestamp > until:
            if part.role == "base":
                raise UsageError(
                    f"{found.path}: {_iso(until)} is before the AOF's base was written: the "
                    "oldest state it holds is the base's"
                )
            return CutPoint(part.name, item.offset, f"until {_iso(until)}", last)
        last = item.timestamp
    if not seen:
        raise UsageError(
            f"{found.path}: no #TS annotations (the server ran with aof-timestamp-enabled no): "
            "--until needs them; --before COMMAND or --before-offset FILE:OFFSET still work"
        )
    raise UsageError(
        f"{found.path}: its last #TS is {_iso(last or 0)}, not after {_iso(until)}: nothing to cut"
    )


def _base_time(parts: list[Part]) -> int | None:
    """When an RDB base was written (its aux ``ctime``); None without one."""
    base = parts[0] if parts and parts[0].role == "base" and parts[0].start else None
    if base is None:
        return None
    with mapped(base.path) as mm:
        if mm is None:
            return None
        walker = RdbWalker(mm)
        for _ in walker.walk():
            pass
        ctime = next((a.value for a in walker.aux if a.name == b"ctime"), None)
    return int(ctime) if ctime is not None and ctime.isdigit() else None


def cut_at_offset(found: Located, file: str, offset: int) -> CutPoint:
    """At ``offset`` of ``file``, which must be where a command or annotation starts."""
    parts = parts_of(found)
    if file not in [p.name for p in parts]:
        names = ", ".join(p.name for p in parts)
        raise UsageError(f"--before-offset {file}:{offset}: no such file in the AOF ({names})")
    ts: int | None = None
    for part, item in items(parts):
        if part.name == file and item.offset == offset:
            if part.role == "base":
                raise UsageError(f"--before-offset {file}:{offset}: inside the base file")
            return CutPoint(file, offset, f"before offset {offset} of {file}", ts)
        if isinstance(item, Annotation) and item.timestamp is not None:
            ts = item.timestamp
        if part.name == file and item.offset > offset:
            break
    raise UsageError(
        f"--before-offset {file}:{offset}: no command or annotation starts there "
        "(rbkit check --timeline lists the offsets)"
    )


def _iso(stamp: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))
