"""A real Redis Cluster on loopback for tests, and its backup set assembled as an operator
would: one folder per shard with the node's dump.rdb and nodes.conf."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import binary

from toolkit.server.process import RedisServer, free_port, running_server


def cluster_node(version: str = "7.0", config: dict[str, str] | None = None) -> Any:
    """A cluster-enabled server on free ports (client and bus), in no cluster yet."""
    settings = {
        "cluster-enabled": "yes",
        "cluster-config-file": "nodes.conf",
        "cluster-port": str(free_port()),
        **(config or {}),
    }
    return running_server(binary(version), config=settings)


@contextlib.contextmanager
def cluster(
    version: str = "7.0", nodes: int = 3, config: dict[str, str] | None = None
) -> Iterator[list[RedisServer]]:
    """``nodes`` primaries on free ports, slots split evenly, met, serving (cluster_state:ok);
    ``config``: more settings for each."""
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(cluster_node(version, config)) for _ in range(nodes)]
        per = 16384 // nodes
        for i, s in enumerate(servers):
            last = 16383 if i == nodes - 1 else (i + 1) * per - 1
            s.client().execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, last)
        for s in servers[1:]:
            servers[0].client().execute_command(
                "CLUSTER", "MEET", "127.0.0.1", s.port, s.config["cluster-port"]
            )
        deadline = time.monotonic() + 30
        while any(s.client().cluster("info")["cluster_state"] != "ok" for s in servers):
            assert time.monotonic() < deadline, "the test cluster did not come up"
            time.sleep(0.05)
        yield servers


def redis_cli(version: str = "7.0") -> Path:
    """The redis-cli next to the test server of ``version`` (Debian's 7.0 is on PATH)."""
    server = binary(version).path
    cli = server.with_name("redis-cli")
    found = cli if cli.is_file() else shutil.which("redis-cli")
    assert found, f"redis-cli is needed next to {server}"
    return Path(found)


def write_with_cli(node: RedisServer, commands: list[list[str]]) -> None:
    """Run ``commands`` through ``redis-cli -c`` (it follows MOVED to the slot's owner)."""
    text = "".join(" ".join(f'"{w}"' for w in cmd) + "\n" for cmd in commands)
    done = subprocess.run(
        [str(redis_cli()), "-c", "-p", str(node.port)],
        input=text.encode(),
        capture_output=True,
        check=True,
    )
    assert b"ERR" not in done.stdout, done.stdout[-500:]


def save_set(nodes: list[RedisServer], into: Path, *, aof: bool = False) -> Path:
    """SAVE every node and copy its dump.rdb and nodes.conf into ``into/shard-N``; ``aof``:
    copy its appendonlydir/ instead (nodes running with appendonly yes)."""
    for i, node in enumerate(nodes):
        folder = into / f"shard-{i}"
        folder.mkdir(parents=True)
        if aof:
            _aof_settled(node)
            shutil.copytree(node.directory / "appendonlydir", folder / "appendonlydir")
        else:
            node.client().save()
            shutil.copy(node.directory / "dump.rdb", folder / "dump.rdb")
        shutil.copy(node.directory / "nodes.conf", folder / "nodes.conf")
    return into


def _aof_settled(node: RedisServer, timeout: float = 60.0) -> None:
    """Wait until no AOF rewrite runs or waits (a node started with appendonly yes writes its
    first base in the background: a copy taken meanwhile misses what the manifest will name)."""
    c = node.client()
    deadline = time.monotonic() + timeout
    while True:
        info = c.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        assert time.monotonic() < deadline, f"{node.port}: AOF rewrite still running"
        time.sleep(0.05)


def owned_ranges(node: RedisServer) -> list[tuple[int, int]]:
    """The slot ranges ``node`` serves, from CLUSTER SLOTS of the live cluster."""
    node_id = node.client().execute_command("CLUSTER", "MYID")
    node_id = node_id.decode() if isinstance(node_id, bytes) else node_id
    out = []
    for first, last, master, *_ in node.client().execute_command("CLUSTER", "SLOTS"):
        mid = master[2].decode() if isinstance(master[2], bytes) else master[2]
        if mid == node_id:
            out.append((int(first), int(last)))
    return sorted(out)
