"""The diff of two RDB files out of core (toolkit/diff/columnar.py): it is the path file-vs-file
diffs take, it finds exactly the changes made on a real server when the sides are joined in
many groups of partitions (and DuckDB, under a memory limit far below what a group needs,
spills too), and it gives the same report as the in-memory join of compute.py on fixtures
written by three Redis versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import DEBUG_CONFIG, RDB_FILES, binary
from diff_support import expected_kinds, found_kinds, read_key, save_copy

from toolkit.diff import batch_judge, columnar, compute, partitions
from toolkit.diff.compute import compute_diff
from toolkit.diff.render import diff_json
from toolkit.server.process import running_server

# 400,000 keys joined in groups of partitions of at most 60,000 keys a side, under a DuckDB
# memory limit below what a group's hash table takes.
KEYS = 400_000
GROUP_ROWS = 60_000
MEMORY_LIMIT = "32MB"
ALL_TYPES = [p for p in RDB_FILES if p.name.endswith("-all-types.rdb")]


def test_file_pairs_take_the_columnar_join(monkeypatch: pytest.MonkeyPatch) -> None:
    used = []
    real = columnar.Joined.join

    def spy(self: columnar.Joined, a: Any, b: Any, then: Any) -> Any:
        used.append((a.path.name, b.path.name))
        return real(self, a, b, then)

    monkeypatch.setattr(columnar.Joined, "join", spy)
    a, b = ALL_TYPES[0], ALL_TYPES[1]
    compute_diff(str(a), str(b))
    compute_diff(str(a), str(b), values=True)
    assert used == [("a.arrow", "b.arrow")] * 2


def test_partitioned_join_finds_exactly_the_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "GROUP_ROWS", GROUP_ROWS)
    monkeypatch.setattr(columnar, "MEMORY_LIMIT", MEMORY_LIMIT)
    seen = []
    close = columnar.Joined.close

    def noting_groups(self: columnar.Joined) -> None:
        spilled = {p.name for p in self.directory.rglob("*") if p.is_file()}
        seen.append((self.groups, spilled))
        close(self)

    monkeypatch.setattr(columnar.Joined, "close", noting_groups)
    deleted = [f"key:{i}" for i in range(0, KEYS, 997)]
    rewritten = [f"key:{i}" for i in range(5, KEYS, 1013)]
    touched = [*deleted, *rewritten, "key:11", "key:12", "new:1", "list:7", "list:14"]
    with running_server(binary("7.0"), config=DEBUG_CONFIG) as server:
        c = server.client(0)
        c.execute_command("DEBUG", "POPULATE", KEYS, "key", 20)
        for i in range(0, 1000, 7):
            c.rpush(f"list:{i}", *range(i % 5 + 1))
        before = {(0, k.encode()): read_key(c, k) for k in touched if c.exists(k)}
        n_before = c.dbsize()
        a = save_copy(server, tmp_path / "a.rdb")
        c.delete(*deleted)
        for i, key in enumerate(rewritten):
            c.set(key, "x" * (i % 30))
        c.set("new:1", "v")
        c.rpush("list:7", "more")
        c.pexpireat("key:11", 4_102_444_800_000)
        after = {(0, k.encode()): read_key(c, k) for k in touched if c.exists(k)}
        n_after = c.dbsize()
        b = save_copy(server, tmp_path / "b.rdb")
    for values in (False, True):
        report = compute_diff(str(a), str(b), values=values, limit=10_000)
        assert found_kinds(report) == expected_kinds(before, after, values=values)
        assert (report.databases[0].keys.a, report.databases[0].keys.b) == (n_before, n_after)
    for groups, spilled in seen:  # both sides were spilled, and joined in many groups
        assert groups >= KEYS // GROUP_ROWS
        assert {"a.arrow", "b.arrow"} <= spilled


def _without_timings(report: Any) -> dict[str, Any]:
    out = diff_json(report)
    for side in ("a", "b"):
        out[side].pop("seconds", None)
    return out


@pytest.mark.parametrize("values", [False, True])
@pytest.mark.parametrize(
    ("a", "b"),
    [(x, y) for x in ALL_TYPES for y in ALL_TYPES if x != y],
    ids=lambda p: p.name.split("-")[1],
)
def test_same_report_as_the_in_memory_join(
    a: Path, b: Path, values: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    columnar_report = _without_timings(compute_diff(str(a), str(b), values=values, limit=1000))
    monkeypatch.setattr(compute, "ENGINE", "table")
    table_report = _without_timings(compute_diff(str(a), str(b), values=values, limit=1000))
    assert columnar_report == table_report


@pytest.mark.parametrize("values", [False, True])
@pytest.mark.parametrize("prefix_sep", [None, "-"])
def test_batches_judged_as_columns_as_key_by_key(
    values: bool, prefix_sep: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The join's batches are judged with Arrow compute (batch_judge.py), and the report is
    the one the per-key judging (the path for a batch it declines) gives."""
    judged = []
    real = batch_judge.judge_batch

    def spy(*args: Any) -> bool:
        judged.append(real(*args))
        return judged[-1]

    monkeypatch.setattr(batch_judge, "judge_batch", spy)
    pairs = [(x, y) for x in ALL_TYPES for y in ALL_TYPES if x != y]
    by_columns = [
        _without_timings(
            compute_diff(str(a), str(b), values=values, limit=None, prefix_sep=prefix_sep)
        )
        for a, b in pairs
    ]
    assert judged and all(judged)
    monkeypatch.setattr(batch_judge, "judge_batch", lambda *args: False)
    by_keys = [
        _without_timings(
            compute_diff(str(a), str(b), values=values, limit=None, prefix_sep=prefix_sep)
        )
        for a, b in pairs
    ]
    assert by_columns == by_keys
    assert any(r["keys"] for r in by_keys)
