"""A live Redis Cluster as one diff side: every primary's keys read into one table, and the keys
read again (before being called changed) on the primary that owns their slot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis

from toolkit.diff.live import LiveKey, LiveServer
from toolkit.errors import ConnectError, DiffError, UsageError

if TYPE_CHECKING:
    from redis.cluster import RedisCluster


def is_cluster_node(server: LiveServer) -> bool:
    """Does the server say ``cluster_enabled:1``?"""
    try:
        info = server.client(0).info("cluster")
    except redis.RedisError:
        return False
    return str(info.get("cluster_enabled", "0")) == "1"


class ClusterLive:
    """The primaries of the cluster ``seed`` belongs to, each a LiveServer; ``read_keys``
    routes each key to the primary owning its slot (LiveServer's interface)."""

    def __init__(self, seed: LiveServer) -> None:
        self.seed = seed
        try:
            self.rc: RedisCluster = seed.server.cluster()
            primaries = self.rc.get_primaries()
        except (redis.RedisError, UsageError, ConnectError) as e:
            raise DiffError(f"{seed.name}: reading the cluster's nodes failed: {e}") from None
        self.nodes: dict[str, LiveServer] = {}
        for node in primaries:
            same = (node.host, int(node.port)) == _host_port(seed.server.address)
            live = seed if same else LiveServer(seed.server.at(node.host, int(node.port)))
            self.nodes[node.name] = live
        self.name = seed.name
        self.version = seed.version

    def read_keys(self, db: int, keys: Sequence[bytes], *, values: bool) -> list[LiveKey | None]:
        groups: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(self.rc.get_node_from_key(key).name, []).append(i)
        out: list[LiveKey | None] = [None] * len(keys)
        for name, where in groups.items():
            node = self.nodes.get(name)
            if node is None:
                raise DiffError(f"{self.name}: slot owner {name} is not a primary read")
            got = node.read_keys(db, [keys[i] for i in where], values=values)
            for i, one in zip(where, got, strict=True):
                out[i] = one
        return out

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()
        if all(node is not self.seed for node in self.nodes.values()):
            self.seed.close()
        self.rc.close()


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0
