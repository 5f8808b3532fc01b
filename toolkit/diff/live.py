"""One side of a diff that is a live server, read without blocking it.

Per db: SCAN (COUNT 1000, MATCH when --match is given; never KEYS), then per batch of keys
one pipeline of TIME, TYPE and PTTL (and DUMP with --values), then one pipeline of the size
command of each key's type (STRLEN, LLEN, SCARD, ZCARD, HLEN, XLEN; module types have none).
With --values the size comes from the decoded DUMP payload instead. A key that vanished
between SCAN and the pipeline (TYPE "none", PTTL -2, DUMP nil) is left out.

The server is reached as toolkit/server/connect.py reaches every server (URL or host:port,
redis-cli's connection options, ``REDISCLI_AUTH``); the name this side is shown under is the
URL without its password.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import redis

from parsers.errors import FormatError
from parsers.rdb.dump import DumpPayload, decode_dump
from toolkit.diff.values import digest, size_of
from toolkit.errors import ConnectError, DiffError, UsageError
from toolkit.server.connect import Server

SCAN_COUNT = 1000
SIZE_COMMANDS = {
    "string": "STRLEN",
    "list": "LLEN",
    "set": "SCARD",
    "zset": "ZCARD",
    "hash": "HLEN",
    "stream": "XLEN",
}


class LiveKey(NamedTuple):
    """One key as the server returned it."""

    key: bytes
    type: str
    expire_ms: int | None  # absolute: the batch's server TIME + PTTL
    size: int | None
    digest: bytes | None  # with values: the digest of the DUMP payload's value


def _text(v: object) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


class LiveServer:
    """A connection to one server, and the reads a diff makes of it."""

    def __init__(self, server: Server | str, *, timeout: float = 60.0) -> None:
        try:
            self.server = server if isinstance(server, Server) else Server.parse(server)
        except UsageError as e:
            raise DiffError(str(e)) from None
        self.name = self.server.display
        self.url_db = self.server.db
        self.timeout = timeout
        self.undecodable = 0  # DUMP payloads the decoder could not read
        self.first_undecodable: str | None = None
        self._clients: dict[int, redis.Redis] = {}
        try:
            self.server.check()
            info = self.client(0).info("server")
        except ConnectError as e:
            raise DiffError(str(e)) from None
        except redis.RedisError as e:
            raise DiffError(str(self.server.error(e))) from None
        self.server_name = _text(info.get("server_name", "redis"))
        version = info.get("redis_version", "?")
        if self.server_name == "valkey" and "valkey_version" in info:
            version = info["valkey_version"]
        self.version = _text(version)

    def client(self, db: int) -> redis.Redis:
        """A client on database ``db`` (its own pool: SELECT is per connection)."""
        c = self._clients.get(db)
        if c is None:
            # Reads may be tried again: a dropped connection costs a retry, not the diff.
            c = self._clients[db] = self.server.client(db, timeout=self.timeout, retries=3)
        return c

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
            c.connection_pool.disconnect()
        self._clients.clear()

    def _call(self, what: str, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except redis.RedisError as e:
            raise DiffError(f"{self.name}: {what} failed: {_one_line(e)}") from None

    def keyspace(self) -> dict[int, tuple[int, int]]:
        """INFO keyspace as db -> (keys, expires)."""
        info = self._call("INFO keyspace", self.client(0).info, "keyspace")
        out = {}
        for name, value in info.items():
            if isinstance(name, str) and name.startswith("db") and isinstance(value, dict):
                out[int(name[2:])] = (int(value.get("keys", 0)), int(value.get("expires", 0)))
        return dict(sorted(out.items()))

    def time_ms(self) -> int:
        sec, usec = self._call("TIME", self.client(0).time)
        return int(sec) * 1000 + int(usec) // 1000

    def scan(
        self, db: int, *, match: bytes | None = None, count: int = SCAN_COUNT
    ) -> Iterator[list[bytes]]:
        """SCAN batches of key names of ``db`` (a key may come twice; SCAN's guarantee)."""
        c = self.client(db)
        cursor = 0
        while True:
            cursor, keys = self._call("SCAN", c.scan, cursor, match, count)
            if keys:
                yield keys
            if int(cursor) == 0:
                return

    def read_keys(self, db: int, keys: Sequence[bytes], *, values: bool) -> list[LiveKey | None]:
        """TYPE, absolute expiry, size (and value digest) of each key; None for a key gone.

        Without values: one pipeline of TIME and TYPE + PTTL per key, then one of the size
        commands. With values: TIME and PTTL + DUMP per key; the type, size and digest come
        from the payload (a payload the decoder cannot read: TYPE and size asked instead).
        """
        c = self.client(db)
        first: list[tuple[str, ...] | tuple[str, bytes]] = [("TIME",)]
        for k in keys:
            first.append(("PTTL", k))
            first.append(("DUMP", k) if values else ("TYPE", k))
        replies = self._pipeline(c, first)
        now = replies[0]
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000  # type: ignore[index]
        out: list[LiveKey | None] = []
        ask_type: list[int] = []  # rows whose TYPE is still to be asked (values mode)
        for i, k in enumerate(keys):
            pttl, second = replies[1 + 2 * i], replies[2 + 2 * i]
            if pttl == -2 or second is None or second == b"none":
                out.append(None)  # gone since SCAN returned it
                continue
            expire = None if pttl < 0 else now_ms + int(pttl)  # type: ignore[operator]
            if not values:
                out.append(LiveKey(bytes(k), _text(second), expire, None, None))
                continue
            dumped = self._decode(second)  # type: ignore[arg-type]
            if dumped is None:
                out.append(LiveKey(bytes(k), "?", expire, None, None))
                ask_type.append(i)
                continue
            v = dumped.value
            out.append(
                LiveKey(bytes(k), dumped.type_name, expire, size_of(v), digest(v, dumped.raw))
            )
        if ask_type:
            types = self._pipeline(c, [("TYPE", keys[i]) for i in ask_type])
            for i, t in zip(ask_type, types, strict=True):
                lk = out[i]
                assert lk is not None
                out[i] = None if t == b"none" else lk._replace(type=_text(t))
        need_size = [
            i
            for i, lk in enumerate(out)
            if lk is not None and lk.size is None and lk.type in SIZE_COMMANDS
        ]
        if need_size:
            commands = []
            for i in need_size:
                lk = out[i]
                assert lk is not None
                commands.append((SIZE_COMMANDS[lk.type], lk.key))
            sizes = self._pipeline(c, commands, errors_ok=True)
            for i, n in zip(need_size, sizes, strict=True):
                lk = out[i]
                assert lk is not None
                if isinstance(n, int):  # else an error: the key changed type meanwhile
                    out[i] = lk._replace(size=n)
        return out

    def _pipeline(
        self,
        client: redis.Redis,
        commands: list[tuple[str, ...] | tuple[str, bytes]],
        *,
        errors_ok: bool = False,
    ) -> list[object]:
        """Send ``commands`` in one write and read every reply (raw RESP, no callbacks).

        An error reply raises DiffError naming the command, unless ``errors_ok`` (then the
        exception is the reply). redis-py's Pipeline does the same with far more work per
        command, which is most of the time on millions of keys.
        """
        pool = client.connection_pool
        try:
            try:
                conn = pool.get_connection()
            except TypeError:  # redis-py before 5.3 wants a command name
                conn = pool.get_connection(str(commands[0][0]))
        except redis.RedisError as e:
            raise DiffError(str(self.server.error(e))) from None
        try:
            conn.send_packed_command([b"".join(map(_pack, commands))])
            out: list[object] = []
            for _ in commands:
                try:
                    out.append(conn.read_response())
                except redis.ResponseError as e:
                    out.append(e)
        except redis.RedisError as e:
            conn.disconnect()
            raise DiffError(f"{self.name}: reading keys failed: {_one_line(e)}") from None
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)
        if not errors_ok:
            for cmd, reply in zip(commands, out, strict=True):
                if isinstance(reply, Exception):
                    raise DiffError(f"{self.name}: {cmd[0]} failed: {_one_line(reply)}")
        return out

    def _decode(self, payload: bytes) -> DumpPayload | None:
        try:
            return decode_dump(payload)
        except FormatError as e:
            self.undecodable += 1
            if self.first_undecodable is None:
                self.first_undecodable = str(e)
            return None


_HEADS: dict[str, bytes] = {}


def _pack(command: tuple[str, ...] | tuple[str, bytes]) -> bytes:
    """A command of a name and at most one key, in RESP: what redis-py's packer makes,
    without its per-argument work (this runs for every key)."""
    name = command[0]
    head = _HEADS.get(name)
    if head is None:
        head = _HEADS[name] = b"$%d\r\n%b\r\n" % (len(name), name.encode())
    if len(command) == 1:
        return b"*1\r\n" + head
    key = command[1]
    return b"*2\r\n" + head + b"$%d\r\n%b\r\n" % (len(key), key)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
