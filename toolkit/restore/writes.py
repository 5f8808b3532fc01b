"""Client writes on a live target: count the ones it accepted, and hold new ones off.

A server's ``INFO commandstats`` counts every command it executed for a client (scripts' and
transactions' inner commands included; loading an AOF or RDB counts nothing), so the calls of
the commands ``COMMAND`` flags ``write`` are the writes clients made since it started. The
restore compares that number before and after it stops writes (``CLIENT PAUSE ... WRITE``,
Redis >= 6.2): a write acknowledged by a server is then never lost unnoticed, and a rollback
knows whether the server it would stop holds writes that are nowhere else.

A pause blocks writing clients (they wait; nothing is refused) and is renewed by a thread for
as long as rbkit holds it; if rbkit dies, it lapses by itself within :data:`PAUSE_MS`.

A server rbkit starts itself is started refusing writes (:data:`REFUSE_WRITES`: a
``min-replicas-to-write`` no server can meet, so every write is answered ``-NOREPLICAS``),
because a small dataset loads faster than rbkit can send its pause; the pause's release puts
the setting back. If rbkit dies in between, the server goes on refusing writes (nothing is
acknowledged, so nothing can be lost) until ``rbkit restore --rollback DIR`` or a rerun.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import redis

PAUSE_MS = 10_000  # how long one CLIENT PAUSE lasts; renewed every RENEW_SECONDS
RENEW_SECONDS = 2.0
REFUSE_WRITES = ("--min-replicas-to-write", "1000000")  # start arguments: no write accepted


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def write_commands(client: redis.Redis) -> frozenset[str]:
    """The names ``INFO commandstats`` uses (``set``, ``xgroup|create``) of every command
    this server flags ``write``."""
    names: set[str] = set()

    def visit(name: str, flags: object, subcommands: object) -> None:
        if "write" in {_text(f) for f in flags or ()}:  # type: ignore[attr-defined]
            names.add(name.lower())
        for sub in subcommands or ():  # type: ignore[attr-defined]
            visit(_text(sub[0]), sub[2], sub[9] if len(sub) > 9 else None)

    for name, entry in client.command().items():
        visit(_text(name), entry.get("flags"), entry.get("subcommands"))
    return frozenset(names)


def write_calls(client: redis.Redis, names: frozenset[str]) -> int:
    """How many write commands the server has executed for clients since it started."""
    stats = client.info("commandstats")
    return sum(
        int(v.get("calls", 0))
        for k, v in stats.items()
        if k.removeprefix("cmdstat_").lower() in names
    )


def can_pause(version: tuple[int, ...]) -> bool:
    """CLIENT PAUSE ... WRITE exists from Redis 6.2 on (before, a pause stops readers too)."""
    return version >= (6, 2)


class WritePause:
    """``CLIENT PAUSE <PAUSE_MS> WRITE`` on the server ``connect()`` reaches, renewed until
    :meth:`release` (``CLIENT UNPAUSE``). Works on a server still loading its data."""

    def __init__(self, connect: Callable[[], redis.Redis], replicas_to_write: str = "0") -> None:
        self._connect = connect
        self._replicas_to_write = replicas_to_write  # the setting to put back on release
        self.refusing = False  # the server was started with REFUSE_WRITES
        self._client: redis.Redis | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        return self._client is not None

    def hold(self) -> None:
        """Pause writes now (raises redis.RedisError if the server refuses or is not up)."""
        client = self._client or self._connect()
        client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")
        self._client = client
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._renew, name="rbkit-pause", daemon=True)
            self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            client = self._client
            if client is None:
                return
            with contextlib.suppress(redis.RedisError, OSError):
                client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")

    def release(self) -> None:
        """Let writes through again (quietly: the server may be gone already)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        client, self._client = self._client, None
        if client is None and self.refusing:
            with contextlib.suppress(redis.RedisError, OSError):
                client = self._connect()
        if client is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                if self.refusing:
                    client.config_set("min-replicas-to-write", self._replicas_to_write)
                    self.refusing = False
                client.execute_command("CLIENT", "UNPAUSE")
            client.close()
