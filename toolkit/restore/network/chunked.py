"""Keys too big for one RESTORE: written in chunks into a temporary key, then renamed.

A value whose DUMP payload (or, on the command path, one of whose commands) is larger than
the target's ``proto-max-bulk-len`` cannot be sent as one command. It is decoded and rebuilt
with plain commands (commands.py) into a temporary key in the key's own slot (its hash tag is
the key's slot tag, so a cluster takes the RENAME), each command below the limit: RPUSH, SADD,
HSET, ZADD batches split by size, XADD per entry; a string in pieces (APPEND before Redis 7.0;
from 7.0 on the server refuses to grow a string past proto-max-bulk-len by APPEND or
SETRANGE, so the pieces go into keys of their own and one EVAL joins them). Then the TTL is
set on the temporary key, and RENAME (``--replace``) or RENAMENX puts it in place. The
replies of every chunk are read before the RENAME: a failed chunk never puts a partial value
in place. The temporary key is deleted after a failure; when that fails too, its name is
reported.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis
from redis.crc import key_slot

from parsers.printable import printable
from parsers.rdb.decode import StringValue, Value
from parsers.rdb.stream_meta import StreamMeta
from toolkit.restore.network.commands import (
    Capabilities,
    Command,
    NoCommands,
    command_bytes,
    rebuild,
)
from toolkit.server.connect import Server
from toolkit.text import size

# The bytes of a DUMP payload besides the value's own: type byte, RDB version, CRC-64.
PAYLOAD_OVERHEAD = 1 + 2 + 8
TEMP_MARK = b":rbkit-restore-tmp:"
MAX_PIPELINE_BYTES = 8 << 20  # chunk commands pipelined at once
# Joins the pieces KEYS[2..] into KEYS[1] and deletes them (SET takes any length from a script).
JOIN_SCRIPT = b"""local parts = {}
for i = 2, #KEYS do
  parts[#parts + 1] = redis.call('GET', KEYS[i])
  redis.call('DEL', KEYS[i])
end
redis.call('SET', KEYS[1], table.concat(parts))
return #parts"""
# Commands whose arguments after the key are elements (1) or pairs (2), split by size.
_SPLITTABLE = {b"RPUSH": 1, b"SADD": 1, b"HSET": 2, b"ZADD": 2}


class TooBig(ValueError):
    """A part of a value that no command below the limit can carry (one element too big)."""


def payload_size(item_size: int) -> int:
    """The DUMP payload's length for a value of ``item_size`` serialized bytes."""
    return item_size + PAYLOAD_OVERHEAD


def largest_command(commands: list[Command]) -> int:
    """The argument bytes of the largest of ``commands``."""
    return max((command_bytes([c]) for c in commands), default=0)


def chunk_budget(limit: int) -> int:
    """The argument bytes one chunk command may hold: half the limit, at most 4 MB."""
    return max(1, min(limit // 2, 4 << 20))


def slot_tag(key: bytes) -> bytes:
    """The part of ``key`` Redis hashes to its slot: a non-empty ``{tag}``, else the key."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def temp_name(key: bytes) -> bytes:
    """A temporary key in ``key``'s slot, named after it (the same name on every run, so a
    resumed restore writes over a leftover one)."""
    digest = hashlib.sha1(key).hexdigest()[:16].encode()
    name = b"{" + slot_tag(key) + b"}" + TEMP_MARK + digest
    if key_slot(name) == key_slot(key):
        return name
    # A key with a '}' but no hash tag: a tag of rbkit's own with the same slot.
    want = key_slot(key)
    n = 0
    while key_slot(b"rbkit-%d" % n) != want:
        n += 1
    return b"{rbkit-%d}" % n + TEMP_MARK + digest


def split(command: Command, budget: int) -> Iterator[Command]:
    """``command`` as commands of at most ``budget`` argument bytes each (by its elements,
    for RPUSH, SADD, HSET, ZADD); others whole."""
    unit = _SPLITTABLE.get(bytes(command[0]))
    if unit is None or command_bytes([command]) <= budget:
        yield command
        return
    head, rest = command[:2], command[2:]
    base = command_bytes([head])
    group: list[bytes | memoryview] = []
    used = base
    for i in range(0, len(rest), unit):
        part = rest[i : i + unit]
        n = sum(len(a) for a in part)
        if group and used + n > budget:
            yield (*head, *group)
            group, used = [], base
        group.extend(part)
        used += n
    if group:
        yield (*head, *group)


def string_commands(temp: bytes, data: bytes, budget: int, join: bool) -> list[Command]:
    """A string in pieces of ``budget`` bytes: APPEND to ``temp``, or (``join``, Redis 7.0+)
    each piece into a key of its own, joined by EVAL."""
    pieces = [data[i : i + budget] for i in range(0, len(data), budget)] or [b""]
    if not join:
        return [(b"SET", temp, pieces[0]), *((b"APPEND", temp, p) for p in pieces[1:])]
    names = [temp + b":%d" % i for i in range(len(pieces))]
    out: list[Command] = [(b"SET", n, p) for n, p in zip(names, pieces, strict=True)]
    out.append((b"EVAL", JOIN_SCRIPT, b"%d" % (len(names) + 1), temp, *names))
    return out


@dataclass
class Outcome:
    """How one chunked key went: written, or the error and any temporary key left behind."""

    error: str | None = None
    leftover: bytes | None = None
    commands: int = 0
    bytes: int = 0


class ChunkWriter:
    """Writes keys in chunks, one at a time, over connections of its own (one per db, or the
    cluster's node of the key's slot)."""

    def __init__(self, url: Server, *, cluster: bool, limit: int, caps: Capabilities,
                 join_strings: bool) -> None:  # fmt: skip
        self.url = url
        self.limit = limit
        self.budget = chunk_budget(limit)
        self.caps = caps
        self.join_strings = join_strings
        self.rc = url.cluster() if cluster else None
        self.clients: dict[int, redis.Redis] = {}

    def close(self) -> None:
        if self.rc is not None:
            self.rc.close()
        for client in self.clients.values():
            client.close()

    def _client(self, db: int, key: bytes) -> redis.Redis:
        if self.rc is not None:
            return self.rc.get_redis_connection(self.rc.get_node_from_key(key))
        if db not in self.clients:
            self.clients[db] = self.url.client(db)
        return self.clients[db]

    def commands(
        self, key: bytes, value: Value, meta: StreamMeta | None, expire_ms: int | None
    ) -> list[Command]:
        """Every command of the chunked write into the temporary key, before the RENAME.
        Raises TooBig or NoCommands when the value cannot go in chunks."""
        temp = temp_name(key)
        out: list[Command] = [(b"DEL", temp)]
        if isinstance(value, StringValue):
            out += string_commands(temp, bytes(value.data), self.budget, self.join_strings)
        else:
            built = rebuild(temp, value, caps=self.caps, now_ms=int(time.time() * 1000), meta=meta)
            out += (part for cmd in built.commands for part in split(cmd, self.budget))
        if expire_ms is not None:
            out.append((b"PEXPIREAT", temp, b"%d" % expire_ms))
        biggest = largest_command(out)
        if biggest > self.limit:
            raise TooBig(
                f"one element takes {size(biggest)}, more than the target's "
                f"proto-max-bulk-len ({size(self.limit)}): no command can carry it"
            )
        return out

    def write(
        self,
        db: int,
        key: bytes,
        value: Value,
        meta: StreamMeta | None,
        expire_ms: int | None,
        *,
        replace: bool,
    ) -> Outcome:
        """Write ``key`` in chunks. Connection errors are raised (the load stops on them,
        naming the temporary key); a refused command comes back in ``Outcome.error``."""
        out = Outcome()
        try:
            commands = self.commands(key, value, meta, expire_ms)
        except (TooBig, NoCommands) as e:
            out.error = f"too big for one RESTORE, and not in chunks either: {e}"
            return out
        temp = temp_name(key)
        client = self._client(db, key)
        out.commands = len(commands) + 1
        out.bytes = command_bytes(commands)
        try:
            error = _send(client, commands)
            if error is None:
                rename = b"RENAME" if replace else b"RENAMENX"
                reply = client.execute_command(rename, temp, key)
                if reply in (0, b"0"):
                    error = "the key exists on the target (RENAMENX refused)"
        except redis.ResponseError as e:
            error = str(e)
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            raise ChunkConnectionLost(temp, e) from e
        if error is not None:
            out.error = f"written in chunks into '{printable(temp)}': {error}"
            out.leftover = _drop(client, commands, temp)
        return out


class ChunkConnectionLost(Exception):
    """The connection failed in the middle of a chunked write; ``temp`` may be left."""

    def __init__(self, temp: bytes, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.temp = temp


def _send(client: redis.Redis, commands: list[Command]) -> str | None:
    """Pipeline ``commands`` in groups of at most MAX_PIPELINE_BYTES; the first error."""
    group: list[Command] = []
    used = 0
    for cmd in [*commands, None]:
        n = command_bytes([cmd]) if cmd is not None else 0
        if group and (cmd is None or used + n > MAX_PIPELINE_BYTES):
            pipe = client.pipeline(transaction=False)
            for c in group:
                pipe.execute_command(*c)
            for reply in pipe.execute(raise_on_error=False):
                if isinstance(reply, Exception):
                    return str(reply)
            group, used = [], 0
        if cmd is not None:
            group.append(cmd)
            used += n
    return None


def _drop(client: redis.Redis, commands: list[Command], temp: bytes) -> bytes | None:
    """Delete the temporary key (and a string's pieces); its name when that fails."""
    names = {temp}
    names.update(bytes(c[1]) for c in commands if c[0] == b"SET")
    try:
        for name in names:
            client.delete(name)
    except redis.RedisError:
        return temp
    return None
