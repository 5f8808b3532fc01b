"""A live server read as a snapshot: its replication RDB (``SYNC``, as ``redis-cli --rdb``
takes it), streamed into a file that the RDB fast path then reads.

The snapshot is consistent in time (the fork of the server's BGSAVE) and costs the server one
fork, not a command per key. It is taken only when the server can stream it over the socket
(``repl-diskless-sync yes``, the default since Redis 7.0): a disk-based sync would make the
server write its own dump file, replacing whatever file of that name the user keeps there.
``REPLCONF rdb-only 1`` (Redis 7.0+) asks for the RDB without the replication stream after it.

The server answers ``SYNC`` with keepalive newlines while it waits to fork (its
``repl-diskless-sync-delay``, 5 s by default), then ``$EOF:<40-byte mark>`` and the RDB ended
by the mark (socket) or ``$<length>`` and that many bytes (disk). With ``--sync-now``
(:attr:`Server.sync_now <toolkit.server.connect.Server.sync_now>`) rbkit sets that delay to 0
just before its SYNC and puts the old value back once the fork has begun (the header line):
only a replica arriving in those few milliseconds syncs without waiting for others.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.errors import ServerError
from toolkit.server.connect import Server

CHUNK = 1 << 20
EOF_MARK_LEN = 40
# Keepalive newlines come every second; this long without a byte means the server is stuck.
READ_TIMEOUT = 120.0
HEADER_MAX = 256
# How long to wait for the server to reap the child that streamed the snapshot.
CHILD_WAIT = 10.0


class SnapshotRefused(ServerError):
    """The server will not (or should not) give a replication snapshot; read it by SCAN."""


class SnapshotFailed(ServerError):
    """The server began to send its snapshot and stopped (a failed fork, a child's error), or
    the scratch file could not hold it (:class:`NoRoom`)."""


class NoRoom(SnapshotFailed):
    """The scratch file's disk filled up (or refused a write) while the snapshot arrived."""


@dataclass
class Snapshot:
    path: Path
    bytes: int
    seconds: float
    framing: str  # "eof-mark" (streamed from the fork) or "length" (a disk-based BGSAVE)
    time_ms: int | None  # the server's TIME once it was sent (None: TIME not allowed)
    delay: int = 0  # its repl-diskless-sync-delay: seconds it waited before it forked
    delay_skipped: int = 0  # the delay --sync-now set to 0 for this fork (and put back)
    # --sync-now could not set the delay, or not put it back: why (the report says it)
    sync_now_note: str | None = None
    reaping: threading.Thread | None = field(default=None, repr=False, compare=False)

    def delay_notes(self) -> list[str]:
        """What the report says of the wait before the fork (none when there was none)."""
        notes = []
        if self.delay and self.framing == "eof-mark":
            notes.append(
                f"the server waited {self.delay} s before it forked (its "
                "repl-diskless-sync-delay, for other replicas to join; --sync-now skips it)"
            )
        if self.delay_skipped:
            notes.append(
                f"--sync-now: the server forked at once (its repl-diskless-sync-delay of "
                f"{self.delay_skipped} s set to 0 for the fork, then put back)"
            )
        if self.sync_now_note:
            notes.append(self.sync_now_note)
        return notes

    def settled(self) -> None:
        """Wait (up to :data:`CHILD_WAIT`) until the server has reaped the child that wrote
        the snapshot, so that a BGSAVE run right after is not refused as "already in
        progress". The wait runs beside the caller's reading of the file."""
        if self.reaping is not None:
            self.reaping.join()


Progress = Callable[[int, int | None], None] | None


def snapshot_refusal(server: Server) -> str | None:
    """Why ``server`` should not be read by SYNC (None: it can be). Asks CONFIG GET; a server
    that refuses CONFIG is not read by SYNC either (its sync mode is unknown)."""
    return _sync_config(server)[0]


def _sync_config(server: Server) -> tuple[str | None, int]:
    """Why ``server`` should not be read by SYNC (None: it can be), and how many seconds it
    waits before it forks for a replica (``repl-diskless-sync-delay``)."""
    import redis

    client = server.client(timeout=server.connect_timeout)
    try:
        config: dict[str, Any] = client.config_get("repl-diskless-sync*")
    except redis.ResponseError as e:
        return f"CONFIG GET is not allowed ({_first_line(e)}), so its sync mode is unknown", 0
    except (redis.RedisError, OSError) as e:
        raise server.error(e) from None
    finally:
        client.close()
    try:
        delay = int(config.get("repl-diskless-sync-delay", 0))
    except (TypeError, ValueError):
        delay = 0
    if str(config.get("repl-diskless-sync", "no")).lower() != "yes":
        return (
            "it has repl-diskless-sync no: to serve SYNC it would write its own dump file, "
            "replacing the one in its data directory"
        ), delay
    return None, delay


def take_snapshot(server: Server, dest: Path, progress: Progress = None) -> Snapshot:
    """Stream ``server``'s replication RDB into the scratch file ``dest`` (created; the caller
    removes it).

    Raises SnapshotRefused when the server refuses SYNC (ACL, a replica without its master,
    an old server), SnapshotFailed when it stops sending midway, ConnectError when it
    cannot be reached."""
    import redis

    refusal, delay = _sync_config(server)
    if refusal is not None:
        raise SnapshotRefused(f"{server.display}: not read by SYNC: {refusal}")
    started = time.monotonic()
    version = _own_version(server)
    zeroed = _ZeroDelay(server, delay) if server.sync_now and delay else None
    pool = server.pool(0, timeout=READ_TIMEOUT)
    conn = pool.get_connection()
    try:
        _replconf(conn, "capa", "eof")
        _replconf(conn, "rdb-only", "1")
        if version:
            # Valkey 9 sends a replica that names no version RDB 11 (Redis 7.2's), which
            # cannot hold its newer types (a hash with field TTLs): name its own.
            _replconf(conn, "version", version)
        if zeroed is not None:
            zeroed.set()
        conn.send_command("SYNC")
        sock = conn._sock  # the RDB is not a RESP reply: read the socket itself
        if sock is None:
            raise SnapshotRefused(f"{server.display}: the connection closed before SYNC")
        reader = _Reader(sock.recv)
        header = reader.header(progress)
        if zeroed is not None:
            zeroed.put_back()  # the fork has begun
        if header.startswith(b"-"):
            raise SnapshotRefused(
                f"{server.display}: SYNC refused: {header[1:].decode('utf-8', 'replace')}"
            )
        if not header.startswith(b"$"):
            raise ServerError(f"{server.display}: SYNC answered {header[:40]!r}, not an RDB")
        with open(dest, "wb", buffering=0) as file:  # unbuffered: no write is left to close
            out = _Scratch(file)
            if header.startswith(b"$EOF:"):
                mark = header[5:]
                if len(mark) != EOF_MARK_LEN:
                    raise ServerError(f"{server.display}: SYNC's EOF mark is {len(mark)} bytes")
                size = reader.copy_until(mark, out, progress)
                framing = "eof-mark"
            else:
                try:
                    length = int(header[1:])
                except ValueError:
                    raise ServerError(
                        f"{server.display}: SYNC announced {header[:40]!r}, not a length"
                    ) from None
                size = reader.copy_length(length, out, progress)
                framing = "length"
            # no fsync: a scratch file, read back at once and removed (a crash loses nothing)
    except _WriteFailed as e:
        raise NoRoom(
            f"{dest.parent.parent}: no room for {server.display}'s snapshot "
            f"({e.error.strerror or e.error} after {e.written} bytes)"
        ) from None
    except redis.RedisError as e:
        raise server.error(e) from None
    except OSError as e:  # connected, then cut: the server gave up (its log says why)
        raise SnapshotFailed(f"{server.display}: SYNC failed: {e}") from None
    finally:
        if zeroed is not None:
            zeroed.put_back()
        conn.disconnect()  # a replica connection: never back into a pool
        pool.disconnect()
    seconds = time.monotonic() - started
    reaping = threading.Thread(target=_wait_reaped, args=(server,), daemon=True)
    reaping.start()
    skipped = zeroed.skipped if zeroed is not None else 0
    return Snapshot(
        dest,
        size,
        seconds,
        framing,
        _server_time(server),
        delay - skipped,
        skipped,
        zeroed.note if zeroed is not None else None,
        reaping,
    )


class _ZeroDelay:
    """``--sync-now``: the server's repl-diskless-sync-delay set to 0 for one SYNC, and put
    back (unless someone changed it meanwhile). A refusal (an ACL without CONFIG SET) is not
    an error: the server waits as it would have, and :attr:`note` says why."""

    def __init__(self, server: Server, delay: int) -> None:
        self._server, self._delay = server, delay
        self._set = False
        self.skipped = 0  # the seconds the fork did not wait
        self.note: str | None = None

    def set(self) -> None:
        import redis

        client = self._server.client(timeout=self._server.connect_timeout)
        try:
            client.config_set("repl-diskless-sync-delay", 0)
        except redis.ResponseError as e:
            self.note = f"--sync-now: CONFIG SET refused ({_first_line(e)})"
            return
        except (redis.RedisError, OSError) as e:
            raise self._server.error(e) from None
        finally:
            client.close()
        self._set, self.skipped = True, self._delay

    def put_back(self) -> None:
        """The old delay back, once; a failure is told in :attr:`note`, not raised."""
        import redis

        if not self._set:
            return
        self._set = False
        client = self._server.client(timeout=self._server.connect_timeout)
        try:
            now = client.config_get("repl-diskless-sync-delay").get("repl-diskless-sync-delay")
            if str(now) == "0":
                client.config_set("repl-diskless-sync-delay", self._delay)
        except (redis.RedisError, OSError) as e:
            self.note = (
                f"--sync-now: repl-diskless-sync-delay was left at 0, not put back to "
                f"{self._delay} ({_first_line(e)})"
            )
        finally:
            client.close()


def _server_time(server: Server) -> int | None:
    """The server's TIME (ms), or None where it is not allowed."""
    import redis

    client = server.client(timeout=server.connect_timeout)
    try:
        seconds, micros = client.time()
        return int(seconds) * 1000 + int(micros) // 1000
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()


def _wait_reaped(server: Server, timeout: float = CHILD_WAIT) -> None:
    """Wait until the server has reaped the child that wrote the snapshot."""
    import redis

    client = server.client(timeout=server.connect_timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not int(client.info("persistence").get("rdb_bgsave_in_progress", 0)):
                break
            time.sleep(0.02)
    except (redis.RedisError, OSError):
        pass  # the snapshot is whole; the wait was a courtesy
    finally:
        client.close()


def _own_version(server: Server) -> str | None:
    """The server's version as a replica of its own release would name it (Valkey's
    ``valkey_version``; Redis ignores REPLCONF version), or None if INFO does not say."""
    import redis

    client = server.client(timeout=server.connect_timeout)
    try:
        info = client.info("server")
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
    version = info.get("valkey_version") or info.get("redis_version")
    return str(version) if version else None


def _replconf(conn: Any, option: str, value: str) -> None:
    """REPLCONF ``option`` ``value``; an older server's refusal is fine (it is an ask)."""
    import redis

    conn.send_command("REPLCONF", option, value)
    with contextlib.suppress(redis.ResponseError):
        conn.read_response()


def _first_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


class _WriteFailed(Exception):
    """A write to the scratch file failed (told apart from the socket's errors)."""

    def __init__(self, error: OSError, written: int) -> None:
        self.error, self.written = error, written


class _Scratch:
    """The scratch file the snapshot is written to; a failed write raises
    :class:`_WriteFailed` with the bytes written before it."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self.written = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = self._file.write(view)
            except OSError as e:
                raise _WriteFailed(e, self.written) from None
            view = view[n:]
            self.written += n


class _Reader:
    """Bytes off the replication socket: the header line, then the RDB."""

    def __init__(self, recv: Callable[[int], bytes]) -> None:
        self._recv = recv
        self._buf = b""

    def _more(self) -> bytes:
        data = self._recv(CHUNK)
        if not data:
            raise OSError("the server closed the connection during SYNC")
        return data

    def header(self, progress: Progress) -> bytes:
        """The first line that is not a keepalive newline, without its CRLF. ``progress`` is
        told 0 bytes at each keepalive (about one a second), so that a caller that gives up
        (by raising from it) does so before the server forks."""
        while True:
            while b"\n" not in self._buf:
                if len(self._buf) > HEADER_MAX:
                    raise OSError("SYNC's reply has no header line")
                self._buf += self._more()
                if progress is not None:
                    progress(0, None)
            line, self._buf = self._buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            if line:
                return line

    def copy_length(self, length: int, out: Any, progress: Progress) -> int:
        done = 0
        data, self._buf = self._buf, b""
        while True:
            take = data[: length - done]
            out.write(take)
            done += len(take)
            if progress is not None:
                progress(done, length)
            if done >= length:
                return done
            data = self._more()

    def copy_until(self, mark: bytes, out: Any, progress: Progress) -> int:
        """Copy until ``mark`` ends the stream; the last ``len(mark)`` bytes are held back
        until more arrive, as the mark may be split across reads."""
        done = 0
        held, self._buf = self._buf, b""
        while True:
            if held.endswith(mark):
                body = held[: -len(mark)]
                out.write(body)
                done += len(body)
                return done
            if len(held) > len(mark):
                body, held = held[: -len(mark)], held[-len(mark) :]
                out.write(body)
                done += len(body)
                if progress is not None:
                    progress(done, None)
            held += self._more()
