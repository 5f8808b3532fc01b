"""The node tables of a cluster: ``nodes.conf`` (what each node writes, clusterLoadConfig's
format) and ``nodes.json`` (what ``redis-cli --cluster backup`` writes).

``nodes.conf``: one line per node, words split as sdssplitargs does::

    <id> <ip:port@cport[,hostname[,aux=value...]]> <flags> <master id or -> <ping-sent>
    <pong-recv> <config-epoch> <link-state> <slot or first-last or [slot->-id] or [slot-<-id]>...

and a ``vars currentEpoch N lastVoteEpoch M`` line. Flags are comma-separated (``myself``,
``master``, ``slave``, ``fail``, ...); ``[slot->-id]`` is a slot being migrated to node id,
``[slot-<-id]`` one being imported from it (they are not owned slots).

``nodes.json`` (redis-cli.c, clusterManagerNodeGetJSON): an array of objects with ``name``,
``host``, ``port``, ``replicate`` (the master's id, or null), ``slots`` (a list of
``[first, last]`` or ``[slot]`` runs), ``slots_count``, ``flags``, ``current_epoch``, and
optionally ``migrating`` / ``importing`` (slot -> node id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from parsers.cluster.slots import SLOTS
from parsers.errors import CorruptError
from parsers.sds import split_args

_HEX = set("0123456789abcdef")


@dataclass
class Node:
    """One node of a node table."""

    id: str
    address: str  # ip:port (without the bus port)
    flags: frozenset[str]
    master: str | None  # the id of the master this node replicates, or None
    config_epoch: int = 0
    slots: set[int] = field(default_factory=set)  # owned slots
    migrating: dict[int, str] = field(default_factory=dict)  # slot -> to node id
    importing: dict[int, str] = field(default_factory=dict)  # slot -> from node id

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def myself(self) -> bool:
        return "myself" in self.flags


@dataclass
class NodeTable:
    """A table of nodes; ``current_epoch`` from the vars line (nodes.conf)."""

    nodes: list[Node]
    current_epoch: int | None = None

    def by_id(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    @property
    def myself(self) -> Node | None:
        return next((n for n in self.nodes if n.myself), None)


def _node_id(word: str, at: int, what: str) -> str:
    if len(word) != 40 or not set(word) <= _HEX:
        raise CorruptError(f"{what} {word[:60]!r} is not a 40-character node id", at)
    return word


def _slot(word: str, at: int) -> int:
    if not word.isdigit() or int(word) >= SLOTS:
        raise CorruptError(f"slot {word[:20]!r} is not a number from 0 to {SLOTS - 1}", at)
    return int(word)


def parse_nodes_conf(data: bytes) -> NodeTable:
    """Read a nodes.conf. Raises CorruptError (offset: the start of the bad line)."""
    nodes: list[Node] = []
    epoch = None
    at = 0
    for raw in data.split(b"\n"):
        line_at, at = at, at + len(raw) + 1
        if not raw.strip():
            continue
        words_b = split_args(raw)
        if words_b is None:
            raise CorruptError("unbalanced quotes in a nodes.conf line", line_at)
        words = [w.decode("utf-8", "replace") for w in words_b]
        if words[0].lower() == "vars":
            pairs = dict(zip(words[1::2], words[2::2], strict=False))
            value = pairs.get("currentEpoch", "")
            epoch = int(value) if value.isdigit() else None
            continue
        if len(words) < 8:
            raise CorruptError(
                f"a nodes.conf line of {len(words)} words, expected at least 8", line_at
            )
        node_id = _node_id(words[0], line_at, "node id")
        address = words[1].split(",")[0].split("@")[0]
        if ":" not in address:
            raise CorruptError(f"address {address[:60]!r} has no port", line_at)
        flags = frozenset(f.lower() for f in words[2].split(","))
        master = None if words[3].startswith("-") else _node_id(words[3], line_at, "master id")
        node = Node(
            node_id,
            address,
            flags,
            master,
            config_epoch=int(words[6]) if words[6].isdigit() else 0,
        )
        for word in words[8:]:
            if word.startswith("["):
                slot, arrow, other = _moving(word, line_at)
                (node.migrating if arrow == ">" else node.importing)[slot] = other
            elif "-" in word:
                first, last = word.split("-", 1)
                node.slots.update(range(_slot(first, line_at), _slot(last, line_at) + 1))
            else:
                node.slots.add(_slot(word, line_at))
        nodes.append(node)
    return NodeTable(nodes, epoch)


def _moving(word: str, at: int) -> tuple[int, str, str]:
    """``[slot->-id]`` or ``[slot-<-id]``: (slot, '>' or '<', id)."""
    inner = word[1:].rstrip("]")
    slot, sep, rest = inner.partition("-")
    if not sep or rest[:2] not in (">-", "<-"):
        raise CorruptError(f"slot state {word[:60]!r}, expected [slot->-id] or [slot-<-id]", at)
    return _slot(slot, at), rest[0], _node_id(rest[2:], at, "node id")


def parse_nodes_json(data: bytes) -> NodeTable:
    """Read the nodes.json of ``redis-cli --cluster backup``. Raises CorruptError."""
    try:
        items = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise CorruptError(f"not JSON: {e}", getattr(e, "pos", 0) or 0) from None
    if not isinstance(items, list):
        raise CorruptError("expected a JSON array of nodes", 0)
    nodes = []
    for i, item in enumerate(items):
        try:
            node = Node(
                _node_id(str(item["name"]), 0, f"node {i}: name"),
                f"{item['host']}:{int(item['port'])}",
                frozenset(str(item.get("flags", "")).split(",")) - {""},
                item.get("replicate") or None,
                config_epoch=0,
            )
            for run in item.get("slots") or []:
                first, last = (run[0], run[-1]) if run else (0, -1)
                node.slots.update(range(_slot(str(first), 0), _slot(str(last), 0) + 1))
            for key, moved in (item.get("migrating") or {}).items():
                node.migrating[_slot(str(key), 0)] = str(moved)
            for key, moved in (item.get("importing") or {}).items():
                node.importing[_slot(str(key), 0)] = str(moved)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise CorruptError(f"node {i}: {type(e).__name__} {e}", 0) from None
        if node.master is None and "slave" not in node.flags:
            node.flags |= {"master"}
        nodes.append(node)
    return NodeTable(nodes, None)
