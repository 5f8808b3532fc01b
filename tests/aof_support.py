"""Helpers for AOF tests that ask a real server: write commands as RESP, and start a
redis-server with ``appendonly yes`` on an AOF to see whether it starts and loads it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

from toolkit.errors import ServerError
from toolkit.server.process import RedisServer, ServerBinary, free_port

LOAD_TIMEOUT = 30.0


def resp(*args: bytes | str | int) -> bytes:
    """One command as Redis writes it to an AOF."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def aof(*commands: tuple[bytes | str | int, ...]) -> bytes:
    """Several commands, one after the other."""
    return b"".join(resp(*c) for c in commands)


class Load(NamedTuple):
    """What a server did with an AOF: started and loaded it (with its key count), or not."""

    loads: bool
    keys: int
    log: str


def server_load(binary: ServerBinary, source: Path, **config: str) -> Load:
    """Start ``binary`` with ``appendonly yes`` on a copy of ``source`` (a single AOF file,
    loaded as ``appendonly.aof``, or an ``appendonlydir/``) in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="rbkit-aofload-") as d:
        directory = Path(d)
        if source.is_dir():
            shutil.copytree(source, directory / "appendonlydir")
        else:
            shutil.copyfile(source, directory / "appendonly.aof")
        settings = {"appendonly": "yes", **config}
        server = RedisServer(binary, directory, free_port(), settings)
        try:
            server.start(timeout=LOAD_TIMEOUT)
        except ServerError as e:
            return Load(False, 0, str(e))
        try:
            keys = sum(
                int(info["keys"])
                for name, info in server.client().info("keyspace").items()
                if name.startswith("db")
            )
        finally:
            server.stop()
        return Load(True, keys, server.log_tail(3))
