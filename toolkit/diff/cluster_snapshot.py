"""A live Redis Cluster taken as a backup set: every primary's replication snapshot saved in a
scratch folder with the primary's own ``CLUSTER NODES`` (the layout ``rbkit check --cluster``
reads: one folder per shard holding ``dump.rdb`` and ``nodes.conf``), so that the diff reads
the cluster as it reads a saved set, through the C walk instead of SCAN.

The primaries are read one after the other: each snapshot is consistent at its own fork,
the set is not one moment of the whole cluster (nor is a SCAN of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from toolkit.diff.cluster_live import ClusterLive
from toolkit.errors import ServerError
from toolkit.server.snapshot import Snapshot, take_snapshot
from toolkit.steps import ProgressFactory, no_progress, progress_of


@dataclass
class ShardSnapshot:
    folder: Path  # shard-N/ with dump.rdb and nodes.conf
    address: str
    snapshot: Snapshot


def snapshot_set(
    cluster: ClusterLive, directory: Path, progress: ProgressFactory | None = None
) -> list[ShardSnapshot]:
    """Save every primary of ``cluster`` into ``directory`` as a backup set. Raises what
    :func:`~toolkit.server.snapshot.take_snapshot` raises for the first primary that gives
    none (SnapshotRefused, SnapshotFailed, ConnectError), ServerError when a primary does not
    answer CLUSTER NODES."""
    out = []
    for i, live in enumerate(cluster.nodes.values()):
        server = live.server
        folder = directory / f"shard-{i}"
        folder.mkdir()
        client = server.client(timeout=server.connect_timeout)
        try:
            nodes = client.execute_command("CLUSTER", "NODES")
        except (redis.RedisError, OSError) as e:
            raise ServerError(f"{server.display}: CLUSTER NODES failed: {e}") from None
        finally:
            client.close()
        text = nodes.decode() if isinstance(nodes, bytes) else str(nodes)
        (folder / "nodes.conf").write_text(text if text.endswith("\n") else text + "\n")
        label = f"snapshot of {server.display}"
        with progress_of(progress or no_progress, label) as bar:
            snap = take_snapshot(server, folder / "dump.rdb", progress=bar)
        out.append(ShardSnapshot(folder, server.display, snap))
    return out
