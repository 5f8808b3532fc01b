"""A digest of what a value holds, not how it was encoded (``rbkit diff --values``).

Two values have the same digest when a client reading them sees the same content: a hash
saved as a ziplist by Redis 6.2, a listpack by 7.0 or a hashtable by 8.2 digests alike when
its fields are equal. BLAKE2b, 16 bytes, over a canonical form with a type tag and
length-prefixed parts:

- string: its bytes (integer-encoded strings as their decimal text, as GET returns them)
- list: the items in order
- set: the members, sorted
- zset: (member, score) sorted by member, the score as ``repr`` of the float
- hash: (field, value) sorted by field, and the field expiries when any field has one
- stream: the entries (id, field/value pairs) in order, the last id, and the consumer groups
  sorted by name (last delivered id, PEL size, consumer names sorted). A group's
  entries-read counter is left out: RDB 9 (Redis 6.2) does not store it, so a 6.2 file and a
  7.0 file of the same stream would differ by it alone.
- module value: the module type name and the value's serialized bytes. This one is at the
  encoding level (only the module can read the content): the same content saved by another
  version of the module may digest differently.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Any

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

DIGEST_SIZE = 16
_LEN = struct.Struct("<Q").pack
_ID = struct.Struct("<QQ").pack
_NO_EXPIRY = b"-"


def digest(value: Value, raw: bytes | memoryview | None = None) -> bytes:
    """The 16-byte digest of ``value``'s logical content (``raw``: a module value's bytes)."""
    if type(value) is StringValue:
        return string_digest(value.data)
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    if isinstance(value, ListValue):
        h.update(b"list")
        _strings(h, value.items)
    elif isinstance(value, SetValue):
        h.update(b"set")
        _strings(h, sorted(value.members))
    elif isinstance(value, ZSetValue):
        h.update(b"zset")
        members = sorted(value.members)
        _strings(h, members)
        scores = value.members
        _strings(h, [repr(scores[m]).encode() for m in members])
    elif isinstance(value, HashValue):
        h.update(b"hash")
        fields = sorted(value.fields)
        _strings(h, fields)
        _strings(h, [value.fields[f] for f in fields])
        ttls = value.field_expires_ms
        if ttls:  # a hash without field TTLs digests as it did before Redis 7.4 had them
            _strings(h, [str(ttls[f]).encode() if f in ttls else _NO_EXPIRY for f in fields])
    elif isinstance(value, StreamValue):
        _stream(h, value)
    elif isinstance(value, ModuleValue):
        h.update(b"module")
        _strings(h, [value.module.encode(), bytes(raw) if raw is not None else b""])
    else:  # pragma: no cover - Value is a closed union
        raise TypeError(f"not a decoded value: {type(value).__name__}")
    return h.digest()


def set_digest(count: int, lengths: bytes, data: bytes) -> bytes:
    """The digest of a set whose members, sorted, have these little-endian uint64 lengths
    and these bytes back to back (parsers.rdb.decode.sorted_set_members): what
    :func:`digest` gives the set, without a Python object per member."""
    h = hashlib.blake2b(digest_size=DIGEST_SIZE)
    h.update(b"set")
    h.update(_LEN(count))
    h.update(lengths)
    h.update(data)
    return h.digest()


def string_digest(data: bytes | memoryview) -> bytes:
    """The digest of a string value with these bytes (a fast path for the commonest type)."""
    return hashlib.blake2b(b"string" + _LEN(len(data)) + data, digest_size=DIGEST_SIZE).digest()


def _strings(h: Any, items: Sequence[bytes]) -> None:
    """A sequence of byte strings, unambiguously: the count, every length, then the bytes."""
    n = len(items)
    h.update(_LEN(n))
    h.update(struct.pack(f"<{n}Q", *map(len, items)))
    h.update(b"".join(items))


def _stream(h: Any, value: StreamValue) -> None:
    h.update(b"stream")
    h.update(_LEN(len(value.entries)))
    for entry_id, pairs in value.entries:
        h.update(_ID(*entry_id))
        _strings(h, [x for pair in pairs for x in pair])
    h.update(_ID(*value.last_id))
    h.update(_LEN(len(value.groups)))
    for g in sorted(value.groups, key=lambda g: g.name):
        _strings(h, [g.name])
        h.update(_ID(*g.last_id))
        h.update(_LEN(g.pending))
        _strings(h, sorted(g.consumers))


def size_of(value: Value) -> int | None:
    """What the size commands return for ``value``: STRLEN, LLEN, SCARD, ZCARD, HLEN, XLEN;
    None for a module value."""
    if isinstance(value, StringValue):
        return len(value.data)
    if isinstance(value, ListValue):
        return len(value.items)
    if isinstance(value, SetValue):
        return len(value.members)
    if isinstance(value, (ZSetValue,)):
        return len(value.members)
    if isinstance(value, HashValue):
        return len(value.fields)
    if isinstance(value, StreamValue):
        return value.length
    return None
