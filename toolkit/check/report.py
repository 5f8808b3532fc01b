"""The ``check --json`` report (schema rbkit.check/1): field names are a contract."""

from __future__ import annotations

from typing import Any

from toolkit.check.inventory import BigKey, Inventory
from toolkit.check.keys import key_fields
from toolkit.check.result import AofDetails, CheckResult, Partial

SCHEMA = "rbkit.check/1"


def check_report(result: CheckResult) -> dict[str, Any]:
    """The JSON object for one checked backup (schemas/rbkit.check-1.json)."""
    inv = result.inventory
    checksum = result.checksum
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "path": result.name,
        "format": result.format,
        "valid": result.valid,
        "size": result.size,
        "magic": result.magic,
        "rdb_version": result.rdb_version,
        "min_release": result.min_release,
        "validation": "quick" if result.quick else "full",
        "verdict": result.verdict,
        "checked_at_ms": result.checked_at_ms,
        "checksum": {
            "status": checksum.status if checksum else "unverified",
            "stored": _hex(checksum.stored) if checksum else None,
            "computed": _hex(checksum.computed) if checksum else None,
        },
        "problems": [p.to_json() for p in result.problems],
        "aux": result.aux,
        "databases": {},
        "totals": {"keys": 0, "expires": 0, "expired_at_check": 0, "bytes": 0},
        "functions": [],
        "modules": [],
        "biggest": [],
        "biggest_by_elements": [],
        "notes": result.notes,
        "approximate": bool(result.aof and result.aof.approximate),
    }
    if result.aof is not None:
        report["aof"] = _aof(result.aof)
    report["partial"] = _partial(result.partial) if result.partial is not None else None
    if inv is not None:
        report.update(inventory_fields(inv))
    return report


def inventory_fields(inv: Inventory) -> dict[str, Any]:
    """The inventory's fields of a report: databases, totals, functions, modules, biggest."""
    return {
        "databases": _databases(inv),
        "totals": _totals(inv),
        "functions": inv.functions,
        "modules": inv.modules,
        "biggest": [_big(k) for k in inv.biggest_by_bytes],
        "biggest_by_elements": [_big(k, inv.bytes_known) for k in inv.biggest_by_elements],
    }


def _databases(inv: Inventory) -> dict[str, Any]:
    return {
        str(db): {
            "keys": s.keys,
            "expires": s.expires,
            "expired_at_check": s.expired_at_check,
            "empty": s.empty,
            "bytes": s.bytes if inv.bytes_known else None,
            "by_type": s.by_type,
        }
        for db, s in inv.databases.items()
    }


def _totals(inv: Inventory) -> dict[str, int | None]:
    return {
        "keys": inv.keys,
        "expires": inv.expires,
        "expired_at_check": sum(s.expired_at_check for s in inv.databases.values()),
        "bytes": sum(s.bytes for s in inv.databases.values()) if inv.bytes_known else None,
    }


def _partial(partial: Partial) -> dict[str, Any]:
    """What was read before the damage: the keys per db and type, and the last good key."""
    last = partial.last_key
    return {
        "databases": _databases(partial.inventory),
        "totals": _totals(partial.inventory),
        "last_good_key": (
            {"db": last[0], **key_fields(last[1]), "offset": last[2]} if last else None
        ),
        "damage_at": partial.damage_at,
    }


def _hex(value: int | None) -> str | None:
    return None if value is None else f"{value:016x}"


def _big(k: BigKey, bytes_known: bool = True) -> dict[str, Any]:
    return {
        "db": k.db,
        **key_fields(k.key),
        "type": k.type,
        "elements": k.elements,
        "bytes": k.bytes if bytes_known else None,
    }


def _aof(aof: AofDetails) -> dict[str, Any]:
    return {
        "layout": aof.layout,
        "manifest": aof.manifest,
        "files": [
            {
                "name": f.name,
                "role": f.role,
                "seq": f.seq,
                "size": f.size,
                "format": f.format,
                "commands": f.commands,
                "checked": f.checked,
                "start_offset": f.start_offset,
                "end_offset": f.end_offset,
            }
            for f in aof.files
        ],
        "commands": dict(aof.commands.most_common()),
        "commands_by_db": {str(db): n for db, n in sorted(aof.commands_by_db.items())},
        "first_ts": aof.first_ts,
        "last_ts": aof.last_ts,
        "unknown_commands": dict(aof.unknown_commands.most_common()),
        "approximate": aof.approximate,
        "command_table": {"server": aof.command_table, "why": aof.command_table_why},
        "modules": aof.modules,
    }
