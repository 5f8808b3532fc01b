"""The ``check --cluster`` report as text: the set's verdict, its problems, one line per shard,
slot coverage, and the inventory of the whole set."""

from __future__ import annotations

from tabulate import tabulate

from parsers.cluster.slots import SLOTS, ranges, ranges_text
from parsers.printable import printable
from toolkit.check.cluster.verdict import ClusterCheck
from toolkit.check.render import db_table
from toolkit.text import count, headline, layout, plural, pre


def _line(text: str) -> str:
    return printable(text, composed=True)


def render_cluster(check: ClusterCheck, *, strict: bool = False, width: int | None = None) -> str:
    """Verdict, problems, the shard table, slot coverage and the set's inventory."""
    failed = not check.valid or (strict and check.warnings)
    out = [
        headline(
            f"{_line(check.path)}: {'INVALID' if failed else 'VALID'}",
            f" (cluster backup set, {plural(len(check.shards), 'shard')}, layout {check.layout})",
        )
    ]
    for p in check.problems:
        out.append(f"  {p.severity} {p.code}: {_line(p.message)}")
    rows = []
    for s in check.shards:
        node = s.shard.node
        rows.append(
            (
                _line(s.name),
                _line(f"{node.address} {node.id[:8]}") if node else "?",
                ranges_text(ranges(s.shard.slots)) or "none",
                s.verdict.upper(),
                count(s.result.inventory.keys) if s.result and s.result.inventory else "-",
                count(s.strays),
            )
        )
    out.append("")
    out.append(
        pre(
            tabulate(
                rows,
                headers=("shard", "node", "slots", "verdict", "keys", "strays"),
                disable_numparse=True,
                colalign=("left", "left", "left", "left", "right", "right"),
            )
        )
    )
    out.append("")
    if not check.missing and not check.doubled:
        out.append(f"slots: all {SLOTS} owned by exactly one shard")
    else:
        missing = sum(b - a + 1 for a, b in check.missing)
        doubled = sum(b - a + 1 for (a, b), _ in check.doubled)
        out.append(f"slots: {count(missing)} missing, {count(doubled)} owned twice")
    out.append(
        f"keys: {count(check.inventory.keys)} in all, {count(check.strays)} outside their "
        "shard's slots"
    )
    declared = [s for s in check.shards if s.slot_info is not None]
    if declared:
        agree = sum(1 for s in declared if not s.slot_info_mismatches)
        out.append(f"slot info in the files: {agree} of {len(declared)} agree with their keys")
    for s in check.shards:
        if s.result is not None and not s.result.valid:
            out.append("")
            out.append(f"shard {_line(s.name)}:")
            for p in s.result.problems:
                at = "" if p.offset is None else f" at {p.offset}"
                out.append(f"  {p.severity} {p.code}{at}: {_line(p.message)}")
    if check.inventory.databases:
        out.append("")
        out.append(pre(db_table(check.inventory)))
    return layout(out, width)
