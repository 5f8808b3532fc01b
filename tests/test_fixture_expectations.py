"""Each fixture's expected JSON is well formed and describes the .rdb file next to it."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fixture_rows import assert_key_rows

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rdb"
EXPECTED = sorted(FIXTURES.glob("*.expected.json"))
TOP_LEVEL = {
    "schema", "server_version", "generated_by", "rdb_sha256", "saved_at_ms",
    "config", "databases", "keys", "functions", "modules",
}  # fmt: skip


def rdb_path(expected: Path) -> Path:
    return expected.with_name(expected.name.removesuffix(".expected.json") + ".rdb")


def load(expected: Path) -> dict[str, Any]:
    return json.loads(expected.read_text(encoding="utf-8"))


def fixture_id(path: Path) -> str:
    return path.name.removesuffix(".expected.json")


@pytest.mark.parametrize("expected", EXPECTED, ids=fixture_id)
def test_expected_json_is_well_formed(expected: Path) -> None:
    doc = load(expected)
    assert set(doc) == TOP_LEVEL
    assert doc["schema"] == "rbkit.fixture/1"
    assert doc["generated_by"] == "fixtures/generate.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", doc["server_version"])
    assert re.fullmatch(r"[0-9a-f]{64}", doc["rdb_sha256"])
    assert isinstance(doc["saved_at_ms"], int) and doc["saved_at_ms"] > 1_600_000_000_000
    ndb = int(doc["config"]["databases"])
    assert all(isinstance(v, str) for v in doc["config"].values())
    assert_key_rows(doc, ndb)
    assert all(isinstance(name, str) and name for name in doc["functions"])


@pytest.mark.parametrize("expected", EXPECTED, ids=fixture_id)
def test_rdb_matches_sha256(expected: Path) -> None:
    data = rdb_path(expected).read_bytes()
    # Valkey 9 writes its own magic; every other server here Redis's.
    magic = b"VALKEY" if expected.name.startswith("valkey-") else b"REDIS"
    assert data[: len(magic)] == magic
    assert hashlib.sha256(data).hexdigest() == load(expected)["rdb_sha256"]


@pytest.mark.parametrize("expected", EXPECTED, ids=fixture_id)
def test_database_counts_match_key_listing(expected: Path) -> None:
    doc = load(expected)
    for db, counts in doc["databases"].items():
        rows = doc["keys"][db]
        assert counts["keys"] == len(rows)
        assert counts["expires"] == sum(row["expire_ms"] is not None for row in rows)
        assert counts["by_type"] == dict(Counter(row["type"] for row in rows))
        assert sum(counts["by_type"].values()) == counts["keys"]


def test_every_rdb_has_expectations() -> None:
    rdbs = {p.name.removesuffix(".rdb") for p in FIXTURES.glob("*.rdb")}
    assert rdbs == {fixture_id(p) for p in EXPECTED}
