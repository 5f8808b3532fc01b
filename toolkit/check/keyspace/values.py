"""The values the keyspace model holds per key, and how they are named, counted and copied.

Values are plain Python containers (see the table in the package docstring): a string is
its length (an ``int``), a list a ``deque``, a set a ``set``; sorted sets, hashes, streams
and values the model cannot see into have the small classes below.
"""

from __future__ import annotations

from collections import deque

from parsers.rdb.decode import (
    HashValue,
    ListValue,
    ModuleValue,
    SetValue,
    StreamValue,
    StringValue,
    ZSetValue,
)

# An expiry whose absolute time is unknown (a relative EXPIRE without a timestamp): beyond
# any real time, so it never counts as expired at check time.
UNKNOWN_TIME = 1 << 64
SEQ_BITS = 64
SEQ_MASK = (1 << 64) - 1
MAX_ID = (1 << 128) - 1


class ZSetVal(dict):
    """A sorted set: member -> score."""

    __slots__ = ()


class HashVal(dict):
    """A hash: field -> absolute expiry in ms, or None when the field does not expire."""

    __slots__ = ()


class StreamVal:
    """A stream: live entry ids in order (``ms << 64 | seq``), the last id, group names."""

    __slots__ = ("groups", "ids", "last_id")

    def __init__(self) -> None:
        self.ids: dict[int, None] = {}
        self.last_id = 0
        self.groups: set[bytes] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def copy(self) -> StreamVal:
        s = StreamVal()
        s.ids = dict(self.ids)
        s.last_id = self.last_id
        s.groups = set(self.groups) if self.groups else None
        return s


class Opaque:
    """A value the model only knows the type (and maybe size) of."""

    __slots__ = ("elements", "module", "type")

    def __init__(self, type_name: str, elements: int | None, module: bool = False) -> None:
        self.type = type_name
        self.elements = elements
        self.module = module

    def copy(self) -> Opaque:
        return self


TYPE_OF: dict[type, str] = {
    int: "string",
    deque: "list",
    set: "set",
    ZSetVal: "zset",
    HashVal: "hash",
    StreamVal: "stream",
}


class DbValues:
    __slots__ = ("expires", "keys")

    def __init__(self) -> None:
        self.keys: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}


def type_name(value: object) -> str:
    """The name Redis's TYPE command gives a model value."""
    name = TYPE_OF.get(type(value))
    if name is not None:
        return name
    assert isinstance(value, Opaque)
    return value.type


def elements_of(value: object) -> int:
    if type(value) is int:
        return 1
    if isinstance(value, Opaque):
        return value.elements or 0
    return len(value)  # type: ignore[arg-type]


def copy_value(value: object) -> object:
    if type(value) is int:
        return value
    if isinstance(value, (StreamVal, Opaque)):
        return value.copy()
    return type(value)(value)  # type: ignore[call-arg]


def from_decoded(value: object) -> object:
    """The model value of a decoded RDB value (None for an empty collection)."""
    if isinstance(value, StringValue):
        return len(value.data)
    if isinstance(value, ModuleValue):
        return Opaque(value.module, None, module=True)
    v: object
    if isinstance(value, ListValue):
        v = deque(value.items)
    elif isinstance(value, SetValue):
        v = set(value.members)
    elif isinstance(value, ZSetValue):
        v = ZSetVal(value.members)
    elif isinstance(value, HashValue):
        exp = value.field_expires_ms
        v = HashVal((f, exp.get(f)) for f in value.fields)
    elif isinstance(value, StreamValue):
        s = StreamVal()
        s.ids = {ms << SEQ_BITS | seq: None for (ms, seq), _ in value.entries}
        ms, seq = value.last_id
        s.last_id = ms << SEQ_BITS | seq
        s.groups = {g.name for g in value.groups} or None
        return s
    else:
        raise TypeError(f"not a decoded RDB value: {type(value).__name__}")
    return v if v else None
