"""The diff report's renderers (toolkit/diff/render.py): JSON shape, tables, Markdown.

Most tests render hand-built DiffReports. One diffs two small RDB files written by a real
Redis 7.0 and checks the Markdown's structure and every count and key row against the two
keyspaces as the server held them (read with plain commands: tests/diff_support.py).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from datetime import datetime, timezone

import pytest
from diff_cases import HOUR_MS, PIVOT_MS, Pair, write_pair_with_oracle
from diff_support import Snap, expected_kinds

from toolkit.cli.diff import parse_duration_ms
from toolkit.diff.model import (
    ADDED,
    COUNTS,
    KEYS,
    KINDS,
    REMOVED,
    SIZE,
    TTL_CHANGED,
    TTL_GAINED,
    TTL_LOST,
    TYPE,
    VALUES,
    Counts,
    DbDiff,
    DiffReport,
    KeyDiff,
    KeyState,
    PrefixDiff,
    Source,
)
from toolkit.diff.render import diff_json, duration, render_markdown, render_table, utc_iso

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
SECRET = "s3cr3t-pa55"


def sources() -> tuple[Source, Source]:
    a = Source("rdb", "/backups/before/dump.rdb", T, "aux ctime", "7.0.15", 6, 0.012)
    b = Source(
        "live",
        "redis://alice@127.0.0.1:6390/0",
        T + 3_600_000,
        "server TIME",
        "7.2.4",
        5,
        0.25,
        ["the server changed while it was read: DBSIZE 5 at the start, 6 at the end"],
    )
    return a, b


def keys_report() -> DiffReport:
    """Two dbs; a removed, an expired, an added and a changed key; one non-UTF-8 name."""
    a, b = sources()
    db0 = DbDiff(
        Counts(5, 5, 1, 1, 1, 1, 1),
        2,
        1,
        {"string": Counts(3, 2, 0, 1, 1, 0, 1), "hash": Counts(2, 3, 1, 0, 0, 1, 0)},
    )
    db1 = DbDiff(Counts(1, 0, 0, 1, 0, 0, 0), 0, 0, {"list": Counts(1, 0, 0, 1, 0, 0, 0)})
    keys = [
        KeyDiff(0, b"user:1", ("removed",), KeyState("string", None, 5), None),
        KeyDiff(0, b"sess:\xff|x\n", ("expired",), KeyState("string", T + 1000, 3), None),
        KeyDiff(0, b"user:`2`", ("added",), None, KeyState("hash", None, 4)),
        KeyDiff(
            0,
            b"cart:9",
            ("size", "ttl_changed"),
            KeyState("hash", T + 60_000, 3),
            KeyState("hash", T + 3_600_000 + 7_200_000, 4),
        ),
        KeyDiff(1, b"queue", ("removed",), KeyState("list", None, 7), None),
    ]
    return DiffReport(
        a,
        b,
        KEYS,
        {0: db0, 1: db1},
        keys,
        keys_differing=4,
        keys_expired=1,
        by_kind={"removed": 2, "expired": 1, "added": 1, "size": 1, "ttl_changed": 1},
        prefixes=[PrefixDiff("user", 1, 1, 0), PrefixDiff("cart", 0, 0, 1), PrefixDiff("", 1)],
        ttl_tolerance_ms=1000,
        notes=["db 1: read from the file only"],
    )


def counts_report(same: bool = False) -> DiffReport:
    """A side that is a saved check report: counts only, None for what it cannot know."""
    a, b = sources()
    a = dataclasses.replace(a, kind="report", name="before.json")
    unknown = dict(added=None, removed=None, expired=None, changed=None, unchanged=None)
    db0 = DbDiff(
        Counts(5, 5 if same else 4, **unknown),
        1,
        1,
        {"string": Counts(5, 5 if same else 4, **unknown)},
    )
    return DiffReport(a, b, COUNTS, {0: db0})


# --- JSON ----------------------------------------------------------------------------------


def test_json_has_the_schema_and_every_documented_field() -> None:
    data = diff_json(keys_report())
    assert data["schema"] == "rbkit.diff/1"
    assert data["same"] is False
    assert data["level"] == "keys"
    assert set(data) == {
        "schema",
        "same",
        "level",
        "a",
        "b",
        "dbs_compared",
        "match",
        "ttl_tolerance_ms",
        "databases",
        "totals",
        "keys_differing",
        "keys_expired",
        "values_compared",
        "values_reread",
        "by_kind",
        "prefixes",
        "keys",
        "notes",
    }
    assert data["a"] == {
        "kind": "rdb",
        "name": "/backups/before/dump.rdb",
        "time_ms": T,
        "time": "2023-11-14T22:13:20Z",
        "time_source": "aux ctime",
        "version": "7.0.15",
        "keys_read": 6,
        "seconds": 0.012,
        "notes": [],
        "via": None,
    }
    assert data["b"]["notes"] == [
        "the server changed while it was read: DBSIZE 5 at the start, 6 at the end"
    ]
    assert json.loads(json.dumps(data)) == data  # plain JSON types only


def test_json_databases_are_string_keyed_and_totals_add_up() -> None:
    data = diff_json(keys_report())
    assert list(data["databases"]) == ["0", "1"]
    db0 = data["databases"]["0"]
    assert db0["keys"] == {
        "a": 5,
        "b": 5,
        "added": 1,
        "removed": 1,
        "expired": 1,
        "changed": 1,
        "unchanged": 1,
    }
    assert db0["expires"] == {"a": 2, "b": 1}
    assert list(db0["by_type"]) == ["string", "hash"]
    totals = data["totals"]
    assert totals["keys"]["a"] == 6 and totals["keys"]["removed"] == 2
    assert totals["expires"] == {"a": 2, "b": 1}
    assert list(totals["by_type"]) == ["string", "list", "hash"]  # Redis's type order
    assert data["keys_differing"] == 4 and data["keys_expired"] == 1


def test_json_by_kind_lists_every_kind_in_order() -> None:
    by_kind = diff_json(keys_report())["by_kind"]
    assert list(by_kind) == list(KINDS)
    assert by_kind["removed"] == 2 and by_kind["type"] == 0


def test_json_key_states_carry_expiry_ttl_relative_to_each_side_and_size() -> None:
    data = diff_json(keys_report())
    cart = next(k for k in data["keys"] if k["key"] == "cart:9")
    assert cart["kinds"] == ["size", "ttl_changed"]
    assert cart["a"] == {"type": "hash", "expire_ms": T + 60_000, "ttl_ms": 60_000, "size": 3}
    assert cart["b"]["ttl_ms"] == 7_200_000  # B's own time is an hour later
    removed = next(k for k in data["keys"] if k["key"] == "user:1")
    assert removed["b"] is None and removed["a"]["ttl_ms"] is None


def test_json_ttl_is_null_when_the_side_has_no_time() -> None:
    report = keys_report()
    report.a = dataclasses.replace(report.a, time_ms=None, time_source=None)
    cart = next(k for k in diff_json(report)["keys"] if k["key"] == "cart:9")
    assert cart["a"]["expire_ms"] == T + 60_000 and cart["a"]["ttl_ms"] is None
    assert diff_json(report)["a"]["time"] is None


def test_json_escapes_non_utf8_key_names_like_check() -> None:
    names = [k["key"] for k in diff_json(keys_report())["keys"]]
    assert "sess:\\xff|x\n" in names  # invalid byte as \xNN, valid text kept as it is


def test_json_without_keys_has_null_keys_and_prefixes_capped() -> None:
    data = diff_json(keys_report(), keys=False, top_prefixes=1)
    assert data["keys"] is None
    assert data["prefixes"] == [
        {"prefix": "user", "removed": 1, "added": 1, "changed": 0, "total": 2}
    ]


def test_json_counts_only_gives_null_for_unknown_counts() -> None:
    data = diff_json(counts_report())
    assert data["level"] == "counts"
    assert data["same"] is False
    keys = data["databases"]["0"]["keys"]
    assert keys == {
        "a": 5,
        "b": 4,
        "added": None,
        "removed": None,
        "expired": None,
        "changed": None,
        "unchanged": None,
    }
    assert data["totals"]["keys"]["added"] is None
    assert data["keys_differing"] is None and data["keys_expired"] is None
    assert diff_json(counts_report(same=True))["same"] is True


# --- table ---------------------------------------------------------------------------------


def test_table_header_names_both_sources_with_times_versions_and_reads() -> None:
    text = render_table(keys_report())
    lines = text.splitlines()
    assert lines[0] == (
        "rbkit diff: 4 keys differ: 2 removed, 1 added, 1 changed; "
        "1 key of A expired by B's time (not counted as differences)"
    )
    assert lines[1] == (
        "  A: /backups/before/dump.rdb (RDB file), 2023-11-14T22:13:20Z from aux ctime, "
        "Redis 7.0.15, 6 keys read in 0.01 s"
    )
    assert lines[2] == (
        "  B: redis://alice@127.0.0.1:6390/0 (live server), 2023-11-14T23:13:20Z from server "
        "TIME, Redis 7.2.4, 5 keys read in 0.25 s"
    )
    assert lines[3].strip().startswith("note: the server changed while it was read")
    assert "  level: key names, types, sizes and TTLs (values not compared: --values)" in lines
    assert "  TTL tolerance: 1000 ms" in lines
    assert "  note: db 1: read from the file only" in lines


def test_table_summary_per_db_with_an_all_row_and_per_type() -> None:
    text = render_table(keys_report())
    rows = [line.split() for line in text.splitlines()]
    assert rows[rows.index(next(r for r in rows if r[:2] == ["db", "A"]))][:8] == [
        "db",
        "A",
        "B",
        "added",
        "removed",
        "expired",
        "changed",
        "unchanged",
    ]
    assert ["0", "5", "5", "1", "1", "1", "1", "1", "2", "1"] in rows
    assert ["all", "6", "5", "1", "2", "1", "1", "1", "2", "1"] in rows
    assert ["1", "list", "1", "0", "0", "1", "0", "0", "0"] in rows
    assert ["all", "hash", "2", "3", "1", "0", "0", "1", "0"] in rows
    assert ["size", "changed", "1"] in rows and ["TTL", "changed", "1"] in rows
    assert ["user", "1", "1", "0", "2"] in rows and ["(none)", "1", "0", "0", "1"] in rows


def test_table_lists_keys_only_when_asked() -> None:
    report = keys_report()
    assert "cart:9" not in render_table(report)
    text = render_table(report, keys=True)
    assert "all 5 keys (4 differing and 1 expired):" in text
    line = next(line for line in text.splitlines() if "cart:9" in line)
    assert "size changed, TTL 1 m 0 s -> 2 h 0 m (+1 h 59 m)" in line
    assert "hash, 3 items, TTL 1 m 0 s" in line and "hash, 4 items, TTL 2 h 0 m" in line
    line = next(line for line in text.splitlines() if "user:1" in line)
    assert "string, 5 B, no TTL" in line
    assert "sess:\\xff|x\\n" in text  # the newline escaped: one key, one line


def test_table_says_when_the_list_is_cut_by_the_limit() -> None:
    report = keys_report()
    report.keys = report.keys[:2]
    assert "first 2 of 4 differing keys and 1 expired (--limit):" in render_table(report, keys=True)


def test_table_counts_only_shows_dashes_and_says_so() -> None:
    text = render_table(counts_report(), keys=True)
    assert text.splitlines()[0] == (
        "rbkit diff: the key counts differ: A has 5 keys, B has 4 "
        "(key names not compared: a side gave counts only)"
    )
    assert "(saved check report)" in text
    assert "level: counts only" in text
    assert ["0", "5", "4", "-", "-", "-", "-", "-", "1", "1"] in [
        line.split() for line in text.splitlines()
    ]
    assert "TTL tolerance" not in text


def test_table_of_an_identical_pair_says_the_same() -> None:
    a, b = sources()
    db = DbDiff(Counts(3, 3, 0, 0, 0, 0, 3), 0, 0, {"string": Counts(3, 3, 0, 0, 0, 0, 3)})
    report = DiffReport(a, b, VALUES, {0: db}, values_compared=3)
    text = render_table(report, keys=True)
    assert text.startswith("rbkit diff: the same keys, types, sizes, TTLs and values\n")
    assert "level: key names, types, sizes, TTLs and values (3 values compared)" in text
    assert "no key differs" in text


def test_empty_sides_render() -> None:
    a, b = sources()
    report = DiffReport(a, b, KEYS)
    assert render_table(report).endswith("no keys on either side")
    assert render_markdown(report).endswith("No keys on either side.\n")
    assert diff_json(report)["same"] is True


# --- Markdown ------------------------------------------------------------------------------


def test_markdown_is_a_review_section_with_pipe_tables() -> None:
    text = render_markdown(keys_report())
    lines = text.splitlines()
    assert lines[0] == "## Redis diff: dump.rdb → redis://alice@127.0.0.1:6390/0"
    assert lines[2].startswith("| side ") and lines[3].startswith("|:---")
    assert "| A (before) | `/backups/before/dump.rdb`" in lines[4]
    assert "2023-11-14T22:13:20Z" in lines[4] and "aux ctime" in lines[4]
    assert "**Result:** 4 keys differ: 2 removed, 1 added, 1 changed" in text
    assert "Compared: key names, types, sizes and TTLs" in text
    assert "- B: the server changed while it was read" in text
    for heading in (
        "### Keys per database",
        "### Keys per type",
        "### Differences by kind",
        "### Key families that changed most",
        "### Differing keys",
    ):
        assert heading in lines
    table_lines = [line for line in lines if line.startswith("|")]
    assert all(line.endswith("|") for line in table_lines)


def test_markdown_key_cells_cannot_break_the_table() -> None:
    text = render_markdown(keys_report())
    assert "| `sess:\\xff\\|x\\n` |" in text  # pipe escaped, newline shown as \n
    assert "`` user:`2` ``" in text  # a backtick inside: a longer fence
    row = next(line for line in text.splitlines() if "sess:" in line)
    assert row.count(" | ") == 4  # five cells


def test_markdown_without_keys_leaves_the_key_list_out() -> None:
    text = render_markdown(keys_report(), keys=False, top_prefixes=0)
    assert "### Differing keys" not in text and "cart:9" not in text
    assert "### Key families" not in text


def test_markdown_counts_only() -> None:
    text = render_markdown(counts_report(), keys=True)
    assert "Compared: counts only (a side is a saved check report: no key names)." in text
    assert "| 0    |   5 |   4 |       - |" in text
    assert "### Differing keys" not in text


# --- secrets -------------------------------------------------------------------------------


def test_a_password_in_a_name_or_note_is_never_printed() -> None:
    report = keys_report()
    url = f"redis://alice:{SECRET}@10.0.0.5:6379/0"
    report.b = dataclasses.replace(report.b, name=url, notes=[f"could not re-read {url}"])
    report.notes.append(f"rediss://:{SECRET}@host:6380")
    outputs = [
        render_table(report, keys=True),
        render_markdown(report),
        json.dumps(diff_json(report)),
    ]
    for out in outputs:
        assert SECRET not in out
        assert "alice:***@10.0.0.5:6379" in out


# --- helpers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (T, "2023-11-14T22:13:20Z"),
        (T + 5, "2023-11-14T22:13:20.005Z"),
        (0, "1970-01-01T00:00:00Z"),
        (10**20, "100000000000000000000 ms"),
    ],
)
def test_utc_iso(ms: int, text: str) -> None:
    assert utc_iso(ms) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (850, "850 ms"),
        (1500, "1.5 s"),
        (42_000, "42 s"),
        (200_000, "3 m 20 s"),
        (18_000_000, "5 h 0 m"),
        (3 * 86_400_000 + 3_600_000, "3 d 1 h"),
        (-2000, "-2.0 s"),
    ],
)
def test_duration(ms: int, text: str) -> None:
    assert duration(ms) == text


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1000", 1000), ("250ms", 250), ("2s", 2000), ("1.5s", 1500), ("1m", 60_000), ("0", 0)],
)
def test_ttl_tolerance_units(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "x", "-1", "1d", "1 s s"])
def test_ttl_tolerance_rejects_nonsense(text: str) -> None:
    assert parse_duration_ms(text) is None


# --- a real pair of RDB files, checked against what the server held --------------------------


@pytest.fixture(scope="module")
def small_pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return write_pair_with_oracle(tmp_path_factory.mktemp("diff-pair"))


# The Markdown's words for each kind of difference, and the order its tables list them in.
KIND_WORDS = {
    REMOVED: "removed",
    ADDED: "added",
    TYPE: "type changed",
    SIZE: "size changed",
    TTL_GAINED: "TTL gained",
    TTL_LOST: "TTL lost",
    TTL_CHANGED: "TTL changed",
}
TYPE_ORDER = ("string", "list", "set", "zset", "hash", "stream")
COUNT_HEADERS = ["A", "B", "added", "removed", "expired", "changed", "unchanged"]


def markdown_sections(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The lines before the first ``###`` heading, and each ``###`` section's lines."""
    head: list[str] = []
    sections: dict[str, list[str]] = {}
    current = head
    for line in text.splitlines():
        if line.startswith("### "):
            current = sections.setdefault(line[4:], [])
        else:
            current.append(line)
    return head, sections


def pipe_table(lines: list[str]) -> list[dict[str, str]]:
    """The one GitHub pipe table in ``lines``: a dict per row, cells stripped."""
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) >= 2 and set(rows[1]) <= set("|:- "), rows[:2]  # header, alignment row
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]
    return [dict(zip(split[0], cells, strict=True)) for cells in split[2:]]


def counts(rows: list[dict[str, str]], *labels: str) -> dict[tuple[str, ...], list[int]]:
    """Row label(s) -> the count columns."""
    return {tuple(r[h] for h in labels): [int(r[h]) for h in COUNT_HEADERS] for r in rows}


def side_text(snap: Snap | None) -> str:
    """What the key list says of one side (both sides' times pinned to PIVOT_MS)."""
    if snap is None:
        return "-"
    if snap.type == "string":
        size = f"{snap.size} B"
    else:
        size = f"{snap.size} item" + ("" if snap.size == 1 else "s")
    if snap.expire_ms is None:
        return f"{snap.type}, {size}, no TTL"
    hours, rest = divmod(snap.expire_ms - PIVOT_MS, HOUR_MS)
    assert rest == 0 and hours > 0  # diff_cases sets whole hours after the pivot
    return f"{snap.type}, {size}, TTL {hours} h 0 m"


def row_words(key_kinds: list[str], a: Snap | None, b: Snap | None) -> str:
    return ", ".join(
        kind_text(kind, a, b) if kind == TTL_CHANGED else KIND_WORDS[kind] for kind in key_kinds
    )


def kind_text(kind: str, a: Snap | None, b: Snap | None) -> str:
    """A key row's words for a TTL change: both TTLs and the difference, in whole hours (the
    case sets whole hours after the pivot, and both sides' times are the pivot)."""
    assert a is not None and b is not None
    assert kind == TTL_CHANGED and a.expire_ms is not None and b.expire_ms is not None
    ha, hb = ((s.expire_ms - PIVOT_MS) // HOUR_MS for s in (a, b))
    delta = hb - ha
    return f"TTL {ha} h 0 m -> {hb} h 0 m ({'+' if delta >= 0 else '-'}{abs(delta)} h 0 m)"


def test_markdown_of_a_real_pair_says_what_the_server_changed(small_pair: Pair) -> None:
    """Two RDB files saved by a real Redis 7.0, diffed and rendered as Markdown; every count
    and row is derived from the two keyspaces as the server held them (TYPE, STRLEN, LLEN,
    HLEN..., PEXPIRETIME), never from rbkit's output. The sources' names, times and versions
    are pinned (``normalised``), so both sides' TTLs are read from PIVOT_MS."""
    from toolkit.diff.compute import compute_diff

    a, b = small_pair.before_keys, small_pair.after_keys
    kinds = expected_kinds(a, b, values=False, tolerance=1000)
    assert kinds  # the pair differs (else this test proves little)
    report = compute_diff(
        str(small_pair.before), str(small_pair.after), limit=100, prefix_sep=":",
        ttl_tolerance_ms=1000,
    )  # fmt: skip
    text = render_markdown(normalised(report), keys=True)
    head, sections = markdown_sections(text)

    # The heading, the sources, the verdict.
    assert head[0] == "## Redis diff: before.rdb → after.rdb"
    sources = pipe_table(head)
    assert [(r["side"], r["source"], r["kind"], r["keys read"]) for r in sources] == [
        ("A (before)", "`before.rdb`", "RDB file", str(len(a))),
        ("B (after)", "`after.rdb`", "RDB file", str(len(b))),
    ]
    pivot = datetime.fromtimestamp(PIVOT_MS / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {r["time (UTC)"] for r in sources} == {pivot}
    removed = [k for k, v in kinds.items() if v == (REMOVED,)]
    added = [k for k, v in kinds.items() if v == (ADDED,)]
    changed = [k for k in kinds if k not in removed and k not in added]
    assert (
        f"**Result:** {len(kinds)} keys differ: {len(removed)} removed, {len(added)} added, "
        f"{len(changed)} changed"
    ) in head
    assert list(sections) == [
        "Keys per database",
        "Keys per type",
        "Differences by kind",
        "Key families that changed most",
        "Differing keys",
    ]

    # Per db and per (db, type): A, B, added, removed, expired (none: TTLs are in 2100),
    # changed, unchanged. A key whose type changed counts under its type in B.
    dbs = sorted({db for db, _ in a.keys() | b.keys()})
    per_db: dict[tuple[str, ...], list[int]] = {}
    per_type: dict[tuple[str, ...], list[int]] = {}
    for db in [*map(str, dbs), "all"]:
        keys = {k for k in a.keys() | b.keys() if db == "all" or k[0] == int(db)}
        per_db[(db,)] = [
            sum(k in a for k in keys),
            sum(k in b for k in keys),
            sum(k in added for k in keys),
            sum(k in removed for k in keys),
            0,
            sum(k in changed for k in keys),
            sum(k not in kinds for k in keys),
        ]
        for t in TYPE_ORDER:
            row = [
                sum(k in a and a[k].type == t for k in keys),
                sum(k in b and b[k].type == t for k in keys),
                sum(k in added and b[k].type == t for k in keys),
                sum(k in removed and a[k].type == t for k in keys),
                0,
                sum(k in changed and b[k].type == t for k in keys),
                sum(k not in kinds and b[k].type == t for k in keys),
            ]
            if any(row):
                per_type[(db, t)] = row
    db_rows = pipe_table(sections["Keys per database"])
    assert counts(db_rows, "db") == per_db
    assert [r["expires A"] for r in db_rows] == [
        str(sum(1 for k, s in a.items() if s.expire_ms is not None and db in ("all", str(k[0]))))
        for db in [*map(str, dbs), "all"]
    ]
    assert [r["expires B"] for r in db_rows] == [
        str(sum(1 for k, s in b.items() if s.expire_ms is not None and db in ("all", str(k[0]))))
        for db in [*map(str, dbs), "all"]
    ]
    type_lines = sections["Keys per type"]
    assert list(counts(pipe_table(type_lines), "db", "type").items()) == list(per_type.items())
    assert "(a key whose type changed counts as changed under its type in B)" in type_lines

    # Each kind, in the report's order, with how many keys show it.
    by_kind = Counter(kind for ks in kinds.values() for kind in ks)
    kind_rows = pipe_table(sections["Differences by kind"])
    assert [(r["difference"], int(r["keys"])) for r in kind_rows] == [
        (word, by_kind[kind]) for kind, word in KIND_WORDS.items() if by_kind[kind]
    ]

    # Key families (the part before the first ':'), the most differences first.
    families: dict[str, list[int]] = {}
    for db, key in kinds:
        name = key.decode()
        family = f"`{name.split(':', 1)[0]}`" if ":" in name else "(none)"
        f = families.setdefault(family, [0, 0, 0])
        f[0 if (db, key) in removed else 1 if (db, key) in added else 2] += 1
    want = sorted(
        families.items(), key=lambda kv: (-sum(kv[1]), kv[0].strip("`") if "`" in kv[0] else "")
    )
    assert [
        (r["key family"], [int(r["removed"]), int(r["added"]), int(r["changed"]), int(r["total"])])
        for r in pipe_table(sections["Key families that changed most"])
    ] == [(name, [*f, sum(f)]) for name, f in want]

    # Every differing key, its differences and each side as the server held it.
    keys_section = sections["Differing keys"]
    assert f"all {len(kinds)} differing keys:" in keys_section
    assert [tuple(r.values()) for r in pipe_table(keys_section)] == [
        (
            str(db),
            f"`{key.decode()}`",
            ", ".join(
                kind_text(kind, a[(db, key)], b[(db, key)])
                if kind == TTL_CHANGED
                else KIND_WORDS[kind]
                for kind in kinds[(db, key)]
            ),
            side_text(a.get((db, key))),
            side_text(b.get((db, key))),
        )
        for db, key in sorted(kinds)
    ]


def normalised(report: DiffReport) -> DiffReport:
    """The report with the run-dependent parts of its sources pinned, lists in a fixed order."""
    pinned = {"time_ms": PIVOT_MS, "time_source": "aux ctime", "version": "7.0.x", "seconds": 0.0}
    report.a = dataclasses.replace(report.a, name="before.rdb", **pinned)
    report.b = dataclasses.replace(report.b, name="after.rdb", **pinned)
    report.keys.sort(key=lambda k: (k.db, k.key))
    report.prefixes.sort(key=lambda p: (-p.total, p.prefix))
    return report
