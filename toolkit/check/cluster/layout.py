"""Which shards a cluster backup set holds, and which slots each one owns.

Two layouts are read:

- ``folders``: one folder per shard, holding the node's backup (``dump.rdb``, another single
  ``*.rdb``, or ``appendonlydir/``) and the ``nodes.conf`` the node wrote (or a single
  ``nodes*.conf``). The shard is the node marked ``myself`` there; a replica's backup holds its
  master's slots.
- ``redis-cli``: what ``redis-cli --cluster backup HOST:PORT DIR`` writes: ``nodes.json`` and
  one ``redis-node-<ip>-<port>-<id>.rdb`` per master (redis-cli.c,
  clusterManagerGetNodeRDBFilename). A master listed there without its file is a shard whose
  backup is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from parsers.cluster.nodes import Node, NodeTable, parse_nodes_conf, parse_nodes_json
from parsers.errors import FormatError
from toolkit.check.locate import MULTIPART, RDB
from toolkit.errors import BackupIOError

FOLDERS = "folders"
REDIS_CLI = "redis-cli"
NODES_JSON = "nodes.json"


@dataclass
class Shard:
    """One shard of a set: its backup (None when missing) and the slots it owns."""

    name: str  # the folder name, or the node's ip:port in the redis-cli layout
    backup: Path | None
    kind: str  # RDB or MULTIPART (locate's kinds)
    node: Node | None  # the node whose data this is (myself of its nodes.conf)
    owner: Node | None  # the master owning the slots: the node, or a replica's master
    table: NodeTable | None
    notes: list[str] = field(default_factory=list)
    problem: str | None = None  # why this shard cannot be judged (bad nodes.conf...)

    @property
    def slots(self) -> set[int]:
        return set(self.owner.slots) if self.owner is not None else set()


@dataclass
class ClusterSet:
    path: Path
    layout: str
    shards: list[Shard]
    tables: list[NodeTable]  # every node table read (for naming absent shards' nodes)


def is_set(path: Path) -> bool:
    """Does ``path`` look like a cluster backup set (either layout)?"""
    if not path.is_dir():
        return False
    if (path / NODES_JSON).is_file():
        return True
    return any(p.is_dir() and _nodes_file(p) is not None for p in path.iterdir())


def read_set(path: Path) -> ClusterSet:
    """The shards of the set at ``path``. Raises BackupIOError when it is no set at all."""
    if not path.is_dir():
        raise BackupIOError(f"{path}: expected a folder holding a cluster's backup set")
    if (path / NODES_JSON).is_file():
        return _redis_cli_set(path)
    folders = sorted(p for p in path.iterdir() if p.is_dir())
    if not any(_nodes_file(p) is not None for p in folders):
        raise BackupIOError(
            f"{path}: no shard folders (a folder per shard with its backup and nodes.conf) "
            f"and no {NODES_JSON} (redis-cli --cluster backup)"
        )
    # A folder with a backup but no nodes.conf is a shard too, whose slots are unknown.
    folders = [p for p in folders if _nodes_file(p) is not None or _shard_backup(p)[0]]
    shards = [_folder_shard(f) for f in folders]
    tables = [s.table for s in shards if s.table is not None]
    return ClusterSet(path, FOLDERS, shards, tables)


def _nodes_file(folder: Path) -> Path | None:
    if (folder / "nodes.conf").is_file():
        return folder / "nodes.conf"
    found = sorted(folder.glob("nodes*.conf"))
    return found[0] if len(found) == 1 else None


def _folder_shard(folder: Path) -> Shard:
    nodes_file = _nodes_file(folder)
    backup, kind, notes = _shard_backup(folder)
    shard = Shard(folder.name, backup, kind, None, None, None, notes)
    if nodes_file is None:
        shard.problem = f"{folder}: no nodes.conf here: which slots this backup holds is unknown"
        return shard
    try:
        table = parse_nodes_conf(nodes_file.read_bytes())
    except FormatError as e:
        shard.problem = f"{nodes_file}: {e}"
        return shard
    except OSError as e:
        shard.problem = f"{nodes_file}: {e.strerror or e}"
        return shard
    shard.table = table
    me = table.myself
    if me is None:
        shard.problem = f"{nodes_file}: no node is marked 'myself'"
        return shard
    shard.node = me
    shard.owner = table.by_id(me.master) if me.master else me
    if me.master:
        shard.notes.append(f"the backup of a replica of {me.master[:8]}: its master's slots")
        if shard.owner is None:
            shard.problem = f"{nodes_file}: myself replicates {me.master}, not in the table"
    if backup is None:
        shard.problem = f"{folder}: no dump.rdb, other *.rdb or appendonlydir/ here"
    return shard


def _shard_backup(folder: Path) -> tuple[Path | None, str, list[str]]:
    """The backup in a shard folder: dump.rdb, else a single *.rdb, else appendonlydir/."""
    rdbs = sorted(folder.glob("*.rdb"))
    aof_dir = folder / "appendonlydir"
    manifests = sorted(aof_dir.glob("*.manifest")) if aof_dir.is_dir() else []
    rdb = folder / "dump.rdb" if (folder / "dump.rdb").is_file() else None
    if rdb is None and len(rdbs) == 1:
        rdb = rdbs[0]
    if rdb is not None:
        notes = ["appendonlydir/ is here too, not checked"] if manifests else []
        return rdb, RDB, notes
    if len(manifests) == 1:
        return manifests[0], MULTIPART, []
    return None, RDB, []


def _redis_cli_set(path: Path) -> ClusterSet:
    try:
        table = parse_nodes_json((path / NODES_JSON).read_bytes())
    except FormatError as e:
        raise BackupIOError(f"{path / NODES_JSON}: {e}") from None
    except OSError as e:
        raise BackupIOError(f"{path / NODES_JSON}: {e.strerror or e}") from None
    shards = []
    for node in table.nodes:
        if not node.is_master:
            continue
        host, _, port = node.address.rpartition(":")
        file = path / f"redis-node-{host}-{port}-{node.id}.rdb"
        shard = Shard(node.address, file if file.is_file() else None, RDB, node, node, table)
        if shard.backup is None:
            shard.problem = f"{file}: missing (redis-cli saves one per master)"
        shards.append(shard)
    return ClusterSet(path, REDIS_CLI, shards, [table])
