"""The check report as text: the verdict first, then tables (as wide as their data) and prose
wrapped to the width (toolkit/text.py)."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from parsers.printable import printable
from parsers.rdb.constants import REDIS_TYPES
from toolkit.check.inventory import Inventory
from toolkit.check.result import CheckResult, Partial
from toolkit.text import count, headline, layout, plural, pre, size, utc_iso, utc_iso_text

_TYPES = REDIS_TYPES
# The aux fields the text report shows, and how: ctime is a Unix time in seconds.
_AUX_SHOWN = {"redis-ver": str, "valkey-ver": str, "ctime": utc_iso_text}


def _line(text: str) -> str:
    """Composed text (a path, a note, a problem) kept on one line, nothing left raw."""
    return printable(text, composed=True)


def render_check(result: CheckResult, *, strict: bool = False, width: int | None = None) -> str:
    """The check report as text: verdict, problems, per-db table, biggest keys, extras; prose
    wrapped to ``width``."""
    out: list[str] = []
    why = ""
    if not result.valid or (strict and result.warnings):
        verdict = "INVALID"
    elif result.quick:
        verdict = "STRUCTURE NOT VALIDATED"
        why = " (--quick: the framing has no errors; values unchecked)"
    else:
        verdict = "VALID"
    version = (
        f"{result.magic} RDB {result.rdb_version} (Redis {result.min_release}+)"
        if result.magic == "REDIS"
        else f"{result.magic} RDB {result.rdb_version} ({result.min_release}+)"
        if result.magic
        else "unknown"
    )
    checksum = result.checksum.status if result.checksum else "unverified"
    out.append(headline(f"{_line(result.name)}: {verdict}", why))
    for note in result.notes:
        out.append(f"  note: {_line(note)}")
    if result.aof is not None:
        out.extend(_aof_lines(result, version, checksum))
    else:
        out.append(f"  format {version}, {size(result.size)}, checksum {checksum}")
    if result.problems:
        out.append("")
        out.append(_problem_table(result))
    if result.partial is not None:
        out.append("")
        out.extend(_partial_lines(result.partial))
    inv = result.inventory
    if inv is not None and inv.databases:
        out.append("")
        out.append(pre(db_table(inv)))
    elif inv is not None:
        out.append("")
        out.append("no keys")
    if inv is not None and inv.biggest_by_bytes:
        out.append("")
        out.append(
            pre(
                tabulate(
                    [
                        (
                            k.db,
                            printable(k.key[:60]),
                            printable(k.type),
                            count(k.elements),
                            size(k.bytes),
                        )
                        for k in inv.biggest_by_bytes
                    ],
                    headers=("db", "biggest keys", "type", "elements", "bytes"),
                    disable_numparse=True,
                    colalign=("right", "left", "left", "right", "right"),
                )
            )
        )
    if inv is not None and (inv.functions or inv.modules):
        out.append("")
        if inv.functions:
            out.append("functions: " + ", ".join(map(printable, inv.functions)))
        if inv.modules:
            out.append("modules: " + ", ".join(map(printable, inv.modules)))
    if result.aux:
        shown = {k: _AUX_SHOWN[k](v) for k, v in result.aux.items() if k in _AUX_SHOWN}
        if shown:
            out.append("")
            out.append("  ".join(f"{k}={printable(v)}" for k, v in shown.items()))
    return layout(out, width)


def _problem_table(result: CheckResult) -> str:
    """Severity, code, offset and message: a table, as wide as its longest message."""
    rows = [
        (p.severity, p.code, "" if p.offset is None else str(p.offset), _line(p.message))
        for p in result.problems
    ]
    return pre(
        tabulate(
            rows,
            headers=("severity", "code", "offset", "message"),
            disable_numparse=True,
            colalign=("left", "left", "right", "left"),
        )
    )


def db_table(inv: Inventory) -> str:
    """Per db: keys, expiries, bytes (``-`` where not computed: an AOF's model has no
    encodings) and keys per type; a total row when there are several."""
    extra = sorted({t for s in inv.databases.values() for t in s.by_type} - set(_TYPES))
    shown_extra = [printable(t) for t in extra]  # module type names come from the file
    rows: list[list[Any]] = []
    for db, s in inv.databases.items():
        rows.append(
            [db, s.keys, s.expires, s.expired_at_check, s.bytes if inv.bytes_known else None]
            + [s.by_type.get(t, 0) for t in (*_TYPES, *extra)]
        )
    if len(inv.databases) > 1:
        totals = [sum(r[i] for r in rows) for i in range(5, len(rows[0]))]
        rows.append(
            [
                "all",
                inv.keys,
                inv.expires,
                sum(s.expired_at_check for s in inv.databases.values()),
                sum(s.bytes for s in inv.databases.values()) if inv.bytes_known else None,
                *totals,
            ]
        )
    cells = [[str(r[0]), *map(count, r[1:4]), size(r[4]), *map(count, r[5:])] for r in rows]
    headers = ("db", "keys", "expires", "expired now", "bytes", *_TYPES, *shown_extra)
    return tabulate(
        cells,
        headers=headers,
        disable_numparse=True,
        colalign=("left", *("right",) * (len(headers) - 1)),
    )


def _partial_lines(partial: Partial) -> list[str]:
    """What was read before the damage (redis-check-rdb says "N keys read")."""
    inv = partial.inventory
    where = "" if partial.damage_at is None else f" at offset {partial.damage_at}"
    head = f"read before the damage{where}: {plural(inv.keys, 'key')}"
    last = partial.last_key
    if last is not None:
        db, key, offset = last
        head += f"; the last good key is '{printable(key[:60])}' in db {db} at offset {offset}"
    lines = [head]
    if inv.databases:
        lines.append(pre(db_table(inv)))
    return lines


def _aof_lines(result: CheckResult, version: str, checksum: str) -> list[str]:
    aof = result.aof
    assert aof is not None
    total = sum(aof.commands.values())
    head = f"  format AOF ({aof.layout}), {plural(total, 'command')}"
    if result.magic:
        head += f", RDB part {version}, checksum {checksum}"
    lines = [head]
    if aof.command_table:
        why = _line(aof.command_table_why)
        lines.append(f"  commands judged by the {aof.command_table} table ({why})")
    if aof.modules:
        given = ", ".join(map(printable, aof.modules))
        lines.append(f"  modules the loading server has: {given}")
    if aof.approximate:
        lines.append("  inventory: approximate (see the warning)")
    lines.append("")
    lines.append(
        pre(
            tabulate(
                [
                    (
                        printable(f.name),
                        f.role,
                        "" if f.seq is None else str(f.seq),
                        size(f.size),
                        f.format,
                        count(f.commands) if f.checked else "not read",
                    )
                    for f in aof.files
                ],
                headers=("file", "role", "seq", "size", "format", "commands"),
                disable_numparse=True,
                colalign=("left", "left", "right", "right", "left", "right"),
            )
        )
    )
    if aof.commands:
        top = ", ".join(
            f"{printable(name.encode('latin-1'))} {count(n)}"
            for name, n in aof.commands.most_common(8)
        )
        lines.append("")
        lines.append(f"commands: {top}")
    if aof.first_ts is not None:
        last = "?" if aof.last_ts is None else utc_iso(aof.last_ts * 1000)
        lines.append(f"#TS annotations from {utc_iso(aof.first_ts * 1000)} to {last}")
    return lines
