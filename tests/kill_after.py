"""Run rbkit with a fault injected from outside the product.

    python tests/kill_after.py FAULT ARGS...   runs ``rbkit ARGS`` with FAULT:

- ``STEP`` / ``STEP:TERM``: SIGKILL (a crash, ``kill -9``) or SIGTERM (an operator's kill)
  right after the restore journal records STEP done;
- ``STEP:begin``: SIGKILL right after the journal records STEP begun, before it runs;
- ``call:MODULE.FUNCTION``: SIGKILL when that function is called (e.g. inside the stage);
- ``replace:PATH``: once the restore has taken its private copy, overwrite the original
  backup with the bytes of PATH;
- ``tamper``: just before the install, flip a byte of the restore's private copy;
- ``acked:N``: SIGKILL once a network restore's journal records its N-th acknowledged batch;
- ``drop:N``: then, instead, the target closes every other client's connection (CLIENT KILL
  TYPE normal SKIPME yes): the restore loses its connections;
- ``chunk-drop``: the same once the chunks of the first key written in chunks are sent,
  before its RENAME, and the target takes no new connection (maxclients 1) until rbkit
  ends: the temporary key stays on the target.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path

import redis

from toolkit.cli.app import main
from toolkit.restore import files, procedure
from toolkit.restore.journal import Journal


def _kill(sig: signal.Signals = signal.SIGKILL) -> None:
    os.kill(os.getpid(), sig)


def _on_journal(step: str, status: str, sig: signal.Signals) -> None:
    original = Journal.write

    def write(self: Journal, name: str, state: str, **detail: object) -> None:
        original(self, name, state, **detail)
        if name == step and state == status:
            _kill(sig)

    Journal.write = write  # type: ignore[method-assign]


def _on_call(target: str) -> None:
    """SIGKILL when MODULE's global FUNCTION is called (the name as MODULE calls it)."""
    module_name, _, function = target.rpartition(".")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, function))
    setattr(module, function, lambda *_a, **_k: _kill())


def _on_network_ack(n: int, drop: bool) -> None:
    from toolkit.restore.network.resume import Journal as NetworkJournal

    original = NetworkJournal.acked
    seen = 0

    def acked(
        self: NetworkJournal, through: int, restored: dict[str, int], walked: dict[str, object]
    ) -> None:
        nonlocal seen
        original(self, through, restored, walked)
        seen += 1
        if seen != n:
            return
        if not drop:
            _kill()
        client = redis.Redis.from_url(self.header.target)
        client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        client.close()

    NetworkJournal.acked = acked  # type: ignore[method-assign]


_kept: list[redis.Redis] = []


def _drop_after_chunks() -> None:
    from toolkit.restore.network import chunked

    original = chunked._send

    def send(client: redis.Redis, commands: list[chunked.Command]) -> str | None:
        error = original(client, commands)
        where = client.connection_pool.connection_kwargs
        killer = redis.Redis(host=where["host"], port=where["port"])
        killer.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        # No new connection either (redis-py would reconnect) until this process ends.
        killer.config_set("maxclients", 1)
        _kept.append(killer)
        return error

    chunked._send = send  # type: ignore[assignment]


def _replace_after_copy(source: Path, backup: Path) -> None:
    original = procedure._copy

    def copy(*args: object, **kwargs: object) -> files.PrivateCopy:
        private = original(*args, **kwargs)  # type: ignore[arg-type]
        backup.write_bytes(source.read_bytes())
        return private

    procedure._copy = copy  # type: ignore[assignment]


def _tamper_before_install() -> None:
    original = files.install

    def install(
        item: files.Item,
        data_dir: Path,
        owner: files.Owner,
        private: files.PrivateCopy | None = None,
    ) -> None:
        assert private is not None
        path = private.backup
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        original(item, data_dir, owner, private)

    files.install = install  # type: ignore[assignment]


if __name__ == "__main__":
    fault, args = sys.argv[1], sys.argv[2:]
    kind, _, arg = fault.partition(":")
    if kind == "chunk-drop":
        _drop_after_chunks()
    elif kind in ("acked", "drop"):
        _on_network_ack(int(arg), kind == "drop")
    elif kind == "call":
        _on_call(arg)
    elif kind == "replace":
        _replace_after_copy(Path(arg), Path(args[1]))
    elif kind == "tamper":
        _tamper_before_install()
    elif arg == "begin":
        _on_journal(kind, "begin", signal.SIGKILL)
    else:
        _on_journal(kind, "done", signal.SIGTERM if arg == "TERM" else signal.SIGKILL)
    sys.argv = ["rbkit", *args]
    main()
