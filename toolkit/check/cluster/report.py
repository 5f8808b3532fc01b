"""The ``check --cluster --json`` report (schema rbkit.cluster-check/1): field names are a
contract."""

from __future__ import annotations

from typing import Any

from parsers.cluster.slots import ranges
from toolkit.check.cluster.verdict import ClusterCheck, ShardCheck
from toolkit.check.keys import key_fields
from toolkit.check.report import check_report, inventory_fields

SCHEMA = "rbkit.cluster-check/1"


def _runs(runs: list[tuple[int, int]]) -> list[list[int]]:
    return [[a, b] for a, b in runs]


def cluster_report(check: ClusterCheck) -> dict[str, Any]:
    """The JSON object for a checked cluster backup set (schemas/rbkit.cluster-check-1.json)."""
    owners = dict(check.missing_owners)
    return {
        "schema": SCHEMA,
        "path": check.path,
        "layout": check.layout,
        "valid": check.valid,
        "verdict": check.verdict,
        "checked_at_ms": check.checked_at_ms,
        "problems": [p.to_json() for p in check.problems],
        "slots": {
            "missing": [{"range": [a, b], "node": owners.get((a, b))} for a, b in check.missing],
            "doubled": [{"range": [a, b], "shards": names} for (a, b), names in check.doubled],
        },
        "strays": check.strays,
        "shards": [_shard(s) for s in check.shards],
        **inventory_fields(check.inventory),
    }


def _shard(s: ShardCheck) -> dict[str, Any]:
    node = s.shard.node
    declared = s.slot_info
    return {
        "name": s.name,
        "backup": str(s.shard.backup) if s.shard.backup is not None else None,
        "node": {"id": node.id, "address": node.address} if node is not None else None,
        "replica_of": node.master if node is not None else None,
        "slots": _runs(ranges(s.shard.slots)),
        "verdict": s.verdict,
        "error": s.error,
        "keys": s.result.inventory.keys if s.result and s.result.inventory else None,
        "strays": s.strays,
        "stray_examples": [{**key_fields(k), "slot": slot} for k, slot in s.stray_examples],
        "slot_info": None
        if declared is None
        else {"slots": len(declared), "mismatched": _runs(ranges(s.slot_info_mismatches))},
        "check": check_report(s.result) if s.result is not None else None,
    }
