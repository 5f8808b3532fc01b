"""docs/compat.md against the real servers: every fixture into every server here, rbkit's fit
step agreeing with each server's load (tests/compat_table.py builds the table)."""

from __future__ import annotations

from compat_table import DOC, render, table


def test_rbkit_fits_exactly_what_each_server_loads_and_the_doc_says_so() -> None:
    cells = table()
    disagree = [
        f"{name} into {label}: server {'loads' if c.loads else f'refuses ({c.server_says})'}, "
        f"rbkit {list(c.rbkit_reasons) or 'fits'}"
        for name, row in cells.items()
        for label, c in row.items()
        if not c.agrees
    ]
    assert not disagree, "\n".join(disagree)
    assert DOC.read_text(encoding="utf-8") == render(cells), "run tests/compat_table.py"
