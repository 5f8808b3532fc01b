"""The JSON Schemas under schemas/: valid draft 2020-12, strict (an unknown or missing field
fails), and met by what rbkit prints (every --json output of the suite is checked too, by
the runners: tests/json_schemas.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import ROOT, invoke_cli
from json_schemas import SCHEMAS, problems, validator

NAMES = [
    "rbkit.check/1",
    "rbkit.cluster-check/1",
    "rbkit.restore/1",
    "rbkit.diff/1",
    "rbkit.error/1",
]
AOFS = sorted(
    p
    for p in (ROOT / "fixtures" / "aof").rglob("*")
    if p.suffix == ".aof" or p.name == "appendonlydir"
)


def test_every_schema_ships_and_is_draft_2020_12() -> None:
    assert sorted(p.name for p in SCHEMAS.glob("*.json")) == sorted(
        n.replace("/", "-") + ".json" for n in NAMES
    )
    for name in NAMES:
        schema = validator(name).schema
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["title"] == name


def check_json(*args: str | Path) -> dict:
    run = invoke_cli("check", "--json", *args)
    assert run.exit_code in (0, 1), run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize(
    "path", [*sorted((ROOT / "fixtures" / "rdb").glob("*.rdb")), *AOFS], ids=lambda p: p.name
)
def test_check_reports_meet_the_schema(path: Path) -> None:
    assert problems(check_json(path)) == []


def test_schemas_are_strict() -> None:
    report = check_json(ROOT / "fixtures" / "rdb" / "redis-7.0-all-types.rdb")
    extra = copy.deepcopy(report)
    extra["databases"]["0"]["bytez"] = 1
    assert any("bytez" in p for p in problems(extra))
    missing = copy.deepcopy(report)
    del missing["verdict"]
    assert any("verdict" in p for p in problems(missing))
    wrong = copy.deepcopy(report)
    wrong["totals"]["keys"] = "54"
    assert problems(wrong)
    restore = {"schema": "rbkit.restore/1", "mode": "stage-only", "outcome": "verified"}
    assert problems(restore)


def test_error_object_meets_its_schema(tmp_path: Path) -> None:
    for args in (
        ("check", "--json", tmp_path / "missing.rdb"),
        ("diff", "--json", tmp_path / "a", tmp_path / "b"),
    ):
        run = invoke_cli(*args)
        assert run.exit_code == 2
        document = json.loads(run.stdout)
        assert document["schema"] == "rbkit.error/1" and problems(document) == []


def test_diff_and_drill_reports_meet_their_schemas() -> None:
    a, b = (
        ROOT / "fixtures" / "rdb" / "redis-7.0-all-types.rdb",
        ROOT / "fixtures" / "rdb" / "redis-8.2-all-types.rdb",
    )
    run = invoke_cli("diff", "--json", "--keys", "--values", a, b)
    assert run.exit_code == 1 and problems(json.loads(run.stdout)) == []
    drill = invoke_cli("restore", "--stage-only", "--json", a)
    report = json.loads(drill.stdout)
    assert drill.exit_code == 0 and report["mode"] == "stage-only" and problems(report) == []
